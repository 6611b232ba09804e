"""Stop triggers: end an MD run at the frame the committee is unsure of, to label it (no AiiDA import).

Both triggers read the relative force uncertainty of each atom ``i`` (van der Oord et al.)::

    f_i = [(1/K) sum_k |F_k,i - F_mean,i|] / (|F_mean,i| + eps)

(``eps`` in eV/A keeps atoms at rest from dominating). :class:`SoftmaxTrigger` (the published rule)
stops when ``max_i softmax(f)_i > s_tol``; :class:`MaxRelativeTrigger` (ACEHAL's code) when
``max_i f_i > tol``.

The softmax score depends on the number of atoms ``N``: for equal ``f_i`` it is ``1/N``, and one atom
passes ``s_tol = 0.5`` only when its ``f_i`` exceeds the others' by ``ln(N - 1)`` (3.4 for 32 atoms,
4.1 for 64, 5.5 for 256). A threshold tuned on one supercell therefore does not transfer to another.
With ``reference_atoms = M`` the score is the softmax that a cell of ``M`` atoms with the same
distribution of ``f`` would have, ``exp(f_max) / (exp(f_max) + (M - 1) mean_{j != max} exp(f_j))``
(equal to the softmax when ``N = M``): size independent. The protocols of this package use the
``softmax`` trigger with ``reference_atoms`` null (the published form) and say so.

:class:`UncertaintyThresholdTrigger` (``uncertainty``) reads the quantity the soft acquisition reads, UCE_F^max,
against the same yardstick: it stops when UCE_F^max stayed above ``threshold`` for ``patience`` consecutive
steps. An active-learning loop gives ``s`` instead, and sets ``threshold = mu + s sigma`` of its current
ensemble on its test set before every exploration (:meth:`~aiida_anharmal.core.md.stop_rules.Trigger.resolve`), the
edge where P(UCE) = 1/2: the run stops where the ensemble becomes unsure, and a run that never fires is
evidence of a quiet region.

A trigger is a :class:`~aiida_anharmal.core.md.stop_rules.Trigger` (exit codes 340-349): the run stops, the
frame that fired is saved, every frame so far is kept. Triggers are configured by the MD
calculation's ``trigger`` input (``kind`` and the class's parameters), not by the ``guards``
thresholds.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..registry import check_number
from .stop_rules import Trigger


def relative_force_uncertainty(member_forces, eps: float) -> np.ndarray:
    """f_i = mean over members of |F_k,i - F_mean,i|, over (|F_mean,i| + eps); shape ``(n_atoms,)``."""
    forces = np.asarray(member_forces, dtype=float)
    mean = forces.mean(axis=0)
    spread = np.linalg.norm(forces - mean, axis=-1).mean(axis=0)
    return spread / (np.linalg.norm(mean, axis=-1) + eps)


def softmax_score(f, reference_atoms: int | None = None) -> float:
    """max_i softmax(f)_i, or with ``reference_atoms`` M its size-independent form (module docstring)."""
    f = np.asarray(f, dtype=float)
    top = int(np.argmax(f))
    weights = np.exp(f - f[top])  # the largest is 1: no overflow
    others = np.delete(weights, top)
    if reference_atoms is None:
        rest = float(others.sum())
    else:
        rest = (reference_atoms - 1) * (float(others.mean()) if len(others) else 0.0)
    return 1.0 / (1.0 + rest)


class UncertaintyTrigger(Trigger):
    """Base of the triggers on committee force disagreement: parameters by name, one ``score`` per frame."""

    defaults: ClassVar[dict] = {'eps': 0.2}
    #: the parameter that ``score`` is compared with
    threshold_key: ClassVar[str] = ''
    min_members = 2

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('eps', p['eps'])
        return p

    @classmethod
    def threshold_at(cls, parameters: dict, temperature: float | None = None) -> float | None:
        return float(cls.validate(parameters)[cls.threshold_key])

    def __init__(self, parameters: dict | None = None, target_temperature: float | None = None, harmonic=None):
        p = self.validate(parameters or {})
        super().__init__(p[self.threshold_key], target_temperature, harmonic)
        self.parameters = p
        self.last_score = np.nan

    def score(self, prediction) -> float:
        raise NotImplementedError

    def check(self, atoms, prediction) -> str | None:
        if prediction.n_members < self.min_members:
            raise ValueError(f'trigger `{self.key}` needs a committee of at least {self.min_members} members')
        self.last_score = self.score(prediction)
        if self.last_score > self.threshold:
            return f'{self.label} {self.last_score:.3f} exceeds {self.threshold}'
        return None


class SoftmaxTrigger(UncertaintyTrigger):
    """Stop when max_i softmax(f)_i > s_tol (van der Oord et al.; ``s_tol`` in (0, 1), published 0.5)."""

    key = 'softmax'
    label = 'softmax of the relative force uncertainty'
    reason = 'trigger_softmax'
    exit_status = 340
    exit_label = 'STOPPED_BY_SOFTMAX_TRIGGER'
    message = 'Stopped by the softmax trigger at a frame to label: {message}.'
    defaults: ClassVar[dict] = {'s_tol': 0.5, 'eps': 0.2, 'reference_atoms': None}
    threshold_key = 's_tol'
    unit = 'softmax score'

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        s_tol = p['s_tol']
        if isinstance(s_tol, bool) or not isinstance(s_tol, (int, float)) or not 0 < s_tol < 1:
            raise ValueError(f'`s_tol` must lie in (0, 1) (published: 0.5), not {s_tol!r}')
        if p['reference_atoms'] is not None:
            check_number('reference_atoms', p['reference_atoms'], integer=True, minimum=2)
        return p

    def score(self, prediction) -> float:
        f = relative_force_uncertainty(prediction.member_forces, self.parameters['eps'])
        return softmax_score(f, self.parameters['reference_atoms'])


class MaxRelativeTrigger(UncertaintyTrigger):
    """Stop when max_i f_i > tol (as ACEHAL's code does; ``tol`` > 0, default 0.3: a starting point to tune)."""

    key = 'max_relative'
    label = 'max relative force uncertainty'
    reason = 'trigger_max_relative'
    exit_status = 341
    exit_label = 'STOPPED_BY_FORCE_TRIGGER'
    message = 'Stopped by the relative force uncertainty trigger at a frame to label: {message}.'
    defaults: ClassVar[dict] = {'tol': 0.3, 'eps': 0.2}
    threshold_key = 'tol'
    unit = 'f_i, dimensionless'

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('tol', p['tol'])
        return p

    def score(self, prediction) -> float:
        return float(relative_force_uncertainty(prediction.member_forces, self.parameters['eps']).max())


class UncertaintyThresholdTrigger(Trigger):
    """Stop when UCE_F^max exceeds ``threshold`` (eV/A) for ``patience`` consecutive steps (module docstring).

    Give ``threshold``, or ``s`` for a loop to resolve against its test-set statistics (``s`` standard deviations
    above their mean UCE_F^max, as the acquisition's P(UCE) = 1/2). ``patience`` 1 stops at the first frame above.
    With ``exponent`` > 0 the threshold holds at ``reference_temperature`` (the loop fills in its test set's) and a
    run at T uses ``threshold (T / reference_temperature) ** exponent``: a frame of a hotter run is judged against
    the uncertainty of its own temperature (:func:`~aiida_anharmal.core.learning.probabilities.uncertainty_statistics_at`).
    """

    key = 'uncertainty'
    label = 'UCE_F^max above the test-set threshold'
    reason = 'trigger_uncertainty'
    exit_status = 343
    exit_label = 'STOPPED_BY_UNCERTAINTY_TRIGGER'
    message = 'Stopped by the uncertainty trigger at a frame to label: {message}.'
    unit = 'eV/A (UCE_F^max)'
    defaults: ClassVar[dict] = {
        'threshold': None,
        's': None,
        'patience': 3,
        'exponent': 0.0,
        'reference_temperature': None,
    }
    #: the statistic of the test set (:mod:`aiida_anharmal.core.models.evaluation`) that ``s`` is counted in
    statistic: ClassVar[str] = 'uce_force_max'

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        if p['threshold'] is not None:
            check_number('threshold', p['threshold'])
        if p['s'] is not None:
            s = p['s']
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s < np.inf:
                raise ValueError(f'`s` must be a non-negative number (standard deviations), not {s!r}')
        if (p['threshold'] is None) == (p['s'] is None):
            raise ValueError(
                'trigger `uncertainty` needs `threshold` (eV/A) or `s` (test-set standard deviations), one of them'
            )
        check_number('patience', p['patience'], integer=True)
        exponent = p['exponent']
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float)) or not 0 <= exponent <= 2:
            raise ValueError(f'`exponent` must be a number in [0, 2], not {exponent!r}')
        if p['reference_temperature'] is not None:
            check_number('reference_temperature', p['reference_temperature'])
        return p

    @classmethod
    def unresolved(cls, parameters: dict) -> str | None:
        if parameters.get('threshold') is None:
            return (
                'trigger `uncertainty` with only `s` is resolved by an active-learning loop against its test-set '
                'statistics; an MD run needs its `threshold` (eV/A)'
            )
        if parameters.get('exponent') and parameters.get('reference_temperature') is None:
            return 'trigger `uncertainty` with an `exponent` needs the `reference_temperature` of its threshold'
        return None

    @classmethod
    def resolve(cls, parameters: dict, statistics: dict, test_temperature: float | None = None) -> dict:
        """``threshold = mu + s sigma`` of the test set's UCE_F^max when ``s`` is given (the input of :func:`~aiida_anharmal.functions.acquisition.resolve_trigger` keeps ``s``)."""
        p = cls.validate(parameters)
        if p['exponent'] and p['reference_temperature'] is None and test_temperature is not None:
            p['reference_temperature'] = float(test_temperature)
        if p['s'] is None:
            return p
        stats = statistics.get(cls.statistic) or {}
        mean, std = stats.get('mean'), stats.get('std')
        if mean is None or std is None or not np.isfinite(mean + std):
            raise ValueError(f'the test-set statistics have no finite `{cls.statistic}` mean and std')
        threshold = float(mean + p['s'] * std)
        if not 0 < threshold < np.inf:
            raise ValueError(
                f'the test-set statistics give the trigger a threshold of {threshold} eV/A: no edge to stop at'
            )
        return {**p, 'threshold': threshold, 's': None}

    @classmethod
    def threshold_at(cls, parameters: dict, temperature: float | None = None) -> float | None:
        p = cls.validate(parameters)
        if cls.unresolved(p) or (p['exponent'] and temperature is None):
            return None
        if not p['exponent']:
            return float(p['threshold'])
        return float(p['threshold'] * (temperature / p['reference_temperature']) ** p['exponent'])

    def __init__(self, parameters: dict | None = None, target_temperature: float | None = None, harmonic=None):
        p = self.validate(parameters or {})
        message = self.unresolved(p)
        if message:
            raise ValueError(message)
        if p['exponent'] and target_temperature is None:
            raise ValueError('trigger `uncertainty` with an `exponent` needs the temperature of the run')
        super().__init__(self.threshold_at(p, target_temperature), target_temperature, harmonic)
        self.parameters = p
        self.above = 0  # consecutive steps above the threshold
        self.last_score = np.nan

    def check(self, atoms, prediction) -> str | None:
        self.last_score = float(prediction.uce_force_max)
        self.above = self.above + 1 if self.last_score > self.threshold else 0
        if self.above >= self.parameters['patience']:
            return (
                f'UCE_F^max {1000 * self.last_score:.1f} meV/A above {1000 * self.threshold:.1f} meV/A for '
                f'{self.above} step(s)'
            )
        return None

    def state(self) -> dict:
        return {'above': self.above}

    def restore(self, state: dict) -> None:
        self.above = int(state.get('above', 0))

    def summary(self) -> dict:
        return {**super().summary(), 'threshold': self.threshold, 'patience': self.parameters['patience']}
