"""The Bayesian force-constant model on data of a known expansion, and the retrain rules on constructed series."""

import contextlib
import io

import numpy as np
import pytest
from ase.build import bulk

from aiida_anharmal.core.bayesian.model import BayesianForceConstantModel, check_cutoffs, max_cutoff
from aiida_anharmal.core.bayesian.retrain import RETRAIN_RULES, EpsMinRule, TrajectoryAverageRule, make_retrain_rule


def cu_model(cutoffs=(3.5, 3.0)):
    primitive, ideal = bulk('Cu', 'fcc', a=3.6), bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)
    with contextlib.redirect_stdout(io.StringIO()):  # hiphive prints its cluster space
        return BayesianForceConstantModel(primitive, cutoffs, ideal)


@pytest.fixture(scope='module')
def known():
    """A harmonic + cubic expansion of random coefficients, 8 labelled structures with 1 meV/A noise."""
    model = cu_model()
    rng = np.random.default_rng(0)
    truth = rng.normal(0.0, 1.0, model.n_parameters)
    from hiphive import ForceConstantPotential
    from hiphive.calculators import ForceConstantCalculator

    with contextlib.redirect_stdout(io.StringIO()):
        calculator = ForceConstantCalculator(
            ForceConstantPotential(model.cluster_space, truth).get_force_constants(model.ideal)
        )
    frames = []
    for _ in range(8):
        atoms = model.ideal.copy()
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        atoms.calc = calculator
        forces = atoms.get_forces()
        frames.append((atoms.positions.copy(), forces))
        model.add(atoms.positions, forces + rng.normal(0.0, 1e-3, forces.shape))
    return model, truth, frames, calculator


def test_the_sensing_matrix_gives_the_forces_of_the_expansion(known):
    model, truth, frames, _ = known
    positions, forces = frames[0]
    np.testing.assert_allclose(model.sensing_matrix(positions) @ truth, forces.ravel(), atol=1e-12)
    assert model.n_max == 3 and model.n_parameters == 13


def test_the_fit_recovers_the_coefficients_and_the_noise(known):
    model, truth, _, _ = known
    fit = model.fit()
    z = (fit.coefficients - truth) / np.sqrt(np.diag(fit.sigma))
    assert np.abs(fit.coefficients - truth).max() < 1e-3 and np.abs(z).max() < 4
    assert fit.noise == pytest.approx(1e-3, rel=0.1)  # beta^-1/2: the 1 meV/A noise put on the forces
    assert fit.n_structures == 8 and fit.n_rows == 8 * 32 * 3


def test_bayesian_error_is_sqrt_diag_a_sigma_at_by_hand(known):
    model, _, frames, _ = known
    fit = model.fit()
    positions = frames[0][0] + 0.01
    A = model.sensing_matrix(positions)
    by_hand = np.array([row @ fit.sigma @ row for row in A]).reshape(-1, 3)
    eps, per_atom = model.bayesian_error(positions, A)
    assert eps == pytest.approx(np.sqrt(by_hand.mean()), rel=1e-12)
    np.testing.assert_allclose(per_atom, np.sqrt(by_hand.mean(axis=1)), rtol=1e-12)
    # the noise 1/beta is not in it: eps_B of a well-determined fit is far below beta^-1/2
    assert eps < fit.noise


def test_sigma_is_the_full_posterior_covariance_even_with_fewer_rows_than_parameters(known):
    from aiida_anharmal.core.bayesian.model import posterior_covariance

    model, _, _, _ = known
    fit = model.fit()
    A, _ = model.fit_data()
    np.testing.assert_allclose(fit.sigma, np.linalg.inv(fit.beta * A.T @ A + fit.lam * np.eye(A.shape[1])), rtol=1e-10)
    few = np.random.default_rng(2).normal(size=(5, 10))  # 5 rows, 10 parameters: sklearn's thin SVD loses 5 directions
    sigma = posterior_covariance(few, 100.0, 2.0)
    null = np.linalg.svd(few)[2][-1]  # a direction no row reaches: its variance is the prior's, 1 / lambda
    assert null @ sigma @ null == pytest.approx(0.5, rel=1e-10)
    np.linalg.cholesky(sigma)  # positive definite: the posterior samples can be drawn


