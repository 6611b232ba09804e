"""What stops an MD run early: guards (the dynamics left trustworthy ground) and stop triggers.

Every stop rule is a small class registered by key. A **guard** ends a run that went wrong (atoms
too close, forces or uncertainty too large, temperature runaway, non-finite numbers); a **stop
trigger** (registry :data:`TRIGGERS`: hyperactive learning's, the uncertainty edge's and the Bayesian
force-constant model's) ends a run because its current frame should be labelled. Both are checked
after every MD step on the atoms and the ensemble prediction; the one that fires names the state
the program writes (``reason``), and the calculation maps that state to the rule's exit code
(guards 320-329, triggers 340-349). The frame that fired is saved: it says what went wrong.

A guard's parameter is one threshold under its ``key`` in the MD calculation's ``guards`` input
(``null`` switches it off); a trigger (:mod:`aiida_anharmal.core.md.triggers`) has parameters of its own
and is chosen by the calculation's ``trigger`` input. To add a guard: subclass :class:`Guard` with ``key``, ``reason``,
``exit_status``, ``exit_label``, ``message``, ``default``, ``unit``, ``label`` and ``check``, name it under the
entry-point group ``anharmal.md.stop_rules`` (its key as the name), and test it; the calculation, parser, restart workchain, protocols
and docs read it from here. No AiiDA import.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..registry import Registry, Strategy, check_number


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
    #: Bayesian force-constant model, :mod:`aiida_anharmal.core.bayesian.dynamic_training`)
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


GUARDS: Registry[type[Guard]] = Registry('MD guard', group='anharmal.md.stop_rules', base=Guard)
TRIGGERS: Registry[type[Trigger]] = Registry('MD stop trigger', group='anharmal.md.stop_rules', base=Trigger)


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
    ``trigger`` (settings of :func:`aiida_anharmal.core.md.triggers.build_trigger`) after them."""
    thresholds = check_guard_settings(settings)
    if harmonic is None and needing_harmonic(settings):
        raise ValueError(f'guard(s) {needing_harmonic(settings)} need the harmonic reference of the run')
    rules = []
    for rule in sorted(GUARDS, key=lambda rule: not rule.always):  # always-on guards (not finite) first
        if rule.always:
            rules.append(rule(None, target_temperature, harmonic))
        elif thresholds[rule.key] is not None:
            rules.append(rule(thresholds[rule.key], target_temperature, harmonic))
    built = build_trigger(trigger, target_temperature)
    return rules if built is None else [*rules, built]


def check_trigger_settings(settings: dict | None) -> dict | None:
    """``{'kind': ..., parameters}`` checked with the defaults of its class filled in (``None``/``{}``: no trigger)."""
    return TRIGGERS.check_settings(settings, 'trigger')


def build_trigger(settings: dict | None, target_temperature: float | None = None) -> Trigger | None:
    """The trigger of ``settings`` (see :func:`check_trigger_settings`), or ``None``."""
    checked = check_trigger_settings(settings)
    if checked is None:
        return None
    kind = checked.pop('kind')
    return TRIGGERS.get(kind)(checked, target_temperature)
