"""Start policies of the AL explorations on hand-made run histories."""

import math

import pytest

from aiida_anharmal.core.learning.exploration_start import (
    START_POLICIES,
    RunEnd,
    check_start_parameters,
    make_policy,
)


def run(label, ok=True, a=0.4, t=300.0, seed=0):
    return RunEnd(label, ok, a, t, seed)


def test_default_is_the_start_structure_every_iteration():
    policy = make_policy({})
    assert policy.key == 'structure'
    assert policy.choose([run('a')], 10, 0).source == 'structure'


def test_test_frame_is_seeded_and_in_range():
    policy = make_policy({'policy': 'test_frame'})
    picks = [policy.choose([], 7, seed).index for seed in range(50)]
    assert all(0 <= k < 7 for k in picks) and len(set(picks)) > 3
    assert picks == [policy.choose([], 7, seed).index for seed in range(50)]  # same seed, same frame
    assert policy.choose([], 0, 1).source == 'structure'


def test_continue_skips_tripped_runs_and_runs_beyond_the_cap():
    policy = make_policy({'policy': 'continue', 'max_anharmonicity': 1.0})
    runs = [run('hot', t=600.0), run('tripped', ok=False), run('broken', a=2.5, seed=1)]
    assert policy.choose(runs, 5, 0).run == 'hot'  # lowest T first, but tripped and broken are skipped
    assert policy.choose([run('x', a=math.nan)], 5, 0).run == 'x'  # no harmonic reference: no cap to apply
    assert policy.choose([run('tripped', ok=False)], 5, 0).source == 'structure'
    assert 'no previous exploration' in policy.choose([], 5, 0).why
    no_cap = make_policy({'policy': 'continue', 'max_anharmonicity': None})
    assert no_cap.choose([run('broken', a=9.0)], 5, 0).run == 'broken'


@pytest.mark.parametrize(
    'parameters, match',
    [
        ({'policy': 'restart'}, 'unknown exploration start policy `restart`; known: continue, structure, test_frame'),
        ({'policy': 'continue', 'max_anharmonicity': -1}, '`max_anharmonicity` must be a positive number'),
        ({'policy': 'structure', 'max_anharmonicity': 1.0}, r"unknown parameter\(s\) \['max_anharmonicity'\]"),
    ],
)
def test_bad_start_parameters(parameters, match):
    with pytest.raises(ValueError, match=match):
        check_start_parameters(parameters)
    assert list(START_POLICIES.keys()) == ['continue', 'structure', 'test_frame']  # entry points, by key