def test_posterior_samples_spread_like_sigma(known):
    model, _, frames, _ = known
    fit = model.fit()
    samples = model.sample_coefficients(4000, seed=1)
    np.testing.assert_allclose(np.cov(samples.T), fit.sigma, atol=5 * np.abs(fit.sigma).max() / np.sqrt(4000))
    committee = model.committee_forces(frames[1][0], samples[:5])
    assert committee.shape == (5, 32, 3)


def test_the_calculator_of_the_fit_matches_its_forces(known):
    model, _, frames, _ = known
    model.fit()
    atoms = model.ideal.copy()
    atoms.positions = frames[2][0]
    with contextlib.redirect_stdout(io.StringIO()):
        atoms.calc = model.calculator()
    np.testing.assert_allclose(atoms.get_forces(), model.forces(frames[2][0]), atol=1e-10)
    A = model.sensing_matrix(frames[2][0])
    energy = model.energy_row(frames[2][0], A) @ model.fit_result.coefficients  # the MD driver's energy
    assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-10)


def test_the_sensing_matrix_is_hiphives_structure_container_fit_matrix(known):
    from hiphive import StructureContainer

    from aiida_anharmal.core.bayesian.model import fit_structure

    model, _, frames, _ = known
    container = StructureContainer(model.cluster_space)
    container.add_structure(fit_structure(model.ideal, frames[1][0], frames[1][1]))
    np.testing.assert_allclose(model.sensing_matrix(frames[1][0]), container.get_fit_data()[0], atol=1e-13)


def test_the_stored_arrays_rebuild_the_fitted_model(known):
    from aiida_anharmal.core.bayesian.model import model_arrays, model_from_arrays

    model, _, frames, _ = known
    model.fit()
    again = model_from_arrays(model_arrays(model))
    positions = frames[3][0]
    np.testing.assert_array_equal(again.forces(positions), model.forces(positions))
    assert again.bayesian_error(positions)[0] == model.bayesian_error(positions)[0]
    assert again.fit_result.noise == model.fit_result.noise and again.n_max == model.n_max
    arrays = model_arrays(model)
    arrays['cutoffs'] = np.array([3.5])  # another cluster space: fewer parameters
    with pytest.raises(ValueError, match='stored coefficients'):
        model_from_arrays(arrays)


@pytest.mark.parametrize(
    ('cutoffs', 'match'),
    [
        ((), 'at least the cut-off of order 2'),
        ((3.0, 3.5), 'must not increase with the order'),
        ((-1.0,), 'must be positive'),
        ((4.0, 3.0), 'longer than the supercell allows'),
    ],
)
def test_bad_cutoffs_are_refused(cutoffs, match):
    with pytest.raises(ValueError, match=match):
        check_cutoffs(cutoffs, max_cutoff(bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)))


def fired(rule, series, refit=None):
    """The steps at which ``rule`` fires on ``series``; after a firing the frame's eps_B under the new fit is
    ``refit(eps)`` (default: the value itself)."""
    steps = []
    for n, eps in enumerate(series):
        if rule.fires(eps):
            steps.append(n)
            rule.refitted(eps if refit is None else refit(eps))
    return steps


def test_trajectory_average_fires_where_its_formula_says():
    rule = TrajectoryAverageRule({'gamma': 3.0, 'k': 3})
    # mu_3 of the steps before: 1 -> fires above 3; [10, 1, 1, 1] then 3.5: mu_3 = 1 -> fires
    assert fired(rule, [1.0, 1.0, 1.0, 1.0, 3.1, 1.0, 2.9]) == [4]
    assert fired(TrajectoryAverageRule({'gamma': 3.0, 'k': 3}), [10.0, 1.0, 1.0, 1.0, 3.5]) == [4]
    # k = 4: mu_4 = (10 + 1 + 1 + 1) / 4 = 3.25 -> 3.5 is below 9.75
    assert fired(TrajectoryAverageRule({'gamma': 3.0, 'k': 4}), [10.0, 1.0, 1.0, 1.0, 3.5]) == []
    # never at the first step; the refitted frame enters the window with its new eps_B
    rule = TrajectoryAverageRule({'gamma': 2.0, 'k': 10})
    assert fired(rule, [5.0, 1.0, 20.0], refit=lambda eps: 2.0) == [2]
    assert list(rule.window) == [5.0, 1.0, 2.0]


