"""The stopping rule of the AL loop: which rule stopped it, by hand-made histories."""

import numpy as np
import pytest

from aiida_anharmal.core.learning.acquisition import UncertaintyProbability, tail_bound
from aiida_anharmal.core.learning.convergence import IterationRecord, MaeAndSelection, RunRecord


def history(*rows):
    return [IterationRecord(k + 1, mae, n) for k, (mae, n) in enumerate(rows)]


def test_converged_needs_no_selection_and_settled_mae():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=1, quiet_explorations=1)
    d = rule(history((0.050, 30), (0.049, 0)))
    assert d.stop and d.converged and d.reason == 'converged'
    assert '1.00 meV/A' in d.message


def test_no_selection_but_mae_moving_continues():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=1, quiet_explorations=1)
    d = rule(history((0.080, 30), (0.050, 0)))
    assert not d.stop and d.reason == 'continue' and 'not settled' in d.message
    d = rule(history((0.050, 0)))  # a first iteration has no MAE change to judge
    assert not d.stop


def test_patience_counts_the_last_changes():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=2, quiet_explorations=1)
    assert not rule(history((0.060, 5), (0.051, 5), (0.050, 0))).stop  # 9 meV/A two steps back
    assert rule(history((0.052, 5), (0.051, 5), (0.050, 0))).converged
    assert MaeAndSelection(max_iterations=10, patience=0, quiet_explorations=1)(
        history((0.3, 0))
    ).converged  # the paper's rule


def test_iteration_cap_says_why():
    rule = MaeAndSelection(max_iterations=2, quiet_explorations=1)
    d = rule(history((0.05, 30), (0.04, 12)))
    assert d.stop and not d.converged and d.reason == 'iteration_cap'
    assert '12 frame(s) still accepted' in d.message
    d = rule(history((0.08, 30), (0.04, 0)))
    assert d.reason == 'iteration_cap' and 'not settled' in d.message
    assert not rule(history((0.05, 30))).stop


def test_bad_parameters():
    with pytest.raises(ValueError, match='max_iterations'):
        MaeAndSelection(max_iterations=0)
    with pytest.raises(ValueError, match='tolerance'):
        MaeAndSelection(max_iterations=3, tolerance=0)
    with pytest.raises(ValueError, match='no iteration'):
        MaeAndSelection(max_iterations=3)([])


def record(k, mae, n, ensemble, ratio=1.5):
    return IterationRecord(k, mae, n, ensemble=ensemble, error_over_uncertainty=ratio)


def test_an_over_confident_ensemble_never_converges():
    # an earlier probe: EMT Cu, 2 tiny members: 548 meV/A test error against 5.8 meV/A UCE_F^max
    rule = MaeAndSelection(max_iterations=10)
    history = [record(1, 0.548, 0, 'a', ratio=94.5), record(2, 0.548, 0, 'a', ratio=94.5)]
    d = rule(history)
    assert not d.stop and d.reason == 'continue' and 'over-confident' in d.message and '94.5 x' in d.message
    assert rule(history + [record(10, 0.548, 0, 'a', ratio=94.5)]).reason == 'iteration_cap'


def test_a_reused_ensemble_is_no_evidence_that_the_mae_settled():
    rule = MaeAndSelection(max_iterations=10, patience=1, quiet_explorations=1)
    # nothing accepted twice by the same ensemble: the MAE 'changed by 0' because nothing was retrained
    d = rule([record(1, 0.05, 0, 'a'), record(2, 0.05, 0, 'a')])
    assert not d.stop and 'not retrained since the last frames were added' in d.message
    # retrained on the frames iteration 1 added, MAE moved by 1 meV/A, nothing accepted: converged
    d = rule([record(1, 0.051, 5, 'a'), record(2, 0.050, 0, 'b')])
    assert d.converged and '1.00 meV/A' in d.message
    # the change counts between different ensembles, even with a reused one in between
    assert rule([record(1, 0.06, 5, 'a'), record(2, 0.051, 0, 'b'), record(3, 0.051, 0, 'b')]).reason == 'continue'


