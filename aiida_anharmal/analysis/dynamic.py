"""Dynamic-training runs read from the graph: the table of fits and the figures of Callsen et al.

:func:`status_lines` prints per fit the MD step it was triggered at, N_data, beta^-1/2, mu_k[eps_B] and the
trigger frame's eps_B, the test RMSE and the bracket, then the decision. :func:`write_plots` draws

* ``dynamic_eps_b.png`` (Fig. 2): eps_B of the saved frames along the trajectory, with mu_k and sigma_k over
  the last k steps and the refits marked;
* ``dynamic_convergence.png`` (Fig. 3): test RMSE and beta^-1/2 against N_data, and the bracket's upper end;
* ``dynamic_z_b.png`` (Fig. 4): the distribution of z_B = (eps_B - mu_k)/sigma_k, with its skewness.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

PROCESS_LABEL = 'DynamicTrainingWorkChain'


def check_node(node) -> None:
    if getattr(node, 'process_label', None) != PROCESS_LABEL:
        what = getattr(node, 'process_label', None) or type(node).__name__
        raise ValueError(f'node {node.pk} is a {what}, not a {PROCESS_LABEL}')


def latest_decision(node) -> dict | None:
    """The history and decision after the last fit so far (the output when finished), or ``None``."""
    check_node(node)
    if 'decision' in node.outputs:
        return node.outputs.decision.get_dict()
    decisions = [n for n in node.called if n.process_label == 'dynamic_decision' and 'result' in n.outputs]
    return max(decisions, key=lambda n: n.ctime).outputs.result.get_dict() if decisions else None


def latest_frames(node):
    """The frame arrays of the trajectory so far (the last MD run holds every earlier frame), or ``None``."""
    if 'frames' in node.outputs:
        return node.outputs.frames
    runs = [n for n in node.called if n.process_label == 'MDBaseWorkChain' and 'frames' in n.outputs]
    return max(runs, key=lambda n: n.ctime).outputs.frames if runs else None


def _meV(value) -> str:
    return '-' if value is None or not np.isfinite(value) else f'{1000 * value:.3f}'


def status_lines(node) -> list[str]:
    decision = latest_decision(node)
    state = node.process_state.value if node.process_state else 'created'
    lines = [f'{PROCESS_LABEL}<{node.pk}> ({state}): meV/A']
    if decision is None:
        return [*lines, 'no fit yet']
    lines.append(
        f'{"fit":>4} {"step":>7} {"N_data":>6} {"beta^-1/2":>10} {"mu_k":>8} {"eps_B":>8} {"test RMSE":>10} '
        f'{"bracket":>17}'
    )
    for k, row in enumerate(decision['fits']):
        lower, upper = row.get('bracket') or (None, None)
        bracket = f'[{_meV(lower)}, {_meV(upper)}]'
        lines.append(
            f'{k:>4} {row["step"]:>7} {row["n_data"]:>6} {_meV(row["noise"]):>10} {_meV(row.get("mu_k")):>8} '
            f'{_meV(row.get("eps_b")):>8} {_meV(row.get("test_rmse")):>10} {bracket:>17}'
        )
    lines.append(f'decision ({decision["rule"]}): {decision["reason"]}: {decision["message"]}')
    return lines


def retrain_k(node) -> int:
    from ..core.bayesian.retrain import make_retrain_rule

    rule = make_retrain_rule(node.inputs.retrain.get_dict())
    return int(rule.parameters.get('k', 1000))


def write_plots(node, folder: str | PathLike) -> list[Path]:
    """The three figures of a run (running or finished) into ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    decision = latest_decision(node)
    frames = latest_frames(node)
    if decision is None or frames is None:
        raise ValueError(f'{PROCESS_LABEL}<{node.pk}> has no trajectory yet')
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw, size in (
        ('dynamic_eps_b', _draw_eps_b, (7, 4)),
        ('dynamic_convergence', _draw_convergence, (7, 4)),
        ('dynamic_z_b', _draw_z_b, (5, 4)),
    ):
        figure, axis = plt.subplots(figsize=size)
        draw(axis, node, decision, frames)
        paths.append(folder / f'{name}.png')
        figure.tight_layout()
        figure.savefig(paths[-1], dpi=120)
        plt.close(figure)
    return paths


def _window_frames(frames, k: int) -> int:
    """k steps as a number of saved frames."""
    steps = frames.get_array('step')
    stride = int(np.median(np.diff(steps))) if len(steps) > 1 else 1
    return max(1, k // max(stride, 1))


def _draw_eps_b(axis, node, decision, frames) -> None:
    from ..core.bayesian.convergence import running_statistics

    k = retrain_k(node)
    time_ps = frames.get_array('time') / 1000.0
    eps = frames.get_array('trigger_score') * 1000
    mu, sigma = running_statistics(eps, _window_frames(frames, k))
    axis.plot(time_ps, eps, lw=0.6, color='0.5', label='eps_B')
    axis.plot(time_ps, mu, color='C0', label=f'mu_k (k = {k} steps)')
    axis.fill_between(time_ps, mu - sigma, mu + sigma, color='C0', alpha=0.2, label='mu_k +- sigma_k')
    steps = frames.get_array('step')
    for row in decision['fits'][1:]:
        index = int(np.searchsorted(steps, row['step']))
        if index < len(steps):
            axis.axvline(time_ps[index], color='C3', lw=0.8, alpha=0.6)
    axis.plot([], [], color='C3', lw=0.8, label=f'refit ({len(decision["fits"]) - 1})')
    axis.set(xlabel='time (ps)', ylabel='eps_B (meV/A)', title='Bayesian error along the trajectory')
    axis.legend(fontsize=8)


def _draw_convergence(axis, node, decision, frames) -> None:
    fits = decision['fits']
    n_data = [row['n_data'] for row in fits]
    meV = (
        np.array(
            [
                [row['noise'], row.get('test_rmse') or np.nan, (row.get('bracket') or [np.nan, np.nan])[1]]
                for row in fits
            ],
            dtype=float,
        )
        * 1000
    )
    axis.plot(n_data, meV[:, 1], 'o-', color='C3', label='test RMSE')
    axis.plot(n_data, meV[:, 0], 's-', color='C0', label='beta^-1/2')
    axis.plot(n_data, meV[:, 2], '--', color='C0', label='sqrt(1/beta + mean eps_B^2) (test)')
    axis.set(xlabel='N_data (training structures)', ylabel='force error (meV/A)', title='Convergence of the fit')
    axis.legend(fontsize=8)


def _draw_z_b(axis, node, decision, frames) -> None:
    from ..core.bayesian.convergence import skewness, z_scores

    z = z_scores(frames.get_array('trigger_score'), _window_frames(frames, retrain_k(node)))
    z = z[np.isfinite(z)]
    if z.size:
        axis.hist(z, bins=40, density=True, color='C0', alpha=0.7, label=f'z_B (skewness {skewness(z):.2f})')
        grid = np.linspace(min(z.min(), -4), max(z.max(), 4), 200)
        axis.plot(grid, np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi), color='k', lw=1, label='standard normal')
    axis.set(xlabel='z_B = (eps_B - mu_k) / sigma_k', ylabel='density', title='Distribution of z_B')
    axis.legend(fontsize=8)
