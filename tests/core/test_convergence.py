"""The stopping rule of the AL loop: which rule stopped it, by hand-made histories."""

import pytest

from aiida_anharmal.core.convergence import IterationRecord, MaeAndSelection


def history(*rows):
    return [IterationRecord(k + 1, mae, n) for k, (mae, n) in enumerate(rows)]


def test_converged_needs_no_selection_and_settled_mae():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=1)
    d = rule(history((0.050, 30), (0.049, 0)))
    assert d.stop and d.converged and d.reason == 'converged'
    assert '1.00 meV/A' in d.message


def test_no_selection_but_mae_moving_continues():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=1)
    d = rule(history((0.080, 30), (0.050, 0)))
    assert not d.stop and d.reason == 'continue' and 'not settled' in d.message
    d = rule(history((0.050, 0)))  # a first iteration has no MAE change to judge
    assert not d.stop


def test_patience_counts_the_last_changes():
    rule = MaeAndSelection(max_iterations=10, tolerance=0.002, patience=2)
    assert not rule(history((0.060, 5), (0.051, 5), (0.050, 0))).stop  # 9 meV/A two steps back
    assert rule(history((0.052, 5), (0.051, 5), (0.050, 0))).converged
    assert MaeAndSelection(max_iterations=10, patience=0)(history((0.3, 0))).converged  # the paper's rule


def test_iteration_cap_says_why():
    rule = MaeAndSelection(max_iterations=2)
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
