"""ActiveLearningWorkChain through the daemon on EMT Cu (EMT as labelling engine): two iterations."""

import pytest
from aiida import orm

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import ActiveLearningWorkChain

from .conftest import emt_cu_frames


def test_builder_from_protocol(train_code, evaluate_code, md_code, label_code):
    frames = emt_cu_frames(12)
    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, TrainingSet.from_ase(frames[:8]), TrainingSet.from_ase(frames[8:]), frames[0], engine='emt',
        protocol='fast', overrides={'acquisition': {'n_max': 3}, 'ensemble': {'n_sub': 2, 'seeds': [0]},
                                    'explore': {'temperatures': [500.0]}},
        options={'max_wallclock_seconds': 120},
    )
    assert builder.max_iterations.value == 2
    assert builder.acquisition.get_dict()['n_max'] == 3 and builder.acquisition.get_dict()['kind'] == 'force_max'
    assert builder.ensemble.n_sub.value == 2 and builder.ensemble.hyperparameters['l_max'] == 1
    assert builder.ensemble.retrain.value == 'finetune'
    assert builder.explore.temperatures.get_list() == [500.0] and builder.explore.parameters['steps'] == 200
    assert builder.label.engine.value == 'emt' and builder.label.code.pk == label_code.pk
    assert builder.explore.options['max_wallclock_seconds'] == 120
    assert builder.explore.options['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    with pytest.raises(ValueError, match='codes missing'):
        ActiveLearningWorkChain.get_builder_from_protocol({'train': train_code}, TrainingSet.from_ase(frames[:8]),
                                                          TrainingSet.from_ase(frames[8:]), frames[0])


@pytest.mark.slow
def test_two_iterations_grow_the_training_set_with_traceable_frames(
    submit_and_await, train_code, evaluate_code, md_code, label_code
):
    frames = emt_cu_frames(24)
    training_set = TrainingSet.from_ase(frames[:16], origins=[{'kind': 'initial', 'frame': k} for k in range(16)])
    training_set.set_label_provenance('emt', 'toy', 'ASE EMT')
    test_set = TrainingSet.from_ase(frames[16:])
    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, training_set, test_set, frames[0], engine='emt', protocol='fast',
        overrides={
            'acquisition': {'n_max': 4, 's': 0.0},
            'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 6}},
            'explore': {'temperatures': [900.0], 'parameters': {'steps': 60, 'save_stride': 5}},
        },
        options={'max_wallclock_seconds': 600},
    )
    node = submit_and_await(builder, timeout=900)
    assert node.is_finished_ok, node.exit_message
    iterations = node.outputs.iterations
    assert sorted(iterations) == ['iter_01', 'iter_02']
    final = node.outputs.training_set
    added = [o for o in final.origins if o.get('kind') == 'exploration']
    n_selected = sum(len(iterations[i]['selection']['frames']) for i in iterations if 'training_set' in iterations[i])
    assert len(final) == 16 + n_selected and len(added) == n_selected > 0
    # "why is this frame in my training set?": its origin leads to the acquisition and its inputs
    origin = added[0]
    selection = orm.load_node(origin['selection_uuid'])
    assert selection.creator.process_label == 'acquire'
    assert [origin['run'], origin['frame']] in selection['frames']
    statistics = selection.creator.inputs.statistics
    assert statistics.creator.process_label == 'EvaluateCalculation'
    assert orm.load_node(origin['trajectory_uuid']).creator.process_label == 'MDCalculation'
    assert final.base.attributes.get('label_engine') == 'emt'
    # the same from the command line
    from click.testing import CliRunner

    from aiida_anharmal.cli import cli

    from aiida import get_profile

    runner = CliRunner()
    status = runner.invoke(cli, ['al', 'status', '-p', get_profile().name, str(node.pk)])
    assert status.exit_code == 0, status.output
    assert 'finished, exit 0' in status.output and len(status.output.strip().splitlines()) == 4
    index = final.origins.index(origin)
    why = runner.invoke(cli, ['al', 'why', '-p', get_profile().name, str(final.pk), str(index)])
    assert why.exit_code == 0, why.output
    assert 'selected by acquire' in why.output and 'EvaluateCalculation' in why.output and 'MDCalculation' in why.output
    # the second ensemble was fine-tuned from the first (fast protocol)
    second = iterations['iter_02']['ensemble'].members['sub0_seed0']
    first = iterations['iter_01']['ensemble'].members['sub0_seed0']
    assert second.creator.inputs.parent_model.uuid == first.uuid
