"""When does dynamic training refit? The retrain rules of Callsen et al. as strategies (no AiiDA import).

During MD with the current fit of a :class:`~aiida_anharmal.core.bayesian.model.BayesianForceConstantModel`, each
step's Bayesian error eps_B is shown to the rule (:meth:`RetrainRule.fires`). When it fires, the frame is
labelled, the model refitted, and the frame's eps_B under the new fit is reported back
(:meth:`RetrainRule.refitted`); the trajectory goes on. A rule's running state is part of the MD checkpoint
(:meth:`RetrainRule.state` / :meth:`RetrainRule.restore`), so a continued run decides as the uninterrupted
one.

``trajectory_average`` (published)
    fire when eps_B > gamma mu_k[eps_B], mu_k the mean eps_B of the last ``k`` steps before this one
    (fewer at the start of a run; never at its first step); gamma = 3, k = 1000.
``eps_min`` (the original rule, for comparison)
    fire when eps_B > the mean of the eps_B values stored right after each fit (the first step's eps_B
    under the initial fit, then each refitted frame's eps_B under its new fit).

Every step's eps_B enters the window, a refitted frame with its eps_B under the new fit. A frame with eps_B
of 0 (the ideal lattice: every row of the sensing matrix is 0) says nothing about the fit and is skipped by
both rules: it neither fires nor enters the window or the stored values.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

import numpy as np

from ..registry import Registry, Strategy, check_number


class RetrainRule(Strategy):
    """Base of the retrain rules (registry :data:`RETRAIN_RULES`): parameters by name, a running state."""

    def __init__(self, parameters: dict | None = None):
        self.parameters = self.validate(parameters or {})

    def fires(self, eps_b: float) -> bool:
        """Whether the frame of this step (Bayesian error ``eps_b``) is labelled and the model refitted."""
        raise NotImplementedError

    def refitted(self, eps_b: float) -> None:
        """After a refit: the refitted frame's eps_B under the new fit."""

    @property
    def reference(self) -> float:
        """What eps_B is measured against (mu_k[eps_B]; the mean stored value), NaN before it exists."""
        raise NotImplementedError

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        pass


RETRAIN_RULES: Registry[type[RetrainRule]] = Registry('retrain rule', group='anharmal.retrain_rules')


class TrajectoryAverageRule(RetrainRule):
    """eps_B > gamma mu_k[eps_B] (Callsen et al.; gamma > 1, k >= 1 steps)."""

    key = 'trajectory_average'
    label = 'eps_B > gamma x its mean over the last k steps'
    defaults: ClassVar[dict] = {'gamma': 3.0, 'k': 1000}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('gamma', p['gamma'])
        if p['gamma'] <= 1:
            raise ValueError(f'`gamma` must be larger than 1 (published: 3), not {p["gamma"]!r}')
        check_number('k', p['k'], integer=True, minimum=1)
        return p

    def __init__(self, parameters: dict | None = None):
        super().__init__(parameters)
        self.window: deque[float] = deque(maxlen=self.parameters['k'])
        self.pending = False

    @property
    def mean(self) -> float:
        """mu_k[eps_B] of the steps so far (NaN before the first)."""
        return float(np.mean(self.window)) if self.window else float('nan')

    reference = mean

    def fires(self, eps_b: float) -> bool:
        if not eps_b > 0:
            return False
        fired = bool(self.window) and eps_b > self.parameters['gamma'] * self.mean
        if fired:
            self.pending = True  # its eps_B enters the window after the refit
        else:
            self.window.append(float(eps_b))
        return fired

    def refitted(self, eps_b: float) -> None:
        if self.pending:
            self.window.append(float(eps_b))
            self.pending = False

    def state(self) -> dict:
        return {'window': list(self.window), 'pending': self.pending}

    def restore(self, state: dict) -> None:
        self.window = deque((float(x) for x in state['window']), maxlen=self.parameters['k'])
        self.pending = bool(state['pending'])


class EpsMinRule(RetrainRule):
    """eps_B > the mean of the eps_B values stored right after each fit (the original rule)."""

    key = 'eps_min'
    label = 'eps_B > the mean eps_B right after the fits'
    defaults: ClassVar[dict] = {}

    def __init__(self, parameters: dict | None = None):
        super().__init__(parameters)
        self.stored: list[float] = []

    @property
    def threshold(self) -> float:
        return float(np.mean(self.stored)) if self.stored else float('nan')

    reference = threshold

    def fires(self, eps_b: float) -> bool:
        if not eps_b > 0:
            return False
        if not self.stored:  # the first step under the initial fit: its eps_B is the first stored value
            self.stored.append(float(eps_b))
            return False
        return eps_b > self.threshold

    def refitted(self, eps_b: float) -> None:
        self.stored.append(float(eps_b))

    def state(self) -> dict:
        return {'stored': list(self.stored)}

    def restore(self, state: dict) -> None:
        self.stored = [float(x) for x in state['stored']]


def make_retrain_rule(settings: dict | None) -> RetrainRule:
    """The rule of ``{'rule': key, parameters}`` (default ``trajectory_average`` with its defaults)."""
    settings = dict(settings or {})
    key = settings.pop('rule', TrajectoryAverageRule.key)
    return RETRAIN_RULES.get(key)(settings)
