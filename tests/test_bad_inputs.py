"""Inputs a new user's probe got past validation: each is refused before any process node exists, and the
message names the input."""

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_anharmal.workflows import ActiveLearningWorkChain, EnsembleWorkChain, ExplorationWorkChain
from aiida_anharmal.workflows.md import temperature_label

from .conftest import emt_cu_frames, placeholder_ensemble
from .test_active_learning import codes_of, labelled


@pytest.fixture
def codes(train_code, evaluate_code, md_code, label_code):
    return codes_of(train_code, evaluate_code, md_code, label_code)


def refused(builder, match):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before, 'a process node was created'


def al_builder(codes, overrides=None, initial=False):
    frames = emt_cu_frames(12)
    sets = {} if initial else {'training_set': labelled(frames[:8]), 'test_set': labelled(frames[8:])}
    if initial:
        overrides = {'initial': {'mode': 'random'}, **(overrides or {})}
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes, frames[0], engine='emt', protocol='fast', overrides=overrides, **sets
    )


@pytest.mark.parametrize(
    ('overrides', 'typo'),
    [
        ({'label': {'batchsize': 2}}, 'batchsize'),
        ({'label': {'max_restart': 2}}, 'max_restart'),
        ({'ensemble': {'nsub': 2}}, 'nsub'),
        ({'explore': {'temperature': [300.0]}}, 'temperature'),
        ({'acquisiton': {'n_max': 2}}, 'acquisiton'),
        ({'explore': {'parameter': {'steps': 5}}}, 'parameter'),
    ],
)
def test_override_typos_are_refused_by_the_builder(codes, overrides, typo):
    with pytest.raises(ValueError, match=rf"unknown override key\(s\) \['{typo}'\]"):
        al_builder(codes, overrides)


def test_negative_seeds_are_refused_before_any_process(codes):
    builder = al_builder(codes)
    builder.seed = orm.Int(-1)
    refused(builder, r'`seed` must be a non-negative integer \(a random seed\), not -1')
    refused(al_builder(codes, {'explore': {'seeds': [0, -1]}}), '`explore.seeds` must be a non-negative integer')
    initial = al_builder(codes, {'initial': {'parameters': {'random': {'seed': -3}}}}, initial=True)
    refused(initial, '`seed` must be a non-negative integer')
    ensemble = EnsembleWorkChain.get_builder_from_protocol(codes['train'], labelled(emt_cu_frames(8)), 'fast')
    ensemble.subsample_seed = orm.Int(-2)
    refused(ensemble, '`subsample_seed` must be a non-negative integer')


def test_temperatures_below_one_kelvin_are_refused_and_labels_never_use_exponents(codes):
    refused(al_builder(codes, {'explore': {'temperatures': [1e-5]}}), r'`explore.temperatures` must be at least 1 K')
    exploration = ExplorationWorkChain.get_builder_from_protocol(
        codes['md'], placeholder_ensemble(), emt_cu_frames(1)[0], 'fast', {'temperatures': [1e-5]}
    )
    refused(exploration, '`temperatures` must be at least 1 K')
    assert [temperature_label(t) for t in (300, 300.5, 1e6, 1.25)] == ['300', '300p5', '1000000', '1p25']


def test_label_jobs_refuse_a_disabled_overlap_check_and_non_finite_positions(codes):
    import numpy as np

    from aiida_anharmal.data import TrainingSet
    from aiida_anharmal.workflows import LabelWorkChain

    frames = emt_cu_frames(2)
    structures = TrainingSet.from_ase(frames)
    builder = LabelWorkChain.get_builder_from_protocol(
        codes['label'], structures, 'emt', 'fast', {'settings': {'min_distance': -1}}
    )
    refused(builder, r'`settings.min_distance` must be a positive distance \(A\), not -1')
    broken = frames[1].copy()
    broken.positions[3] = np.nan
    builder = LabelWorkChain.get_builder_from_protocol(codes['label'], TrainingSet.from_ase([frames[0], broken]), 'emt')
    refused(builder, 'structure 1 .* has NaN or infinite positions')


def test_md_refuses_overlapping_atoms_and_a_non_periodic_start(codes):
    from aiida_anharmal.calculations.md import MDCalculation

    def md_builder(atoms):
        builder = MDCalculation.get_builder()
        builder.code = codes['md']
        builder.reference.engine = orm.Str('emt')
        builder.structure = orm.StructureData(ase=atoms)
        builder.parameters = orm.Dict({'steps': 5})
        builder.metadata.options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}
        return builder

    overlapping = emt_cu_frames(1)[0]
    overlapping.positions[1] = overlapping.positions[0] + [0.2, 0.0, 0.0]
    refused(md_builder(overlapping), 'the start structure: atoms 0 and 1 are 0.200 A apart')
    molecule = emt_cu_frames(1)[0]
    molecule.pbc = [True, True, False]
    refused(md_builder(molecule), 'the start structure is not periodic along z')


