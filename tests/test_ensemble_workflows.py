"""EnsembleWorkChain through the daemon: a 2 x 2 ensemble, provenance queries, fine-tuning, bad input."""

import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_anharmal.calculations.evaluate import EvaluateCalculation
from aiida_anharmal.calculations.train import TrainCalculation
from aiida_anharmal.core.models.ensemble import EnsembleCalculator, load_member
from aiida_anharmal.data import Ensemble, MLIPModel, TrainingSet
from aiida_anharmal.workflows.ensemble import EnsembleWorkChain

from .conftest import emt_cu_frames

#: Mean force error of the ensemble mean on held-out frames, eV/A (EMT force RMS of the data ~0.9).
HOLDOUT_FORCE_MAE = 0.06
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


def builder_for(train_code, training_set, **overrides):
    """The fast protocol, 30 epochs per member (the workchain is under test here, not the recipe)."""
    overrides = {'n_sub': 2, 'seeds': [0, 1], **overrides}
    overrides['hyperparameters'] = {'max_epochs': 30, **overrides.get('hyperparameters', {})}
    return EnsembleWorkChain.get_builder_from_protocol(train_code, training_set, protocol='fast', overrides=overrides)


def member_provenance():
    """(model uuid, seed, train indices of its subsample) of every member, by QueryBuilder."""
    qb = orm.QueryBuilder()
    qb.append(TrainCalculation, tag='calc')
    qb.append(MLIPModel, with_incoming='calc', edge_filters={'label': 'model'}, project=['uuid'])
    qb.append(orm.Int, with_outgoing='calc', edge_filters={'label': 'seed'}, project=['attributes.value'])
    qb.append(orm.Dict, with_outgoing='calc', edge_filters={'label': 'subsample'}, project=['attributes.train'])
    return {uuid: (seed, train) for uuid, seed, train in qb.all()}


