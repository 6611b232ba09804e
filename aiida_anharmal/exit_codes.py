"""The exit codes of the plugin, numbered by meaning: the same number means the same thing everywhere.

Calculations (3xx) say how a program ended; workchains (4xx) say which stage of a workflow
failed. A process declares the codes it can end with by label (:func:`declare`); MD stop
rules bring their own codes from :mod:`aiida_anharmal.core.md.stop_rules` (guards 320-329, stop
triggers 340-349). The docs table (``docs/source/exit_codes.rst``) lists them all and a test
keeps it equal to this module. AiiDA's own codes keep their meaning and are never reused: 1xx
(scheduler and engine), and 301, 302, 401, 402 of ``BaseRestartWorkChain`` (sub-process excepted,
killed, too many restarts, unhandled failure), which the restart workchains of this plugin carry.
Every message takes at most one field, ``{message}``.
"""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    status: int
    label: str
    message: str


#: Calculations: how the program ended.
CALCULATION = (
    Code(
        300,
        'ERROR_NO_OUTPUT',
        'The program ended without a status file: it did not start, or was killed before it could finish (what it '
        'wrote before is kept; see the scheduler output in the retrieved folder).',
    ),
    Code(303, 'ERROR_SETUP_FAILED', 'The program could not start: {message}'),
    Code(304, 'ERROR_OUTPUT_CORRUPT', 'An output file could not be read: {message}'),
    Code(305, 'ERROR_PROGRAM_FAILED', 'The program failed: {message}; what it wrote before is kept in the outputs.'),
    Code(
        310,
        'ERROR_SCF_NOT_CONVERGED',
        'The SCF did not converge: {message}; the other structures are in the `labelled` output.',
    ),
    Code(
        311,
        'ERROR_STRUCTURES_FAILED',
        'The engine failed with an error a restart cannot fix: {message}; see the `failures` output.',
    ),
    Code(312, 'ERROR_TRAINING_FAILED', 'nequip-train failed: {message}'),
    Code(313, 'ERROR_PACKAGING_FAILED', 'nequip-package failed: {message}'),
    Code(314, 'ERROR_COMPILE_FAILED', 'nequip-compile failed (the packaged model is in the `model` output): {message}'),
    Code(
        315,
        'ERROR_NEB_NOT_CONVERGED',
        'The NEB did not converge within its step cap: {message}; the band and its profile are in the outputs.',
    ),
    Code(
        316,
        'ERROR_NEB_UNPHYSICAL_IMAGE',
        'An image of the band became unphysical: {message}; the band of that step is in the `path` output.',
    ),
    Code(
        330,
        'ERROR_INTERRUPTED',
        'The program stopped before the end of its work ({message}); what it finished is '
        'in the outputs and a restart continues from there.',
    ),
)

#: Workchains: which stage failed (the message names the failed process and its exit status).
WORKCHAIN = (
    Code(410, 'ERROR_LABELLING_FAILED', 'Labelling failed: {message}'),
    Code(411, 'ERROR_TOO_FEW_LABELLED', 'Too few structures could be labelled: {message}'),
    Code(420, 'ERROR_ENSEMBLE_FAILED', 'Ensemble training failed: {message}'),
    Code(430, 'ERROR_EVALUATION_FAILED', 'Evaluation failed: {message}'),
    Code(440, 'ERROR_EXPLORATION_FAILED', 'Exploration failed: {message}'),
    Code(450, 'ERROR_FORCE_CONSTANTS_FAILED', 'Force constants could not be built: {message}'),
    Code(460, 'ERROR_INITIAL_DATA_FAILED', 'The initial data could not be made: {message}'),
    Code(461, 'ERROR_TEST_SET_FAILED', 'The test set could not be made: {message}'),
    Code(470, 'ERROR_VALIDATION_FAILED', 'The validation MD failed: {message}'),
    Code(480, 'ERROR_NEB_FAILED', 'The NEB failed: {message}'),
    Code(490, 'ERROR_LIFETIMES_FAILED', 'The lifetime analysis failed: {message}'),
)

#: Ranges kept for the exit codes that strategies bring: (first, last, what).
STRATEGY_RANGES = ((320, 329, 'MD guards'), (340, 349, 'MD stop triggers'))


def stop_rule_codes() -> tuple[Code, ...]:
    """The codes of the registered MD guards and stop triggers."""
    from .core.md.stop_rules import stop_rules

    return tuple(Code(rule.exit_status, rule.exit_label, rule.message) for rule in stop_rules())


def all_codes() -> tuple[Code, ...]:
    """Every code of the plugin, by status."""
    return tuple(sorted((*CALCULATION, *stop_rule_codes(), *WORKCHAIN)))


def get(label: str, scope: tuple[Code, ...]) -> Code:
    for code in scope:
        if code.label == label:
            return code
    raise KeyError(f'no exit code {label!r}; known: {", ".join(c.label for c in scope)}')


def declare(spec, *labels: str, workchain: bool = False) -> None:
    """Add the codes named by ``labels`` to a process ``spec`` (calculation codes unless ``workchain``)."""
    scope = WORKCHAIN if workchain else (*CALCULATION, *stop_rule_codes())
    for label in labels:
        code = get(label, scope)
        spec.exit_code(code.status, code.label, message=code.message)
