"""What stops an MD run early: guards (the dynamics left trustworthy ground) and stop triggers.

Every stop rule is a small class registered by key. A **guard** ends a run that went wrong (atoms
too close, forces or uncertainty too large, temperature runaway, non-finite numbers); a **stop
trigger** (registry :data:`TRIGGERS`, filled by hyperactive learning and the Bayesian
force-constant model) ends a run because its current frame should be labelled. Both are checked
after every MD step on the atoms and the ensemble prediction; the one that fires names the state
the program writes (``reason``), and the calculation maps that state to the rule's exit code
(guards 320-329, triggers 340-349). The frame that fired is saved: it says what went wrong.

A guard's parameter is one threshold under its ``key`` in the MD calculation's ``guards`` input
(``null`` switches it off); a trigger (:mod:`aiida_anharmal.core.triggers`) has parameters of its own
and is chosen by the calculation's ``trigger`` input. To add a guard: subclass :class:`Guard` with ``key``, ``reason``,
``exit_status``, ``exit_label``, ``message``, ``default``, ``unit``, ``label`` and ``check``, decorate
it with ``@GUARDS.register``, and test it; the calculation, parser, restart workchain, protocols
and docs read it from here. No AiiDA import.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .registry import Registry, Strategy, check_number


class StopRule(Strategy):
    """Base of guards and triggers: one threshold, one check, one exit code."""

    #: State written to ``status.json`` when the rule stops the run.
    reason: ClassVar[str] = ''
    #: Exit code of the calculation the rule stopped (status, label, message with ``{message}``).
    exit_status: ClassVar[int] = 0
    exit_label: ClassVar[str] = ''
    message: ClassVar[str] = ''
    #: Default threshold (``None``: off unless asked for); its unit, for help texts.
    default: ClassVar[float | None] = None
    unit: ClassVar[str] = ''
    #: Always on, no threshold (not settable in the inputs).
    always: ClassVar[bool] = False
    #: Needs the harmonic reference of the run (the MD calculation refuses the threshold without one).
    needs_harmonic: ClassVar[bool] = False

    def __init__(self, threshold: float | None = None, target_temperature: float | None = None, harmonic=None):
        self.threshold = self.default if threshold is None else float(threshold)
        self.target_temperature = target_temperature
        self.harmonic = harmonic

    @classmethod
    def check_threshold(cls, value) -> None:
        """Raise :class:`ValueError` unless ``value`` is a usable threshold (``None`` switches the rule off)."""
        if value is not None:
            check_number(f'guards.{cls.key}', value)

    def check(self, atoms, prediction) -> str | None:
        """A message if the run must stop at this frame, else ``None``."""
        raise NotImplementedError


class Guard(StopRule):
    """A stop rule that ends a run gone wrong (exit codes 320-329)."""


class Trigger(StopRule):
    """A stop rule that ends a run at a frame to label (exit codes 340-349).

    A trigger with a running state keeps it in the MD checkpoint (:meth:`state`, :meth:`restore`); the
    continuation of a run it stopped shows it the stop frame's new prediction (:meth:`resume`, e.g. under
    a refitted model). With ``refit`` set (a callable of the atoms), the run does not stop: the MD loop
    calls ``refit``, recomputes the frame's forces and goes on, as the continuation would.
    """

    refit = None
    #: what the trigger reads of a frame: ``ensemble`` (a committee's prediction) or ``bayesian`` (the eps_B of a
    #: Bayesian force-constant model, :mod:`aiida_anharmal.core.dynamic_training`)
    prediction_kind: ClassVar[str] = 'ensemble'

    @classmethod
    def unresolved(cls, parameters: dict) -> str | None:
        """Why checked ``parameters`` cannot run yet (a value a loop fills in, see :meth:`resolve`), else ``None``."""
        return None

    @classmethod
    def resolve(cls, parameters: dict, statistics: dict, test_temperature: float | None = None) -> dict:
        """``parameters`` with what an active-learning loop fills in from its test-set ``statistics`` and the test
        set's temperature (none here)."""
        return dict(parameters)

    @classmethod
    def threshold_at(cls, parameters: dict, temperature: float | None = None) -> float | None:
        """The threshold that a run at ``temperature`` with these parameters compares its score with (for plots),
        ``None`` where the trigger has no single one or it is not resolved yet."""
        return None

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        """Back to a checkpoint's :meth:`state`."""

    def resume(self, prediction) -> None:
        """A continuation starts: ``prediction`` is the checkpoint frame's, with the current model."""

    def summary(self) -> dict:
        """What the run's status records of the trigger at its end (its kind, the last score)."""
        return {'kind': self.key, 'score': float(getattr(self, 'last_score', np.nan))}


