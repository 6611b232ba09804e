"""Convergence of dynamic training without DFT: running statistics, the bracket, z_B, and the stop rule."""

import numpy as np
import pytest

from aiida_anharmal.core.bayesian.convergence import (
    DYNAMIC_CONVERGENCE,
    NoisePlateau,
    RefitRecord,
    error_bracket,
    make_dynamic_convergence,
    running_statistics,
    skewness,
    z_scores,
)


def test_running_statistics_are_the_mean_and_std_of_the_last_k_steps_by_hand():
    mu, sigma = running_statistics([1.0, 3.0, np.nan, 5.0, 9.0], k=2)
    np.testing.assert_allclose(mu, [1.0, 2.0, 3.0, 5.0, 7.0])  # NaN left out of its windows
    np.testing.assert_allclose(sigma, [0.0, 1.0, 0.0, 0.0, 2.0])


def test_the_bracket_is_beta_and_the_predictive_rms():
    lower, upper = error_bracket(0.003, [0.004, 0.0, np.nan])
    assert lower == 0.003 and upper == pytest.approx(np.sqrt(0.003**2 + 0.004**2 / 2))
    with pytest.raises(ValueError, match='no finite'):
        error_bracket(0.003, [np.nan])


def test_z_uses_the_statistics_of_the_steps_before():
    z = z_scores([1.0, 3.0, 2.0, 10.0], k=3)
    assert np.isnan(z[0]) and np.isnan(z[1])  # no window yet, then a window of one value (sigma 0)
    assert z[2] == pytest.approx((2.0 - 2.0) / 1.0)
    assert z[3] == pytest.approx((10.0 - 2.0) / np.std([1.0, 3.0, 2.0]))


def test_skewness_of_a_known_sample():
    assert skewness([0.0, 0.0, 3.0]) == pytest.approx(1 / np.sqrt(2))  # (1/3 sum d^3) / std^3 by hand
    assert skewness([1.0, 2.0, 3.0]) == 0.0 and np.isnan(skewness([1.0, 1.0, 1.0]))


def records(noise, steps=None):
    steps = steps or list(range(0, 100 * len(noise), 100))
    return [RefitRecord(s, 2 + k, n) for k, (s, n) in enumerate(zip(steps, noise, strict=True))]


def test_noise_plateau_needs_a_settled_noise_and_quiet_steps():
    rule = NoisePlateau({'tolerance': 0.05, 'refits': 2, 'quiet_steps': 500})
    settled = records([0.010, 0.0102, 0.0099])  # within 5 % of the last over the last 2 refits
    assert rule.noise_settled(settled) and not rule.noise_settled(records([0.010, 0.012, 0.0099]))
    assert not rule.noise_settled(records([0.010, 0.010]))  # fewer than refits + 1 fits
    assert rule.decide(settled, 500, False, 100).reason == 'converged'
    assert rule.decide(settled, 499, False, 100).reason == 'running'
    assert rule.decide(settled, 499, True, 100).reason == 'steps_exhausted'
    assert rule.decide(records([0.01, 0.02, 0.03]), 0, False, 2).reason == 'max_refits'
    decision = rule.decide(settled, 600, False, 100)
    assert decision.converged and decision.stop and '2 refit(s)' in decision.message


def test_bad_parameters_are_refused():
    assert 'noise_plateau' in DYNAMIC_CONVERGENCE
    for bad, match in (({'tolerance': 0}, 'tolerance'), ({'refits': 0}, 'refits'), ({'patience': 1}, 'unknown')):
        with pytest.raises(ValueError, match=match):
            make_dynamic_convergence(bad)
    with pytest.raises(ValueError, match='unknown dynamic-training convergence rule'):
        make_dynamic_convergence({'kind': 'never'})
