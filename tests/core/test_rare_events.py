"""Rare-event exploration: the uncertainty trigger, P(U) at the run's own temperature, the ladder's stopping rule."""

import math

import numpy as np
import pytest
from ase.units import kB

from aiida_anharmal.core.learning.acquisition import (
    EnergyProbability,
    PerRunProbability,
    check_acquisition_parameters,
    energy_statistics_at,
)
from aiida_anharmal.core.learning.convergence import (
    IterationRecord,
    RunRecord,
    check_convergence_parameters,
    make_rule,
)
from aiida_anharmal.core.md.stop_rules import TRIGGERS, build_trigger, check_trigger_settings
from aiida_anharmal.core.md.triggers import UncertaintyThresholdTrigger

from .test_hal import prediction_with_spread, run

STATS = {'uce_force_max': {'mean': 0.030, 'std': 0.005}, 'energy': {'mean': -10.0, 'std': 0.2}}


# ------------------------------------------------------------------------------------------- the trigger
def test_the_uncertainty_trigger_fires_at_1_01_and_not_at_0_99_of_its_edge():
    """UCE_F^max of two members at +-x along one axis is x: the edge is the threshold itself."""
    trigger = UncertaintyThresholdTrigger({'threshold': 0.04, 'patience': 1})
    assert trigger.check(None, prediction_with_spread([0.0, 0.04 * 1.01])) is not None
    assert trigger.last_score == pytest.approx(0.0404)
    trigger = UncertaintyThresholdTrigger({'threshold': 0.04, 'patience': 1})
    assert trigger.check(None, prediction_with_spread([0.0, 0.04 * 0.99])) is None


def test_the_trigger_waits_for_patience_steps_in_a_row():
    trigger = UncertaintyThresholdTrigger({'threshold': 0.04, 'patience': 3})
    above, below = prediction_with_spread([0.05]), prediction_with_spread([0.01])
    assert [trigger.check(None, p) for p in (above, above, below, above, above)] == [None] * 5
    assert trigger.state() == {'above': 2}
    assert 'for 3 step(s)' in trigger.check(None, above)
    restored = UncertaintyThresholdTrigger({'threshold': 0.04, 'patience': 3})
    restored.restore({'above': 2})  # a continuation from a checkpoint keeps the count
    assert restored.check(None, above) is not None


def test_s_is_resolved_against_the_test_set_statistics():
    resolved = TRIGGERS.get('uncertainty').resolve({'s': 2.0, 'patience': 4}, STATS)
    assert resolved == {
        'threshold': pytest.approx(0.040),
        's': None,
        'patience': 4,
        'exponent': 0.0,
        'reference_temperature': None,
    }
    assert build_trigger({'kind': 'uncertainty', **resolved}).threshold == pytest.approx(0.040)
    given = TRIGGERS.get('uncertainty').resolve({'threshold': 0.1}, STATS)
    assert given['threshold'] == 0.1
    # the other triggers have nothing to resolve
    assert TRIGGERS.get('softmax').resolve({'s_tol': 0.5}, STATS) == {'s_tol': 0.5}
    assert TRIGGERS.get('softmax').unresolved({'s_tol': 0.5}) is None
    with pytest.raises(ValueError, match='no finite `uce_force_max`'):
        TRIGGERS.get('uncertainty').resolve({'s': 2.0}, {'energy': STATS['energy']})
    with pytest.raises(ValueError, match='a threshold of 0.0 eV/A'):
        TRIGGERS.get('uncertainty').resolve({'s': 2.0}, {'uce_force_max': {'mean': 0.0, 'std': 0.0}})


@pytest.mark.parametrize(
    ('settings', 'match'),
    [
        ({'kind': 'uncertainty'}, '`threshold` .* or `s`'),
        ({'kind': 'uncertainty', 'threshold': 0.04, 's': 2.0}, 'one of them'),
        ({'kind': 'uncertainty', 'threshold': -0.04}, '`threshold` must be a positive number'),
        ({'kind': 'uncertainty', 's': -1.0}, '`s` must be a non-negative number'),
        ({'kind': 'uncertainty', 's': 2.0, 'patience': 0}, '`patience` must be an integer'),
        ({'kind': 'uncertainty', 's': 2.0, 'k': 3}, r"unknown parameter\(s\) \['k'\]"),
        ({'kind': 'uncertainty', 's': 2.0, 'exponent': True}, '`exponent` must be a number in'),
        ({'kind': 'uncertainty', 's': 2.0, 'exponent': 3.0}, '`exponent` must be a number in'),
        ({'kind': 'uncertainty', 's': 2.0, 'reference_temperature': -300.0}, '`reference_temperature` must be'),
    ],
)
def test_bad_uncertainty_trigger_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        check_trigger_settings(settings)