def test_the_calibration_limit_can_be_switched_off():
    history = [record(1, 0.051, 5, 'a', ratio=50.0), record(2, 0.050, 0, 'b', ratio=50.0)]
    assert not MaeAndSelection(max_iterations=10, quiet_explorations=1)(history).converged
    assert MaeAndSelection(max_iterations=10, max_error_over_uncertainty=None, quiet_explorations=1)(history).converged


def test_one_empty_exploration_is_not_enough_by_default():
    # records without runs: one run per iteration, quiet when it selected nothing (the paper's rule)
    # the main job of 0.2.0: one 0.8 ps exploration found nothing, the validation MD then left the crystal
    rule = MaeAndSelection(max_iterations=10)
    assert rule.quiet_explorations == 2
    d = rule([record(1, 0.0188, 8, 'a'), record(2, 0.0197, 0, 'b')])
    assert not d.stop and d.reason == 'continue' and '1 of 2 quiet explorations in a row' in d.message
    # a second exploration of the same ensemble (fresh velocities) that finds nothing either: converged
    d = rule([record(1, 0.0188, 8, 'a'), record(2, 0.0197, 0, 'b'), record(3, 0.0197, 0, 'b')])
    assert d.converged and 'no frame accepted in 2 explorations in a row' in d.message
    # a selection in between starts the count again
    history = [record(1, 0.03, 8, 'a'), record(2, 0.029, 0, 'b'), record(3, 0.029, 3, 'b'), record(4, 0.028, 0, 'c')]
    assert rule(history).reason == 'continue'
    assert rule.quiet_streak(history) == 1
    # at the cap the decision says how many were missing
    d = MaeAndSelection(max_iterations=2)([record(1, 0.0188, 8, 'a'), record(2, 0.0197, 0, 'b')])
    assert d.reason == 'iteration_cap' and '1 of 2 quiet explorations' in d.message


def test_quiet_explorations_is_checked():
    from aiida_anharmal.core.learning.convergence import check_convergence_parameters

    assert check_convergence_parameters({})['quiet_explorations'] == 2
    with pytest.raises(ValueError, match='quiet_explorations'):
        check_convergence_parameters({'quiet_explorations': 0})
    with pytest.raises(ValueError, match='quiet_explorations'):
        MaeAndSelection(max_iterations=3, quiet_explorations=0)


def runs(*rows, ended=True):
    """RunRecords of (frames, mean P(UCE), accepted)."""
    return tuple(RunRecord(f, pu, n, ended) for f, pu, n in rows)


BOUND = tail_bound(2.0, 1.0)


def main_job(k, mae, ratio, tails, bound=BOUND):
    """An iteration of the CuI main job: two runs, as (frames, mean P(UCE), accepted)."""
    selected = min(sum(n for _, _, n in tails), 8)
    return IterationRecord(
        k, mae, selected, ensemble=str(k), error_over_uncertainty=ratio, runs=runs(*tails), tail_bound=bound
    )


def test_the_tail_bound_holds_for_any_spread_with_the_test_set_mean_and_std():
    # the mean of P(UCE) = Phi((x - mu - s sigma) / (g sigma sqrt(0.1))) over frames x with the test set's
    # mean and std is at most 1 / (1 + s^2 / (1 + g^2 / 10)) (Cantelli), whatever their distribution
    assert tail_bound(2.0, 1.0) == pytest.approx(1 / (1 + 4 / 1.1))
    rng = np.random.default_rng(0)
    for sample in (rng.normal(size=200_000), rng.exponential(size=200_000), rng.gumbel(size=200_000)):
        x = (sample - sample.mean()) / sample.std()  # test-set units: mean 0, std 1
        for s, g in ((1.0, 1.0), (2.0, 1.0), (2.0, 3.0), (3.0, 0.5)):
            p = UncertaintyProbability(0.0, 1.0, s, g)(x)
            assert p.mean() <= tail_bound(s, g)


