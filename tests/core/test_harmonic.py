"""Harmonic phonons of EMT copper through phonopy: displacements, force constants, spectra, files, checks."""

import dataclasses
import io
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.phonons.anharmonicity import harmonic_forces
from aiida_anharmal.core.phonons.harmonic import (
    DISPLACEMENT_INDEX_KEY,
    DisplacementSet,
    check_supercell_matches,
    force_constants_from_forces,
    harmonic_reference,
    make_displacements,
    phonopy_object,
)
from aiida_anharmal.core.phonons.phonopy_io import (
    force_constants_from_matrix,
    force_constants_to_matrix,
    full_force_constants,
    load_phonopy_yaml,
    phonopy_yaml_text,
    save_phonopy_yaml,
)
from aiida_anharmal.core.phonons.spectra import band_structure, density_of_states, frequencies_at, gamma_frequencies

X_POINT = [0.5, 0.0, 0.5]  # in the reduced coordinates of phonopy's fcc primitive cell's reciprocal cell


def emt_forces(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_forces()


@pytest.fixture(scope='module')
def copper():
    """Conventional fcc Cu (a = 3.6 A), 2x2x2 supercell of 32 atoms, EMT force constants."""
    displacements = make_displacements(bulk('Cu', 'fcc', a=3.6, cubic=True), 2)
    forces = [emt_forces(atoms) for atoms in displacements.displaced_supercells()]
    force_constants = force_constants_from_forces(displacements, forces)
    return displacements, force_constants, phonopy_object(displacements, force_constants)


def test_displacement_set(copper):
    displacements, _, _ = copper
    assert displacements.n_supercell_atoms == 32
    assert displacements.n_displacements == 1  # fcc: one inequivalent atom, inversion makes +/- equivalent
    assert np.allclose(displacements.primitive_matrix, (np.ones((3, 3)) - np.eye(3)) / 2)  # 'auto': fcc primitive
    supercell = displacements.supercell
    displaced = displacements.displaced_supercells()
    assert [atoms.info[DISPLACEMENT_INDEX_KEY] for atoms in displaced] == [0]
    u = displaced[0].positions - supercell.positions
    assert np.allclose(u, displacements.displacements[0], atol=1e-12)
    assert np.linalg.norm(u, axis=1).max() == pytest.approx(0.01)


def test_displacement_set_round_trip(copper):
    displacements, _, _ = copper
    data = json.loads(json.dumps(displacements.to_dict()))
    restored = DisplacementSet.from_dict(data)
    assert restored.to_dict() == data
    for a, b in zip(restored.displaced_supercells(), displacements.displaced_supercells()):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        assert np.allclose(a.positions, b.positions, atol=1e-12) and np.allclose(a.cell, b.cell)
        assert np.allclose(a.get_masses(), b.get_masses())
    # the same displacements as phonopy's type-2 dataset give the same structures
    type2 = DisplacementSet(
        displacements.unitcell,
        displacements.supercell_matrix,
        displacements.primitive_matrix,
        {'displacements': displacements.displacements},
    )
    assert np.allclose(type2.displaced_supercells()[0].positions, displacements.displaced_supercells()[0].positions)


def test_bad_inputs_refused(copper):
    displacements, force_constants, phonon = copper
    with pytest.raises(ValueError, match='do not match the displacement set'):
        force_constants_from_forces(displacements, np.zeros((1, 31, 3)))
    with pytest.raises(ValueError, match='do not match the supercell'):
        harmonic_reference(displacements, force_constants[:8, :8])
    with pytest.raises(ValueError, match='do not match the supercell'):
        phonopy_object(displacements, force_constants[:, :8])
    with pytest.raises(ValueError, match='no force constants'):
        gamma_frequencies(phonopy_object(displacements))
    with pytest.raises(ValueError, match='not integer'):
        make_displacements(bulk('Cu', 'fcc', a=3.6), [2, 2, 2.5])
    with pytest.raises(ValueError, match="'first_atoms'"):
        DisplacementSet(displacements.unitcell, 2, np.eye(3), {})
    with pytest.raises(ValueError, match='unknown special points'):
        band_structure(phonon, path='GQ')


def test_acoustic_modes_vanish_at_gamma(copper):
    _, _, phonon = copper
    frequencies = gamma_frequencies(phonon)
    assert frequencies.shape == (3,)  # one atom in the primitive cell
    assert np.abs(frequencies).max() < 0.05


def test_conventional_cell_folds_the_x_points_onto_gamma(copper):
    """With the cubic cell as primitive cell, Gamma holds 3 acoustic modes and the modes of the 3 X points."""
    displacements, force_constants, phonon = copper
    cubic = dataclasses.replace(displacements, primitive_matrix=np.eye(3))
    frequencies = gamma_frequencies(phonopy_object(cubic, force_constants))
    assert frequencies.shape == (12,)
    assert np.abs(frequencies[:3]).max() < 0.05
    assert frequencies[3:].min() > 1.0  # the optical branches of the 4-atom cell are real and positive
    at_x = np.sort(np.tile(frequencies_at(phonon, [X_POINT])[0], 3))
    assert np.allclose(frequencies[3:], at_x, atol=1e-6)


def test_band_structure_and_maximum_frequency(copper):
    """EMT Cu: the highest mode is LA at X, 7.97 THz for this cell; experiment gives about 7.25 THz."""
    _, _, phonon = copper
    bands = band_structure(phonon, npoints=11)
    assert bands['path'] == 'GXWKGLUWLK,UX'
    assert bands['labels'] == ['G', 'X', 'W', 'K', 'G', 'L', 'U', 'W', 'L', 'K|U', 'X']
    n_segments = 10
    assert bands['frequencies'].shape == (11 * n_segments, 3)
    assert bands['distances'].shape == bands['segment'].shape == (11 * n_segments,)
    assert len(bands['label_distances']) == len(bands['labels'])
    assert np.all(np.diff(bands['distances']) >= 0) and np.all(np.diff(bands['label_distances']) > 0)
    assert np.abs(bands['frequencies'][0]).max() < 0.05  # starts at Gamma
    assert np.allclose(bands['qpoints'][10], X_POINT)
    assert np.allclose(bands['frequencies'][10], frequencies_at(phonon, [X_POINT])[0], atol=1e-8)
    assert bands['frequencies'].min() > -0.05  # dynamically stable
    assert 6.5 < bands['frequencies'].max() < 9.0
    assert bands['frequencies'].max() == pytest.approx(7.97, abs=0.05)


def test_density_of_states(copper):
    _, _, phonon = copper
    dos = density_of_states(phonon, mesh=(8, 8, 8))
    f, g = dos['frequency_points'], dos['dos']
    assert f.shape == g.shape and np.all(np.isfinite(g)) and np.all(g >= 0)
    assert f[0] < 0.0 and f[-1] > 7.9  # the whole spectrum is covered
    assert np.trapezoid(g, f) == pytest.approx(3.0, abs=0.01)  # 3 modes per primitive cell (one atom)
    smeared = density_of_states(phonon, mesh=(8, 8, 8), sigma=0.1)
    assert np.trapezoid(smeared['dos'], smeared['frequency_points']) == pytest.approx(3.0, abs=0.05)


def test_matrix_convention_is_phonopys():
    """fc[i, j, a, b] = -dF_jb/du_ia: the force on j from the displacement of i, also for asymmetric fc."""
    rng = np.random.default_rng(0)
    fc = rng.normal(size=(4, 4, 3, 3))
    u = rng.normal(size=(4, 3))
    assert np.allclose(harmonic_forces(u, force_constants_to_matrix(fc)), -np.einsum('ijab,ia->jb', fc, u))
    assert np.array_equal(force_constants_from_matrix(force_constants_to_matrix(fc)), fc)


def test_minus_phi_u_matches_emt_forces(copper):
    """Displace one atom by a small vector off the symmetry axes: -Phi u reproduces the EMT forces."""
    displacements, force_constants, _ = copper
    reference = harmonic_reference(displacements, force_constants)
    phi = reference.force_constants
    assert np.allclose(phi, phi.T, atol=1e-10)
    assert np.allclose(phi.reshape(32, 3, 32, 3).sum(axis=2), 0, atol=1e-10)  # acoustic sum rule
    atoms = displacements.supercell
    assert np.abs(emt_forces(atoms)).max() < 1e-10
    u = np.zeros((32, 3))
    u[5] = [0.012, -0.007, 0.004]
    u[17] = [-0.003, 0.009, 0.006]
    atoms.positions += u
    forces = emt_forces(atoms)
    predicted = harmonic_forces(u, phi)
    assert np.linalg.norm(predicted - forces) / np.linalg.norm(forces) < 0.03
    assert reference.sigma(atoms.positions[None], forces[None]) < 0.03


def test_phonopy_yaml_round_trip(copper, tmp_path):
    displacements, force_constants, phonon = copper
    path = save_phonopy_yaml(phonon, tmp_path / 'phonopy.yaml')
    for loaded in (load_phonopy_yaml(path), load_phonopy_yaml(io.StringIO(phonopy_yaml_text(phonon)))):
        assert np.abs(full_force_constants(loaded) - force_constants).max() < 1e-12
        assert np.array_equal(loaded.supercell_matrix, displacements.supercell_matrix)
        assert np.allclose(loaded.primitive_matrix, displacements.primitive_matrix)
        assert np.allclose(frequencies_at(loaded, [X_POINT]), frequencies_at(phonon, [X_POINT]), atol=1e-10)
        again = DisplacementSet.from_phonopy(loaded)
        assert np.allclose(again.displacements, displacements.displacements)
        assert np.allclose(again.supercell.positions, displacements.supercell.positions)


def test_check_supercell_matches(copper):
    displacements, force_constants, _ = copper
    reference = harmonic_reference(displacements, force_constants)
    check_supercell_matches(reference, displacements.supercell)
    check_supercell_matches(reference, displacements.displaced_supercells()[0])
    rattled = displacements.supercell
    rattled.rattle(0.1, seed=1)
    check_supercell_matches(reference, rattled)

    with pytest.raises(ValueError, match='31 atoms, the reference supercell 32'):
        check_supercell_matches(reference, displacements.supercell[:-1])
    swapped = displacements.supercell
    swapped.symbols[3] = 'Au'
    with pytest.raises(ValueError, match='atom 3 is Au, the reference has Cu'):
        check_supercell_matches(reference, swapped)
    strained = displacements.supercell
    strained.set_cell(strained.cell * 1.01, scale_atoms=True)
    with pytest.raises(ValueError, match='cell differs'):
        check_supercell_matches(reference, strained)
    ase_order = bulk('Cu', 'fcc', a=3.6, cubic=True) * (2, 2, 2)  # same atoms, cell and count, other order
    with pytest.raises(ValueError, match='another order'):
        check_supercell_matches(reference, ase_order)
    check_supercell_matches(reference, ase_order, max_displacement=float('inf'))
