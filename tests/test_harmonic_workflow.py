"""Harmonic force constants through AiiDA: ForceConstants node, calcfunctions, HarmonicWorkChain on EMT Cu."""

import io

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.phonons.harmonic import force_constants_from_forces, phonopy_object
from aiida_anharmal.core.phonons.harmonic import make_displacements as core_make_displacements
from aiida_anharmal.core.phonons.phonopy_io import force_constants_to_matrix, load_phonopy_yaml, save_phonopy_yaml
from aiida_anharmal.core.phonons.spectra import frequencies_at, gamma_frequencies
from aiida_anharmal.data import ForceConstants, TrainingSet
from aiida_anharmal.functions import build_force_constants, make_displacements
from aiida_anharmal.workflows.harmonic import HarmonicWorkChain, check_supercell_matrix, diagonal_supercell


def copper():
    return bulk('Cu', 'fcc', a=3.6, cubic=True)


def emt_labelled(atoms_list):
    """The structures with EMT forces and energies, as the labelling engine would return them."""
    from ase.calculators.singlepoint import SinglePointCalculator

    labelled = []
    for atoms in atoms_list:
        atoms = atoms.copy()
        atoms.calc = EMT()
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        labelled.append(atoms)
    return labelled


@pytest.fixture(scope='module')
def direct():
    """EMT Cu force constants computed by the core alone: displacement set, (N, N, 3, 3) fc, phonopy object."""
    displacements = core_make_displacements(copper(), [2, 2, 2], distance=0.01)
    forces = [atoms.get_forces() for atoms in emt_labelled(displacements.displaced_supercells())]
    fc = force_constants_from_forces(displacements, forces)
    return displacements, fc, phonopy_object(displacements, fc)


# ---------------------------------------------------------------------- the data node
def test_force_constants_node_from_phonopy(direct):
    from aiida_anharmal.calculations.evaluate import check_harmonic

    displacements, fc, phonon = direct
    node = ForceConstants.from_phonopy(phonon, label_engine='emt', ground_truth='toy').store()
    loaded = orm.load_node(node.pk)
    assert isinstance(loaded, ForceConstants)
    assert loaded.n_atoms == 32 and loaded.species == ['Cu'] and loaded.source == 'phonopy finite displacements'
    assert loaded.base.attributes.get('label_engine') == 'emt'
    assert np.array_equal(loaded.supercell_matrix, 2 * np.eye(3, dtype=int))
    reference = loaded.get_harmonic_reference()
    assert np.array_equal(reference.force_constants, force_constants_to_matrix(fc))
    assert np.allclose(reference.positions, displacements.supercell.positions, atol=1e-12)
    supercell = loaded.get_supercell()
    assert supercell.get_chemical_symbols() == ['Cu'] * 32 and supercell.pbc.all()
    assert np.allclose(supercell.get_masses(), displacements.supercell.get_masses())
    x_point = [[0.5, 0.0, 0.5]]  # sqrt of round-off makes Gamma's acoustic zeros a poor comparison
    assert np.allclose(frequencies_at(loaded.get_phonopy(), x_point), frequencies_at(phonon, x_point), atol=1e-8)
    # the arrays are exactly those that anharmal.evaluate's `harmonic` input needs
    assert check_harmonic(loaded, TrainingSet.from_ase(displacements.displaced_supercells())) is None


def test_import_from_phonopy_yaml(direct, tmp_path):
    _, fc, phonon = direct
    path = save_phonopy_yaml(phonon, tmp_path / 'phonopy.yaml')
    node = ForceConstants.from_phonopy_yaml(path).store()
    assert node.source == 'imported' and node.base.attributes.get('source_file') == 'phonopy.yaml'
    assert 'label_engine' not in node.base.attributes.all
    assert np.abs(node.get_array('force_constants') - force_constants_to_matrix(fc)).max() < 1e-12
    assert np.allclose(node.get_array('positions'), phonon.supercell.positions, atol=1e-12)
    assert np.array_equal(node.get_array('numbers'), phonon.supercell.numbers)
    assert np.allclose(node.get_array('cell'), phonon.supercell.cell, atol=1e-12)
    # the node's own phonopy.yaml loads with the core's reader
    reloaded = load_phonopy_yaml(io.StringIO(node.get_phonopy_yaml_text()))
    assert np.abs(reloaded.force_constants - fc).max() < 1e-12


