"""The same AL inputs give the same numbers: training, MD, acquisition and the table, bit for bit, on one machine."""

import numpy as np
import pytest

from aiida_anharmal.workflows import ActiveLearningWorkChain

from .conftest import emt_cu_frames


def small_loop(codes):
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
            'explore': {'temperatures': [900.0], 'parameters': {'steps': 40, 'save_stride': 4}},
        },
        options={'max_wallclock_seconds': 600},
    )


def exploration(node):
    return next(c for c in node.called if c.process_label == 'ExplorationWorkChain')


@pytest.mark.slow
def test_two_runs_of_the_same_loop_give_identical_tables(
    submit_and_await, train_code, evaluate_code, md_code, label_code
):
    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}
    first, second = (submit_and_await(small_loop(codes), timeout=600) for _ in range(2))
    assert first.is_finished_ok and second.is_finished_ok
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
