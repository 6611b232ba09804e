"""When does active learning stop? A small strategy object (no AiiDA import).

Kang et al. stop when an iteration accepts no frame: the ensemble is then as sure of every
explored frame as of the test set. An empty selection from one short exploration can be luck,
so :class:`MaeAndSelection` also asks that the test-set force MAE has settled: its change
stayed below ``tolerance`` over the last ``patience`` iterations. (The reference code's
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
    """Converged when the last iteration selected nothing and the test MAE changed by less than
    ``tolerance`` (eV/A) in each of the last ``patience`` iterations; stop at ``max_iterations``."""

    key: ClassVar[str] = 'mae_and_selection'
    label: ClassVar[str] = 'no frame accepted and test force MAE settled'
    defaults: ClassVar[dict] = {'tolerance': 0.002, 'patience': 1}

    max_iterations: int
    tolerance: float = defaults['tolerance']
    patience: int = defaults['patience']

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('tolerance', p['tolerance'])
        check_number('patience', p['patience'], integer=True, minimum=0)
        return p

    def __post_init__(self):
        if self.max_iterations < 1:
            raise ValueError(f'max_iterations must be at least 1, not {self.max_iterations}')
        if not self.tolerance > 0:
            raise ValueError(f'the MAE tolerance must be positive, not {self.tolerance}')
        if self.patience < 0:
            raise ValueError(f'patience must be >= 0, not {self.patience}')

    def mae_changes(self, history: list[IterationRecord]) -> list[float]:
        maes = [r.test_forces_mae for r in history]
        return [abs(b - a) for a, b in itertools.pairwise(maes)]

    def __call__(self, history: list[IterationRecord]) -> Decision:
        if not history:
            raise ValueError('no iteration to judge')
        last = history[-1]
        changes = self.mae_changes(history)[-self.patience :] if self.patience else []
        settled = len(changes) == self.patience and all(math.isfinite(c) and c < self.tolerance for c in changes)
        if last.n_selected == 0 and settled:
            detail = (
                (
                    f'; test force MAE changed by {max(changes) * 1000:.2f} meV/A at most over the last '
                    f'{self.patience} iteration(s), below {self.tolerance * 1000:.2f}'
                )
                if changes
                else ''
            )
            return Decision(True, True, 'converged', f'iteration {last.iteration}: no frame accepted{detail}')
        if last.iteration >= self.max_iterations:
            why = (
                f'{last.n_selected} frame(s) still accepted'
                if last.n_selected
                else 'no frame accepted but the test force MAE has not settled'
            )
            return Decision(
                True, False, 'iteration_cap', f'iteration cap {self.max_iterations} reached, not converged: {why}'
            )
        if last.n_selected == 0:
            return Decision(
                False,
                False,
                'continue',
                'no frame accepted but the test force MAE has not settled over '
                f'{self.patience} iteration(s): explore again',
            )
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
