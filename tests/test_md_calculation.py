"""``anharmal.md`` through the daemon on a small EMT-trained ensemble: arrays, guards, continuation, bad input."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.calculations.md import MDCalculation
from aiida_anharmal.core.phonons import harmonic as core_harmonic
from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows.ensemble import EnsembleWorkChain

from .conftest import emt_cu_frames, placeholder_ensemble

_CACHE = {}
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}
MD = {'temperature': 300.0, 'timestep': 2.0, 'steps': 60, 'save_stride': 5, 'friction': 0.02, 'seed': 11}


def ensemble_and_reference(train_code):
    """A 2-member tiny ensemble on 24 EMT frames, and the EMT harmonic reference of the same 16-atom cell."""
    if 'ensemble' not in _CACHE:
        builder = EnsembleWorkChain.get_builder_from_protocol(
            train_code,
            TrainingSet.from_ase(emt_cu_frames(24)),
            protocol='fast',
            overrides={'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 10}},
        )
        _, node = run_get_node(builder)
        assert node.is_finished_ok, node.exit_message
        displacements = core_harmonic.make_displacements(bulk('Cu', 'fcc', a=3.6, cubic=True), [2, 2, 1])
        forces = []
        for atoms in displacements.displaced_supercells():
            atoms.calc = EMT()
            forces.append(atoms.get_forces())
        fc = core_harmonic.force_constants_from_forces(displacements, forces)
        reference = core_harmonic.harmonic_reference(displacements, fc)
        harmonic = orm.ArrayData()
        harmonic.set_array('positions', reference.positions)
        harmonic.set_array('cell', reference.cell)
        harmonic.set_array('force_constants', reference.force_constants)
        harmonic.set_array('numbers', displacements.supercell.numbers)
        _CACHE.update(
            ensemble=node.outputs.ensemble.uuid, harmonic=harmonic.store().uuid, supercell=displacements.supercell
        )
    return orm.load_node(_CACHE['ensemble']), orm.load_node(_CACHE['harmonic']), _CACHE['supercell'].copy()


def md_inputs(md_code, ensemble, atoms, **extra):
    return {
        'ensemble': ensemble,
        'structure': orm.StructureData(ase=atoms),
        'code': md_code,
        'parameters': orm.Dict(MD),
        'metadata': {'options': OPTIONS},
        **extra,
    }


@pytest.mark.slow
def test_md_records_every_array_and_continues_after_interruption(submit_and_await, train_code, md_code):
    ensemble, harmonic, supercell = ensemble_and_reference(train_code)
    full = submit_and_await(MDCalculation, timeout=300, **md_inputs(md_code, ensemble, supercell, harmonic=harmonic))
    assert full.is_finished_ok, full.exit_message
    frames, trajectory = full.outputs.frames, full.outputs.trajectory
    assert trajectory.numsteps == 13 and trajectory.get_positions().shape == (13, 16, 3)
    assert list(frames.get_array('step')) == list(range(0, 61, 5))
    for name in ('energy', 'uce_energy', 'uce_force_max', 'anharmonicity', 'uce_anharmonicity', 'temperature'):
        values = frames.get_array(name)
        assert values.shape == (13,) and np.isfinite(values[1:]).all(), name
    # frame 0 is the ideal lattice: no force spread, so A is undefined (NaN), not 1
    assert np.isnan(frames.get_array('anharmonicity')[0])
    assert frames.get_array('uce_forces').shape == (13, 16)
    assert (frames.get_array('uce_force_max')[1:] > 0).all()
    assert 0 < np.mean(frames.get_array('anharmonicity')[1:]) < 1
    assert 150 < np.mean(frames.get_array('temperature')) < 450
    # the structure is the EMT harmonic supercell: A measures how far the ensemble is from EMT's harmonic forces
    assert trajectory.get_array('velocities').shape == (13, 16, 3)

    # a time budget stops the run early: exit 330 with the frames so far; parent_folder continues it
    cut = submit_and_await(
        MDCalculation,
        timeout=300,
        **md_inputs(md_code, ensemble, supercell, harmonic=harmonic, settings=orm.Dict({'max_seconds': 1e-9})),
    )
    assert cut.exit_status == 330, cut.exit_message
    assert cut.outputs.trajectory.numsteps >= 1
    rest = submit_and_await(
        MDCalculation,
        timeout=300,
        **md_inputs(md_code, ensemble, supercell, harmonic=harmonic, parent_folder=cut.outputs.remote_folder),
    )
    assert rest.is_finished_ok, rest.exit_message
    np.testing.assert_array_equal(rest.outputs.trajectory.get_positions(), trajectory.get_positions())
    np.testing.assert_array_equal(rest.outputs.frames.get_array('step'), frames.get_array('step'))

    # a new run from frame 6 of the first trajectory starts from its positions and velocities
    branch = submit_and_await(
        MDCalculation,
        timeout=300,
        ensemble=ensemble,
        parent_trajectory=trajectory,
        start_frame=orm.Int(6),
        code=md_code,
        parameters=orm.Dict({**MD, 'steps': 10}),
        metadata={'options': OPTIONS},
    )
    assert branch.is_finished_ok, branch.exit_message
    np.testing.assert_allclose(branch.outputs.trajectory.get_positions()[0], trajectory.get_positions()[6])
    np.testing.assert_allclose(
        branch.outputs.trajectory.get_array('velocities')[0], trajectory.get_array('velocities')[6], atol=1e-12
    )

    # a guard stops the run with its own exit code and keeps the frames
    guarded = submit_and_await(
        MDCalculation,
        timeout=300,
        **md_inputs(md_code, ensemble, supercell, guards=orm.Dict({'max_uncertainty': 1e-6})),
    )
    assert guarded.exit_status == 322, guarded.exit_message
    assert 'UCE_F^max' in guarded.exit_message and guarded.outputs.trajectory.numsteps >= 1


@pytest.mark.slow
def test_exploration_runs_in_parallel_and_continues_interrupted_runs(submit_and_await, train_code, md_code):
    from aiida_anharmal.workflows.md import ExplorationWorkChain, MDBaseWorkChain

    ensemble, harmonic, supercell = ensemble_and_reference(train_code)
    builder = ExplorationWorkChain.get_builder_from_protocol(
        md_code,
        ensemble,
        supercell,
        protocol='fast',
        harmonic=harmonic,
        overrides={'temperatures': [300, 600], 'seeds': [4], 'parameters': {'steps': 20, 'save_stride': 10}},
    )
    builder.settings = orm.Dict({'max_seconds': 1e-9})  # every job stops after one stride: the base workchain continues
    node = submit_and_await(builder, timeout=600)
    assert node.is_finished_ok, node.exit_message
    assert sorted(node.outputs.trajectories) == ['T300_seed4', 'T600_seed4']
    for label in ('T300_seed4', 'T600_seed4'):
        assert list(node.outputs.frames[label].get_array('step')) == [0, 10, 20]
        assert node.outputs.trajectories[label].numsteps == 3
    runs = [c for c in node.called if c.process_class is MDBaseWorkChain]
    for run in runs:
        calcs = sorted((c for c in run.called if c.process_class is MDCalculation), key=lambda c: c.ctime)
        assert [c.exit_status for c in calcs] == [330, 0]
        assert calcs[1].inputs.parent_folder.uuid == calcs[0].outputs.remote_folder.uuid
    temperatures = {r.inputs.md.parameters['temperature'] for r in runs}
    assert temperatures == {300.0, 600.0}


def test_bad_md_inputs_are_refused(md_code):
    ensemble = placeholder_ensemble()
    cu = bulk('Cu', 'fcc', a=3.6, cubic=True)
    wrong = orm.ArrayData()
    wrong.set_array('positions', cu.repeat(2).positions)
    wrong.set_array('cell', cu.repeat(2).cell[:])
    wrong.set_array('force_constants', np.eye(96))
    wrong.set_array('numbers', cu.repeat(2).numbers)
    cases = [
        ({'parameters': orm.Dict({**MD, 'temperature': -5})}, '`temperature` must be at least 1 K'),
        ({'parameters': orm.Dict({**MD, 'timestep': 0})}, 'timestep must lie in'),
        ({'parameters': orm.Dict({**MD, 'save_stride': 100})}, 'save_stride must be an integer in'),
        ({'parameters': orm.Dict({**MD, 'thermostat': 'x'})}, 'bad MD `parameters`'),
        ({'structure': orm.StructureData(ase=bulk('Ag', 'fcc', a=4.1))}, r"elements \['Ag'\]"),
        ({'harmonic': wrong}, 'does not match the harmonic reference'),
        ({'guards': orm.Dict({'max_force': -1})}, 'must be positive or null'),
        ({'guards': orm.Dict({'softmax': 0.5})}, r"unknown `guards` key\(s\) \['softmax'\]"),
        ({'bias': orm.Dict({'kind': 'hal', 'tau_r': 0.0})}, r'bad `bias`: `tau_r` must lie in \(0, 1\]'),
        ({'bias': orm.Dict({'kind': 'hal', 'tau_r': 1.01})}, r'`tau_r` must lie in \(0, 1\]'),
        ({'bias': orm.Dict({'kind': 'hal', 'tau_hist': 0})}, '`tau_hist` must be an integer of at least 1'),
        ({'bias': orm.Dict({'kind': 'hal', 'tau_hst': 10})}, r"unknown parameter\(s\) \['tau_hst'\] of `hal`"),
        ({'bias': orm.Dict({'kind': 'metad'})}, 'unknown MD bias `metad`'),
        ({'trigger': orm.Dict({'kind': 'softmax', 'eps': 0})}, 'bad `trigger`: `eps` must be a positive number'),
        ({'trigger': orm.Dict({'kind': 'softmax', 's_tol': 1.0})}, r'`s_tol` must lie in \(0, 1\)'),
        ({'trigger': orm.Dict({'kind': 'softmax', 's_tol': 0})}, r'`s_tol` must lie in \(0, 1\)'),
        ({'trigger': orm.Dict({'kind': 'softmax', 'tol': 0.3})}, r"unknown parameter\(s\) \['tol'\] of `softmax`"),
        ({'trigger': orm.Dict({'kind': 'uncertainty'})}, 'needs `threshold` \\(eV/A\\) or `s`'),
        ({'trigger': orm.Dict({'kind': 'uncertainty', 's': 1.0})}, 'is resolved by an active-learning loop'),
        ({'trigger': orm.Dict({'kind': 'uncertainty', 'threshold': 0.1, 'exponent': 0.5})}, 'reference_temperature'),
        ({'trigger': orm.Dict({'kind': 'retrain'})}, 'trigger `retrain` reads the Bayesian error'),
        (
            {'trigger': orm.Dict({'kind': 'max_relative', 'eps': float('inf')})},
            '`eps` must be a positive number, not inf',
        ),
        ({'bias': orm.Dict({'kind': 'hal', 'tau_hist': 60})}, 'tau_hist 60 >= steps 60: the adaptive tau would never'),
    ]
    for extra, match in cases:
        with pytest.raises(ValueError, match=match):
            run_get_node(MDCalculation, **md_inputs(md_code, ensemble, cu, **extra))
    # an Ensemble has at least two members; the labelling engine driving the MD is a committee of one
    reference = {'reference': {'engine': orm.Str('emt')}, 'bias': orm.Dict({'kind': 'hal'})}
    inputs = {k: v for k, v in md_inputs(md_code, ensemble, cu, **reference).items() if k != 'ensemble'}
    with pytest.raises(ValueError, match='needs a committee of at least 2 members, not the labelling engine'):
        run_get_node(MDCalculation, **inputs)


HAL = {'kind': 'hal', 'tau_r': 0.2, 'tau_hist': 5}


@pytest.mark.slow
def test_hal_md_stops_at_its_trigger_and_continues_after_interruption(submit_and_await, train_code, md_code):
    """The bias and trigger through the daemon: exit 341 with every frame; an interrupted HAL run is the same run."""
    from aiida_anharmal.workflows.md import MDBaseWorkChain

    ensemble, _, supercell = ensemble_and_reference(train_code)
    hal = {'bias': orm.Dict(HAL)}
    full = submit_and_await(MDCalculation, timeout=300, **md_inputs(md_code, ensemble, supercell, **hal))
    assert full.is_finished_ok, full.exit_message
    tau = full.outputs.frames.get_array('tau')
    assert (tau[:2] == 0).all() and (tau[2:] > 0).all()  # frames every 5 steps: steps 0 and 5 unbiased
    assert np.isfinite(full.outputs.frames.get_array('bias_force')).all()
    cut = submit_and_await(
        MDCalculation,
        timeout=300,
        **md_inputs(md_code, ensemble, supercell, settings=orm.Dict({'max_seconds': 1e-9}), **hal),
    )
    assert cut.exit_status == 330, cut.exit_message
    rest = submit_and_await(
        MDCalculation,
        timeout=300,
        **md_inputs(md_code, ensemble, supercell, parent_folder=cut.outputs.remote_folder, **hal),
    )
    assert rest.is_finished_ok, rest.exit_message
    np.testing.assert_array_equal(rest.outputs.trajectory.get_positions(), full.outputs.trajectory.get_positions())
    for name in ('step', 'tau', 'bias_force'):
        np.testing.assert_array_equal(rest.outputs.frames.get_array(name), full.outputs.frames.get_array(name))

    # a trigger ends the run with its own exit code; the restart workchain ends successfully with every frame
    trigger = orm.Dict({'kind': 'max_relative', 'tol': 1e-4})
    md = md_inputs(md_code, ensemble, supercell, trigger=trigger, **hal)
    node = submit_and_await(MDBaseWorkChain, timeout=300, md=md)
    assert node.is_finished_ok, node.exit_message
    (calc,) = [c for c in node.called if c.process_class is MDCalculation]
    assert calc.exit_status == 341 and 'relative force uncertainty' in calc.exit_message
    scores = node.outputs.frames.get_array('trigger_score')
    assert scores[-1] > 1e-4 and node.outputs.trajectory.numsteps == len(scores)