def test_a_hotter_run_is_stopped_against_the_uncertainty_of_its_own_temperature():
    """With exponent 1/2 the loop's threshold at the test set's 300 K becomes sqrt(3) times larger at 900 K."""
    resolved = TRIGGERS.get('uncertainty').resolve({'s': 2.0, 'exponent': 0.5}, STATS, test_temperature=300.0)
    assert resolved['reference_temperature'] == 300.0
    settings = {'kind': 'uncertainty', **resolved}
    assert build_trigger(settings, 300.0).threshold == pytest.approx(0.040)
    hot = build_trigger(settings, 900.0)
    assert hot.threshold == pytest.approx(0.040 * math.sqrt(3.0))
    edge = 0.040 * math.sqrt(3.0)
    hot.parameters['patience'] = 1
    assert hot.check(None, prediction_with_spread([edge * 0.99])) is None
    assert hot.check(None, prediction_with_spread([edge * 1.01])) is not None
    with pytest.raises(ValueError, match='needs the `reference_temperature`'):
        build_trigger({'kind': 'uncertainty', 'threshold': 0.04, 'exponent': 0.5}, 900.0)
    from aiida_anharmal.core.learning.probabilities import uncertainty_statistics_at

    assert uncertainty_statistics_at(0.03, 0.005, 300.0, 1200.0, 0.5) == pytest.approx((0.06, 0.01))
    assert uncertainty_statistics_at(0.03, 0.005, 300.0, 1200.0, 0.0) == (0.03, 0.005)


def test_the_threshold_a_plot_draws_is_the_runs_own():
    """``threshold_at``: what a run at T compared its score with; None where no single threshold exists yet."""
    kind = TRIGGERS.get('uncertainty')
    scaled = {'threshold': 0.04, 'exponent': 0.5, 'reference_temperature': 300.0}
    assert kind.threshold_at(scaled, 1200.0) == pytest.approx(0.08)
    assert kind.threshold_at(scaled, 1200.0) == build_trigger({'kind': 'uncertainty', **scaled}, 1200.0).threshold
    assert kind.threshold_at({'threshold': 0.04}, None) == 0.04  # unscaled: any temperature
    assert kind.threshold_at({'s': 2.0}, 300.0) is None  # not resolved yet
    assert kind.threshold_at(scaled, None) is None  # scaled, but no temperature
    assert TRIGGERS.get('max_relative').threshold_at({'tol': 0.065}) == 0.065
    assert TRIGGERS.get('retrain').threshold_at({}) is None


def test_an_unresolved_trigger_cannot_drive_a_run():
    checked = check_trigger_settings({'kind': 'uncertainty', 's': 2.0})  # fine for a loop to resolve
    assert checked['s'] == 2.0
    with pytest.raises(ValueError, match='resolved by an active-learning loop'):
        build_trigger({'kind': 'uncertainty', 's': 2.0})


def test_a_run_stops_where_the_committee_becomes_unsure_and_keeps_every_frame(tmp_path):
    """Three Morse potentials at 600 K: the trigger stops the run at the first step of ``patience`` above."""
    _, free = run(tmp_path, 'free', steps=60)
    threshold = float(np.quantile(free['uce_force_max'], 0.6))
    trigger = {'kind': 'uncertainty', 'threshold': threshold, 'patience': 2}
    result, frames = run(tmp_path, 'stopped', trigger=trigger, steps=60)
    assert result.state == 'trigger_uncertainty'
    above = free['uce_force_max'] > threshold
    first = next(k for k in range(1, len(above)) if above[k] and above[k - 1])
    assert result.last_step == first
    np.testing.assert_array_equal(frames['positions'], free['positions'][: first + 1])  # the same dynamics
    assert frames['trigger_score'][-1] == pytest.approx(free['uce_force_max'][first])


