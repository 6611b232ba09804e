"""An active-learning run read from the provenance graph: the iterations table, why a frame was chosen, plots.

Everything here is read from nodes (outputs of the workchain and of its calcfunctions), never from
files, so it works on a run imported from an AiiDA archive. The table is the ``summary`` that the
``check_convergence`` calcfunction stores each iteration (built once, in
:func:`aiida_anharmal.functions.convergence.summary_row`); this module only reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.learning.acquisition import ACQUISITIONS
from .plots import THRESHOLD_KEYS

COLUMNS = (
    'iter  labels  members  test F MAE  test UCE_F^max (meV/A)  candidates  selected  labelled  Spearman  decision'
)


def iteration_rows(node) -> list[dict]:
    """The stored per-iteration table of an ActiveLearningWorkChain: its ``summary``, or for a running
    loop the summary of its last decided iteration."""
    if 'summary' in node.outputs:
        return list(node.outputs.summary['rows'])
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    for name in sorted(iterations, reverse=True):
        if 'summary' in iterations[name]:
            return list(iterations[name]['summary']['rows'])
    return []


def _fmt(value, spec, scale=None):
    if value is None:
        return '-'
    return format(value if scale is None else scale * value, spec)


def format_rows(rows: list[dict]) -> list[str]:
    """The table as text lines (meV/A), one line per stored row."""
    lines = [COLUMNS]
    for r in rows:
        mean, std = r.get('uce_force_max_mean'), r.get('uce_force_max_std')
        uce = f'{1000 * mean:.1f} +- {1000 * std:.1f}' if mean is not None and std is not None else '-'
        lines.append(
            f'{r["iteration"]:4d}  {_fmt(r.get("training_frames"), "d"):>6}  {_fmt(r.get("members"), "d"):>7}  '
            f'{_fmt(r.get("test_forces_mae"), ".1f", 1000):>10}  {uce:>22}  '
            f'{_fmt(r.get("candidates"), "d"):>10}  {_fmt(r.get("selected"), "d"):>8}  '
            f'{_fmt(r.get("labelled"), "d"):>8}  {_fmt(r.get("calibration_spearman"), ".2f"):>8}  '
            f'{r.get("decision", "-")}'
        )
    return lines


def status_lines(node) -> list[str]:
    """The header, the iterations table and why the loop stopped (or which iteration is running)."""
    state = node.process_state.value if node.process_state else '?'
    header = f'{node.process_label}<{node.pk}> {node.uuid}: {state}'
    if node.is_finished:
        header = (header + f', exit {node.exit_status} {node.exit_message or ""}').rstrip()
    rows = iteration_rows(node)
    lines = [header, *format_rows(rows)]
    if 'convergence' in node.outputs:
        c = node.outputs.convergence
        lines.append(f'stopped: {c["reason"]} ({c["message"]})')
    if 'validation' in node.outputs:
        from .validation import validation_lines

        lines += validation_lines(node.outputs.validation)
    elif not node.is_terminated:
        lines.append(f'iteration {len(rows) + 1}: running')
    return lines


def learning_rows(rows: list[dict]) -> list[dict]:
    """The stored rows in the form of :func:`~aiida_anharmal.analysis.plots.plot_learning_curve`."""
    return [{**r, 'uce_force_max': (r.get('uce_force_max_mean'), r.get('uce_force_max_std'))} for r in rows]


def why(training_set, index: int) -> list[str]:
    """The chain of nodes that put frame ``index`` into ``training_set``, as lines of text."""
    from aiida import orm

    origin = training_set.origins[index]
    lines = [f'frame {index} of TrainingSet<{training_set.pk}>: origin {origin}']
    if origin.get('kind') != 'exploration':
        lines.append(f'  not selected by an acquisition: initial frame ({origin.get("kind", "imported")})')
        return lines
    selection = orm.load_node(origin['selection_uuid'])
    acquisition = selection.creator
    p = selection.get_dict()
    iteration = f'iteration {origin["iteration"]}, ' if 'iteration' in origin else ''
    lines.append(
        f'  {iteration}selected by {acquisition.process_label}<{acquisition.pk}> (kind {p["kind"]}, s {p["s"]}, '
        f'g {p["g"]}, seed {p["seed"]}): rank {p["frames"].index([origin["run"], origin["frame"]]) + 1} of '
        f'{len(p["frames"])}'
    )
    probabilities = acquisition.outputs.probabilities
    runs = probabilities.base.attributes.get('runs')
    mask = (probabilities.get_array('run_index') == runs.index(origin['run'])) & (
        probabilities.get_array('frame') == origin['frame']
    )
    k = int(mask.nonzero()[0][0])
    drawn = probabilities.get_array('drawn')[k]
    why = f'draw {drawn:.3f}' if np.isfinite(drawn) else f'no draw: {origin.get("reason", "chosen")}'
    kind = ACQUISITIONS.get(p['kind'])
    lines.append(
        f'  {kind.label.split(" (")[0]} {kind.scale * probabilities.get_array("uncertainty")[k]:.3g} {kind.unit}, energy '
        f'{probabilities.get_array("energy")[k]:.4f} eV -> P(UCE) {probabilities.get_array("p_uncertainty")[k]:.3f}, '
        f'P(U) {probabilities.get_array("p_energy")[k]:.3f}, {why}'
    )
    statistics = acquisition.inputs.statistics
    lines.append(
        f'  against test-set statistics Dict<{statistics.pk}> from {statistics.creator.process_label}'
        f'<{statistics.creator.pk}>'
    )
    trajectory = orm.load_node(origin['trajectory_uuid'])
    lines.append(
        f'  from step {origin["step"]} of run {origin["run"]}: TrajectoryData<{trajectory.pk}> made by '
        f'{trajectory.creator.process_label}<{trajectory.creator.pk}>'
    )
    if 'label_calc' in origin:
        label = orm.load_node(origin['label_calc'])
        lines.append(f'  labelled by {label.process_label}<{label.pk}> (engine {label.inputs.engine.value})')
    return lines


def final_training_set(node):
    """The AL run's final training set, or the latest merged one of a running loop, or a TrainingSet itself."""
    from ..data.training_set import TrainingSet

    if isinstance(node, TrainingSet):
        return node
    if 'training_set' in node.outputs:
        return node.outputs.training_set
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    for name in sorted(iterations, reverse=True):
        if 'training_set' in iterations[name]:
            return iterations[name]['training_set']
    if 'training_set' in node.inputs:
        return node.inputs.training_set
    raise ValueError(f'{node.process_label}<{node.pk}> has no training set yet')


