"""The stopping rule of the AL loop: which rule stopped it, by hand-made histories."""

import pytest

from aiida_anharmal.core.convergence import IterationRecord, MaeAndSelection


def history(*rows):
    return [IterationRecord(k + 1, mae, n) for k, (mae, n) in enumerate(rows)]


def test_converged_needs_no_selection_and_settled_mae():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=1, empty_explorations=1)
    d = rule(history((0.050, 30), (0.049, 0)))
    assert d.stop and d.converged and d.reason == 'converged'
    assert '1.00 meV/A' in d.message


def test_no_selection_but_mae_moving_continues():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=1, empty_explorations=1)
    d = rule(history((0.080, 30), (0.050, 0)))
    assert not d.stop and d.reason == 'continue' and 'not settled' in d.message
    d = rule(history((0.050, 0)))  # a first iteration has no MAE change to judge
    assert not d.stop


def test_patience_counts_the_last_changes():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=2, empty_explorations=1)
    assert not rule(history((0.060, 5), (0.051, 5), (0.050, 0))).stop  # 9 meV/A two steps back
    assert rule(history((0.052, 5), (0.051, 5), (0.050, 0))).converged
    assert MaeAndSelection(max_iterations=10, patience=0, empty_explorations=1)(
        history((0.3, 0))
    ).converged  # the paper's rule


def test_iteration_cap_says_why():
    rule = MaeAndSelection(max_iterations=2, empty_explorations=1)
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
    rule = MaeAndSelection(max_iterations=10, patience=1, empty_explorations=1)
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
    assert not MaeAndSelection(max_iterations=10, empty_explorations=1)(history).converged
    assert MaeAndSelection(max_iterations=10, max_error_over_uncertainty=None, empty_explorations=1)(history).converged


def test_one_empty_exploration_is_not_enough_by_default():
    # the main job of 0.2.0: one 0.8 ps exploration found nothing, the validation MD then left the crystal
    rule = MaeAndSelection(max_iterations=10)
    assert rule.empty_explorations == 2
    d = rule([record(1, 0.0188, 8, 'a'), record(2, 0.0197, 0, 'b')])
    assert not d.stop and d.reason == 'continue' and '1 of 2 explorations in a row' in d.message
    # a second exploration of the same ensemble (fresh velocities) that finds nothing either: converged
    d = rule([record(1, 0.0188, 8, 'a'), record(2, 0.0197, 0, 'b'), record(3, 0.0197, 0, 'b')])
    assert d.converged and 'no frame accepted in 2 explorations in a row' in d.message
    # a selection in between starts the count again
    history = [record(1, 0.03, 8, 'a'), record(2, 0.029, 0, 'b'), record(3, 0.029, 3, 'b'), record(4, 0.028, 0, 'c')]
    assert rule(history).reason == 'continue'
    assert MaeAndSelection.empty_run(history) == 1
    # at the cap the decision says how many were missing
    d = MaeAndSelection(max_iterations=2)([record(1, 0.0188, 8, 'a'), record(2, 0.0197, 0, 'b')])
    assert d.reason == 'iteration_cap' and '1 of 2 explorations' in d.message


def test_empty_explorations_is_checked():
    from aiida_anharmal.core.convergence import check_convergence_parameters

    assert check_convergence_parameters({})['empty_explorations'] == 2
    with pytest.raises(ValueError, match='empty_explorations'):
        check_convergence_parameters({'empty_explorations': 0})
    with pytest.raises(ValueError, match='empty_explorations'):
        MaeAndSelection(max_iterations=3, empty_explorations=0)
