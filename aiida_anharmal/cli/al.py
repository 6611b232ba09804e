"""``anharmal al``: read an active-learning run from the provenance graph.

Everything here is read from nodes (outputs of the workchain and of its calcfunctions), never
from files, so the same commands work on a run imported from an AiiDA archive.
"""

from __future__ import annotations

from pathlib import Path

import click


def _training_frames(node, iterations, name) -> int | None:
    """Frames the ensemble of iteration ``name`` was trained on: the previous iteration's merged set."""
    names = sorted(iterations)
    k = names.index(name)
    for previous in reversed(names[:k]):
        if 'training_set' in iterations[previous]:
            return len(iterations[previous]['training_set'])
    if 'training_set' in node.inputs:
        return len(node.inputs.training_set)
    initial = [c for c in node.called if c.process_label == 'InitialDataWorkChain']
    if initial and 'training_set' in initial[0].outputs:
        return len(initial[0].outputs.training_set)
    return None


def iteration_rows(node) -> list[dict]:
    """One row per iteration of an ActiveLearningWorkChain (finished or running), from its outputs."""
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    rows = []
    for name in sorted(iterations):
        it = iterations[name]
        row = {'iteration': int(name.split('_')[1]), 'training_frames': _training_frames(node, iterations, name)}
        if 'ensemble' in it:
            row['members'] = it['ensemble'].n_members
        if 'statistics' in it:
            stats = it['statistics'].get_dict()
            row['uce_force_max'] = (stats['uce_force_max']['mean'], stats['uce_force_max']['std'])
            row['test_forces_mae'] = stats['errors'].get('forces_mae')
        if 'selection' in it:
            row['candidates'] = it['selection']['n_candidates']
            row['selected'] = len(it['selection']['frames'])
        if 'labelled' in it:
            row['labelled'] = len(it['labelled'])
        if 'calibration' in it:
            row['spearman'] = it['calibration']['frames']['spearman']
        if 'convergence' in it:
            row['decision'] = it['convergence']['reason']
        rows.append(row)
    return rows


def _fmt(value, spec, scale=None):
    if value is None:
        return '-'
    return format(value if scale is None else scale * value, spec)


def format_rows(rows: list[dict]) -> list[str]:
    lines = [
        'iter  labels  members  test F MAE  test UCE_F^max (meV/A)  candidates  selected  labelled  Spearman  decision'
    ]
    for r in rows:
        uce = r.get('uce_force_max')
        lines.append(
            f'{r["iteration"]:4d}  {_fmt(r.get("training_frames"), "d"):>6}  {_fmt(r.get("members"), "d"):>7}  '
            f'{_fmt(r.get("test_forces_mae"), ".1f", 1000):>10}  '
            f'{(f"{1000 * uce[0]:.1f} +- {1000 * uce[1]:.1f}" if uce else "-"):>22}  '
            f'{_fmt(r.get("candidates"), "d"):>10}  {_fmt(r.get("selected"), "d"):>8}  '
            f'{_fmt(r.get("labelled"), "d"):>8}  {_fmt(r.get("spearman"), ".2f"):>8}  {r.get("decision", "-")}'
        )
    return lines


