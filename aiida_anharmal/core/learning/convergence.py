"""When does active learning stop? A small strategy object (no AiiDA import).

Kang et al. stop when an iteration accepts no frame: the ensemble is then as sure of every
explored frame as of the test set. But frames *like* the test set are accepted too: P(UCE) is
1/2 at mu + s sigma of the test set, and a test-like spread puts a few percent of its frames near
there, so an exploration of 80 frames by an ensemble that knows them all still accepts a few,
and the paper's rule never fires. So :class:`MaeAndSelection` counts *quiet* explorations: runs
that ended normally and whose frames' mean P(UCE) is no larger than that of any spread with the
test set's mean and std can be (Cantelli's inequality, :func:`~aiida_anharmal.core.learning.acquisition.tail_bound`:
0.216 at s = 2, g = 1). It asks for ``quiet_explorations`` of them in a row (each from fresh
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

from ..registry import Registry, Strategy, check_number


@dataclass(frozen=True)
class RunRecord:
    """What the criterion reads of one exploration run: its frames, their mean P(UCE) (``None``: the
    acquisition kind has no threshold), how many were accepted, whether it ran to its end."""

    frames: int
    p_uncertainty_mean: float | None
    accepted: int
    ended_normally: bool = True
    temperature: float | None = None  # K, of the run (None: not recorded)

    def quiet(self, limit: float) -> bool:
        """Ran to its end, and the mean P(UCE) of its frames is at most ``limit``."""
        return (
            self.ended_normally
            and self.frames > 0
            and self.p_uncertainty_mean is not None
            and self.p_uncertainty_mean <= limit
        )


@dataclass(frozen=True)
class IterationRecord:
    """What the criterion reads of one finished iteration."""

    iteration: int
    test_forces_mae: float  # eV/A, of the ensemble trained in this iteration
    n_selected: int
    ensemble: str | None = None  # identity of the iteration's ensemble (None: every iteration retrained)
    error_over_uncertainty: float | None = None  # test set: mean max force error / mean UCE_F^max
    runs: tuple[RunRecord, ...] = ()  # its exploration runs (empty: one run, quiet if nothing was selected)
    tail_bound: float | None = None  # the largest mean P(UCE) of frames like the test set (acquisition.tail_bound)
    a_priori_frames: int = 0  # frames added from outside the explorations (``neb.acquire``: uncertain path images)


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


CONVERGENCE_RULES: Registry[type[ConvergenceRule]] = Registry('convergence rule', group='anharmal.convergence')
DEFAULT_RULE = 'mae_and_selection'


@dataclass(frozen=True)
class MaeAndSelection(ConvergenceRule):
    """Converged when the last ``quiet_explorations`` exploration runs were quiet, the ensemble that explored
    was retrained and its test force MAE changed by less than ``tolerance`` (eV/A) in each of the last
    ``patience`` retrainings, and its uncertainty is not far below its error: on the test set, mean max
    force error over mean UCE_F^max at most ``max_error_over_uncertainty``. Stop at ``max_iterations``.

    A run is quiet when it ran to its end (no guard or stop trigger) and the mean P(UCE) of its frames
    is at most ``max_mean_p_uncertainty`` (``None``: the acquisition's ``tail_bound``, the most that frames
    with the test set's mean and std of the uncertainty can reach, whatever their distribution;
    P(U) is left out, so that high-energy frames of a broken crystal are not quiet). Physically: the
    ensemble, explored at the loop's temperature in independent runs (fresh Maxwell-Boltzmann
    velocities and thermostat seeds, each as long as the protocol's exploration), finds nothing it is less sure of than of the test set; further data no longer change
    its accuracy; and "as sure as of the test set" means something because its uncertainty tracks its
    error there. An over-confident ensemble (error 100x its UCE) accepts nothing because its thresholds
    are too small, not because it knows: that is never convergence. Iterations that reused an ensemble
    (nothing was selected before them) are no evidence that the MAE settled: changes are counted between
    successive *different* ensembles only.
    """

    key: ClassVar[str] = 'mae_and_selection'
    label: ClassVar[str] = 'quiet explorations, test force MAE settled, uncertainty calibrated'
    defaults: ClassVar[dict] = {
        'tolerance': 0.002,
        'patience': 1,
        'max_error_over_uncertainty': 3.0,
        'quiet_explorations': 2,
        'max_mean_p_uncertainty': None,
    }

    max_iterations: int
    tolerance: float = defaults['tolerance']
    patience: int = defaults['patience']
    max_error_over_uncertainty: float | None = defaults['max_error_over_uncertainty']
    quiet_explorations: int = defaults['quiet_explorations']
    max_mean_p_uncertainty: float | None = defaults['max_mean_p_uncertainty']

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('tolerance', p['tolerance'])
        check_number('patience', p['patience'], integer=True, minimum=0)
        check_number('quiet_explorations', p['quiet_explorations'], integer=True, minimum=1)
        for key in ('max_error_over_uncertainty', 'max_mean_p_uncertainty'):
            if p[key] is not None:
                check_number(key, p[key])
        limit = p['max_mean_p_uncertainty']
        if limit is not None and not 0 < limit < 1:
            raise ValueError(f'max_mean_p_uncertainty must lie in (0, 1), not {limit}')
        return p

    def __post_init__(self):
        if self.max_iterations < 1:
            raise ValueError(f'max_iterations must be at least 1, not {self.max_iterations}')
        if not self.tolerance > 0:
            raise ValueError(f'the MAE tolerance must be positive, not {self.tolerance}')
        if self.patience < 0:
            raise ValueError(f'patience must be >= 0, not {self.patience}')
        if self.quiet_explorations < 1:
            raise ValueError(f'quiet_explorations must be >= 1, not {self.quiet_explorations}')

    def mae_changes(self, history: list[IterationRecord]) -> list[float]:
        """Changes of the test MAE between successive different ensembles (a reused one repeats its MAE)."""
        distinct = [
            r for k, r in enumerate(history) if k == 0 or r.ensemble is None or r.ensemble != history[k - 1].ensemble
        ]
        maes = [r.test_forces_mae for r in distinct]
        return [abs(b - a) for a, b in itertools.pairwise(maes)]

    def tail_limit(self, record: IterationRecord) -> float:
        """The largest mean P(UCE) of a quiet run: ``max_mean_p_uncertainty`` or the acquisition's bound (0 without)."""
        if self.max_mean_p_uncertainty is not None:
            return self.max_mean_p_uncertainty
        return 0.0 if record.tail_bound is None else record.tail_bound

    def quiet_runs(self, record: IterationRecord) -> tuple[int, int]:
        """(quiet runs, runs) of one iteration; a record without runs is one run, quiet if nothing was selected."""
        if not record.runs:
            return int(record.n_selected == 0), 1
        limit = self.tail_limit(record)
        return sum(run.quiet(limit) for run in record.runs), len(record.runs)

    def quiet_streak(self, history: list[IterationRecord]) -> int:
        """How many of the last exploration runs were quiet, counting back over iterations whose runs all were."""
        count = 0
        for record in reversed(history):
            quiet, total = self.quiet_runs(record)
            if quiet < total:
                break
            count += total
        return count

    def _blocker(self, history: list[IterationRecord]) -> str | None:
        """Why a quiet iteration is not convergence, or ``None``."""
        last = history[-1]
        quiet = self.quiet_streak(history)
        if quiet < self.quiet_explorations:
            return f'{quiet} of {self.quiet_explorations} quiet explorations in a row (fresh velocities each)'
        ratio, limit = last.error_over_uncertainty, self.max_error_over_uncertainty
        if limit is not None and ratio is not None and math.isfinite(ratio) and ratio > limit:
            return (
                f'the ensemble is over-confident: its test-set force error is {ratio:.1f} x its UCE_F^max '
                f'(limit {limit:g}), so a quiet exploration says nothing'
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

    def _noisy(self, record: IterationRecord, still: bool = False) -> str:
        """What made an iteration's exploration not quiet."""
        accepted = f'{record.n_selected} frame(s) {"still " if still else ""}accepted'
        if not record.runs:
            return accepted
        limit = self.tail_limit(record)
        loud = [run for run in record.runs if not run.quiet(limit)]
        guarded = sum(not run.ended_normally for run in loud)
        means = [f'{run.p_uncertainty_mean:.2f}' for run in loud if run.ended_normally and run.p_uncertainty_mean]
        parts = [accepted]
        if means:
            parts.append(f'mean P(UCE) of the runs {", ".join(means)} (like the test set: at most {limit:.2f})')
        if guarded:
            parts.append(f'{guarded} run(s) ended by a guard or stop trigger')
        return '; '.join(parts)

    def __call__(self, history: list[IterationRecord]) -> Decision:
        if not history:
            raise ValueError('no iteration to judge')
        last = history[-1]
        quiet, total = self.quiet_runs(last)
        blocker = self._blocker(history) if quiet == total else None
        if blocker is None and quiet == total and last.a_priori_frames:
            # the ensemble that explored was not trained on what was just added: the next one must be judged
            blocker = f'{last.a_priori_frames} uncertain NEB image(s) were added to the training set (neb.acquire)'
        if quiet == total and blocker is None:
            changes = self.mae_changes(history)[-self.patience :] if self.patience else []
            detail = (
                f'; test force MAE changed by {max(changes) * 1000:.2f} meV/A at most over the last '
                f'{self.patience} retraining(s), below {self.tolerance * 1000:.2f}'
                if changes
                else ''
            )
            streak = self.quiet_streak(history)
            if not last.runs:
                where = 'no frame accepted' if streak == 1 else f'no frame accepted in {streak} explorations in a row'
            else:
                where = f'{streak} quiet explorations in a row ({last.n_selected} frame(s) accepted in the last)'
            return Decision(True, True, 'converged', f'iteration {last.iteration}: {where}{detail}')
        if last.iteration >= self.max_iterations:
            why = f'quiet but {blocker}' if quiet == total else self._noisy(last, still=True)
            return Decision(
                True, False, 'iteration_cap', f'iteration cap {self.max_iterations} reached, not converged: {why}'
            )
        if quiet == total:
            return Decision(False, False, 'continue', f'quiet but {blocker}: explore again')
        return Decision(False, False, 'continue', self._noisy(last))


@dataclass(frozen=True)
class QuietLadder(MaeAndSelection):
    """:class:`MaeAndSelection`, and the quiet explorations must cover a temperature ladder: the last
    ``quiet_iterations`` iterations each had every run quiet (ran its full length, no stop trigger or guard, its
    frames no less known than the test set), and those runs span at least ``min_temperatures`` temperatures.

    Why: a rare event (CuI's Frenkel pair, barrier 0.7 eV) is not met in a ps at the target temperature, so quiet
    runs there say nothing about it: a potential with a fictitious defect minimum 0.5 eV too low explores 1 ps at
    300 K as quietly as a right one. Hotter rungs of the ladder reach the event's neighbourhood within the run
    (measured: benchmarks/results/cui_rare_event_reach_*.md); when they too run their full length without the
    ensemble becoming unsure, the path is known as well as the crystal. Runs whose temperature was not recorded
    count as one temperature when no run's was, and not at all beside recorded ones.
    """

    key: ClassVar[str] = 'quiet_ladder'
    label: ClassVar[str] = 'every run of the temperature ladder quiet, test force MAE settled, uncertainty calibrated'
    defaults: ClassVar[dict] = {**MaeAndSelection.defaults, 'quiet_iterations': 1, 'min_temperatures': 2}

    quiet_iterations: int = defaults['quiet_iterations']
    min_temperatures: int = defaults['min_temperatures']

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('quiet_iterations', p['quiet_iterations'], integer=True, minimum=1)
        check_number('min_temperatures', p['min_temperatures'], integer=True, minimum=1)
        return p

    def _blocker(self, history: list[IterationRecord]) -> str | None:
        recent = history[-self.quiet_iterations :]
        loud = [r.iteration for r in recent if self.quiet_runs(r)[0] < self.quiet_runs(r)[1]]
        if len(recent) < self.quiet_iterations or loud:
            return f'{self.quiet_iterations} iteration(s) in a row with every run quiet needed'
        recorded = {run.temperature for r in recent for run in r.runs}
        known = sorted(t for t in recorded if t is not None)
        count = len(known) or int(bool(recorded))  # runs whose temperature was not recorded count as one
        if count < self.min_temperatures:
            shown = ', '.join(f'{t:g} K' for t in known) or 'unrecorded'
            return (
                f'the quiet runs explored {count} temperature(s) ({shown}), fewer than '
                f'{self.min_temperatures}: no evidence about events beyond the reach of one temperature'
            )
        return super()._blocker(history)


def history_from_rows(rows: list[dict], ensembles: list | None = None) -> list[IterationRecord]:
    """The history a rule reads, from the rows of the loop's summary table (its ``summary`` output) and, per row,
    the identity of the iteration's ensemble (``None``: every iteration retrained)."""
    history = []
    for k, r in enumerate(rows):
        mae = r['test_forces_mae']
        runs = tuple(
            RunRecord(
                run['frames'], run['p_uncertainty_mean'], run['accepted'], run['ended_normally'], run.get('temperature')
            )
            for run in r.get('runs', [])
        )
        history.append(
            IterationRecord(
                r['iteration'],
                math.nan if mae is None else mae,
                r['selected'],
                ensemble=None if ensembles is None else ensembles[k],
                error_over_uncertainty=r['test_error_over_uncertainty'],
                runs=runs,
                tail_bound=r.get('tail_bound'),
                a_priori_frames=r.get('neb_images', 0),
            )
        )
    return history


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