def test_import_of_compact_force_constants(direct, tmp_path):
    displacements, fc, _ = direct
    compact = phonopy_object(displacements)
    compact.forces = [atoms.get_forces() for atoms in emt_labelled(displacements.displaced_supercells())]
    compact.produce_force_constants(calculate_full_force_constants=False, show_drift=False)
    compact.symmetrize_force_constants(show_drift=False)
    assert compact.force_constants.shape == (1, 32, 3, 3)
    node = ForceConstants.from_phonopy_yaml(save_phonopy_yaml(compact, tmp_path / 'compact.yaml'))
    assert np.abs(node.get_array('force_constants') - force_constants_to_matrix(fc)).max() < 1e-10


def test_import_refuses_files_without_force_constants_or_in_other_units(direct, tmp_path):
    from phonopy import Phonopy

    from aiida_anharmal.core.phonons.phonopy_io import ase_to_phonopy

    _, _, phonon = direct
    with pytest.raises(ValueError, match='holds no force constants'):
        ForceConstants.from_phonopy_yaml(save_phonopy_yaml(phonon, tmp_path / 'bare.yaml', force_constants=False))
    qe = Phonopy(
        ase_to_phonopy(copper()),
        supercell_matrix=np.eye(3, dtype=int),
        primitive_matrix='P',
        calculator='qe',
        log_level=0,
    )
    qe.force_constants = np.zeros((4, 4, 3, 3))
    with pytest.raises(ValueError, match="'au'.*'Ry/au\\^2'.*only 'angstrom'"):
        ForceConstants.from_phonopy_yaml(save_phonopy_yaml(qe, tmp_path / 'qe.yaml'))
    with pytest.raises(FileNotFoundError):
        ForceConstants.from_phonopy_yaml(tmp_path / 'missing.yaml')
    with pytest.raises(ValueError, match='source must be one of'):
        ForceConstants.from_phonopy(phonon, source='guessed')


# ---------------------------------------------------------------------- calcfunctions
def test_calcfunctions_give_the_core_force_constants(direct):
    displacements, fc, phonon = direct
    results = make_displacements(orm.StructureData(ase=copper()), orm.Dict({'supercell_matrix': [2, 2, 2]}))
    supercells = results['displacements']
    assert len(supercells) == 1 and supercells.origins == [{'kind': 'phonopy_displacement', 'displacement': 0}]
    assert results['displacement_dataset'].get_dict() == displacements.to_dict()
    labelled = TrainingSet.from_ase(emt_labelled(supercells.to_ase()), origins=supercells.origins)
    outputs = build_force_constants(
        results['displacement_dataset'], labelled, orm.Dict({'dos_mesh': [8, 8, 8], 'band_npoints': 11})
    )
    node = outputs['force_constants']
    assert np.abs(node.get_array('force_constants') - force_constants_to_matrix(fc)).max() < 1e-12
    assert node.base.attributes.get('displacement_distance') == pytest.approx(0.01)
    assert np.allclose(outputs['gamma_frequencies'].get_list(), gamma_frequencies(phonon), atol=1e-5)
    bands = outputs['band_structure']
    # 10 segments of 11 points; the point shared by connected segments is kept once (8 of them)
    assert bands.get_bands().shape == (102, 3) and bands.base.attributes.get('path') == 'GXWKGLUWLK,UX'
    labels = bands.labels
    assert [label for _, label in labels] == ['G', 'X', 'W', 'K', 'G', 'L', 'U', 'W', 'L', 'K', 'U', 'X']
    assert [i for i, _ in labels] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 91, 101]
    assert np.allclose(bands.get_kpoints()[10], [0.5, 0.0, 0.5])
    plot = bands._get_bandplot_data(cartesian=True, join_symbol='|')
    assert [label for _, label in plot['labels']] == ['G', 'X', 'W', 'K', 'G', 'L', 'U', 'W', 'L', 'K|U', 'X']
    x = np.array(plot['x'])  # AiiDA's distances include 2 pi, phonopy's do not
    assert x[90] == x[91]
    assert np.allclose(
        x[[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 101]],
        2 * np.pi * np.array(bands.base.attributes.get('label_distances')),
    )
    assert np.allclose(bands.get_array('distances'), x / (2 * np.pi))
    x, dos = outputs['dos'].get_x()[1], outputs['dos'].get_y()[0][1]
    assert np.trapezoid(dos, x) == pytest.approx(3.0, abs=0.02)


