"""The ensemble calculator against a naive loop of one nequip ASE calculator per member."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_anharmal.core.models.ensemble import EnsembleCalculator


def tiny_model(seed, species=('Cu',), r_max=4.0):
    """An untrained tiny NequIP model with random weights (enough to compare evaluations)."""
    from nequip.model import NequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()
    model = NequIPGNNModel(
        seed=seed,
        model_dtype='float64',
        type_names=list(species),
        r_max=r_max,
        l_max=1,
        parity=True,
        num_layers=2,
        num_features=8,
        radial_mlp_depth=1,
        radial_mlp_width=8,
        avg_num_neighbors=18.0,
        per_type_energy_shifts={s: -1.0 for s in species},
        per_type_energy_scales={s: 1.0 for s in species},
    )
    return model.eval()


@pytest.fixture(scope='module')
def members():
    return [tiny_model(seed) for seed in range(3)]


@pytest.fixture
def atoms():
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.1, seed=3)
    return atoms


def naive(members, atoms):
    from nequip.integrations.ase import NequIPCalculator
    from nequip.integrations.utils import basic_transforms

    energies, forces, stresses = [], [], []
    for model in members:
        calc = NequIPCalculator(
            model=model, device='cpu', transforms=basic_transforms(model.metadata, 4.0, ['Cu'], {'Cu': 'Cu'})
        )
        a = atoms.copy()
        a.calc = calc
        energies.append(a.get_potential_energy())
        forces.append(a.get_forces())
        stresses.append(a.get_stress())
    return np.array(energies), np.array(forces), np.array(stresses)


@pytest.mark.parametrize('workers', [1, 2])
def test_mean_and_std_equal_a_loop_of_separate_calculators(members, atoms, workers):
    energies, forces, stresses = naive(members, atoms)
    atoms.calc = EnsembleCalculator(members, workers=workers)
    assert atoms.get_potential_energy() == pytest.approx(energies.mean(), abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), forces.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), stresses.mean(axis=0), atol=1e-6)
    results = atoms.calc.results
    np.testing.assert_allclose(results['member_energies'], energies, atol=1e-6)
    assert results['uce_energy'] == pytest.approx(energies.std(), abs=1e-6)
    per_atom = np.sqrt(((forces - forces.mean(axis=0)) ** 2).sum(axis=-1).mean(axis=0))
    np.testing.assert_allclose(results['uce_forces'], per_atom, atol=1e-6)
    assert results['uce_force_max'] == pytest.approx(per_atom.max(), abs=1e-6)
    # the members really differ, so the comparison is not trivially between zeros
    assert results['uce_energy'] > 1e-3 and results['uce_force_max'] > 1e-3


def test_recomputes_when_atoms_move(members, atoms):
    calc = EnsembleCalculator(members, workers=2)
    atoms.calc = calc
    first = atoms.get_forces().copy()
    atoms.positions[0] += 0.05
    assert not np.allclose(atoms.get_forces(), first)


def test_members_must_share_species_and_cutoff(members):
    with pytest.raises(ValueError, match='must share'):
        EnsembleCalculator([members[0], tiny_model(5, r_max=3.5)])


def test_unknown_element_is_refused(members):
    calc = EnsembleCalculator(members)
    with pytest.raises(ValueError, match=r"\['Ag'\] are not among"):
        calc.predict(bulk('Ag', 'fcc', a=4.1))
