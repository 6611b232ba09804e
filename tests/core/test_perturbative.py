"""Perturbative lifetimes: our route against phono3py's own API on the same forces, and cases known by hand."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.phonons.anharmonicity import HarmonicCalculator
from aiida_anharmal.core.phonons.harmonic import force_constants_to_matrix, force_constants_with
from aiida_anharmal.core.phonons.perturbative import (
    NO_MODE,
    NO_SCATTERING,
    OK,
    Fc3DisplacementSet,
    lifetime_from_linewidth,
    make_fc3_displacements,
    perturbative_lifetimes,
)
from aiida_anharmal.core.phonons.phonopy_io import phonopy_to_ase

MESH = (5, 5, 5)


@pytest.fixture(scope='module')
def cu_phonon():
    """EMT Cu: the 4-atom cubic cell in a 2 x 2 x 2 supercell (32 atoms), the fcc primitive cell."""
    return force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6, cubic=True), [2, 2, 2])


def emt_forces(supercells):
    forces = []
    for atoms in supercells:
        atoms.calc = EMT()
        forces.append(atoms.get_forces())
    return np.array(forces)


@pytest.fixture(scope='module')
def cu_pairs(cu_phonon):
    displacements = make_fc3_displacements(cu_phonon, cutoff_pair_distance=3.0)
    return displacements, emt_forces(displacements.supercells())


def test_the_lifetime_is_one_over_four_pi_gamma():
    np.testing.assert_allclose(lifetime_from_linewidth([1 / (4 * np.pi), 0.5 / np.pi]), [1.0, 0.5])
    assert lifetime_from_linewidth(0.0) == np.inf


def test_the_pair_cutoff_drops_supercells_and_the_set_round_trips_through_json(cu_phonon, cu_pairs):
    everything = make_fc3_displacements(cu_phonon)
    displacements, _ = cu_pairs
    assert everything.n_all == displacements.n_all == 37  # the same list; phono3py marks the skipped pairs
    assert len(everything.labelled) == 37 and len(displacements.labelled) == 15
    again = Fc3DisplacementSet.from_dict(json.loads(json.dumps(displacements.to_dict())))
    assert again.labelled == displacements.labelled
    for a, b in zip(again.supercells(), displacements.supercells(), strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-12)
        assert a.get_chemical_symbols() == b.get_chemical_symbols()


def test_linewidths_and_kappa_equal_phono3pys_own_run_on_the_same_forces(cu_phonon, cu_pairs):
    from phono3py import Phono3py

    displacements, forces = cu_pairs
    ours = perturbative_lifetimes(displacements, forces, cu_phonon.force_constants, MESH, (300.0, 600.0))

    ph3 = Phono3py(cu_phonon.unitcell, supercell_matrix=cu_phonon.supercell_matrix, primitive_matrix='F', log_level=0)
    ph3.generate_displacements(distance=0.03, cutoff_pair_distance=3.0)
    full = [np.zeros((32, 3)) if cell is None else None for cell in ph3.supercells_with_displacements]
    computed = iter(emt_forces([phonopy_to_ase(c) for c in ph3.supercells_with_displacements if c is not None]))
    ph3.forces = np.array([next(computed) if f is None else f for f in full])
    ph3.produce_fc3()
    ph3.fc2 = cu_phonon.force_constants
    ph3.mesh_numbers = MESH
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=[300.0, 600.0], write_kappa=False)
    theirs = ph3.thermal_conductivity

    np.testing.assert_allclose(ours.gamma, theirs.gamma[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours.kappa, theirs.kappa[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.frequencies, theirs.frequencies, atol=1e-12)
    assert ours.weights.sum() == np.prod(MESH)
    # EMT Cu (no electrons): the lattice conductivity is isotropic, and lower at 600 K than at 300 K
    xx = ours.kappa[:, 0]
    np.testing.assert_allclose(ours.kappa[:, :3], np.repeat(xx[:, None], 3, axis=1), rtol=1e-8)
    assert 0 < xx[1] < xx[0]
    # RTA at high temperature: every linewidth scales like the occupation, about 2 x from 300 to 600 K
    ok = ours.gamma[0] > 1e-4
    assert np.median(ours.gamma[1][ok] / ours.gamma[0][ok]) == pytest.approx(2.0, rel=0.1)


def test_the_table_flags_acoustic_gamma_modes_and_lists_every_mode_with_its_weight(cu_phonon, cu_pairs):
    displacements, forces = cu_pairs
    table = perturbative_lifetimes(displacements, forces, cu_phonon.force_constants, MESH).table(0)
    assert table['frequency'].size == len(table['weight']) == 3 * len(np.unique(table['q'], axis=0))
    at_gamma = np.all(table['q'] == 0, axis=1)
    assert set(table['flag'][at_gamma]) == {NO_MODE} and np.isnan(table['tau'][at_gamma]).all()
    assert set(table['flag'][~at_gamma]) == {OK}
    np.testing.assert_allclose(table['tau'][~at_gamma], 1 / (4 * np.pi * table['gamma'][~at_gamma]))


def test_a_harmonic_crystal_has_no_linewidth(cu_phonon):
    """Forces of the harmonic model itself: fc3 vanishes, so does every linewidth; the lifetimes are infinite."""
    from aiida_anharmal.core.phonons.anharmonicity import HarmonicReference

    supercell = phonopy_to_ase(cu_phonon.supercell)
    reference = HarmonicReference(
        supercell.positions, supercell.cell.array, force_constants_to_matrix(cu_phonon.force_constants)
    )
    displacements = make_fc3_displacements(cu_phonon, cutoff_pair_distance=3.0)
    forces = []
    for atoms in displacements.supercells():
        atoms.calc = HarmonicCalculator(reference)
        forces.append(atoms.get_forces())
    result = perturbative_lifetimes(displacements, forces, cu_phonon.force_constants, MESH)
    assert np.abs(result.gamma).max() < 1e-9
    table = result.table(0)
    at_gamma = np.all(table['q'] == 0, axis=1)
    assert set(table['flag'][~at_gamma]) == {NO_SCATTERING} and set(table['flag'][at_gamma]) == {NO_MODE}
    assert np.isinf(table['tau'][~at_gamma]).all()


def test_random_displacements_with_symfc_agree_with_pairs(cu_phonon, cu_pairs):
    pairs, pair_forces = cu_pairs
    random = make_fc3_displacements(cu_phonon, n_random=20, seed=3)
    assert len(random.labelled) == 20
    assert np.allclose(
        np.linalg.norm(random.supercells()[0].positions - phonopy_to_ase(cu_phonon.supercell).positions, axis=1), 0.03
    )
    a = perturbative_lifetimes(
        random, emt_forces(random.supercells()), cu_phonon.force_constants, MESH, fc_calculator='symfc'
    )
    b = perturbative_lifetimes(pairs, pair_forces, cu_phonon.force_constants, MESH)
    assert a.kappa[0, 0] == pytest.approx(b.kappa[0, 0], rel=0.05)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        ({'distance': 0.0}, 'distance must be positive'),
        ({'cutoff_pair_distance': -1.0}, 'cutoff_pair_distance must be positive'),
        ({'n_random': 0}, 'n_random must be a positive integer'),
        ({'n_random': 5, 'cutoff_pair_distance': 3.0}, 'not both'),
        ({'n_random': 5, 'seed': -1}, 'non-negative'),
    ],
)
def test_bad_displacement_settings_are_refused(cu_phonon, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_fc3_displacements(cu_phonon, **kwargs)


def test_bad_forces_mesh_or_calculator_are_refused(cu_phonon, cu_pairs):
    displacements, forces = cu_pairs
    fc2 = cu_phonon.force_constants
    with pytest.raises(ValueError, match='expected'):
        perturbative_lifetimes(displacements, forces[:-1], fc2)
    bad = forces.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        perturbative_lifetimes(displacements, bad, fc2)
    with pytest.raises(ValueError, match='mesh'):
        perturbative_lifetimes(displacements, forces, fc2, mesh=(0, 5, 5))
    with pytest.raises(ValueError, match='temperatures'):
        perturbative_lifetimes(displacements, forces, fc2, temperatures=(-1.0,))
    with pytest.raises(ValueError, match='fc2 of shape'):
        perturbative_lifetimes(displacements, forces, fc2[:8, :8])
    random = make_fc3_displacements(cu_phonon, n_random=2)
    with pytest.raises(ValueError, match='symfc'):
        perturbative_lifetimes(random, emt_forces(random.supercells()), fc2)


def test_fc2_from_the_labels_gives_the_harmonic_frequencies(cu_phonon, cu_pairs):
    """The singly displaced supercells of the same labels give fc2 close to the reference's (0.03 vs 0.01 A)."""
    displacements, forces = cu_pairs
    a = perturbative_lifetimes(displacements, forces, None, MESH)
    b = perturbative_lifetimes(displacements, forces, cu_phonon.force_constants, MESH)
    np.testing.assert_allclose(a.frequencies, b.frequencies, atol=0.02)
