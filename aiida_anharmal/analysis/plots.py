"""Plots of an active-learning run, from plain Python / numpy data (no AiiDA in here).

Every function draws one figure with the object-oriented :class:`matplotlib.figure.Figure` API on an Agg canvas
(no pyplot, no global backend or figure state), writes it as a PNG (120 dpi, tight layout) to ``path``, creating
the parent folder if needed, and returns ``path`` as a :class:`pathlib.Path`. Empty or inconsistent input raises
:class:`ValueError` before anything is written. Inputs are in the units the workflows store (eV, eV/Å, fs); the
plots show meV, meV/Å and ps.

:func:`plot_learning_curve`
    The learning curve of the active-learning loop: test-set force MAE (meV/Å) of each iteration's ensemble against
    the number of labelled frames it was trained on, each point annotated with its iteration number; on a second
    y-axis the test-set mean of the maximum force uncertainty UCE_F^max (meV/Å) with its standard deviation as
    error bars. Both should fall as the training set grows.

:func:`plot_exploration`
    The uncertainty along exploration MD runs, as in Figs. 6 and 9 of Kang et al.: stacked panels sharing the time
    axis (ps) with the energy uncertainty UCE_U (meV), the maximum force uncertainty UCE_F^max (meV/Å) and, when
    any run has it, the anharmonicity A; one line per run, the frames selected for labelling as red dots, and
    optional acquisition thresholds mu + s sigma of the test set as dashed horizontal lines.

How the candidate frames were drawn (P(UCE), P(U) and P): :func:`aiida_anharmal.analysis.acquisition_plot.plot_acquisition`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

__all__ = ['plot_exploration', 'plot_learning_curve']

DPI = 120
SELECTED_COLOR = 'tab:red'
# The tab10 colours without red, which marks the selected frames.
RUN_COLORS = (
    'tab:blue',
    'tab:orange',
    'tab:green',
    'tab:purple',
    'tab:brown',
    'tab:pink',
    'tab:gray',
    'tab:olive',
    'tab:cyan',
)
THRESHOLD_LABEL = r'$\mu + s\,\sigma$ (test set)'
THRESHOLD_KEYS = ('uce_energy', 'uce_force_max')


def _figure(**kwargs):
    """A Figure on its own Agg canvas, with tight layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout='tight', **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` and return it as a Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format='png')
    return path


def _number(value, what: str) -> float | None:
    """``value`` as a float, or None where it is None or NaN."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exception:
        raise ValueError(f'{what} is not a number: {value!r}') from exception
    return None if math.isnan(number) else number


def _array(values, what: str) -> np.ndarray:
    """``values`` as a 1-D float array."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exception:
        raise ValueError(f'{what} is not an array of numbers') from exception
    if array.ndim != 1:
        raise ValueError(f'{what} must be one-dimensional, got shape {array.shape}')
    return array


# ---------------------------------------------------------------------------------------------------------------------
# Learning curve
# ---------------------------------------------------------------------------------------------------------------------


def plot_learning_curve(rows: list[dict], path: str | PathLike) -> Path:
    """Test-set force MAE and mean UCE_F^max of each iteration against the number of labelled training frames.

    :param rows: one dict per iteration with ``iteration`` (int), ``training_frames`` (int, the number of labelled
        frames the iteration's ensemble was trained on; may be missing), ``test_forces_mae`` (eV/Å or None) and
        ``uce_force_max`` ((mean, std) in eV/Å, or None). Rows missing a value are left out of that curve.
    :param path: where to write the PNG.
    :raises ValueError: if ``rows`` is empty, a row is not a dict or holds a malformed value, or no row has both
        ``training_frames`` and ``test_forces_mae``.
    """
    if not rows:
        raise ValueError('no rows to plot: the learning curve needs at least one iteration')

    mae_points = []  # (frames, mae in meV/Å, iteration)
    uce_points = []  # (frames, mean, std in meV/Å)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f'row {index} is not a dict: {row!r}')  # noqa: TRY004 - all bad input is a ValueError
        frames = _number(row.get('training_frames'), f'training_frames of row {index}')
        if frames is None:
            continue
        mae = _number(row.get('test_forces_mae'), f'test_forces_mae of row {index}')
        if mae is not None:
            mae_points.append((frames, 1000.0 * mae, row.get('iteration')))
        uce = row.get('uce_force_max')
        if uce is not None:
            if isinstance(uce, (str, bytes)) or not isinstance(uce, Sequence | np.ndarray) or len(uce) != 2:
                raise ValueError(f'uce_force_max of row {index} must be a (mean, std) pair, got {uce!r}')
            mean = _number(uce[0], f'uce_force_max mean of row {index}')
            std = _number(uce[1], f'uce_force_max std of row {index}')
            if mean is not None:
                uce_points.append((frames, 1000.0 * mean, 0.0 if std is None else 1000.0 * std))

    if not mae_points:
        raise ValueError('no row has both training_frames and test_forces_mae: nothing to plot')

    mae_points.sort(key=lambda point: point[0])
    uce_points.sort(key=lambda point: point[0])

    fig = _figure(figsize=(7.0, 4.5))
    ax = fig.add_subplot()
    x = [point[0] for point in mae_points]
    y = [point[1] for point in mae_points]
    handles = ax.plot(x, y, 'o-', color='tab:blue', label='test-set force MAE')
    for frames, mae, iteration in mae_points:
        if iteration is not None:
            ax.annotate(
                str(iteration), (frames, mae), textcoords='offset points', xytext=(5, 5), fontsize=8, color='tab:blue'
            )
    ax.set_xlabel('labelled training frames')
    ax.set_ylabel('test-set force MAE (meV/Å)', color='tab:blue')
    ax.tick_params(axis='y', labelcolor='tab:blue')
    ax.grid(alpha=0.3)

    if uce_points:
        twin = ax.twinx()
        container = twin.errorbar(
            [p[0] for p in uce_points],
            [p[1] for p in uce_points],
            yerr=[p[2] for p in uce_points],
            fmt='s--',
            color='tab:orange',
            capsize=3,
            label=r'test-set mean UCE$_F^{\max}$ $\pm$ std',
        )
        handles.append(container)
        twin.set_ylabel(r'test-set UCE$_F^{\max}$ (meV/Å)', color='tab:orange')
        twin.tick_params(axis='y', labelcolor='tab:orange')
    ax.legend(handles=handles, loc='best', fontsize=9)
    ax.set_title('Learning curve (points labelled with the iteration)')
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------------------------------
# Exploration
# ---------------------------------------------------------------------------------------------------------------------


def _exploration_run(name: str, run) -> dict:
    """Validated arrays of one exploration run: time (ps), UCE_U (meV), UCE_F^max (meV/Å), A or None, selected."""
    if not isinstance(run, Mapping):
        raise ValueError(f'run {name!r} is not a dict')  # noqa: TRY004 - all bad input is a ValueError
    for key in ('time', 'uce_energy', 'uce_force_max'):
        if key not in run or run[key] is None:
            raise ValueError(f'run {name!r} has no {key!r}')
    time = _array(run['time'], f'time of run {name!r}')
    if time.size == 0:
        raise ValueError(f'run {name!r} has no frames')
    arrays = {'time': time / 1000.0}
    for key, scale in (('uce_energy', 1000.0), ('uce_force_max', 1000.0), ('anharmonicity', 1.0)):
        if run.get(key) is None:
            arrays[key] = None
            continue
        array = _array(run[key], f'{key} of run {name!r}')
        if array.size != time.size:
            raise ValueError(f'run {name!r}: {key} has {array.size} values but time has {time.size}')
        arrays[key] = scale * array
    if arrays['anharmonicity'] is not None and not np.isfinite(arrays['anharmonicity']).any():
        arrays['anharmonicity'] = None

    selected = run.get('selected')
    if selected is None:
        selected = np.zeros(0, dtype=int)
    else:
        selected = np.asarray(selected)
        if selected.dtype == bool:
            if selected.shape != time.shape:
                raise ValueError(f'run {name!r}: boolean selected has {selected.size} values but time has {time.size}')
            selected = np.flatnonzero(selected)
        elif selected.size == 0:
            selected = np.zeros(0, dtype=int)
        elif selected.ndim != 1 or not np.issubdtype(selected.dtype, np.integer):
            raise ValueError(f'run {name!r}: selected must be a list of frame indices, got {run["selected"]!r}')
        if selected.size and (selected.min() < -time.size or selected.max() >= time.size):
            raise ValueError(f'run {name!r}: selected frame index out of range for {time.size} frames')
    arrays['selected'] = selected
    stopped = run.get('stopped')
    arrays['stopped'] = str(stopped) if stopped else None
    return arrays


def plot_exploration(runs: dict[str, dict], path: str | PathLike, thresholds: dict | None = None) -> Path:
    """UCE_U, UCE_F^max and A along exploration MD runs, the selected frames as red dots (Kang et al., Figs. 6/9).

    :param runs: run name -> dict with arrays ``time`` (fs), ``uce_energy`` (eV), ``uce_force_max`` (eV/Å), optional
        ``anharmonicity`` (may hold NaN) and optional ``selected`` (indices of the frames selected for labelling,
        or a boolean mask over the frames), optional ``stopped`` (why a stop rule ended the run, marked with a black
        cross at its last frame). The A panel is left out if no run has a finite anharmonicity.
    :param path: where to write the PNG.
    :param thresholds: optional ``uce_energy`` (eV) and/or ``uce_force_max`` (eV/Å) acquisition thresholds
        mu + s sigma of the test set, drawn as dashed horizontal lines.
    :raises ValueError: if ``runs`` is empty, a run lacks one of the required arrays or has no frames, the arrays of
        a run differ in length, a selected index is out of range, or ``thresholds`` holds an unknown key.
    """
    if not runs:
        raise ValueError('no runs to plot')
    data = {str(name): _exploration_run(str(name), run) for name, run in runs.items()}

    thresholds = dict(thresholds or {})
    unknown = set(thresholds) - set(THRESHOLD_KEYS)
    if unknown:
        raise ValueError(f'unknown thresholds {sorted(unknown)}: expected some of {list(THRESHOLD_KEYS)}')
    lines = {key: _number(value, f'threshold {key}') for key, value in thresholds.items()}

    panels = [('uce_energy', r'UCE$_U$ (meV)', 1000.0), ('uce_force_max', r'UCE$_F^{\max}$ (meV/Å)', 1000.0)]
    if any(arrays['anharmonicity'] is not None for arrays in data.values()):
        panels.append(('anharmonicity', r'$A$ (1)', 1.0))

    fig = _figure(figsize=(9.5, 2.4 * len(panels) + 0.6))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for row, (ax, (key, ylabel, scale)) in enumerate(zip(axes, panels, strict=True)):
        first = row == 0  # the runs and the selected frames are labelled in the legend of the top panel only
        plotted = [(index, arrays) for index, arrays in enumerate(data.values()) if arrays[key] is not None]
        for index, arrays in plotted:
            ax.plot(
                arrays['time'],
                arrays[key],
                '-',
                lw=1.0,
                color=RUN_COLORS[index % len(RUN_COLORS)],
                label=list(data)[index] if first else None,
            )
        selected_labelled = not first
        for _, arrays in plotted:
            selected = arrays['selected']
            if selected.size:
                ax.plot(
                    arrays['time'][selected],
                    arrays[key][selected],
                    'o',
                    ms=4,
                    color=SELECTED_COLOR,
                    zorder=3,
                    label=None if selected_labelled else 'selected for labelling',
                )
                selected_labelled = True
        stop_labelled = not first
        for _, arrays in plotted:
            if arrays['stopped']:
                ax.plot(
                    arrays['time'][-1],
                    arrays[key][-1],
                    'X',
                    ms=9,
                    color='black',
                    zorder=2.5,  # under the red dots of the selected frames
                    label=None if stop_labelled else 'stopped by a guard or trigger',
                )
                stop_labelled = True
        if lines.get(key) is not None:
            ax.axhline(scale * lines[key], ls='--', lw=1.0, color='black', label=THRESHOLD_LABEL)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[-1].set_xlabel('time (ps)')
    axes[0].set_title('Exploration: ensemble uncertainty along the MD runs')
    return _save(fig, path)


def _mathtext_label(label: str) -> str:
    """``UCE_F^max`` and ``UCE_U`` in ``label`` as mathtext sub/superscripts; other labels unchanged."""
    return label.replace('UCE_F^max', r'UCE$_F^{\max}$').replace('UCE_U', r'UCE$_U$')
