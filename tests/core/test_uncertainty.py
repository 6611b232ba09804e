"""Ensemble uncertainties against hand-derived values."""

import numpy as np
import pytest

from aiida_anharmal.core.models.uncertainty import EnsemblePrediction, force_uncertainty, population_std


def test_population_std_uses_one_over_n():
    # members 1, 3: mean 2, deviations +-1 -> 1 (ddof=1 would give sqrt(2))
    assert population_std([1.0, 3.0]) == pytest.approx(1.0)


def test_force_uncertainty_is_the_vector_norm_of_the_deviation():
    # two members, one atom: F = (0,0,0) and (2,2,1): deviations (-1,-1,-0.5), (1,1,0.5), |d|^2 = 2.25
    forces = np.array([[[0.0, 0.0, 0.0]], [[2.0, 2.0, 1.0]]])
    assert force_uncertainty(forces) == pytest.approx([1.5])


def test_prediction_properties():
    member_forces = np.zeros((3, 2, 3))
    member_forces[:, 1, 0] = [1.0, 2.0, 3.0]  # atom 1, x: std sqrt(2/3)
    prediction = EnsemblePrediction(np.array([-1.0, -2.0, -3.0]), member_forces)
    assert prediction.n_members == 3
    assert prediction.energy == pytest.approx(-2.0)
    assert prediction.uce_energy == pytest.approx(np.sqrt(2 / 3))
    assert prediction.uce_forces == pytest.approx([0.0, np.sqrt(2 / 3)])
    assert prediction.uce_force_max == pytest.approx(np.sqrt(2 / 3))
    assert prediction.forces[1] == pytest.approx([2.0, 0.0, 0.0])
    assert prediction.stress is None


def test_bad_force_shape():
    with pytest.raises(ValueError, match='n_members, n_atoms, 3'):
        force_uncertainty(np.zeros((2, 3)))
