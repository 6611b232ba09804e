"""Hyperactive-learning runs read from the graph, and their plot: tau, the bias force and the trigger score.

:func:`hal_runs` reads, per exploration run of an acquisition, the frame arrays the HAL bias and the stop
trigger record (``tau``, ``bias_force``, ``trigger_score``), the frames chosen for labelling and the
trigger's threshold (from the MD calculation's ``trigger`` input); :func:`plot_hal` draws them along the
run's time, one line per run, so that one sees when the bias set in, how strong it was and where each
trigger fired.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ..core.md.stop_rules import TRIGGERS
from ..ports import dict_input


def trigger_threshold(frames) -> tuple[str, float] | None:
    """``(kind, threshold)`` of the stop trigger of the MD run that made ``frames``, or ``None``."""
    creator = frames.creator
    if creator is None or 'trigger' not in creator.inputs:
        return None
    settings = creator.inputs.trigger.get_dict()
    from ..core.md.loop import MDSettings

    parameters = dict_input(creator.inputs, 'parameters')
    temperature = parameters.get('temperature', MDSettings().temperature)  # the run's, or the MD default
    threshold = TRIGGERS.get(settings['kind']).threshold_at(
        {k: v for k, v in settings.items() if k != 'kind'}, temperature
    )
    return None if threshold is None else (settings['kind'], threshold)


def hal_runs(selection) -> dict[str, dict]:
    """Per run of the acquisition that made ``selection``: time, tau, bias force, trigger score, the frames
    selected and the trigger; empty if no run was biased or had a trigger."""
    from aiida import orm
    from aiida.common.links import LinkType

    runs = {}
    for link in selection.creator.base.links.get_incoming(
        node_class=orm.ArrayData, link_type=LinkType.INPUT_CALC
    ).all():
        arrays = link.node
        names = arrays.get_arraynames()
        if not {'tau', 'trigger_score'} <= set(names):
            continue
        run = {key: arrays.get_array(key) for key in ('time', 'tau', 'bias_force', 'trigger_score')}
        if not (np.isfinite(run['tau']).any() or np.isfinite(run['trigger_score']).any()):
            continue
        run['selected'] = [frame for name, frame in selection['frames'] if name == link.link_label]
        # the MD calculation that made the frames, or the last one of the restart workchain
        run['trigger'] = trigger_threshold(arrays)
        runs[link.link_label] = run
    return runs


def plot_hal(runs: dict[str, dict], path: str | PathLike) -> Path:
    """tau, |tau grad sigma| and the trigger score along HAL runs; selected frames red, thresholds dashed."""
    from .plots import RUN_COLORS, SELECTED_COLOR, _figure, _save

    if not runs:
        raise ValueError('no HAL runs to plot')
    fig = _figure(figsize=(9.5, 7.6))
    axes = fig.subplots(3, 1, sharex=True)
    thresholds = set()
    for index, (name, run) in enumerate(sorted(runs.items())):
        color = RUN_COLORS[index % len(RUN_COLORS)]
        t = np.asarray(run['time']) / 1000.0
        tau = np.asarray(run['tau'], dtype=float)
        values = (tau, 1000.0 * tau * np.asarray(run['bias_force'], dtype=float), np.asarray(run['trigger_score']))
        selected = np.asarray(run['selected'], dtype=int)
        for ax, y in zip(axes, values, strict=True):
            ax.plot(t, y, color=color, lw=1.0, label=name)
            if len(selected):
                ax.plot(t[selected], y[selected], 'o', color=SELECTED_COLOR, ms=4)
        if run.get('trigger'):
            thresholds.add(run['trigger'])
    for kind, value in sorted(thresholds):
        axes[2].axhline(value, color='k', ls='--', lw=0.8, label=f'{kind} threshold {value:g}')
    axes[0].set_ylabel(r'$\tau$')
    axes[1].set_ylabel(r'$\tau\,\langle|\nabla\sigma|\rangle$ (meV/Å)')
    axes[2].set_ylabel('trigger score')
    axes[2].set_xlabel('time (ps)')
    axes[0].legend(fontsize=7, ncol=2)
    axes[2].legend(fontsize=7)
    axes[0].set_title('hyperactive learning: the bias and the stop trigger along each run (selected frames red)')
    return _save(fig, path)
