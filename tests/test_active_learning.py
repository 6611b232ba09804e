"""ActiveLearningWorkChain through the daemon on EMT Cu (EMT as labelling engine): two iterations."""

import pytest
from aiida import orm

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import ActiveLearningWorkChain, EnsembleWorkChain, ExplorationWorkChain

from .conftest import emt_cu_frames

OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


@pytest.mark.slow
def test_two_iterations_grow_the_training_set_with_traceable_frames(
    submit_and_await, train_code, evaluate_code, md_code, label_code
):
    frames = emt_cu_frames(24)
    training_set = TrainingSet.from_ase(frames[:16], origins=[{'kind': 'initial', 'frame': k} for k in range(16)])
    training_set.set_label_provenance('emt', 'toy', 'ASE EMT')
    test_set = TrainingSet.from_ase(frames[16:])
    ensemble = EnsembleWorkChain.get_protocol_inputs(
        'fast', {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 6}})
    explore = ExplorationWorkChain.get_protocol_inputs(
        'fast', {'temperatures': [900.0], 'parameters': {'steps': 60, 'save_stride': 5}})
    builder = ActiveLearningWorkChain.get_builder()
    builder.training_set = training_set
    builder.test_set = test_set
    builder.structure = orm.StructureData(ase=frames[0])
    builder.max_iterations = orm.Int(2)
    builder.acquisition = orm.Dict({'kind': 'force_max', 'n_max': 4, 's': 0.0})
    builder.evaluate_code = evaluate_code
    builder.ensemble = {
        'code': train_code, 'n_sub': orm.Int(2), 'seeds': orm.List([0]), 'retrain': orm.Str(ensemble['retrain']),
        'hyperparameters': orm.Dict(ensemble['hyperparameters']), 'options': OPTIONS,
    }
    builder.explore = {
        'code': md_code, 'temperatures': orm.List(explore['temperatures']), 'seeds': orm.List([0]),
        'parameters': orm.Dict(explore['parameters']), 'guards': orm.Dict(explore['guards']), 'options': OPTIONS,
    }
    builder.label = {'code': label_code, 'engine': orm.Str('emt'), 'options': OPTIONS}
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