def test_missing_displacement_is_refused(direct):
    results = make_displacements(
        orm.StructureData(ase=copper()), orm.Dict({'supercell_matrix': [2, 2, 2], 'is_plusminus': True})
    )
    supercells = results['displacements']
    assert len(supercells) == 2
    only_first = TrainingSet.from_ase(emt_labelled(supercells.to_ase()[:1]), origins=supercells.origins[:1])
    with pytest.raises(ValueError, match=r'1 of 2 displaced supercell\(s\) have no labels \(displacement\(s\) \[1\]\)'):
        build_force_constants(results['displacement_dataset'], only_first)
    unlabelled = TrainingSet.from_ase(supercells.to_ase(), origins=supercells.origins)
    with pytest.raises(ValueError, match='has no forces'):
        build_force_constants(results['displacement_dataset'], unlabelled)
    with pytest.raises(ValueError, match='unknown displacement parameter'):
        make_displacements(orm.StructureData(ase=copper()), orm.Dict({'supercell_matrix': [2, 2, 2], 'mesh': 3}))


# ---------------------------------------------------------------------- the workchain
def test_emt_copper_through_the_workchain(submit_and_await, label_code, options, direct, tmp_path):
    """Acceptance: EMT Cu, 2x2x2 conventional supercell: acoustic modes vanish at Gamma, finite DOS."""
    displacements, fc, _ = direct
    builder = HarmonicWorkChain.get_builder_from_protocol(
        label_code, copper(), engine='emt', protocol='fast', options=options
    )
    assert builder.supercell_matrix.get_list() == [2, 2, 2]  # 7 A across: two conventional cells
    node = submit_and_await(builder, timeout=300)
    assert node.is_finished_ok, node.exit_message

    frequencies = np.array(node.outputs.gamma_frequencies.get_list())
    assert frequencies.shape == (3,) and np.abs(frequencies).max() < 0.05
    x, dos = node.outputs.dos.get_x()[1], node.outputs.dos.get_y()[0][1]
    assert np.isfinite(dos).all() and dos.max() > 0 and np.trapezoid(dos, x) == pytest.approx(3.0, abs=0.05)
    bands = node.outputs.band_structure.get_bands()
    assert 6.5 < bands.max() < 9.0 and bands.min() > -0.05

    force_constants = node.outputs.force_constants
    assert force_constants.base.attributes.get('label_engine') == 'emt'
    assert force_constants.base.attributes.get('ground_truth') == 'toy'
    reference = force_constants.get_harmonic_reference()
    assert np.abs(reference.force_constants - force_constants_to_matrix(fc)).max() < 1e-8
    assert np.allclose(reference.positions, displacements.supercell.positions, atol=1e-10)
    path = tmp_path / 'phonopy.yaml'
    path.write_text(force_constants.get_phonopy_yaml_text())
    assert np.abs(load_phonopy_yaml(path).force_constants - fc).max() < 1e-8
    assert node.outputs.displacements.origins[0]['kind'] == 'phonopy_displacement'


def test_unlabelled_displacement_fails_the_workchain(submit_and_await, label_code, options):
    """Two displacements (+/-), a budget that lets each job label one, one attempt: exit code 411."""
    builder = HarmonicWorkChain.get_builder_from_protocol(
        label_code,
        copper(),
        engine='emt',
        protocol='fast',
        options=options,
        overrides={'phonopy': {'is_plusminus': True}, 'label': {'max_restarts': 1, 'settings': {'max_seconds': 1e-6}}},
    )
    node = submit_and_await(builder, timeout=300)
    assert node.exit_status == HarmonicWorkChain.exit_codes.ERROR_TOO_FEW_LABELLED.status == 411
    assert '1 of 2 displaced supercell(s) could not be labelled (1)' in node.exit_message
    assert 'force_constants' not in node.outputs


