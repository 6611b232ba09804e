"""End points of the NEB validation: the CuI Frenkel pair by hand-derived distances, the minimum check on EMT."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.geometry import find_mic

from aiida_anharmal.core.structures.defects import (
    check_minimum,
    cui_frenkel_pair,
    frenkel_pair,
    neighbour_shell,
    relax,
    vacancy_hop,
)


def test_the_cui_interstitial_sits_among_four_iodines():
    a = 6.05
    pristine, defect = cui_frenkel_pair(a)
    assert len(pristine) == len(defect) == 64
    assert pristine.get_chemical_symbols() == defect.get_chemical_symbols()
    moved = np.flatnonzero(np.linalg.norm(defect.positions - pristine.positions, axis=1) > 1e-9)
    assert moved.tolist() == [0] and pristine[0].symbol == 'Cu'
    np.testing.assert_allclose(defect.positions[0], [a / 2, 0, 0])
    shell = neighbour_shell(defect, defect.positions[0])
    # 4 I at sqrt(3)/4 a = 2.62 A; 6 Cu sites at a/2 = 3.03 A, one of them the vacancy just left
    np.testing.assert_allclose(shell['I'], [np.sqrt(3) / 4 * a] * 4, atol=1e-3)
    np.testing.assert_allclose(shell['Cu'], [a / 2] * 5, atol=1e-3)
    # (1/2, 1/2, 1/2) a is the same kind of site
    other = neighbour_shell(pristine, np.array([0.5, 0.5, 0.5]) * a)
    assert len(other['I']) == 4 and len(other['Cu']) == 6


def test_an_occupied_site_is_refused():
    pristine, _ = cui_frenkel_pair()
    with pytest.raises(ValueError, match='not empty'):
        frenkel_pair(pristine, 0, pristine.positions[1])
    with pytest.raises(ValueError, match='atom 99 does not exist'):
        frenkel_pair(pristine, 99, [0.0, 0.0, 0.0])


def test_the_minimum_check_tells_a_minimum_from_a_saddle():
    crystal = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)
    relaxed = relax(crystal, EMT())
    assert relaxed.converged
    check = check_minimum(relaxed, EMT(), rattle=0.05, watch=0)
    assert check.is_minimum and check.max_displacement < 0.1 and abs(check.energy_change) < 1e-3
    # a vacancy with its neighbour half-way into it: the symmetric saddle of the hop
    site, neighbour = crystal.positions[0].copy(), 1 + int(np.argmin(crystal.get_distances(0, range(1, 32), mic=True)))
    saddle = crystal.copy()
    del saddle[0]
    saddle.positions[neighbour - 1] = (saddle.positions[neighbour - 1] + site) / 2
    relaxed = relax(saddle, EMT(), steps=0)
    check = check_minimum(relaxed, EMT(), rattle=0.05, seed=1, watch=neighbour - 1)
    assert not check.is_minimum and check.moved_atom_displacement > 0.5 and check.energy_change < -0.1


def test_a_vacancy_hop_moves_one_neighbour_into_the_site():
    crystal = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)
    initial, final = vacancy_hop(crystal, index=5)
    assert len(initial) == len(final) == 31
    moved = np.flatnonzero(np.linalg.norm(final.positions - initial.positions, axis=1) > 1e-9)
    assert len(moved) == 1
    np.testing.assert_allclose(final.positions[moved[0]], crystal.positions[5])
    # the nearest neighbour in fcc: a / sqrt(2) away (minimum image)
    _, hop = find_mic(final.positions[moved] - initial.positions[moved], crystal.cell, crystal.pbc)
    assert hop[0] == pytest.approx(3.6 / np.sqrt(2))
    with pytest.raises(ValueError, match='atom 40 does not exist'):
        vacancy_hop(crystal, index=40)


def test_the_frenkel_pair_of_a_given_supercell_keeps_its_atom_order():
    ordered, _ = cui_frenkel_pair(6.06)
    by_species = ordered[np.argsort(ordered.numbers, kind='stable')]  # phonopy-like: all Cu, then all I
    pristine, defect = cui_frenkel_pair(6.06, pristine=by_species)
    assert pristine.get_chemical_symbols() == defect.get_chemical_symbols() == by_species.get_chemical_symbols()
    moved = np.flatnonzero(np.linalg.norm(defect.positions - pristine.positions, axis=1) > 1e-9)
    assert len(moved) == 1 and np.allclose(pristine.positions[moved[0]], 0)
    shifted = by_species.copy()
    shifted.positions += 0.3
    with pytest.raises(ValueError, match='no Cu at the origin'):
        cui_frenkel_pair(6.06, pristine=shifted)


def test_a_frenkel_pair_is_in_the_interstitial_basin_and_the_crystal_is_not():
    """The Cu moved to (1/2, 0, 0) a is found there; the crystal, and the Cu 1.4 A along the way (before the
    midpoint 1.515 A), are not; 1.6 A along it is."""
    from aiida_anharmal.core.structures.defects import cui_frenkel_basin, cui_interstitial_sites

    a = 6.06
    pristine, defect = cui_frenkel_pair(a)
    sites = cui_interstitial_sites(a, 2)
    assert sites.shape == (32, 3)
    assert cui_frenkel_basin(pristine, pristine, a) == []
    (atom, site, distance), *rest = cui_frenkel_basin(defect, pristine, a)
    assert rest == [] and distance < 1e-9 and np.allclose(sites[site], [a / 2, 0, 0])
    moved = pristine.copy()
    for step, expected in ((1.4, 0), (1.6, 1)):
        moved.positions[atom] = [step, 0.0, 0.0]
        assert len(cui_frenkel_basin(moved, pristine, a)) == expected
