"""The same AL inputs give the same numbers: training, MD, acquisition and the table, bit for bit, on one machine;
and three loops at once on one daemon do not mix: the pair of equal loops agrees bit for bit, and every origin of
every training frame points into its own loop's graph."""

import numpy as np
import pytest

from aiida_anharmal.workflows import ActiveLearningWorkChain

from .conftest import emt_cu_frames


def small_loop(codes, temperature=900.0):
    start = emt_cu_frames(1)[0]
    start.calc = None
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        start,
        engine='emt',
        protocol='fast',
        overrides={
            'max_iterations': 1,
            'initial': {'parameters': {'random': {'n_train': 10, 'n_test': 4, 'amplitude': 0.08}}},
            'acquisition': {'n_max': 3, 's': 0.01, 'g': 20.0},
            'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 4}},
            'explore': {'temperatures': [temperature], 'parameters': {'steps': 40, 'save_stride': 4}},
        },
        options={'max_wallclock_seconds': 600},
    )


def exploration(node):
    return next(c for c in node.called if c.process_label == 'ExplorationWorkChain')


def await_all(nodes, timeout: float):
    import time

    start = time.monotonic()
    while not all(node.is_terminated for node in nodes):
        assert time.monotonic() - start < timeout, f'not finished within {timeout} s'
        time.sleep(0.5)


def assert_same_loop(first, second):
    """Two runs of the same inputs: every number of the table, selection, members and MD frames equal."""
    assert first.uuid != second.uuid
    assert first.outputs.summary['rows'] == second.outputs.summary['rows']  # every float equal, not close
    one, two = first.outputs.iterations['iter_01'], second.outputs.iterations['iter_01']
    assert one['selection']['frames'] == two['selection']['frames']
    metrics = [  # every error of every member (the wall time of the training is the one number that differs)
        {
            label: {k: v for k, v in model.base.attributes.get('metrics').items() if k != 'seconds'}
            for label, model in node.outputs.ensemble.members.items()
        }
        for node in (first, second)
    ]
    assert metrics[0] == metrics[1] and len(metrics[0]) == 2
    # the MD frames of the exploration, every coordinate
    explorations = [exploration(node) for node in (first, second)]
    for run, trajectory in explorations[0].outputs.trajectories.items():
        other = explorations[1].outputs.trajectories[run]
        assert np.array_equal(trajectory.get_positions(), other.get_positions())
        assert np.array_equal(trajectory.get_array('forces'), other.get_array('forces'))


def assert_origins_in_own_graph(node):
    """Every node an origin of the final training set names is a descendant of this loop, none of another."""
    from aiida import orm

    own = {n.uuid for n in node.called_descendants} | {
        link.node.uuid for c in node.called_descendants for link in c.base.links.get_outgoing().all()
    }
    added = [o for o in node.outputs.training_set.origins if o.get('kind') == 'exploration']
    assert added
    for origin in added:
        for key in ('trajectory_uuid', 'selection_uuid', 'label_calc'):
            uuid = origin[key] if key != 'label_calc' else orm.load_node(origin[key]).uuid
            assert uuid in own, (key, origin)


@pytest.mark.slow
def test_three_loops_at_once_on_one_daemon_agree_pairwise_and_do_not_mix(
    submit_and_await, train_code, evaluate_code, md_code, label_code
):
    from aiida.engine import submit

    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}
    nodes = [submit(small_loop(codes, temperature)) for temperature in (900.0, 600.0, 900.0)]
    await_all(nodes, timeout=1200)
    assert all(node.is_finished_ok for node in nodes), [node.exit_message for node in nodes]
    assert_same_loop(nodes[0], nodes[2])
    # the two temperatures explored differently: the pair's agreement is not that of all three
    hot, warm = (exploration(n).outputs.trajectories for n in nodes[:2])
    assert not np.array_equal(next(iter(hot.values())).get_positions(), next(iter(warm.values())).get_positions())
    for node in nodes:
        assert_origins_in_own_graph(node)
