"""Per-frame evaluation and test-set statistics against direct computations."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_anharmal.core.models.ensemble import EnsembleCalculator
from aiida_anharmal.core.models.evaluation import evaluate_frames, set_statistics
from aiida_anharmal.core.models.uncertainty import EnsemblePrediction
from aiida_anharmal.core.phonons.anharmonicity import HarmonicReference
from aiida_anharmal.core.structures.frames import Frames

from .test_ensemble import tiny_model


def rattled(n, seed=0):
    frames = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed + k)
        frames.append(atoms)
    return frames


def test_set_statistics_by_hand():
    arrays = {
        'energy': np.array([-1.0, -3.0]),
        'uce_energy': np.array([0.1, 0.3]),
        'uce_force_max': np.array([0.2, 0.2]),
        'energy_error': np.array([0.4, np.nan]),
        'forces_mae': np.array([0.1, np.nan]),
        'forces_rmse': np.array([0.2, np.nan]),
        'n_atoms': np.array([4, 4]),
    }
    stats = set_statistics(arrays)
    assert stats['energy'] == {'mean': -2.0, 'std': 1.0, 'n': 2}  # population std: 1, not sqrt(2)
    assert stats['uce_energy']['mean'] == pytest.approx(0.2) and stats['uce_energy']['std'] == pytest.approx(0.1)
    assert stats['uce_force_max']['std'] == 0.0
    assert stats['errors'] == {
        'n_labelled_energy': 1,
        'energy_mae_per_atom': pytest.approx(0.1),
        'n_labelled_forces': 1,
        'forces_mae': pytest.approx(0.1),
        'forces_rmse': pytest.approx(0.2),
    }


def test_test_set_calibration_by_hand():
    arrays = {
        'energy': np.array([-1.0, -3.0, -2.0]),
        'uce_energy': np.array([0.1, 0.3, 0.2]),
        'uce_force_max': np.array([0.02, 0.04, 0.5]),
        'energy_error': np.array([0.4, 0.2, np.nan]),
        'forces_mae': np.array([0.1, 0.2, np.nan]),
        'forces_rmse': np.array([0.2, 0.3, np.nan]),
        'force_max_error': np.array([0.3, 0.6, np.nan]),
        'n_atoms': np.array([4, 4, 4]),
    }
    errors = set_statistics(arrays)['errors']
    # the unlabelled third frame counts for neither mean: (0.3 + 0.6) / 2 over (0.02 + 0.04) / 2
    assert errors['force_max_error_mean'] == pytest.approx(0.45)
    assert errors['error_over_uncertainty'] == pytest.approx(15.0)


def test_evaluate_frames_matches_direct_predictions():
    members = [tiny_model(seed) for seed in range(3)]
    calc = EnsembleCalculator(members, workers=2)
    atoms_list = rattled(3)
    frames = Frames.from_atoms(atoms_list)
    arrays = evaluate_frames(calc, frames, member_forces=True)
    assert arrays['member_energies'].shape == (3, 3) and arrays['uce_forces'].shape == (12,)
    assert arrays['member_forces'].shape == (3, 12, 3)
    for k, atoms in enumerate(atoms_list):
        direct = calc.predict(atoms)
        assert arrays['energy'][k] == pytest.approx(direct.energy, abs=1e-12)
        assert arrays['uce_energy'][k] == pytest.approx(direct.uce_energy, abs=1e-12)
        assert arrays['uce_force_max'][k] == pytest.approx(direct.uce_force_max, abs=1e-12)
        np.testing.assert_allclose(arrays['uce_forces'][4 * k : 4 * k + 4], direct.uce_forces, atol=1e-12)
    assert np.isnan(arrays['energy_error']).all()  # no labels given


class AnharmonicToy:
    """Members with harmonic forces plus c_I times a fixed pattern: A_I known in closed form."""

    def __init__(self, reference, pattern, scales):
        self.reference, self.pattern, self.scales = reference, pattern, scales

    def predict(self, atoms):
        from aiida_anharmal.core.phonons.anharmonicity import harmonic_forces, minimum_image_displacements

        u = minimum_image_displacements(atoms.positions, self.reference.positions, self.reference.cell)
        f_ha = harmonic_forces(u, self.reference.force_constants)
        forces = np.stack([f_ha + c * self.pattern for c in self.scales])
        return EnsemblePrediction(np.zeros(len(self.scales)), forces)


def test_anharmonicity_and_its_uncertainty():
    ideal = bulk('Cu', 'fcc', a=3.6, cubic=True)
    n = len(ideal)
    rng = np.random.default_rng(0)
    b = rng.normal(size=(3 * n, 3 * n))
    reference = HarmonicReference(ideal.positions, ideal.cell[:], b @ b.T, tuple(ideal.get_chemical_symbols()))
    pattern = rng.normal(size=(n, 3))
    scales = [0.0, 0.5, 1.0]
    atoms = rattled(1, seed=4)[0]
    arrays = evaluate_frames(AnharmonicToy(reference, pattern, scales), Frames.from_atoms([atoms]), reference)
    u = atoms.positions - ideal.positions
    f_ha = -(u.reshape(-1) @ reference.force_constants.T).reshape(n, 3)
    per_member = [np.std(c * pattern) / np.std(f_ha + c * pattern) for c in scales]
    assert per_member[0] == 0.0
    assert arrays['uce_anharmonicity'][0] == pytest.approx(np.std(per_member), rel=1e-10)
    mean_c = np.mean(scales)
    assert arrays['anharmonicity'][0] == pytest.approx(np.std(mean_c * pattern) / np.std(f_ha + mean_c * pattern))
