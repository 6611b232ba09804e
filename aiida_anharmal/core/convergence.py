"""When does active learning stop? A small strategy object (no AiiDA import).

Kang et al. stop when an iteration accepts no frame: the ensemble is then as sure of every
explored frame as of the test set. An empty selection from one short exploration can be luck,
so :class:`MaeAndSelection` also asks that the test-set force MAE has settled: its change
stayed below ``tolerance`` over the last ``patience`` iterations. (The reference code's
tolerance of 1e-7 never fires; SCIENCE.md section 2.) The iteration cap ends the loop too, and
the decision says which rule ended it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


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


@dataclass(frozen=True)
class MaeAndSelection:
    """Converged when the last iteration selected nothing and the test MAE changed by less than
    ``tolerance`` (eV/A) in each of the last ``patience`` iterations; stop at ``max_iterations``."""

    max_iterations: int
    tolerance: float = 0.002
    patience: int = 1

    def __post_init__(self):
        if self.max_iterations < 1:
            raise ValueError(f'max_iterations must be at least 1, not {self.max_iterations}')
        if not self.tolerance > 0:
            raise ValueError(f'the MAE tolerance must be positive, not {self.tolerance}')
        if self.patience < 0:
            raise ValueError(f'patience must be >= 0, not {self.patience}')

    def mae_changes(self, history: list[IterationRecord]) -> list[float]:
        maes = [r.test_forces_mae for r in history]
        return [abs(b - a) for a, b in zip(maes[:-1], maes[1:])]

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