@pytest.mark.parametrize(
    ('hyperparameters', 'match'),
    [
        ({'ema_decay': 'x'}, "bad `hyperparameters`: ema_decay must be a number, not 'x'"),
        ({'energy_weight': '1'}, "energy_weight must be a number, not '1'"),
        ({'max_seconds': 'x'}, "max_seconds must be a number of seconds or null, not 'x'"),
        ({'parity': 'no'}, "parity must be true or false, not 'no'"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_refused_by_name(codes, hyperparameters, match):
    ensemble = EnsembleWorkChain.get_builder_from_protocol(
        codes['train'], labelled(emt_cu_frames(8)), 'fast', {'hyperparameters': hyperparameters}
    )
    refused(ensemble, match)


def test_training_and_test_sets_with_missing_or_infinite_labels_are_refused(codes):
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = emt_cu_frames(12)

    def broken(value, where):
        atoms = frames[0].copy()
        forces = frames[0].get_forces().copy()
        energy = frames[0].get_potential_energy()
        if where == 'energy':
            energy = value
        else:
            forces[2, 1] = value
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        return atoms

    for value, where, name, match in (
        (np.inf, 'forces', 'training_set', r'`training_set`: frame\(s\) \[0\] have an infinite energy or force label'),
        (np.nan, 'forces', 'training_set', r'`training_set`: frame\(s\) \[0\] have no energy or forces label'),
        (np.inf, 'energy', 'test_set', r'`test_set`: frame\(s\) \[0\] have an infinite'),
    ):
        sets = {'training_set': labelled(frames[1:8]), 'test_set': labelled(frames[8:])}
        sets[name] = labelled([broken(value, where), *(frames[1:8] if name == 'training_set' else frames[8:])])
        builder = ActiveLearningWorkChain.get_builder_from_protocol(
            codes, frames[0], engine='emt', protocol='fast', **sets
        )
        refused(builder, match)
    ensemble = EnsembleWorkChain.get_builder_from_protocol(
        codes['train'], labelled([broken(np.inf, 'energy'), *frames[1:8]]), 'fast'
    )
    refused(ensemble, 'infinite energy or force label')


def test_test_frames_equal_to_training_frames_up_to_translation_or_permutation_are_refused(codes):
    import numpy as np

    frames = emt_cu_frames(12)
    moved = frames[8].copy()
    moved.positions += [0.3, -0.2, 0.1]  # a rigid translation
    moved.positions[0] += moved.cell[0]  # and one atom by a lattice vector
    order = np.random.default_rng(0).permutation(len(moved))
    permuted = frames[9].copy()[order]
    for atoms, source in ((moved, frames[8]), (permuted, frames[9])):
        atoms.calc = source.calc
    test_set = labelled([moved, permuted, frames[10], frames[11]])
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, frames[0], engine='emt', protocol='fast', training_set=labelled(frames[:10]), test_set=test_set
    )
    refused(builder, r'2 frame\(s\) of the test set are also in the training set')


def test_a_model_node_of_a_file_that_is_not_a_model_is_refused(tmp_path):
    import io

    from aiida_anharmal.data import MLIPModel

    notes = tmp_path / 'model.nequip.zip'
    notes.write_text('these are my notes, not a model')
    for source in (str(notes), io.BytesIO(b'#!/bin/sh\n')):
        with pytest.raises(ValueError, match='is not a nequip-package model: every model format is a zip archive'):
            MLIPModel(
                source,
                filename='model.nequip.zip',
                architecture='NequIP',
                model_format='nequip-package',
                species=['Cu'],
                r_max=4.0,
            )


@pytest.mark.parametrize(
    ('parameters', 'match'),
    [
        ({'mode': 'pw', 'ecutt': 300}, r"engine `gpaw`: unknown keyword\(s\) \['ecutt'\]"),
        ({'mode': 'pw', 'xc': 'PBEE'}, "unknown exchange-correlation functional `xc` 'PBEE'"),
    ],
)
def test_unknown_gpaw_keywords_and_functionals_are_refused_before_the_job(parameters, match):
    pytest.importorskip('gpaw')
    from aiida_anharmal.core.labelling.labellers import EngineError, check_request

    with pytest.raises(EngineError, match=match):
        check_request('gpaw', parameters, None)
    check_request('gpaw', {'mode': {'name': 'pw', 'ecut': 300}, 'xc': 'PBE', 'kpts': {'size': [2, 2, 2]}}, None)
