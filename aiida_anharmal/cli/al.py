"""``anharmal al``: read an active-learning run from the provenance graph."""

from __future__ import annotations

import click


def iteration_rows(node) -> list[dict]:
    """One row per iteration of an ActiveLearningWorkChain (finished or running), from its outputs."""
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    rows = []
    for name in sorted(iterations):
        it = iterations[name]
        row = {'iteration': int(name.split('_')[1])}
        if 'ensemble' in it:
            row['members'] = it['ensemble'].n_members
        if 'statistics' in it:
            stats = it['statistics'].get_dict()
            row['uce_force_max'] = (stats['uce_force_max']['mean'], stats['uce_force_max']['std'])
            row['test_forces_mae'] = stats['errors'].get('forces_mae')
        if 'selection' in it:
            row['candidates'] = it['selection']['n_candidates']
            row['selected'] = len(it['selection']['frames'])
        if 'training_set' in it:
            row['training_frames'] = len(it['training_set'])
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> list[str]:
    lines = ['iter  members  test UCE_F^max (meV/A)  test force MAE (meV/A)  candidates  selected  training frames']
    for r in rows:
        uce = r.get('uce_force_max')
        mae = r.get('test_forces_mae')
        lines.append(
            f'{r["iteration"]:4d}  {r.get("members", "-"):>7}  '
            f'{(f"{1000 * uce[0]:.1f} +- {1000 * uce[1]:.1f}" if uce else "-"):>22}  '
            f'{(f"{1000 * mae:.1f}" if mae is not None else "-"):>22}  '
            f'{r.get("candidates", "-"):>10}  {r.get("selected", "-"):>8}  {r.get("training_frames", "-"):>15}'
        )
    return lines


def why(training_set, index: int) -> list[str]:
    """The chain of nodes that put frame ``index`` into ``training_set``, as lines of text."""
    from aiida import orm

    origin = training_set.origins[index]
    lines = [f'frame {index} of TrainingSet<{training_set.pk}>: origin {origin}']
    if origin.get('kind') != 'exploration':
        lines.append('  not selected by an acquisition (initial or imported frame)')
        return lines
    selection = orm.load_node(origin['selection_uuid'])
    acquisition = selection.creator
    p = selection.get_dict()
    lines.append(f'  selected by {acquisition.process_label}<{acquisition.pk}> (kind {p["kind"]}, s {p["s"]}, g {p["g"]}, '
                 f'seed {p["seed"]}): rank {p["frames"].index([origin["run"], origin["frame"]]) + 1} of {len(p["frames"])}')
    probabilities = acquisition.outputs.probabilities
    runs = probabilities.base.attributes.get('runs')
    mask = (probabilities.get_array('run_index') == runs.index(origin['run'])) & (
        probabilities.get_array('frame') == origin['frame'])
    k = int(mask.nonzero()[0][0])
    lines.append(f'  uncertainty {probabilities.get_array("uncertainty")[k]:.4f}, energy '
                 f'{probabilities.get_array("energy")[k]:.4f} eV -> P(UCE) {probabilities.get_array("p_uncertainty")[k]:.3f}, '
                 f'P(U) {probabilities.get_array("p_energy")[k]:.3f}, draw {probabilities.get_array("drawn")[k]:.3f}')
    statistics = acquisition.inputs.statistics
    lines.append(f'  against test-set statistics Dict<{statistics.pk}> from {statistics.creator.process_label}'
                 f'<{statistics.creator.pk}>')
    trajectory = orm.load_node(origin['trajectory_uuid'])
    lines.append(f'  from step {origin["step"]} of run {origin["run"]}: TrajectoryData<{trajectory.pk}> made by '
                 f'{trajectory.creator.process_label}<{trajectory.creator.pk}>')
    return lines


@click.group('al')
def al():
    """Inspect active-learning runs."""


@al.command('status')
@click.option('-p', '--profile', default=None, help='AiiDA profile.')
@click.argument('identifier')
def al_status(profile, identifier):
    """Per-iteration summary of an ActiveLearningWorkChain (running or finished)."""
    from aiida import load_profile, orm

    load_profile(profile, allow_switch=True)
    node = orm.load_node(identifier)
    state = node.process_state.value if node.process_state else '?'
    click.echo(f'{node.process_label}<{node.pk}>: {state}'
               + (f', exit {node.exit_status} {node.exit_message or ""}' if node.is_finished else ''))
    for line in format_rows(iteration_rows(node)):
        click.echo(line)


@al.command('why')
@click.option('-p', '--profile', default=None, help='AiiDA profile.')
@click.argument('identifier')
@click.argument('index', type=int)
def al_why(profile, identifier, index):
    """Why frame INDEX is in the TrainingSet IDENTIFIER: selection, probabilities, statistics, trajectory."""
    from aiida import load_profile, orm

    load_profile(profile, allow_switch=True)
    for line in why(orm.load_node(identifier), index):
        click.echo(line)
