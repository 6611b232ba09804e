"""Where each exploration of the AL loop starts: small strategy objects in a registry; no AiiDA import.

A poorly trained ensemble can break the crystal within a picosecond of MD; a loop that continues
every exploration from where the last one ended then labels only wreckage. The default policy
therefore starts every iteration from the start structure (with fresh Maxwell-Boltzmann
velocities: the loop shifts the MD seeds by the iteration). ``test_frame`` starts from a random
frame of the test set (a thermal configuration of the same system); ``continue`` starts from the
last frame of the first run (lowest temperature, then seed) that ended normally -- never from a
frame that tripped a guard -- and whose degree of anharmonicity A is at most a cap, else from the
start structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..registry import Registry, Strategy, check_number


@dataclass(frozen=True)
class RunEnd:
    """What a policy knows of one finished MD run of the previous exploration."""

    label: str
    ended_normally: bool  # reached its last step (no guard fired)
    anharmonicity: float  # A of its last frame (NaN: no harmonic reference)
    temperature: float
    seed: int


@dataclass(frozen=True)
class Start:
    """The choice: ``source`` is ``structure`` (the start structure), ``test_set`` (frame ``index``)
    or ``run`` (the last frame of run ``run``); ``why`` says so in words."""

    source: str
    why: str
    index: int | None = None
    run: str | None = None


class StartPolicy(Strategy):
    """Base of the start policies: built with its checked parameters, ``choose(runs, n_test, seed)``."""

    def __init__(self, **parameters):
        self.parameters = self.validate(parameters)

    def choose(self, runs: list[RunEnd], n_test: int, seed: int) -> Start:
        raise NotImplementedError


START_POLICIES: Registry[type[StartPolicy]] = Registry('exploration start policy', group='anharmal.exploration_starts')
DEFAULT_POLICY = 'structure'


class FromStructure(StartPolicy):
    """Every exploration from the start structure (fresh velocities each iteration)."""

    key: ClassVar[str] = 'structure'
    label: ClassVar[str] = 'the start structure'

    def choose(self, runs, n_test, seed) -> Start:
        return Start('structure', 'the start structure, fresh velocities')


class FromTestFrame(StartPolicy):
    """Every exploration from a random frame of the test set (seeded by the loop's seed and iteration)."""

    key: ClassVar[str] = 'test_frame'
    label: ClassVar[str] = 'a random test-set frame'

    def choose(self, runs, n_test, seed) -> Start:
        if n_test < 1:
            return Start('structure', 'the test set is empty: the start structure')
        index = int(np.random.default_rng(int(seed)).integers(n_test))
        return Start('test_set', f'test-set frame {index}, fresh velocities', index=index)


class ContinueRun(StartPolicy):
    """From the last frame of the first run that ended normally with A at most ``max_anharmonicity``."""

    key: ClassVar[str] = 'continue'
    label: ClassVar[str] = 'the end of the previous exploration'
    defaults: ClassVar[dict] = {'max_anharmonicity': 1.5}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        if p['max_anharmonicity'] is not None:
            check_number('max_anharmonicity', p['max_anharmonicity'])
        return p

    def choose(self, runs, n_test, seed) -> Start:
        cap = self.parameters['max_anharmonicity']
        for run in sorted(runs, key=lambda r: (r.temperature, r.seed)):
            if not run.ended_normally:
                continue
            if cap is not None and math.isfinite(run.anharmonicity) and run.anharmonicity > cap:
                continue
            return Start('run', f'the last frame of run {run.label} (A {run.anharmonicity:.2f})', run=run.label)
        if not runs:
            return Start('structure', 'no previous exploration: the start structure')
        return Start('structure', f'no run ended normally with A <= {cap}: the start structure, fresh velocities')


def check_start_parameters(parameters: dict) -> dict:
    """``policy`` (default :data:`DEFAULT_POLICY`) and the policy's parameters, checked, defaults filled in."""
    key = parameters.get('policy', DEFAULT_POLICY)
    policy = START_POLICIES.get(key)
    own = {k: v for k, v in parameters.items() if k != 'policy'}
    return {'policy': key, **policy.validate(own)}


def make_policy(parameters: dict) -> StartPolicy:
    p = check_start_parameters(parameters)
    return START_POLICIES.get(p.pop('policy'))(**p)