def status_lines(node) -> list[str]:
    """The header, the iterations table and why the loop stopped."""
    state = node.process_state.value if node.process_state else '?'
    lines = [
        f'{node.process_label}<{node.pk}> {node.uuid}: {state}'
        + (f', exit {node.exit_status} {node.exit_message or ""}'.rstrip() if node.is_finished else '')
    ]
    lines += format_rows(iteration_rows(node))
    if 'convergence' in node.outputs:
        c = node.outputs.convergence
        lines.append(f'stopped: {c["reason"]} ({c["message"]})')
    return lines


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
    lines.append(
        f'  uncertainty {probabilities.get_array("uncertainty")[k]:.4f}, energy '
        f'{probabilities.get_array("energy")[k]:.4f} eV -> P(UCE) {probabilities.get_array("p_uncertainty")[k]:.3f}, '
        f'P(U) {probabilities.get_array("p_energy")[k]:.3f}, draw {probabilities.get_array("drawn")[k]:.3f}'
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
    raise click.ClickException(f'{node.process_label}<{node.pk}> has no training set yet')


def exploration_data(selection) -> tuple[dict, dict]:
    """Per run of the acquisition that made ``selection``: time and uncertainties, and the selected frames."""
    from aiida import orm
    from aiida.common.links import LinkType

    acquisition = selection.creator
    runs = {}
    for link in acquisition.base.links.get_incoming(node_class=orm.ArrayData, link_type=LinkType.INPUT_CALC).all():
        arrays = link.node
        names = arrays.get_arraynames()
        run = {
            key: arrays.get_array(key)
            for key in ('time', 'uce_energy', 'uce_force_max', 'anharmonicity')
            if key in names
        }
        run['selected'] = [frame for name, frame in selection['frames'] if name == link.link_label]
        runs[link.link_label] = run
    stats = acquisition.inputs.statistics.get_dict()
    p = selection.get_dict()
    thresholds = {
        key: stats[key]['mean'] + p['s'] * stats[key]['std']
        for key in ('uce_energy', 'uce_force_max')
        if key in stats and p['kind'] != 'random'
    }
    return runs, thresholds


def write_plots(node, directory) -> list[Path]:
    """The PNG files of an AL run: learning curve, and per iteration the exploration and the acquisition."""
    import numpy as np

    from .plots import plot_acquisition, plot_exploration, plot_learning_curve

    directory = Path(directory)
    written = []
    rows = iteration_rows(node)
    if any(r.get('test_forces_mae') is not None and r.get('training_frames') for r in rows):
        written.append(plot_learning_curve(rows, directory / 'learning_curve.png'))
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    for name in sorted(iterations):
        if 'selection' not in iterations[name]:
            continue
        selection = iterations[name]['selection']
        runs, thresholds = exploration_data(selection)
        written.append(plot_exploration(runs, directory / f'exploration_{name}.png', thresholds))
        probabilities = selection.creator.outputs.probabilities
        run_names = probabilities.base.attributes.get('runs')
        run_index, frame = probabilities.get_array('run_index'), probabilities.get_array('frame')
        chosen = {(run, f) for run, f in selection['frames']}
        mask = np.array([(run_names[r], int(f)) in chosen for r, f in zip(run_index, frame)], dtype=bool)
        label = {'force_max': 'UCE_F^max (meV/Å)', 'energy': 'UCE_U (meV)', 'random': 'UCE_F^max (meV/Å)'}.get(
            selection['kind'], 'UCE_A'
        )
        written.append(
            plot_acquisition(
                probabilities.get_array('uncertainty'),
                probabilities.get_array('p_uncertainty'),
                probabilities.get_array('p_energy'),
                probabilities.get_array('p'),
                mask,
                directory / f'acquisition_{name}.png',
                label=label,
                scale=1.0 if selection['kind'] == 'anharmonicity' else 1000.0,
            )
        )
    return written


PROFILE = click.option('-p', '--profile', default=None, help='AiiDA profile.')


@click.group('al')
def al():
    """Inspect active-learning runs."""


def _load(profile, identifier):
    from aiida import load_profile, orm

    load_profile(profile, allow_switch=True)
    return orm.load_node(identifier)


@al.command('status')
@PROFILE
@click.argument('identifier')
def al_status(profile, identifier):
    """Per-iteration table of an ActiveLearningWorkChain (running or finished) and why it stopped."""
    for line in status_lines(_load(profile, identifier)):
        click.echo(line)


@al.command('provenance')
@PROFILE
@click.argument('identifier')
@click.argument('index', type=int)
def al_provenance(profile, identifier, index):
    """Which iteration, trajectory, selection and label job brought frame INDEX into a training set.

    IDENTIFIER: a TrainingSet, or an ActiveLearningWorkChain (then its final training set).
    """
    training_set = final_training_set(_load(profile, identifier))
    if not 0 <= index < len(training_set):
        raise click.ClickException(
            f'frame {index} is not in TrainingSet<{training_set.pk}> ({len(training_set)} frames)'
        )
    for line in why(training_set, index):
        click.echo(line)


al.add_command(al_provenance, 'why')  # the earlier name


@al.command('export')
@PROFILE
@click.argument('identifier')
@click.argument('path', type=click.Path(dir_okay=False))
def al_export(profile, identifier, path):
    """Write the (final) training set of an AL run to extended XYZ, with labels and origin columns."""
    training_set = final_training_set(_load(profile, identifier))
    training_set.write_extxyz(path)
    click.echo(f'wrote {len(training_set)} frames of TrainingSet<{training_set.pk}> to {path}')


@al.command('plot')
@PROFILE
@click.argument('identifier')
@click.option(
    '-o', '--output', default='.', show_default=True, type=click.Path(file_okay=False), help='Folder of the PNG files.'
)
def al_plot(profile, identifier, output):
    """PNG plots: learning curve (MAE vs labels), UCE along each exploration, P values of each acquisition."""
    for path in write_plots(_load(profile, identifier), output):
        click.echo(f'wrote {path}')
