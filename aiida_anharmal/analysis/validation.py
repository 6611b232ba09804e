"""The validation MD of an AL run read from the graph: the table, and the plot of the A(t) traces.

The table is the ``comparison`` output of ``compare_validation`` (the ``validation`` output of the
loop); the traces are the per-frame arrays of the runs it compared. Nothing is recomputed here.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = (
    'run        driver     ended                 frames  mean A  std A  max A  sigma_A  A > 1  '
    'F MAE vs reference (meV/A)'
)


def _fmt(value, spec, scale=None):
    if value is None:
        return '-'
    return format(value if scale is None else scale * value, spec)


def comparison_of(node):
    """The validation table of an ActiveLearningWorkChain (``validation`` output) or a ValidationMDWorkChain."""
    if 'validation' in node.outputs:
        return node.outputs.validation
    if 'comparison' in node.outputs:
        return node.outputs.comparison
    return None


def validation_lines(comparison) -> list[str]:
    """The table as text lines: one run per line, the ground truth first."""
    rows = sorted(comparison['rows'], key=lambda r: (r['driver'] != 'reference', r['run']))
    lines = [f'validation MD (numbers after the first {comparison["equilibration_fs"]:g} fs)', COLUMNS]
    for r in rows:
        ended = r['ended'] if len(r['ended']) <= 20 else r['ended'][:17] + '...'
        above = _fmt(r.get('fraction_a_above_1'), '.0%') if r.get('fraction_a_above_1') is not None else '-'
        lines.append(
            f'{r["run"]:<10} {r["driver"]:<10} {ended:<20}  {_fmt(r.get("n_frames"), "d"):>6}  '
            f'{_fmt(r.get("a_mean"), ".3f"):>6}  {_fmt(r.get("a_std"), ".3f"):>5}  {_fmt(r.get("a_max"), ".2f"):>5}  '
            f'{_fmt(r.get("sigma_a"), ".3f"):>7}  {above:>5}  {_fmt(r.get("reference_forces_mae"), ".1f", 1000):>26}'
        )
    return lines


def validation_traces(comparison) -> dict[str, dict]:
    """Run label -> ``time`` (fs) and ``anharmonicity`` of every saved frame, from the compared arrays."""
    inputs = comparison.creator.inputs
    traces = {}
    for name in inputs:
        if name.startswith('frames_'):
            arrays = inputs[name]
            traces[name.split('_', 1)[1]] = {
                'time': arrays.get_array('time'),
                'anharmonicity': arrays.get_array('anharmonicity'),
            }
    return traces


def plot_validation(traces: dict[str, dict], path, reference: str = 'reference', limit: float = 1.0) -> Path:
    """A(t) of every validation run in one panel: the ground truth in black, the limit A = 1 dashed."""
    import numpy as np

    from .plots import RUN_COLORS, _figure, _save

    if not traces:
        raise ValueError('no validation runs to plot')
    fig = _figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    colors = iter(RUN_COLORS)
    for label in sorted(traces, key=lambda name: (name != reference, name)):
        time = np.asarray(traces[label]['time'], dtype=float) / 1000.0
        a = np.asarray(traces[label]['anharmonicity'], dtype=float)
        style = {'color': 'black', 'linewidth': 2.0} if label == reference else {'color': next(colors)}
        ax.plot(time, a, label=f'{label} (ground truth)' if label == reference else label, **style)
    ax.axhline(limit, color='0.5', linestyle='--', linewidth=1.0, label=f'A = {limit:g}')
    ax.set_xlabel('time (ps)')
    ax.set_ylabel('degree of anharmonicity A')
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title('Validation MD: same start, seed and length')
    return _save(fig, Path(path))