def test_eps_min_fires_above_the_mean_of_the_values_after_each_fit():
    rule = EpsMinRule()
    # stored: 1.0 (first step); 1.5 fires (> 1.0), refitted to 0.5 -> mean 0.75; 0.8 fires, refitted to 0.9 ->
    # mean 0.8; 0.79 does not fire, 0.81 does
    refits = {1.5: 0.5, 0.8: 0.9, 0.81: 0.6}
    assert fired(rule, [1.0, 0.9, 1.5, 0.7, 0.8, 0.79, 0.81], refit=refits.get) == [2, 4, 6]
    assert rule.stored == [1.0, 0.5, 0.9, 0.6]


def test_rule_state_round_trips_and_bad_parameters_are_refused():
    rule = make_retrain_rule({'rule': 'trajectory_average', 'k': 5})
    fired(rule, [1.0, 2.0, 9.0])  # 9 > 3 x 1.5 fires: the window is (1, 2, 9 after its refit)
    copy = make_retrain_rule({'rule': 'trajectory_average', 'k': 5})
    copy.restore(rule.state())
    assert copy.state() == rule.state() == {'window': [1.0, 2.0, 9.0], 'pending': False}
    assert copy.fires(13.0) and rule.fires(13.0)  # 13 > 3 x 4: only a restored window fires on it
    assert not make_retrain_rule({'rule': 'trajectory_average', 'k': 5}).fires(13.0)
    # the ideal lattice has eps_B 0: skipped by both rules (else any eps_B > gamma x 0 would fire)
    average, eps_min = TrajectoryAverageRule(), EpsMinRule()
    assert fired(average, [0.0, 1.0, 0.9]) == [] and average.state()['window'] == [1.0, 0.9]
    assert fired(eps_min, [0.0, 1.0, 0.9]) == [] and eps_min.state() == {'stored': [1.0]}
    assert set(RETRAIN_RULES.keys()) == {'trajectory_average', 'eps_min'}
    for settings, match in (
        ({'gamma': 1.0}, 'larger than 1'),
        ({'gamma': 0.5}, 'larger than 1'),
        ({'k': 0}, '`k` must be an integer of at least 1'),
        ({'window': 3}, r"unknown parameter\(s\) \['window'\]"),
        ({'rule': 'eps_max'}, 'unknown retrain rule `eps_max`'),
    ):
        with pytest.raises(ValueError, match=match):
            make_retrain_rule(settings)


class CachedEMT:
    """EMT forces, computed once per configuration: numpy's reductions may differ in the last bit with memory
    alignment, and this test is about the MD, the refits and the continuation, not about EMT."""

    def __init__(self):
        from ase.calculators.emt import EMT

        self.emt, self.cache = EMT(), {}

    def forces(self, atoms):
        key = atoms.positions.tobytes()
        if key not in self.cache:
            probe = atoms.copy()
            probe.calc = self.emt
            self.cache[key] = probe.get_forces()
        return self.cache[key].copy()


class CacheCalculator:
    """The ASE side of :class:`CachedEMT` (what :func:`dynamic_training` labels with)."""

    def __init__(self, labels):
        self.labels = labels

    def get_forces(self, atoms):
        return self.labels.forces(atoms)

    def get_property(self, name, atoms=None, allow_calculation=True):
        return self.labels.forces(atoms)