# ----------------------------------------------------------------------------- P(U) at the run's temperature
def test_per_run_uncertainty_statistics_by_hand():
    """uncertainty_exponent 1/2: the 1200 K run's frames are judged against mu and sigma twice the 300 K test set's."""
    from aiida_anharmal.core.learning.acquisition import UncertaintyProbability

    test_set = UncertaintyProbability(0.03, 0.005)
    hot = UncertaintyProbability(0.06, 0.01)
    both = PerRunProbability((test_set, hot), np.array([0, 1]))
    p = both(np.array([0.04, 0.08]))  # each at its own mu + 2 sigma
    np.testing.assert_allclose(p, [0.5, 0.5])
    assert test_set(np.array([0.08]))[0] > 0.999  # against the 300 K test set the hot frame is certain to be drawn
    assert check_acquisition_parameters({'uncertainty_exponent': 0.5})['uncertainty_exponent'] == 0.5
    with pytest.raises(ValueError, match='uncertainty_exponent'):
        check_acquisition_parameters({'uncertainty_exponent': -1})


def test_energy_statistics_carried_to_another_temperature_by_hand():
    n = 64
    mean, std = energy_statistics_at(-10.0, 0.2, 300.0, 900.0, n)
    assert mean == pytest.approx(-10.0 + 0.5 * (3 * n - 3) * kB * 600.0)  # 4.885 eV above
    assert std == pytest.approx(0.6)
    assert energy_statistics_at(-10.0, 0.2, 300.0, 300.0, n) == (-10.0, 0.2)
    with pytest.raises(ValueError, match='no vibrational'):
        energy_statistics_at(-10.0, 0.2, 300.0, 900.0, 1)


def test_hot_frames_are_judged_against_their_own_temperature_not_rejected_for_being_hot():
    """A 900 K frame at the 900 K mean energy: P(U) = 1 against 900 K statistics, ~0 against the 300 K test set."""
    n = 64
    hot_mean, hot_std = energy_statistics_at(-10.0, 0.2, 300.0, 900.0, n)
    energies = np.array([-10.0, hot_mean, hot_mean + 2.0 * hot_std])
    runs = np.array([0, 1, 1])
    test_set = EnergyProbability(-10.0, 0.2)
    own = PerRunProbability((test_set, EnergyProbability(hot_mean, hot_std)), runs)
    p_own, p_test = own(energies), test_set(energies)
    assert p_own[0] == 1.0 and p_own[1] == 1.0
    assert p_own[2] == pytest.approx(math.exp(math.log(0.2) / 0.8 * 1.0))  # one std beyond mu + sigma
    assert p_test[1] < 1e-10  # the 300 K yardstick rejects every frame of the hot run
    assert check_acquisition_parameters({})['energy_reference'] == 'temperature'
    with pytest.raises(ValueError, match='energy_reference'):
        check_acquisition_parameters({'energy_reference': 'hot'})


# ------------------------------------------------------------------------------------ the ladder's stopping rule
def record(iteration, mae, runs, selected=0, ratio=1.5, ensemble=None):
    return IterationRecord(
        iteration,
        mae,
        selected,
        ensemble=ensemble or f'e{iteration}',
        error_over_uncertainty=ratio,
        runs=tuple(runs),
        tail_bound=0.216,
    )


def quiet(temperature):
    return RunRecord(frames=40, p_uncertainty_mean=0.02, accepted=0, ended_normally=True, temperature=temperature)


def triggered(temperature):
    return RunRecord(frames=12, p_uncertainty_mean=0.4, accepted=3, ended_normally=False, temperature=temperature)


def ladder(max_iterations=10, **parameters):
    return make_rule(check_convergence_parameters({'rule': 'quiet_ladder', **parameters}), max_iterations)


def test_the_ladder_rule_fires_when_every_rung_ran_quiet_and_the_mae_settled():
    history = [
        record(1, 0.030, [quiet(300), triggered(600), triggered(900)], selected=8),
        record(2, 0.024, [quiet(300), quiet(600), triggered(900)], selected=4),
        record(3, 0.0235, [quiet(300), quiet(300), quiet(600), quiet(600), quiet(900), quiet(900)]),
    ]
    decision = ladder()(history)
    assert decision.converged and decision.reason == 'converged', decision.message
    assert not ladder()(history[:2]).stop