def test_frames_like_the_test_set_are_quiet_though_some_are_accepted():
    # the 0.4.0 main job, iteration 3 (harmonic test set, UCE_F^max 30.1 +- 4.5 meV/A): run 0 drifted out of
    # the crystal after 0.8 ps (mean P(UCE) 0.272 over 41 frames, 3 accepted), run 1 stayed in it (0.041, 2)
    rule = MaeAndSelection(max_iterations=10, max_error_over_uncertainty=None)
    history = [
        main_job(2, 0.0216, 2.45, [(20, 0.500, 8), (41, 0.524, 12)]),
        main_job(3, 0.0214, 3.96, [(41, 0.272, 3), (41, 0.041, 2)]),
    ]
    assert rule.quiet_runs(history[-1]) == (1, 2)
    d = rule(history)
    assert d.reason == 'continue' and '0.27' in d.message and 'at most 0.22' in d.message
    # both runs like run 1: two quiet explorations, converged although frames were accepted
    history[-1] = main_job(3, 0.0214, 3.96, [(41, 0.050, 3), (41, 0.041, 2)])
    d = rule(history)
    assert d.converged and '2 quiet explorations in a row' in d.message and '0.20 meV/A' in d.message
    # the calibration limit still applies (3.96 > 3)
    d = MaeAndSelection(max_iterations=10)(history)
    assert not d.stop and 'over-confident' in d.message and '4.0 x' in d.message


def test_a_run_ended_by_a_guard_is_never_quiet():
    rule = MaeAndSelection(max_iterations=10, max_error_over_uncertainty=None)
    guarded = IterationRecord(
        3,
        0.0214,
        0,
        ensemble='3',
        runs=(RunRecord(41, 0.0, 0), RunRecord(12, 0.0, 0, ended_normally=False)),
        tail_bound=BOUND,
    )
    history = [main_job(2, 0.0216, 2.0, [(41, 0.5, 8), (41, 0.5, 8)]), guarded]
    assert rule.quiet_runs(guarded) == (1, 2)
    d = rule(history)
    assert not d.stop and '1 run(s) ended by a guard' in d.message


def test_nothing_accepted_from_high_energy_frames_is_not_quiet():
    # a broken crystal: P(UCE) ~ 1 everywhere, P(U) ~ 0, so nothing is accepted; that is no evidence
    rule = MaeAndSelection(max_iterations=10, max_error_over_uncertainty=None)
    history = [main_job(1, 0.03, 2.0, [(41, 0.5, 8)]), main_job(2, 0.029, 2.0, [(41, 0.95, 0), (41, 0.97, 0)])]
    assert rule.quiet_runs(history[-1]) == (0, 2) and not rule(history).stop


def test_the_limit_can_be_set_and_a_random_acquisition_is_never_quiet():
    history = [main_job(2, 0.0216, 2.0, [(41, 0.5, 8)]), main_job(3, 0.0214, 2.0, [(40, 0.1, 1), (40, 0.1, 2)])]
    assert MaeAndSelection(max_iterations=10)(history).converged
    assert not MaeAndSelection(max_iterations=10, max_mean_p_uncertainty=0.05)(history).stop
    # a larger s has a smaller bound: s = 3 allows 0.109
    history[-1] = main_job(3, 0.0214, 2.0, [(40, 0.15, 1), (40, 0.15, 2)], bound=tail_bound(3.0, 1.0))
    assert not MaeAndSelection(max_iterations=10)(history).stop
    # the random baseline has no threshold (no bound, no mean P(UCE)): it never converges
    history[-1] = main_job(3, 0.0214, 2.0, [(40, None, 8)], bound=None)
    assert MaeAndSelection(max_iterations=3)(history).reason == 'iteration_cap'
    from aiida_anharmal.core.learning.convergence import check_convergence_parameters

    with pytest.raises(ValueError, match='max_mean_p_uncertainty'):
        check_convergence_parameters({'max_mean_p_uncertainty': 1.5})
