"""How the candidate frames of one acquisition were drawn, from plain numpy data (no AiiDA in here).

:func:`plot_acquisition` draws four panels that share the uncertainty axis where they can:

* **P(UCE)** against the uncertainty: the soft threshold of the uncertainty (1/2 at mu + s sigma of the test set);
* **P(U)** against the uncertainty: the plausibility of the frame's energy. Frames the ensemble is unsure of
  (P(UCE) >= 1/2) but whose energy P(U) rejects (P(U) < 0.05: a frame too high in energy to be visited at the
  run's temperature, often a broken crystal) are marked with orange crosses: the reason the most uncertain
  frames may have P ~ 0;
* **P = P(UCE) P(U)**, the weight of the draw;
* a histogram of P for the selected and the not-selected frames.

Every candidate is a small grey dot; every selected frame an open red circle on top (open, so that frames at
the same place stay visible), and the title counts them. Inputs are in the workflows' units (eV, eV/Å); the
axis shows ``label`` after ``scale``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from .plots import _array, _figure, _mathtext_label, _save

#: P(U) below which an uncertain frame counts as rejected by its energy (marked in the plot)
REJECTED_P_ENERGY = 0.05


def plot_acquisition(
    uncertainty,
    p_uncertainty,
    p_energy,
    p,
    selected_mask,
    path: str | PathLike,
    label: str = 'UCE_F^max (meV/Å)',
    scale: float = 1000.0,
) -> Path:
    """P(UCE), P(U) and P of every candidate frame against its uncertainty, and the histogram of P.

    :param uncertainty: uncertainty of each candidate frame (input units, e.g. eV/Å).
    :param p_uncertainty: P(UCE) of each frame.
    :param p_energy: P(U) of each frame.
    :param p: P = P(UCE) P(U) of each frame.
    :param selected_mask: boolean array, True for the frames selected for labelling.
    :param path: where to write the PNG.
    :param label: x-axis label with its unit, after ``scale``.
    :param scale: factor from the input units of ``uncertainty`` to those of ``label`` (1000: eV/Å -> meV/Å).
    :raises ValueError: if the arrays are empty, not one-dimensional, differ in length, or ``selected_mask`` is not
        boolean.
    """
    arrays, mask = _acquisition_arrays(uncertainty, p_uncertainty, p_energy, p, selected_mask)
    x = scale * arrays['uncertainty']
    rejected = (arrays['p_uncertainty'] >= 0.5) & (arrays['p_energy'] < REJECTED_P_ENERGY)
    fig = _figure(figsize=(11.0, 7.5))
    axes = fig.subplots(2, 2)
    panels = (
        (axes[0, 0], 'p_uncertainty', 'P(UCE): how uncertain'),
        (axes[0, 1], 'p_energy', 'P(U): how plausible the energy'),
        (axes[1, 0], 'p', 'P = P(UCE) P(U): the weight of the draw'),
    )
    for ax, key, title in panels:
        y = arrays[key]
        ax.scatter(x, y, s=8, color='0.65', linewidths=0, label=f'candidates ({mask.size})')
        if rejected.any():
            ax.scatter(
                x[rejected],
                y[rejected],
                s=30,
                marker='x',
                color='tab:orange',
                linewidths=1.0,
                zorder=2,
                label=f'uncertain, rejected by P(U) < {REJECTED_P_ENERGY} ({int(rejected.sum())})',
            )
        ax.scatter(
            x[mask],
            y[mask],
            s=60,
            facecolors='none',
            edgecolors='tab:red',
            linewidths=1.3,
            zorder=3,
            label=f'selected ({int(mask.sum())})',
        )
        ax.set_xlabel(_mathtext_label(label))
        ax.set_ylabel('probability (1)')
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc='lower right')
    _probability_histogram(axes[1, 1], arrays['p'], mask)
    fig.suptitle(
        f'Acquisition: {int(mask.sum())} of {mask.size} candidate frames selected'
        + (f'; {int(rejected.sum())} uncertain frames rejected by their energy' if rejected.any() else '')
    )
    return _save(fig, path)


def _acquisition_arrays(uncertainty, p_uncertainty, p_energy, p, selected_mask) -> tuple[dict, np.ndarray]:
    """The four arrays and the mask of :func:`plot_acquisition`, checked."""
    named = {'uncertainty': uncertainty, 'p_uncertainty': p_uncertainty, 'p_energy': p_energy, 'p': p}
    arrays = {name: _array(values, name) for name, values in named.items()}
    mask = np.asarray(selected_mask)
    if mask.dtype != bool:
        raise ValueError(f'selected_mask must be a boolean array, got dtype {mask.dtype}')
    if mask.ndim != 1:
        raise ValueError(f'selected_mask must be one-dimensional, got shape {mask.shape}')
    lengths = {name: array.size for name, array in arrays.items()} | {'selected_mask': mask.size}
    if len(set(lengths.values())) != 1:
        raise ValueError(f'the arrays must all have the same length, got {lengths}')
    if mask.size == 0:
        raise ValueError('no candidate frames to plot')
    return arrays, mask


def _probability_histogram(ax, probability: np.ndarray, mask: np.ndarray) -> None:
    """Histogram of P for the selected and the not-selected frames (log counts)."""
    finite = np.isfinite(probability)
    low = min(0.0, float(probability[finite].min())) if finite.any() else 0.0
    high = max(1.0, float(probability[finite].max())) if finite.any() else 1.0
    bins = np.linspace(low, high, 21)
    ax.hist(
        [probability[finite & ~mask], probability[finite & mask]],
        bins=bins,
        histtype='stepfilled',
        alpha=0.6,
        color=['0.6', 'tab:red'],
        label=['not selected', 'selected'],
        log=True,
    )
    ax.set_xlabel('P = P(UCE) P(U) (1)')
    ax.set_ylabel('frames (count)')
    ax.set_title('the weights of the draw', fontsize=10)
    ax.legend(fontsize=8)