def exploration_data(selection) -> tuple[dict, dict]:
    """Per run of the acquisition that made ``selection``: time and uncertainties, and the selected frames;
    and the test-set threshold mu + s sigma of the kind it used (none for the random baseline)."""
    from aiida import orm
    from aiida.common.links import LinkType

    acquisition = selection.creator
    runs = {}
    for link in acquisition.base.links.get_incoming(node_class=orm.ArrayData, link_type=LinkType.INPUT_CALC).all():
        arrays = link.node
        names = arrays.get_arraynames()
        keys = ('time', 'uce_energy', 'uce_force_max', 'anharmonicity')
        run = {key: arrays.get_array(key) for key in keys if key in names}
        run['selected'] = [frame for name, frame in selection['frames'] if name == link.link_label]
        creator = arrays.creator
        if creator is not None and creator.exit_status:  # a guard or trigger ended it (a failed run has no frames)
            run['stopped'] = creator.exit_message or f'exit {creator.exit_status}'
        runs[link.link_label] = run
    p = selection.get_dict()
    kind = ACQUISITIONS.get(p['kind'])
    threshold = kind.threshold(acquisition.inputs.statistics.get_dict(), p)
    # the line where P(UCE) = 1/2, on the panel of the uncertainty the acquisition used (if it has one)
    thresholds = {kind.uncertainty: threshold} if threshold is not None and kind.uncertainty in THRESHOLD_KEYS else {}
    return runs, thresholds


def acquisition_data(selection) -> dict:
    """The keyword arguments of :func:`~aiida_anharmal.analysis.acquisition_plot.plot_acquisition` for ``selection``."""
    import numpy as np

    probabilities = selection.creator.outputs.probabilities
    run_names = probabilities.base.attributes.get('runs')
    run_index, frame = probabilities.get_array('run_index'), probabilities.get_array('frame')
    chosen = {(run, f) for run, f in selection['frames']}
    mask = np.array([(run_names[r], int(f)) in chosen for r, f in zip(run_index, frame)], dtype=bool)
    kind = ACQUISITIONS.get(selection['kind'])
    return {
        'uncertainty': probabilities.get_array('uncertainty'),
        'p_uncertainty': probabilities.get_array('p_uncertainty'),
        'p_energy': probabilities.get_array('p_energy'),
        'p': probabilities.get_array('p'),
        'selected_mask': mask,
        'label': kind.label,
        'scale': kind.scale,
    }


def write_plots(node, directory) -> list[Path]:
    """The PNG files of an AL run: learning curve, and per iteration the exploration and the acquisition."""
    from .acquisition_plot import plot_acquisition  # matplotlib only when plotting
    from .plots import plot_exploration, plot_learning_curve

    directory = Path(directory)
    written = []
    rows = iteration_rows(node)
    if any(r.get('test_forces_mae') is not None and r.get('training_frames') for r in rows):
        written.append(plot_learning_curve(learning_rows(rows), directory / 'learning_curve.png'))
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    for name in sorted(iterations):
        if 'selection' not in iterations[name]:
            continue
        selection = iterations[name]['selection']
        runs, thresholds = exploration_data(selection)
        written.append(plot_exploration(runs, directory / f'exploration_{name}.png', thresholds))
        written.append(plot_acquisition(path=directory / f'acquisition_{name}.png', **acquisition_data(selection)))
        from .hal import hal_runs, plot_hal

        biased = hal_runs(selection)
        if biased:
            written.append(plot_hal(biased, directory / f'hal_{name}.png'))
    if 'validation' in node.outputs:
        from .validation import plot_validation, validation_traces

        written.append(plot_validation(validation_traces(node.outputs.validation), directory / 'validation_md.png'))
    from .lifetimes import modes_of, plot_lifetimes

    runs = modes_of(node)
    if runs:
        written.append(plot_lifetimes(runs, directory / 'lifetimes.png'))
    from .neb import engine_path, neb_tables, plot_neb

    tables = neb_tables(node)
    if tables:
        written.append(plot_neb(tables, directory / 'neb.png', engine_path(node, tables)))
    return written
