"""Soft acquisition against hand-derived values of Kang et al. Eqs. 3-4 (docs/source/science.rst, section 2)."""

import math

import numpy as np
import pytest

from aiida_anharmal.core.learning.acquisition import EnergyProbability, UncertaintyProbability, select, thin


def test_uncertainty_probability_by_hand():
    p = UncertaintyProbability(mu=0.1, sigma=0.02)  # s = 2, g = 1
    assert p(0.14) == pytest.approx(0.5)  # mu + 2 sigma
    # one sigma*sqrt(0.2) above: 1/2 (1 + erf(1))
    assert p(0.14 + 0.02 * math.sqrt(0.2)) == pytest.approx(0.5 * (1 + math.erf(1.0)))
    assert p(0.1) < 1e-8 and p(1.0) == pytest.approx(1.0)
    wider = UncertaintyProbability(mu=0.1, sigma=0.02, s=1.0, g=2.0)
    assert wider(0.12) == pytest.approx(0.5)


def test_energy_probability_by_hand():
    p = EnergyProbability(mu=-10.0, sigma=0.5)
    assert p(-10.0) == 1.0 and p(-9.5) == 1.0  # up to mu + sigma
    assert p(-10.0 + 1.8 * 0.5) == pytest.approx(0.2)  # 0.2 at mu + 1.8 sigma
    assert p(-10.0 + 2.6 * 0.5) == pytest.approx(0.04)
    # the reference code's inverted variant would accept every high-energy frame: here they are rejected
    assert p(-5.0) < 1e-6 and p(-20.0) == 1.0


def test_bad_statistics_refused():
    with pytest.raises(ValueError, match='must be positive'):
        UncertaintyProbability(mu=0.1, sigma=0.0)
    with pytest.raises(ValueError, match='must be positive'):
        EnergyProbability(mu=0.0, sigma=float('nan'))


def frames(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.gamma(2.0, 0.05, n), rng.normal(-10.0, 0.5, n)


def test_same_inputs_same_selection_and_order():
    u, e = frames()
    pu, pe = UncertaintyProbability(0.1, 0.07), EnergyProbability(-10.0, 0.5)
    one = select(u, e, pu, pe, seed=5, n_max=1000)
    two = select(u, e, pu, pe, seed=5, n_max=1000)
    np.testing.assert_array_equal(one.indices, two.indices)
    assert len(one.indices) == one.accepted_before_thinning > 0
    assert (np.diff(u[one.indices]) <= 0).all()  # largest uncertainty first
    # exactly the frames whose uniform draw fell below P = P(UCE) P(U)
    assert set(one.indices) == set(np.flatnonzero(one.drawn < one.p_uncertainty * one.p_energy))
    other = select(u, e, pu, pe, seed=6, n_max=1000)
    assert set(other.indices) != set(one.indices)


def test_high_uncertainty_low_energy_frames_are_drawn():
    u = np.array([0.0, 0.5, 0.5, 0.0])
    e = np.array([-10.0, -10.0, 0.0, 0.0])  # frame 2: far above mu_U + 1.8 sigma_U
    sel = select(u, e, UncertaintyProbability(0.1, 0.02), EnergyProbability(-10.0, 0.5), seed=0)
    assert list(sel.indices) == [1]
    assert sel.probability[2] < 1e-6


def test_n_max_and_spacing():
    u = np.linspace(1.0, 2.0, 10)  # all far above the reference: P = 1
    e = np.zeros(10)
    pu, pe = UncertaintyProbability(0.0, 0.01), EnergyProbability(0.0, 1.0)
    assert list(select(u, e, pu, pe, seed=0, n_max=3).indices) == [9, 8, 7]
    spaced = select(u, e, pu, pe, seed=0, n_max=10, min_spacing=3)
    assert list(spaced.indices) == [9, 6, 3, 0]
    # the spacing applies within a run only
    runs = np.array([0] * 5 + [1] * 5)
    numbers = np.array(list(range(5)) * 2)
    assert thin([9, 4, 8, 3], runs, numbers, min_spacing=2, n_max=10) == [9, 4]
    assert thin([9, 4, 7, 2], runs, numbers, min_spacing=2, n_max=10) == [9, 4, 7, 2]


def test_nan_frames_are_never_drawn():
    u = np.array([np.nan, 1.0])
    e = np.array([0.0, np.nan])
    sel = select(u, e, UncertaintyProbability(0.0, 0.01), EnergyProbability(0.0, 1.0), seed=0)
    assert len(sel.indices) == 0


def test_random_baseline_ignores_uncertainty():
    from aiida_anharmal.core.learning.acquisition import UniformProbability

    uncertainty = np.linspace(0.0, 1.0, 200)
    energy = np.zeros(200)
    flat = UniformProbability(1.0)
    result = select(uncertainty, energy, flat, EnergyProbability(0.0, 1.0), seed=4, n_max=20, order='random')
    assert len(result.indices) == 20 and len(set(result.indices.tolist())) == 20
    assert np.allclose(result.p_uncertainty, 1.0)
    # a uniform sample, not the 20 most uncertain frames
    assert sorted(result.indices.tolist()) != list(range(180, 200))
    again = select(uncertainty, energy, flat, EnergyProbability(0.0, 1.0), seed=4, n_max=20, order='random')
    assert result.indices.tolist() == again.indices.tolist()
    nan = select(np.array([np.nan, 0.1]), np.zeros(2), flat, EnergyProbability(0.0, 1.0), seed=0, order='random')
    assert nan.indices.tolist() == [1]
    with pytest.raises(ValueError, match='order'):
        select(uncertainty, energy, flat, EnergyProbability(0.0, 1.0), seed=4, order='energy')


def test_trigger_frames_come_first_and_survive_the_cut():
    from aiida_anharmal.core.learning.acquisition import select_triggered

    # run 0: frames 0-3 (the last fired, low UCE); run 1: frames 4-6 (the last fired); run 2 not triggered
    run_index = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    frames = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1])
    uncertainty = np.array([0.1, 0.9, 0.8, 0.2, 0.1, 0.7, 0.3, 5.0, 5.0])
    indices, reasons, n = select_triggered(run_index, frames, uncertainty, [0, 1], frames_before=2, n_max=3)
    assert n == 6
    assert list(indices) == [6, 3, 1] and reasons == ['trigger', 'trigger', 'before_trigger']
    indices, reasons, _ = select_triggered(run_index, frames, uncertainty, [0, 1], frames_before=0, n_max=30)
    assert sorted(indices) == [3, 6] and reasons == ['trigger', 'trigger']