def test_bad_inputs_refused(label_code, options):
    from aiida.engine import run

    def inputs(**changes):
        builder = HarmonicWorkChain.get_builder_from_protocol(
            label_code, copper(), engine='emt', protocol='fast', options=options
        )
        for key, value in changes.items():
            if key.startswith('label_'):
                builder.label[key[len('label_') :]] = value
            else:
                builder[key] = value
        return builder

    molecule = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True))
    molecule.pbc = (True, True, False)
    cases = [
        ({'structure': molecule}, 'periodic in all three directions'),
        ({'supercell_matrix': orm.List([2, 2])}, 'must be 3 integers or a 3x3 integer matrix'),
        ({'supercell_matrix': orm.List([2, 2, 2.5])}, 'must hold integers only'),
        ({'supercell_matrix': orm.List([[1, 0, 0], [0, 1, 0], [1, 1, 0]])}, r'is singular \(determinant 0\)'),
        ({'supercell_matrix': orm.List([2, -2, 2])}, 'negative determinant'),
        ({'displacement_distance': orm.Float(0.0)}, 'must be positive and at most 0.1 A, not 0.0'),
        ({'displacement_distance': orm.Float(0.2)}, 'must be positive and at most 0.1 A, not 0.2'),
        (
            {'phonopy_parameters': orm.Dict({'dos_mesh': [8, 8, 8], 'mesh': 3})},
            r"unknown `phonopy_parameters` key\(s\) \['mesh'\]",
        ),
        ({'phonopy_parameters': orm.Dict({'dos_mesh': [8, 8]})}, 'dos_mesh` must be three positive integers'),
        ({'phonopy_parameters': orm.Dict({'dos_sigma': -0.1})}, 'dos_sigma` must be a positive number'),
        ({'label_engine': orm.Str('vasp')}, 'labelling: .*vasp'),
    ]
    for changes, message in cases:
        with pytest.raises(ValueError, match=message):
            run(inputs(**changes))  # refused when the process is created, before anything runs
    with pytest.raises(ValueError, match="no protocol parameters for engine 'vasp'"):
        HarmonicWorkChain.get_builder_from_protocol(label_code, copper(), engine='vasp')
    with pytest.raises(ValueError, match='unknown protocol'):
        HarmonicWorkChain.get_builder_from_protocol(label_code, copper(), engine='emt', protocol='sloppy')


def test_entry_points():
    from aiida.plugins import DataFactory, WorkflowFactory

    assert DataFactory('anharmal.force_constants') is ForceConstants
    assert WorkflowFactory('anharmal.harmonic') is HarmonicWorkChain


def test_protocols_and_supercell_helpers(label_code):
    assert set(HarmonicWorkChain.get_available_protocols()) == {'fast', 'moderate', 'precise'}
    moderate = HarmonicWorkChain.get_builder_from_protocol(label_code, copper())
    assert moderate.supercell_matrix.get_list() == [3, 3, 3]
    assert moderate.label.parameters['convergence'] == {'forces': 1e-4}
    assert moderate.label.settings['properties'] == ['energy', 'forces']
    precise = HarmonicWorkChain.get_builder_from_protocol(label_code, copper(), protocol='precise')
    assert precise.supercell_matrix.get_list() == [4, 4, 4] and precise.label.parameters['mode']['ecut'] == 600
    # fcc primitive cell: faces a / sqrt(3) = 2.08 A apart
    assert diagonal_supercell(bulk('Cu', 'fcc', a=3.6).cell, 7.0) == [4, 4, 4]
    assert check_supercell_matrix([[2, 0, 0], [0, 2, 0], [0, 0, 2]]) is None
    assert check_supercell_matrix([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]) is None