def test_quiet_runs_at_one_temperature_are_no_evidence_about_a_rare_event():
    """Today's main job: runs at 300 K only. Quiet there, the old rule would stop; the ladder rule does not."""
    history = [
        record(1, 0.030, [triggered(300), triggered(300)], selected=8),
        record(2, 0.024, [quiet(300), quiet(300)]),
        record(3, 0.0235, [quiet(300), quiet(300)]),
    ]
    old = make_rule(check_convergence_parameters({}), 10)(history)
    assert old.converged  # MaeAndSelection: two quiet runs, MAE settled
    decision = ladder()(history)
    assert not decision.stop and 'fewer than 2' in decision.message and '300 K' in decision.message
    capped = ladder(max_iterations=3)(history)
    assert capped.reason == 'iteration_cap' and 'no evidence' in capped.message


def test_the_ladder_rule_needs_its_quiet_iterations_in_a_row():
    history = [
        record(1, 0.030, [quiet(300), quiet(600)]),
        record(2, 0.029, [quiet(300), quiet(600)]),
    ]
    assert ladder(quiet_iterations=2)(history).converged
    assert not ladder(quiet_iterations=2)(history[:1]).converged
    # quiet, loud, quiet: the last two are not both quiet
    broken = [
        history[0],
        record(2, 0.029, [quiet(300), triggered(600)], selected=2),
        record(3, 0.0288, [quiet(300), quiet(600)]),
    ]
    decision = ladder(quiet_iterations=2)(broken)
    assert not decision.stop and '2 iteration(s) in a row' in decision.message
    assert ladder(quiet_iterations=1)(broken).converged
    with pytest.raises(ValueError, match='min_temperatures'):
        check_convergence_parameters({'rule': 'quiet_ladder', 'min_temperatures': 0})


def test_unrecorded_temperatures_count_as_one_and_not_beside_recorded_ones():
    def unknown():
        return RunRecord(frames=40, p_uncertainty_mean=0.02, accepted=0, ended_normally=True)

    settled = record(1, 0.030, [quiet(300)], selected=4)
    assert (
        'explored 1 temperature(s) (300 K)' in ladder()([settled, record(2, 0.0295, [quiet(300), unknown()])]).message
    )
    assert '(unrecorded)' in ladder()([settled, record(2, 0.0295, [unknown(), unknown()])]).message
    assert ladder(min_temperatures=1)([settled, record(2, 0.0295, [unknown(), unknown()])]).converged


def test_neb_images_just_added_are_no_convergence():
    """neb.acquire added uncertain path images after quiet runs: the ensemble that explored never saw them."""
    history = [
        record(1, 0.030, [quiet(300), triggered(600)], selected=2),
        record(2, 0.0295, [quiet(300), quiet(600)]),
    ]
    assert ladder()(history).converged
    from dataclasses import replace

    added = [*history[:-1], replace(history[-1], a_priori_frames=2)]
    decision = ladder()(added)
    assert not decision.stop and '2 uncertain NEB image(s)' in decision.message
    assert not make_rule(check_convergence_parameters({}), 10)(added).stop


def test_the_recorded_main_job_of_300_k_runs_gives_no_evidence_to_the_ladder_rule():
    """The 3-iteration main job as it was (tests/data/cui_main_job_history.json; a fictitious Frenkel-pair minimum):
    neither rule converges on it. Made quiet in its last exploration and without the calibration condition, the old
    rule would stop; the ladder rule still refuses: every run was at 300 K."""
    import json
    from dataclasses import replace
    from pathlib import Path

    from aiida_anharmal.core.learning.convergence import history_from_rows

    data = json.loads((Path(__file__).parents[1] / 'data' / 'cui_main_job_history.json').read_text())
    history = history_from_rows(data['rows'], data['ensembles'])
    assert [len(r.runs) for r in history] == [2, 2, 2]
    for rule in ('mae_and_selection', 'quiet_ladder'):
        assert make_rule(check_convergence_parameters({'rule': rule}), 3)(history).reason == 'iteration_cap'
    quiet_runs = tuple(replace(run, p_uncertainty_mean=0.0, ended_normally=True) for run in history[-1].runs)
    quiet = [*history[:-1], replace(history[-1], runs=quiet_runs)]
    lenient = {'max_error_over_uncertainty': None}
    assert make_rule(check_convergence_parameters(lenient), 10)(quiet).converged
    decision = make_rule(check_convergence_parameters({'rule': 'quiet_ladder', **lenient}), 10)(quiet)
    assert not decision.stop and 'explored 1 temperature(s)' in decision.message
