"""Calibration of the uncertainty against the true error of the labelled frames."""

import numpy as np
import pytest

from aiida_anharmal.core.models.calibration import calibration, correlation, force_errors


def test_force_errors_by_hand():
    predicted = np.zeros((1, 2, 3))
    true = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert force_errors(predicted, true).tolist() == [[5.0, 1.0]]
    with pytest.raises(ValueError, match='frames, atoms, 3'):
        force_errors(predicted, true[:, :1])


def test_perfect_ranking_and_ratio():
    u = np.array([0.1, 0.2, 0.3, 0.4])
    c = correlation(u, 2 * u**2)  # monotone but not linear
    assert c['spearman'] == pytest.approx(1.0)
    assert c['pearson'] < 1.0
    assert c['error_over_uncertainty'] == pytest.approx(np.mean(2 * u**2) / np.mean(u))
    assert correlation(u, -u)['spearman'] == pytest.approx(-1.0)


def test_too_few_or_nan_pairs():
    c = correlation([0.1, np.nan, 0.3], [0.2, 0.5, 0.1])
    assert c['n'] == 2 and np.isnan(c['spearman'])


def test_calibration_frames_and_atoms():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(5, 4, 3))
    uce = rng.uniform(0.05, 0.5, size=(5, 4))
    predicted = true + uce[..., None] * np.array([1.0, 0.0, 0.0])  # error norm equals the uncertainty
    out = calibration(predicted, true, uce.max(axis=1), uce)
    assert out['frames']['spearman'] == pytest.approx(1.0)
    assert out['atoms']['error_over_uncertainty'] == pytest.approx(1.0)
    assert out['force_max_error'] == pytest.approx(uce.max(axis=1).tolist())
    with pytest.raises(ValueError, match='UCE_F'):
        calibration(predicted, true, uce.max(axis=1)[:3])