@pytest.mark.slow
def test_ensemble_2x2_then_finetune(submit_and_await, train_code, evaluate_code, tmp_path):
    frames = emt_cu_frames(40)
    training_set = TrainingSet.from_ase(frames[:32])
    node = submit_and_await(builder_for(train_code, training_set), timeout=600)
    assert node.is_finished_ok, node.exit_message
    ensemble = node.outputs.ensemble
    assert isinstance(ensemble, Ensemble) and ensemble.n_members == 4
    members = ensemble.members
    assert sorted(members) == ['sub0_seed0', 'sub0_seed1', 'sub1_seed0', 'sub1_seed1']
    # the graph links the ensemble to its members, and each member to its frames and seed
    assert {n.uuid for n in ensemble.creator.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all_nodes()} == {
        m.uuid for m in members.values()
    }
    provenance = member_provenance()
    for label, model in members.items():
        seed, train = provenance[model.uuid]
        k = int(label[3])
        assert seed == int(label.split('seed')[1])
        assert (
            train
            == node.outputs.subsamples[f'subsample_{k:02d}']['train']
            == model.base.attributes.get('train_indices')
        )
    assert provenance[members['sub0_seed0'].uuid][1] != provenance[members['sub1_seed0'].uuid][1]

    # members differ; the mean is accurate on held-out frames
    calc = ensemble.calculator(workers=2)
    errors, spread, worst = [], [], []
    for atoms in frames[32:]:
        prediction = calc.predict(atoms)
        errors.append(np.abs(prediction.forces - atoms.get_forces()).mean())
        worst.append(np.linalg.norm(prediction.forces - atoms.get_forces(), axis=1).max())
        spread.append(prediction.uce_force_max)
        assert len(set(np.round(prediction.member_energies, 9))) == 4
    print(
        f'held-out mean force MAE {1000 * np.mean(errors):.1f} meV/A, mean UCE_F^max {1000 * np.mean(spread):.1f} meV/A'
    )
    assert np.mean(errors) < HOLDOUT_FORCE_MAE
    assert min(spread) > 0

    # the evaluate job on the held-out (labelled) frames gives the same numbers as the calculator here
    holdout = TrainingSet.from_ase(frames[32:])
    evaluation = submit_and_await(
        EvaluateCalculation,
        timeout=300,
        ensemble=ensemble,
        structures=holdout,
        code=evaluate_code,
        metadata={'options': OPTIONS},
    )
    assert evaluation.is_finished_ok, evaluation.exit_message
    arrays = evaluation.outputs.evaluation
    stats = evaluation.outputs.statistics.get_dict()
    assert arrays.get_array('member_energies').shape == (8, 4) and arrays.get_array('uce_forces').shape == (128,)
    np.testing.assert_allclose(arrays.get_array('uce_force_max'), spread, atol=1e-9)
    np.testing.assert_allclose(arrays.get_array('forces_mae'), errors, atol=1e-9)
    assert stats['uce_force_max']['mean'] == pytest.approx(np.mean(spread), abs=1e-9)
    assert stats['uce_force_max']['std'] == pytest.approx(np.std(spread), abs=1e-9)
    assert stats['errors']['forces_mae'] == pytest.approx(np.mean(errors), abs=1e-9)
    assert stats['n_frames'] == 8 and stats['errors']['n_labelled_forces'] == 8
    np.testing.assert_allclose(arrays.get_array('force_max_error'), worst, atol=1e-9)
    assert stats['errors']['error_over_uncertainty'] == pytest.approx(np.mean(worst) / np.mean(spread), rel=1e-9)

    # fine-tune two members on the enlarged set from their parent members
    enlarged = TrainingSet.from_ase(frames[:36])
    builder = EnsembleWorkChain.get_builder_from_protocol(
        train_code,
        enlarged,
        protocol='fast',
        parent_ensemble=ensemble,
        overrides={'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 4}, 'retrain': 'finetune'},
    )
    assert builder.retrain.value == 'finetune'
    child = submit_and_await(builder, timeout=600)
    assert child.is_finished_ok, child.exit_message
    calcs = [c for c in child.called_descendants if c.process_class is TrainCalculation]
    assert len(calcs) == 2
    for calc_node in calcs:
        wrapper = calc_node.base.links.get_incoming(link_type=LinkType.CALL_CALC).one().node
        label = wrapper.base.links.get_incoming(link_type=LinkType.CALL_WORK).one().link_label
        assert calc_node.inputs.parent_model.uuid == members[label].uuid
    child_member = child.outputs.ensemble.members['sub0_seed0']
    parent_calc = members['sub0_seed0'].creator
    child_calc = child_member.creator
    assert child_calc.inputs.parent_model.uuid == members['sub0_seed0'].uuid
    # delete every file of parent and child jobs: the child's package must load on its own
    for job in (parent_calc, child_calc):
        shutil.rmtree(job.outputs.remote_folder.get_remote_path())
    target = tmp_path / 'child.nequip.zip'
    target.write_bytes(child_member.get_content(mode='rb'))
    model = load_member(target)
    prediction = EnsembleCalculator([model, model], workers=1).predict(frames[39])
    assert np.isfinite(prediction.forces).all()
    assert np.abs(prediction.forces - frames[39].get_forces()).mean() < HOLDOUT_FORCE_MAE


def test_bad_ensemble_inputs_are_refused(train_code):
    training_set = TrainingSet.from_ase(emt_cu_frames(6))
    cases = [
        ({'n_sub': 1, 'seeds': [0]}, 'at least 2 members'),
        ({'seeds': [3, 3]}, 'duplicate seeds'),
        ({'validation_ratio': 0.01}, 'too few for a split'),
        ({'hyperparameters': {'r_max': 0.0}}, 'r_max must be a positive number'),
        ({'species': ['Ag']}, r"elements \['Cu'\] of the training frames are missing"),
    ]
    from aiida.engine import run_get_node

    for overrides, match in cases:
        builder = builder_for(train_code, training_set, **overrides)
        if 'species' in overrides:
            builder.species = orm.List(overrides['species'])
        with pytest.raises(ValueError, match=match):
            run_get_node(builder)
    frames = emt_cu_frames(6)
    frames[0].calc = None
    with pytest.raises(ValueError, match='without energy or forces'):
        run_get_node(builder_for(train_code, TrainingSet.from_ase(frames)))
    builder = builder_for(train_code, training_set)
    builder.retrain = orm.Str('finetune')
    with pytest.raises(ValueError, match='no `parent_ensemble`'):
        run_get_node(builder)