GUARDS: Registry[type[Guard]] = Registry('MD guard')
TRIGGERS: Registry[type[Trigger]] = Registry('MD stop trigger')


@GUARDS.register
class FiniteGuard(Guard):
    """Stop on NaN or infinite energy, forces or positions (always on)."""

    key = 'not_finite'
    label = 'not finite'
    reason = 'not_finite'
    exit_status = 324
    exit_label = 'ERROR_NOT_FINITE'
    message = 'Stopped: {message}.'
    always = True

    def check(self, atoms, prediction) -> str | None:
        finite = np.isfinite(prediction.energy) and np.isfinite(prediction.forces).all()
        if not (finite and np.isfinite(atoms.positions).all()):
            return 'energy, forces or positions are not finite'
        return None


@GUARDS.register
class MinDistanceGuard(Guard):
    """Stop when two atoms (periodic images included) come closer than the threshold."""

    key = 'min_distance'
    label = 'atoms too close'
    reason = 'atoms_too_close'
    exit_status = 320
    exit_label = 'ERROR_ATOMS_TOO_CLOSE'
    message = 'Stopped by the distance guard: {message}.'
    default = 0.5
    unit = 'A'

    def check(self, atoms, prediction) -> str | None:
        try:  # matscipy (a nequip dependency) is ~50x faster than ASE's Python neighbour list
            from matscipy.neighbours import neighbour_list
        except ImportError:  # pragma: no cover
            from ase.neighborlist import neighbor_list as neighbour_list
        i, j, d = neighbour_list('ijd', atoms, self.threshold)
        if len(d):
            k = int(np.argmin(d))
            return f'atoms {i[k]} and {j[k]} are {d[k]:.3f} A apart (threshold {self.threshold} A)'
        return None


@GUARDS.register
class ForceCapGuard(Guard):
    """Stop when a mean force exceeds the threshold."""

    key = 'max_force'
    label = 'force too large'
    reason = 'force_too_large'
    exit_status = 321
    exit_label = 'ERROR_FORCE_TOO_LARGE'
    message = 'Stopped by the force guard: {message}.'
    default = 20.0
    unit = 'eV/A'

    def check(self, atoms, prediction) -> str | None:
        f = float(np.linalg.norm(prediction.forces, axis=1).max())
        if f > self.threshold:
            return f'|F| = {f:.2f} eV/A exceeds {self.threshold} eV/A'
        return None


@GUARDS.register
class UncertaintyCapGuard(Guard):
    """Stop when UCE_F^max exceeds the threshold (the ensemble no longer knows where it is)."""

    key = 'max_uncertainty'
    label = 'uncertainty too large'
    reason = 'uncertainty_too_large'
    exit_status = 322
    exit_label = 'ERROR_UNCERTAINTY_TOO_LARGE'
    message = 'Stopped by the uncertainty guard: {message}.'
    default = 2.0
    unit = 'eV/A (UCE_F^max)'

    def check(self, atoms, prediction) -> str | None:
        u = prediction.uce_force_max
        if u > self.threshold:
            return f'UCE_F^max = {u:.3f} eV/A exceeds {self.threshold} eV/A'
        return None


