"""When does active learning stop? A small strategy object (no AiiDA import).

Kang et al. stop when an iteration accepts no frame: the ensemble is then as sure of every
explored frame as of the test set. An empty selection from one short exploration can be luck,
so :class:`MaeAndSelection` asks for ``empty_explorations`` of them in a row (each from fresh
velocities and seeds) and that the test-set force MAE has settled: its change stayed below
``tolerance`` over the last ``patience`` retrainings. (The reference code's
tolerance of 1e-7 never fires; docs/source/science.rst, section 2.) The iteration cap ends the loop too, and
the decision says which rule ended it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import ClassVar

from .registry import Registry, Strategy, check_number


@dataclass(frozen=True)
class IterationRecord:
    """What the criterion reads of one finished iteration."""

    iteration: int
    test_forces_mae: float  # eV/A, of the ensemble trained in this iteration
    n_selected: int
    ensemble: str | None = None  # identity of the iteration's ensemble (None: every iteration retrained)
    error_over_uncertainty: float | None = None  # test set: mean max force error / mean UCE_F^max


@dataclass(frozen=True)
class Decision:
    stop: bool
    converged: bool
    reason: str  # 'converged' | 'iteration_cap' | 'continue'
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


class ConvergenceRule(Strategy):
    """Base of the stopping rules (registry :data:`CONVERGENCE_RULES`): ``rule(history) -> Decision``.

    Built with the loop's ``max_iterations`` and the rule's own parameters (``defaults``).
    """

    def __call__(self, history: list[IterationRecord]) -> Decision:
        raise NotImplementedError


CONVERGENCE_RULES: Registry[type[ConvergenceRule]] = Registry('convergence rule')
DEFAULT_RULE = 'mae_and_selection'


@CONVERGENCE_RULES.register
@dataclass(frozen=True)
class MaeAndSelection(ConvergenceRule):
    """Converged when the last ``empty_explorations`` explorations accepted no frame, the ensemble that explored was retrained and
    its test force MAE changed by less than ``tolerance`` (eV/A) in each of the last ``patience``
    retrainings, and its uncertainty is not far below its error: on the test set, mean max force error
    over mean UCE_F^max at most ``max_error_over_uncertainty``. Stop at ``max_iterations``.

    Physically: the ensemble, explored at the loop's temperature in ``empty_explorations`` independent
    runs (fresh Maxwell-Boltzmann velocities and thermostat seeds, each as long as the protocol's
    exploration), is as sure of every new frame as of the test set, further data no longer change its accuracy, and "as sure as of the test set" means
    something because its uncertainty tracks its error there. An over-confident ensemble (error 100x
    its UCE) accepts nothing because its thresholds are too small, not because it knows: that is never
    convergence. Iterations that reused an ensemble (nothing was selected before them) are no evidence
    that the MAE settled: changes are counted between successive *different* ensembles only.
    """

    key: ClassVar[str] = 'mae_and_selection'
    label: ClassVar[str] = 'no frame accepted, test force MAE settled, uncertainty calibrated'
    defaults: ClassVar[dict] = {
        'tolerance': 0.002,
        'patience': 1,
        'max_error_over_uncertainty': 3.0,
        'empty_explorations': 2,
    }

    max_iterations: int
    tolerance: float = defaults['tolerance']
    patience: int = defaults['patience']
    max_error_over_uncertainty: float | None = defaults['max_error_over_uncertainty']
    empty_explorations: int = defaults['empty_explorations']

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('tolerance', p['tolerance'])
        check_number('patience', p['patience'], integer=True, minimum=0)
        check_number('empty_explorations', p['empty_explorations'], integer=True, minimum=1)
        if p['max_error_over_uncertainty'] is not None:
            check_number('max_error_over_uncertainty', p['max_error_over_uncertainty'])
        return p

    def __post_init__(self):
        if self.max_iterations < 1:
            raise ValueError(f'max_iterations must be at least 1, not {self.max_iterations}')
        if not self.tolerance > 0:
            raise ValueError(f'the MAE tolerance must be positive, not {self.tolerance}')
        if self.patience < 0:
            raise ValueError(f'patience must be >= 0, not {self.patience}')
        if self.empty_explorations < 1:
            raise ValueError(f'empty_explorations must be >= 1, not {self.empty_explorations}')

    def mae_changes(self, history: list[IterationRecord]) -> list[float]:
        """Changes of the test MAE between successive different ensembles (a reused one repeats its MAE)."""
        distinct = [
            r for k, r in enumerate(history) if k == 0 or r.ensemble is None or r.ensemble != history[k - 1].ensemble
        ]
        maes = [r.test_forces_mae for r in distinct]
        return [abs(b - a) for a, b in itertools.pairwise(maes)]

    @staticmethod
    def empty_run(history: list[IterationRecord]) -> int:
        """How many of the last explorations in a row accepted nothing."""
        count = 0
        for record in reversed(history):
            if record.n_selected:
                break
            count += 1
        return count

    def _blocker(self, history: list[IterationRecord]) -> str | None:
        """Why an iteration that accepted nothing is not convergence, or ``None``."""
        last = history[-1]
        empty = self.empty_run(history)
        if empty < self.empty_explorations:
            return (
                f'{empty} of {self.empty_explorations} explorations in a row without an accepted frame '
                '(fresh velocities each)'
            )
        ratio, limit = last.error_over_uncertainty, self.max_error_over_uncertainty
        if limit is not None and ratio is not None and math.isfinite(ratio) and ratio > limit:
            return (
                f'the ensemble is over-confident: its test-set force error is {ratio:.1f} x its UCE_F^max '
                f'(limit {limit:g}), so an empty selection says nothing'
            )
        reused = len(history) > 1 and last.ensemble is not None and last.ensemble == history[-2].ensemble
        changes = self.mae_changes(history)[-self.patience :] if self.patience else []
        if len(changes) < self.patience:
            return 'the test force MAE has not settled: ' + (
                'the ensemble was not retrained since the last frames were added'
                if reused
                else f'fewer than {self.patience} retraining(s) to compare'
            )
        if not all(math.isfinite(c) and c < self.tolerance for c in changes):
            return (
                f'the test force MAE has not settled: it changed by {max(changes) * 1000:.2f} meV/A, '
                f'tolerance {self.tolerance * 1000:.2f}'
            )
        return None

    def __call__(self, history: list[IterationRecord]) -> Decision:
        if not history:
            raise ValueError('no iteration to judge')
        last = history[-1]
        blocker = self._blocker(history) if last.n_selected == 0 else None
        if last.n_selected == 0 and blocker is None:
            changes = self.mae_changes(history)[-self.patience :] if self.patience else []
            detail = (
                (
                    f'; test force MAE changed by {max(changes) * 1000:.2f} meV/A at most over the last '
                    f'{self.patience} retraining(s), below {self.tolerance * 1000:.2f}'
                )
                if changes
                else ''
            )
            runs = self.empty_run(history)
            where = 'no frame accepted' if runs == 1 else f'no frame accepted in {runs} explorations in a row'
            return Decision(True, True, 'converged', f'iteration {last.iteration}: {where}{detail}')
        if last.iteration >= self.max_iterations:
            why = (
                f'{last.n_selected} frame(s) still accepted' if last.n_selected else f'no frame accepted but {blocker}'
            )
            return Decision(
                True, False, 'iteration_cap', f'iteration cap {self.max_iterations} reached, not converged: {why}'
            )
        if last.n_selected == 0:
            return Decision(False, False, 'continue', f'no frame accepted but {blocker}: explore again')
        return Decision(False, False, 'continue', f'{last.n_selected} frame(s) accepted')


def with_defaults(parameters: dict) -> dict:
    """``parameters`` over the defaults of their rule (unchecked; the default rule is implied, not added)."""
    key = parameters.get('rule', DEFAULT_RULE)
    return {**(CONVERGENCE_RULES.get(key).defaults if key in CONVERGENCE_RULES else {}), **parameters}


def check_convergence_parameters(parameters: dict) -> dict:
    """``rule`` (default :data:`DEFAULT_RULE`) and the rule's parameters, checked, defaults filled in."""
    key = parameters.get('rule', DEFAULT_RULE)
    rule = CONVERGENCE_RULES.get(key)
    own = {k: v for k, v in parameters.items() if k != 'rule'}
    unknown = sorted(set(own) - set(rule.defaults))
    if unknown:
        raise ValueError(f'unknown convergence parameter(s) {unknown}; known: {sorted({"rule", *rule.defaults})}')
    return {'rule': key, **rule.validate(own)}


def make_rule(parameters: dict, max_iterations: int) -> ConvergenceRule:
    """The rule named by checked ``parameters``, for a loop of at most ``max_iterations``."""
    p = dict(parameters)
    return CONVERGENCE_RULES.get(p.pop('rule'))(max_iterations=max_iterations, **p)