@pytest.mark.slow
def test_a_run_continued_after_a_refit_is_the_run_that_refits_in_place(tmp_path):
    """Dynamic training by stop, label, refit and continue equals one run that refits where it stands, bit for bit."""
    from aiida_anharmal.core.bayesian.dynamic_training import BayesianPotential, RetrainTrigger, dynamic_training
    from aiida_anharmal.core.md.loop import MDSettings, read_frames, run_md
    from aiida_anharmal.core.md.stop_rules import build_stop_rules

    labels = CachedEMT()
    rng = np.random.default_rng(3)
    ideal = cu_model().ideal
    initial = [ideal.positions + rng.normal(0.0, 0.05, ideal.positions.shape) for _ in range(3)]

    def fitted():
        model = cu_model()
        for positions in initial:
            atoms = model.ideal.copy()
            atoms.positions = positions
            model.add(positions, labels.forces(atoms))
        model.fit()
        return BayesianPotential(model)

    settings = MDSettings(temperature=300, timestep=2.0, steps=40, save_stride=1, friction=0.02, seed=5)
    rule = {'rule': 'trajectory_average', 'gamma': 1.3, 'k': 5}
    (tmp_path / 'stops').mkdir()
    stopped = dynamic_training(ideal, fitted(), CacheCalculator(labels), settings, tmp_path / 'stops', rule)
    assert stopped.result.state == 'finished' and len(stopped.refits) >= 2
    assert [r['n_data'] for r in stopped.refits] == list(range(4, 4 + len(stopped.refits)))

    potential = fitted()
    refits = []

    def refit(atoms):
        refits.append(atoms.positions.copy())
        potential.refit(atoms.positions, labels.forces(atoms))

    rules = build_stop_rules({'max_uncertainty': None}, settings.temperature, trigger={'kind': 'retrain', **rule})
    assert isinstance(rules[-1], RetrainTrigger)
    rules[-1].refit = refit
    (tmp_path / 'one').mkdir()
    result = run_md(ideal.copy(), potential, settings, tmp_path / 'one', rules)
    assert result.state == 'finished' and len(refits) == len(stopped.refits)
    one, parts = read_frames(tmp_path / 'one'), read_frames(tmp_path / 'stops')
    assert list(parts['step']) == list(one['step']) == list(range(41))
    for name in ('positions', 'velocities', 'forces', 'uce_force_max', 'trigger_score'):
        np.testing.assert_array_equal(parts[name], one[name])
    assert np.isfinite(one['trigger_score']).all()  # eps_B of every step is recorded


def test_a_committee_of_posterior_samples_drives_the_hal_bias_exactly(known):
    """Each posterior sample's forces are -dE/dx of its energy, so the HAL bias on the committee is conservative:
    F_HAL = -dE_HAL/dx by central differences; the draw is fixed by the seed and the fit's N_data."""
    from aiida_anharmal.core.bayesian.dynamic_training import BayesianPotential
    from aiida_anharmal.core.md.hal import HALBias

    model, _, frames, _ = known
    model.fit()
    potential = BayesianPotential(model, samples=6, seed=3)
    atoms = model.ideal.copy()
    atoms.positions = frames[4][0]
    prediction = potential.predict(atoms)
    assert prediction.n_members == 6 and prediction.uce_energy > 0 and prediction.member_forces.shape == (6, 32, 3)
    np.testing.assert_array_equal(BayesianPotential(model, samples=6, seed=3).coefficients, potential.coefficients)
    bias = HALBias({'tau': 5.0})
    _, forces = bias(atoms, prediction)
    h = 1e-5
    for atom, axis in ((0, 0), (7, 2), (19, 1)):
        energies = []
        for sign in (1, -1):
            probe = atoms.copy()
            probe.positions[atom, axis] += sign * h
            energies.append(bias(probe, potential.predict(probe))[0])
        assert forces[atom, axis] == pytest.approx(-(energies[0] - energies[1]) / (2 * h), abs=1e-6)
    assert np.abs(forces - prediction.forces).max() > 1e-4  # the bias term is there


def test_force_errors_of_a_fit_by_hand(known):
    from aiida_anharmal.core.bayesian.convergence import force_errors

    model, _, frames, _ = known
    fit = model.fit()
    result = force_errors(model, frames[:4])
    errors = np.concatenate([(model.forces(p) - f).ravel() for p, f in frames[:4]])
    eps = np.array([model.bayesian_error(p)[0] for p, _ in frames[:4]])
    assert result['frames'] == 4
    assert result['forces_rmse'] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-12)
    assert result['forces_mae'] == pytest.approx(np.mean(np.abs(errors)), rel=1e-12)
    assert result['bracket'] == pytest.approx([fit.noise, np.sqrt(1 / fit.beta + np.mean(eps**2))], rel=1e-12)
