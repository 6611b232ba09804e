"""Hyperactive learning in the one MD loop: the bias and its gradient, the adaptive tau, the triggers, restarts."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.morse import MorsePotential

from aiida_anharmal.core.md.hal import AdaptiveTau, HALBias, committee_sigma, mean_norm, sigma_gradient
from aiida_anharmal.core.md.loop import (
    MDSettings,
    build_bias,
    check_bias_settings,
    read_checkpoint,
    read_frames,
    run_md,
)
from aiida_anharmal.core.md.stop_rules import build_stop_rules, check_trigger_settings
from aiida_anharmal.core.md.triggers import (
    MaxRelativeTrigger,
    SoftmaxTrigger,
    relative_force_uncertainty,
    softmax_score,
)
from aiida_anharmal.core.models.uncertainty import CalculatorCommittee, EnsemblePrediction

MORSE = [(0.30, 2.50), (0.35, 2.55), (0.28, 2.60)]


def committee():
    """Three Morse potentials of Cu with different depths and ranges: a committee with exact derivatives."""
    return CalculatorCommittee([MorsePotential(epsilon=e, r0=r, rho0=6.0) for e, r in MORSE])


def crystal(seed=1, rattle=0.1):
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def hal_energy(bias, members, atoms):
    return bias(atoms, members.predict(atoms))[0]


@pytest.mark.parametrize('tau', [0.5, 5.0])
def test_hal_forces_are_minus_the_gradient_of_the_hal_energy(tau):
    atoms, members = crystal(), committee()
    bias = HALBias({'tau': tau})
    prediction = members.predict(atoms)
    energy, forces = bias(atoms, prediction)
    assert energy == pytest.approx(prediction.energy - tau * committee_sigma(prediction.member_energies))
    assert np.abs(forces - prediction.forces).max() > 0.01  # the bias is there, 1e4 x the tolerance below
    h, numeric = 1e-4, np.zeros_like(forces)
    for i in range(len(atoms)):
        for d in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, d] += h
            minus.positions[i, d] -= h
            numeric[i, d] = -(hal_energy(bias, members, plus) - hal_energy(bias, members, minus)) / (2 * h)
    np.testing.assert_allclose(forces, numeric, atol=1e-6, rtol=0)


def test_sigma_gradient_by_hand_on_two_members():
    energies = np.array([1.0, 3.0])  # sigma = 1
    forces = np.array([[[1.0, 0.0, 0.0]], [[3.0, 2.0, 0.0]]])
    # -(1/2) [(-1)(-1, -1, 0) + (1)(1, 1, 0)] / 1 = -(1, 1, 0)
    np.testing.assert_allclose(sigma_gradient(energies, forces), [[-1.0, -1.0, 0.0]])
    assert not sigma_gradient(np.array([2.0, 2.0]), forces).any()  # members agree: no direction


def run(tmp_path, name, bias=None, trigger=None, steps=40, checkpoint=None, seed=3, stride=1, **kwargs):
    settings = MDSettings(temperature=600, timestep=2.0, steps=steps, save_stride=stride, friction=0.02, seed=seed)
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    guards = build_stop_rules({'max_uncertainty': None}, settings.temperature, trigger=trigger)
    bias = build_bias(bias)
    result = run_md(crystal(rattle=0.02), committee(), settings, folder, guards=guards, bias=bias, **kwargs)
    if checkpoint is not None:
        return result
    return result, read_frames(folder)


def test_tau_zero_is_the_unbiased_run_bit_for_bit(tmp_path):
    _, plain = run(tmp_path, 'plain')
    _, zero = run(tmp_path, 'zero', bias={'kind': 'hal', 'tau': 0.0})
    _, late = run(tmp_path, 'late', bias={'kind': 'hal', 'tau_hist': 100})  # adaptive: no bias before step 100
    for other in (zero, late):
        np.testing.assert_array_equal(other['positions'], plain['positions'])
        np.testing.assert_array_equal(other['velocities'], plain['velocities'])
    assert np.isnan(plain['tau']).all() and (zero['tau'] == 0).all()
    _, biased = run(tmp_path, 'biased', bias={'kind': 'hal', 'tau': 2.0})
    assert np.abs(biased['positions'][-1] - plain['positions'][-1]).max() > 1e-3


def test_adaptive_tau_follows_its_formula_on_a_recorded_run(tmp_path):
    hist, tau_r = 5, 0.2
    _, frames = run(tmp_path, 'adaptive', bias={'kind': 'hal', 'tau_r': tau_r, 'tau_hist': hist}, steps=30)
    tau, bias_force = frames['tau'], frames['bias_force']
    mean_force = np.array([mean_norm(f) for f in frames['forces']])
    assert list(frames['step']) == list(range(31))
    assert (tau[: hist + 1] == 0).all()  # steps 1..tau_hist run unbiased (and step 0)
    for n in range(hist + 1, 31):
        window = slice(n - hist, n)  # the last tau_hist steps before step n
        expected = tau_r * mean_force[window].mean() / bias_force[window].mean()
        assert tau[n] == pytest.approx(expected, rel=1e-12)
    assert (tau[hist + 1 :] > 0).all()


def test_adaptive_tau_controller_by_hand():
    controller = AdaptiveTau(tau_r=0.1, tau_hist=2)
    for force, bias in ((1.0, 1.0), (2.0, 0.5)):
        controller.observe(force, bias)
        assert controller.tau == 0.0
    controller.observe(4.0, 0.5)  # window: (2, 0.5), (4, 0.5)
    assert controller.tau == pytest.approx(0.1 * 3.0 / 0.5)


def test_an_interrupted_hal_run_continues_the_same_trajectory(tmp_path):
    bias = {'kind': 'hal', 'tau_r': 0.2, 'tau_hist': 5}
    _, full = run(tmp_path, 'full', bias=bias, steps=40, stride=4)
    run(tmp_path, 'parts', bias=bias, steps=16, stride=4)
    checkpoint = read_checkpoint(tmp_path / 'parts' / 'checkpoint.json')
    assert checkpoint['step'] == 16 and checkpoint['bias_state']['controller']['observed'] == 17
    run(tmp_path, 'parts', bias=bias, steps=40, stride=4, checkpoint=checkpoint)
    parts = read_frames(tmp_path / 'parts')
    assert list(parts['step']) == list(full['step'])
    for name in ('positions', 'velocities', 'tau', 'bias_force'):
        np.testing.assert_array_equal(parts[name], full[name])


def prediction_with_spread(spreads, forces_norm=0.0, n_members=2):
    """Two members whose force on atom i differs by +-spreads[i] along x, around a mean of |F| = forces_norm."""
    spreads = np.asarray(spreads, dtype=float)
    mean = np.zeros((len(spreads), 3))
    mean[:, 1] = forces_norm
    members = np.stack([mean.copy() for _ in range(n_members)])
    members[0, :, 0] += spreads
    members[1, :, 0] -= spreads
    return EnsemblePrediction(np.zeros(n_members), members)


def test_relative_force_uncertainty_and_scores_by_hand():
    prediction = prediction_with_spread([0.1, 0.4], forces_norm=0.3)
    f = relative_force_uncertainty(prediction.member_forces, eps=0.2)
    np.testing.assert_allclose(f, [0.1 / 0.5, 0.4 / 0.5])
    assert softmax_score(f) == pytest.approx(np.exp(0.8) / (np.exp(0.2) + np.exp(0.8)))
    assert softmax_score(np.zeros(64)) == pytest.approx(1 / 64)  # the 1/N scaling of the published score
    f64 = np.r_[np.full(63, 0.1), 2.0]
    assert softmax_score(f64, reference_atoms=64) == pytest.approx(softmax_score(f64))
    f256 = np.r_[np.full(255, 0.1), 2.0]  # the same outlier in a 4x larger cell
    assert softmax_score(f256) < softmax_score(f64) / 3
    assert softmax_score(f256, reference_atoms=64) == pytest.approx(softmax_score(f64))


def test_each_trigger_fires_above_its_threshold_and_not_below():
    eps = 0.2
    # softmax over 8 atoms: one atom with f = x, the others 0 -> score e^x / (e^x + 7); 0.5 at x = ln 7
    edge = np.log(7.0) * eps  # the spread (|F_mean| = 0) that puts that atom exactly at s_tol = 0.5
    softmax = SoftmaxTrigger({'s_tol': 0.5, 'eps': eps})
    assert softmax.check(None, prediction_with_spread([edge * 1.01] + [0.0] * 7))
    assert softmax.check(None, prediction_with_spread([edge * 0.99] + [0.0] * 7)) is None
    assert softmax.last_score == pytest.approx(1 / (1 + 7 * np.exp(-0.99 * np.log(7))))
    force = MaxRelativeTrigger({'tol': 0.3, 'eps': eps})
    # f = spread / (0.1 + 0.2): fires above a spread of 0.09
    assert force.check(None, prediction_with_spread([0.0, 0.0901], forces_norm=0.1))
    assert force.check(None, prediction_with_spread([0.0, 0.0899], forces_norm=0.1)) is None


def test_a_trigger_stops_the_run_at_the_frame_that_fired_and_keeps_every_frame(tmp_path):
    trigger = {'kind': 'max_relative', 'tol': 0.03}
    result, frames = run(tmp_path, 'stop', bias={'kind': 'hal', 'tau': 1.0}, trigger=trigger, steps=200, stride=10)
    assert result.state == 'trigger_max_relative'
    last = frames['step'][-1]
    assert last == result.last_step and last < 200
    assert frames['trigger_score'][-1] > 0.03 and (frames['trigger_score'][:-1] <= 0.03).all()
    assert list(frames['step'][:-1]) == list(range(0, last, 10))[: len(frames['step']) - 1]


@pytest.mark.parametrize(
    ('settings', 'match'),
    [
        ({'kind': 'hal', 'tau_r': 0.0}, r'tau_r.*\(0, 1\]'),
        ({'kind': 'hal', 'tau_r': 1.5}, r'tau_r.*\(0, 1\]'),
        ({'kind': 'hal', 'tau_hist': 0}, 'tau_hist'),
        ({'kind': 'hal', 'tau_hist': 2.5}, 'tau_hist'),
        ({'kind': 'hal', 'tau': -1.0}, '`tau` must be'),
        ({'kind': 'hal', 'tau_rel': 0.1}, r"unknown parameter\(s\) \['tau_rel'\]"),
        ({'kind': 'halo'}, 'unknown MD bias `halo`'),
        ({'tau': 1.0}, 'need a `kind`'),
    ],
)
def test_bad_bias_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        check_bias_settings(settings)


@pytest.mark.parametrize(
    ('settings', 'match'),
    [
        ({'kind': 'softmax', 's_tol': 0.0}, r's_tol.*\(0, 1\)'),
        ({'kind': 'softmax', 's_tol': 1.0}, r's_tol.*\(0, 1\)'),
        ({'kind': 'softmax', 'eps': 0.0}, '`eps` must be a positive number'),
        ({'kind': 'max_relative', 'eps': -0.2}, '`eps` must be a positive number'),
        ({'kind': 'max_relative', 'tol': 0}, '`tol` must be a positive number'),
        ({'kind': 'softmax', 'reference_atoms': 1}, 'reference_atoms'),
        ({'kind': 'softmax', 'stol': 0.5}, r"unknown parameter\(s\) \['stol'\]"),
        ({'kind': 'sofmax'}, 'unknown MD stop trigger `sofmax`'),
    ],
)
def test_bad_trigger_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        check_trigger_settings(settings)


def test_a_committee_of_one_is_refused(tmp_path):
    one = CalculatorCommittee([MorsePotential()])
    with pytest.raises(ValueError, match='at least 2 members'):
        run_md(crystal(), one, MDSettings(steps=2), tmp_path, bias=HALBias({}))


class Killed(Exception):
    pass


class KilledAfter:
    """The committee, killed (an exception out of the force call) at its ``calls``-th prediction."""

    def __init__(self, calls):
        self.inner, self.calls, self.n_members = committee(), calls, 3

    def predict(self, atoms):
        self.calls -= 1
        if self.calls < 0:
            raise Killed
        return self.inner.predict(atoms)


def test_a_killed_hal_run_continues_from_its_last_checkpoint_bit_for_bit(tmp_path):
    """Checkpoints written at saved frames mid-run (never at the first step) continue the same trajectory."""
    bias = {'kind': 'hal', 'tau_r': 0.2, 'tau_hist': 5}
    _, full = run(tmp_path, 'full', bias=bias, steps=30, stride=1)
    settings = MDSettings(temperature=600, timestep=2.0, steps=30, save_stride=1, friction=0.02, seed=3)
    guards = build_stop_rules({'max_uncertainty': None}, settings.temperature)
    folder = tmp_path / 'killed'
    folder.mkdir()
    with pytest.raises(Killed):  # killed at the force call of step 1: no checkpoint of step 0 was written
        run_md(
            crystal(rattle=0.02), KilledAfter(1), settings, folder, guards, bias=build_bias(bias), checkpoint_seconds=0
        )
    assert not (folder / 'checkpoint.json').exists()
    with pytest.raises(Killed):  # killed during step 12: the checkpoint of step 11 is the last
        run_md(
            crystal(rattle=0.02), KilledAfter(12), settings, folder, guards, bias=build_bias(bias), checkpoint_seconds=0
        )
    checkpoint = read_checkpoint(folder / 'checkpoint.json')
    assert checkpoint['step'] == 11
    run_md(crystal(rattle=0.02), committee(), settings, folder, guards, bias=build_bias(bias), checkpoint=checkpoint)
    frames = read_frames(folder)
    assert list(frames['step']) == list(range(31))
    for name in ('positions', 'velocities', 'tau', 'bias_force'):
        np.testing.assert_array_equal(frames[name], full[name])


def test_a_checkpoint_of_another_bias_is_refused():
    bias = HALBias({'tau_hist': 5})
    with pytest.raises(ValueError, match='holds no state of the HAL bias'):
        bias.restore({})
    other = HALBias({'tau_hist': 7})
    with pytest.raises(ValueError, match='written with tau_hist 7, not 5'):
        bias.restore(other.state())