@GUARDS.register
class TemperatureGuard(Guard):
    """Stop when the instantaneous temperature exceeds the threshold times the target temperature."""

    key = 'temperature_factor'
    label = 'temperature runaway'
    reason = 'temperature_runaway'
    exit_status = 323
    exit_label = 'ERROR_TEMPERATURE_RUNAWAY'
    message = 'Stopped by the temperature guard: {message}.'
    default = 3.0
    unit = 'x the target temperature'

    def check(self, atoms, prediction) -> str | None:
        t = atoms.get_temperature()
        if t > self.threshold * self.target_temperature:
            return f'temperature {t:.0f} K exceeds {self.threshold} x {self.target_temperature} K'
        return None


@GUARDS.register
class AnharmonicityGuard(Guard):
    """Stop when the degree of anharmonicity A of the frame (ensemble-mean forces against the harmonic
    reference) exceeds the threshold: the crystal has left the region the harmonic reference describes.

    For scale (docs/source/science.rst, section 3): A is ~0.4 for CuI at 300 K, and a jump from 0.5 to
    1.2 marks a defect (Kang et al., Fig. 6); a broken crystal reaches 2-5.
    """

    key = 'max_anharmonicity'
    label = 'anharmonicity too large'
    reason = 'anharmonicity_too_large'
    exit_status = 325
    exit_label = 'ERROR_ANHARMONICITY_TOO_LARGE'
    message = 'Stopped by the anharmonicity guard: {message}.'
    default = None  # off unless asked for: it needs the harmonic reference
    unit = 'A, dimensionless'
    needs_harmonic = True

    def check(self, atoms, prediction) -> str | None:
        a = float(self.harmonic.a_per_frame(atoms.positions[None], np.asarray(prediction.forces)[None])[0])
        if a > self.threshold:
            return f'A = {a:.2f} exceeds {self.threshold}'
        return None


def stop_rules() -> list[type[StopRule]]:
    """Every registered guard and trigger."""
    return [*GUARDS, *TRIGGERS]


def settable_rules() -> dict[str, type[StopRule]]:
    """Guards with a threshold in the ``guards`` input, by key (triggers have a ``trigger`` input of their own)."""
    return {rule.key: rule for rule in GUARDS if not rule.always}


def guard_defaults() -> dict[str, float | None]:
    """The default threshold of every settable rule (``None``: off by default)."""
    return {key: rule.default for key, rule in settable_rules().items()}


def check_guard_settings(settings: dict) -> dict:
    """``settings`` (key -> threshold or ``None``) checked, with the defaults filled in."""
    rules = settable_rules()
    unknown = sorted(set(settings) - set(rules))
    if unknown:
        raise ValueError(f'unknown `guards` key(s) {unknown}; allowed: {sorted(rules)}')
    for key, value in settings.items():
        try:
            rules[key].check_threshold(value)
        except ValueError:
            raise ValueError(f'guard `{key}` must be positive or null (off), not {value!r}') from None
    return {**guard_defaults(), **settings}


def needing_harmonic(settings: dict) -> list[str]:
    """The keys of ``settings`` (checked) that switch on a rule needing the harmonic reference."""
    thresholds = check_guard_settings(settings)
    return [key for key, rule in settable_rules().items() if rule.needs_harmonic and thresholds[key] is not None]


def build_stop_rules(settings: dict, target_temperature: float, harmonic=None, trigger=None) -> list[StopRule]:
    """The rules of one run: every always-on guard, each settable one whose threshold is not ``None``, and the
    ``trigger`` (settings of :func:`aiida_anharmal.core.triggers.build_trigger`) after them."""
    from .triggers import build_trigger

    thresholds = check_guard_settings(settings)
    if harmonic is None and needing_harmonic(settings):
        raise ValueError(f'guard(s) {needing_harmonic(settings)} need the harmonic reference of the run')
    rules = []
    for rule in GUARDS:
        if rule.always:
            rules.append(rule(None, target_temperature, harmonic))
        elif thresholds[rule.key] is not None:
            rules.append(rule(thresholds[rule.key], target_temperature, harmonic))
    built = build_trigger(trigger, target_temperature)
    return rules if built is None else [*rules, built]


from . import dynamic_training as _dynamic_training  # noqa: F401  (registers the retrain trigger)
from . import triggers as _triggers  # noqa: F401  (registers the triggers)
