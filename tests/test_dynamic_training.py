"""``DynamicTrainingWorkChain`` on Si (Tersoff): bad input refused before any process, then a small run
through the daemon with its triggers, refits and decision in the graph."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_anharmal.workflows.dynamic_training import DynamicTrainingWorkChain

#: The 64-atom cubic supercell (2 x 2 x 2 conventional cells) of the diamond primitive cell.
CONVENTIONAL_2X2X2 = [[-2, 2, 2], [2, -2, 2], [2, 2, -2]]
SMALL = {
    'fit': {'cutoffs': [3.9, 2.9, 2.4]},
    'retrain': {'k': 30},
    'convergence': {'quiet_steps': 60, 'refits': 2, 'tolerance': 0.5},
    'max_refits': 3,
    'md': {'parameters': {'steps': 250, 'save_stride': 5, 'temperature': 300.0}},
    'initial': {'parameters': {'n_train': 2, 'n_test': 3, 'amplitude': 0.005}},
}


def builder_for(codes, overrides=None, engine='tersoff', primitive=None):
    overrides = {**SMALL, **(overrides or {})}
    primitive = bulk('Si', 'diamond', a=5.432) if primitive is None else primitive
    return DynamicTrainingWorkChain.get_builder_from_protocol(
        codes, primitive, CONVENTIONAL_2X2X2, engine=engine, protocol='fast', overrides=overrides
    )


@pytest.fixture
def codes(label_code, md_code):
    return {'label': label_code, 'md': md_code}


def refused(builder, match):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing ran


@pytest.mark.parametrize(
    ('overrides', 'match'),
    [
        ({'fit': {'cutoffs': []}}, 'at least the cut-off of order 2'),
        ({'fit': {'cutoffs': [3.0, 3.5]}}, 'must not increase with the order'),
        ({'fit': {'cutoffs': [5.6, 3.0]}}, 'longer than the supercell allows'),
        ({'retrain': {'rule': 'trajectory_average', 'gamma': 1.0}}, 'gamma'),
        ({'retrain': {'rule': 'trajectory_average', 'k': 0}}, '`k` must be an integer of at least 1'),
        ({'retrain': {'rule': 'eps_min', 'gamma': 3.0}}, 'unknown parameter'),
        ({'convergence': {'refits': 0}}, '`refits` must be an integer'),
        ({'max_refits': 0}, '`max_refits` must be at least 1'),
    ],
)
def test_bad_input_is_refused_before_any_process(codes, overrides, match):
    refused(builder_for(codes, overrides), match)


def test_unknown_keys_are_refused_by_the_builder_and_by_the_workchain(codes):
    with pytest.raises(ValueError, match=r"unknown override key\(s\) \['order'\]"):
        builder_for(codes, {'fit': {'cutoffs': [3.9], 'order': 3}})
    builder = builder_for(codes)
    builder.fit = orm.Dict({'cutoffs': [3.9], 'order': 3})
    refused(builder, 'unknown fit parameter')


def test_a_supercell_not_of_the_primitive_cell_and_an_unknown_species_are_refused(codes):
    builder = builder_for(codes)
    wrong = bulk('Si', 'diamond', a=5.5, cubic=True).repeat(2)  # another lattice constant
    builder.supercell = orm.StructureData(ase=wrong)
    refused(builder, 'not an integer multiple of the primitive cell|not on a site')
    germanium = bulk('Ge', 'diamond', a=5.66)
    refused(builder_for(codes, primitive=germanium), r"elements \['Ge'\]|Ge")


@pytest.mark.slow
def test_dynamic_training_on_tersoff_si_through_the_daemon(submit_and_await, codes, tmp_path):
    from aiida.cmdline.utils.common import get_workchain_report

    node = submit_and_await(builder_for(codes), timeout=900)
    report = get_workchain_report(node, 'REPORT')
    assert node.is_finished_ok, report
    decision = node.outputs.decision.get_dict()
    fits = decision['fits']
    assert len(node.outputs.fits) == len(fits) >= 2, report  # the initial fit and at least one refit
    assert decision['reason'] in ('converged', 'steps_exhausted', 'max_refits')
    # every refit was triggered by the retrain rule at its frame, labelled by the ground truth, fitted on it
    triggers = [n for n in node.called_descendants if n.process_label == 'trigger_frame']
    assert len(triggers) == len(fits) - 1
    for k, (row, model) in enumerate(zip(fits[1:], list(node.outputs.fits.values())[1:], strict=True), start=1):
        assert row['n_data'] == model.n_structures == 2 + k
        assert row['eps_b'] > decision_gamma(node) * row['mu_k']  # eps_B > gamma mu_k: the rule's own formula
    steps = [row['step'] for row in fits]
    assert steps == sorted(steps) and steps[0] == 0
    trajectory = node.outputs.trajectory
    assert int(node.outputs.frames.get_array('step')[-1]) == decision['step']
    # the trajectory is one: every MD job continued the previous one's checkpoint
    md_calcs = [n for n in node.called_descendants if n.process_label == 'MDCalculation']
    assert all('parent_folder' in n.inputs for n in md_calcs[1:])
    assert trajectory.numsteps == len(np.unique(node.outputs.frames.get_array('step')))
    labelled = node.outputs.training_set
    assert labelled.base.attributes.get('label_engine') == 'tersoff'
    assert [o.get('kind') for o in labelled.origins[2:]] == ['dynamic_training'] * (len(fits) - 1)
    check_command_line(node, decision, tmp_path)


def check_command_line(node, decision, folder):
    from aiida.manage import get_manager
    from click.testing import CliRunner

    from aiida_anharmal.cli import cli

    runner, profile = CliRunner(), get_manager().get_profile().name
    status = runner.invoke(cli, ['dynamic', 'status', '-p', profile, str(node.pk)])
    assert status.exit_code == 0, status.output
    lines = status.output.strip().splitlines()
    assert len(lines) == 2 + len(decision['fits']) + 1 and 'N_data' in lines[1]
    assert lines[-1].startswith(f'decision (noise_plateau): {decision["reason"]}')
    plot = runner.invoke(cli, ['dynamic', 'plot', '-p', profile, str(node.pk), '-o', str(folder)])
    assert plot.exit_code == 0, plot.output
    assert sorted(p.name for p in folder.glob('*.png')) == [
        'dynamic_convergence.png',
        'dynamic_eps_b.png',
        'dynamic_z_b.png',
    ]
    wrong = runner.invoke(cli, ['dynamic', 'status', '-p', profile, str(node.outputs.model.pk)])
    assert wrong.exit_code != 0 and 'not a DynamicTrainingWorkChain' in wrong.output
    assert 'Traceback' not in wrong.output and len(wrong.output.strip().splitlines()) == 1


def decision_gamma(node) -> float:
    return float(node.inputs.retrain.get_dict().get('gamma', 3.0))


def test_a_test_set_of_other_atoms_or_another_engine_is_refused(codes):
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_anharmal.data import TrainingSet

    builder = builder_for(codes)
    supercell = builder.supercell.get_ase()

    def labelled(atoms):
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)))
        return atoms

    builder.test_set = TrainingSet.from_ase([labelled(supercell.repeat((1, 1, 2)))]).store()
    refused(builder, "`test_set`: frame 0: not the model's supercell")
    other = TrainingSet.from_ase([labelled(supercell.copy())])
    other.set_label_provenance('emt', 'toy')
    builder.test_set = other.store()
    refused(builder, '`test_set` was labelled by `emt`')


def test_md_of_a_bayesian_model_takes_a_bias_only_with_a_posterior_committee(tmp_path):
    from aiida_anharmal.calculations.md import validate_inputs
    from aiida_anharmal.core.bayesian.model import BayesianForceConstantModel
    from aiida_anharmal.core.labelling.labellers import get_labeller
    from aiida_anharmal.data import BayesianFCModel

    primitive = bulk('Si', 'diamond', a=5.432)
    supercell = bulk('Si', 'diamond', a=5.432, cubic=True).repeat(2)
    model = BayesianForceConstantModel(primitive, [3.9], supercell)
    frame = supercell.copy()
    frame.positions += np.random.default_rng(0).normal(0.0, 0.02, frame.positions.shape)
    frame.calc = get_labeller('tersoff').make_calculator({})
    model.add(frame.positions, frame.get_forces())
    model.fit()
    value = {
        'bayesian_model': BayesianFCModel.from_model(model).store(),
        'structure': orm.StructureData(ase=supercell),
        'bias': orm.Dict({'kind': 'hal', 'tau': 0.5}),
        'parameters': orm.Dict({'steps': 20}),
    }
    assert 'give it a committee of posterior samples' in validate_inputs(value)
    assert validate_inputs({**value, 'settings': orm.Dict({'posterior_samples': 4})}) is None
    assert 'non-negative integer' in validate_inputs({**value, 'settings': orm.Dict({'posterior_samples': -1})})
    value['trigger'] = orm.Dict({'kind': 'max_relative', 'tol': 0.1})
    assert validate_inputs({**value, 'settings': orm.Dict({'posterior_samples': 4})}) is None
    wrong = {**value, 'structure': orm.StructureData(ase=supercell.repeat((1, 1, 2)))}
    assert 'does not fit the `bayesian_model`' in validate_inputs(wrong)
    # what the program loads: the fit and its committee, drawn with the MD seed
    from aiida_anharmal.engines.inputs import load_ensemble

    np.savez(tmp_path / 'model.npz', **value['bayesian_model'].arrays())
    config = {'bayesian_file': 'model.npz', 'posterior_samples': 3, 'md': {'seed': 5}}
    potential = load_ensemble(tmp_path, config)
    assert potential.n_members == 3
    np.testing.assert_array_equal(potential.coefficients, model.sample_coefficients(3, 5 + 1))


def test_initial_frames_of_a_trajectory_must_be_frames_of_the_supercell(codes):
    """Mode `trajectory` takes labelled frames as they are (no `structure` passed on to the initial data); frames
    of other atoms or in another order are refused before anything runs."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_anharmal.data import TrainingSet
    from aiida_anharmal.workflows.dynamic_training_setup import initial_message

    builder = builder_for(codes)
    supercell = builder.supercell.get_ase()

    def labelled(atoms):
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)))
        return atoms

    rattled = [labelled(supercell.copy()) for _ in range(4)]
    builder.initial.mode = orm.Str('trajectory')
    builder.initial.parameters = orm.Dict({'n_train': 2, 'n_test': 2})
    builder.initial.frames = TrainingSet.from_ase(rattled).store()
    initial = {key: builder.initial[key] for key in ('mode', 'parameters', 'frames')}
    assert initial_message(initial, builder.supercell, supercell) is None
    shuffled = supercell[list(range(1, len(supercell))) + [0]]
    shuffled.numbers[0] = 6  # another element on a site
    initial['frames'] = TrainingSet.from_ase([labelled(shuffled)] * 4).store()
    assert "not the model's supercell" in initial_message(initial, builder.supercell, supercell)
    builder.initial.frames = initial['frames']
    refused(builder, r"`initial.frames`: frame 0: not the model's supercell")
