"""``anharmal al``: print what :mod:`aiida_anharmal.analysis.al` reads of an active-learning run."""

from __future__ import annotations

import click

from ..analysis.al import final_training_set, status_lines, why, write_plots
from .common import load_node

PROFILE = click.option('-p', '--profile', default=None, help='AiiDA profile.')


@click.group('al')
def al():
    """Inspect active-learning runs."""


AL = 'ActiveLearningWorkChain'


def _load(profile, identifier, kinds=(AL,), what=f'an {AL}'):
    """The node of ``identifier``; by default it must be an active-learning run (one line otherwise)."""
    return load_node(profile, identifier, kinds, what)


def _echo_validation(node, lines, what: str, given: str) -> None:
    """Print the table ``lines`` of a validation of ``node``; a clear error when it ran none (``lines`` None or empty)."""
    if not lines:
        raise click.ClickException(f'{node.process_label}<{node.pk}> has no {what} (give `{given}` to run one)')
    for line in lines:
        click.echo(line)


def _training_set(profile, identifier):
    from ..data.training_set import TrainingSet

    node = _load(profile, identifier, (TrainingSet, AL), f'a TrainingSet or an {AL}')
    try:
        return final_training_set(node)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@al.command('status')
@PROFILE
@click.argument('identifier')
@click.option(
    '-w', '--watch', type=float, default=None, metavar='SECONDS', help='Refresh every SECONDS until the run ends.'
)
def al_status(profile, identifier, watch):
    """Per-iteration table of an ActiveLearningWorkChain and why it stopped; for a running loop, what runs now
    (stage, member k of n and its epoch, MD step of each run, structures labelled)."""
    import time

    from ..analysis.progress import progress_lines

    node = _load(profile, identifier)
    if watch is not None and watch <= 0:
        raise click.BadParameter('must be positive', param_hint='--watch')
    while True:
        if watch is not None:
            click.clear()
        for line in [*status_lines(node), *progress_lines(node)]:
            click.echo(line)
        if watch is None or node.is_terminated:
            return
        time.sleep(watch)


@al.command('report')
@PROFILE
@click.argument('identifier')
@click.option(
    '-o', '--output', default='.', show_default=True, type=click.Path(file_okay=False), help='Folder of the page.'
)
def al_report(profile, identifier, output):
    """One self-contained HTML page of an AL run: the decision in plain words, every table and every plot."""
    from ..analysis.report import write_report

    try:
        path = write_report(_load(profile, identifier), output)
    except OSError as exc:
        raise click.ClickException(f'cannot write the report to {output}: {exc}') from None
    click.echo(f'wrote {path}')


@al.command('provenance')
@PROFILE
@click.argument('identifier')
@click.argument('index', type=int)
def al_provenance(profile, identifier, index):
    """Which iteration, trajectory, selection and label job brought frame INDEX into a training set.

    IDENTIFIER: a TrainingSet, or an ActiveLearningWorkChain (then its final training set).
    """
    training_set = _training_set(profile, identifier)
    if not 0 <= index < len(training_set):
        raise click.ClickException(
            f'frame {index} is not in TrainingSet<{training_set.pk}> ({len(training_set)} frames)'
        )
    for line in why(training_set, index):
        click.echo(line)


al.add_command(al_provenance, 'why')  # the earlier name


@al.command('validate')
@PROFILE
@click.argument('identifier')
def al_validate(profile, identifier):
    """The validation MD table of an AL run (or of a ValidationMDWorkChain): A(t) numbers and errors per run."""
    from ..analysis.validation import comparison_of, validation_lines

    node = _load(profile, identifier, (AL, 'ValidationMDWorkChain'), f'an {AL} or a ValidationMDWorkChain')
    comparison = comparison_of(node)
    _echo_validation(node, None if comparison is None else validation_lines(comparison), 'validation MD', 'validation')


@al.command('neb')
@PROFILE
@click.argument('identifier')
def al_neb(profile, identifier):
    """The NEB validation of an AL run: per iteration the barrier of its ensemble's path and the engine's (eV)."""
    from ..analysis.neb import neb_lines

    node = _load(profile, identifier)
    _echo_validation(node, neb_lines(node), 'NEB validation', 'neb')


@al.command('lifetimes')
@PROFILE
@click.argument('identifier')
def al_lifetimes(profile, identifier):
    """The lifetimes validation of an AL run: per route and source the median lifetime, the fraction of modes
    below the Ioffe-Regel limit, kappa (perturbative) and the median lifetime per 1-THz band."""
    from ..analysis.lifetimes import lifetime_lines, lifetime_table

    node = _load(profile, identifier)
    rows = lifetime_table(node)
    _echo_validation(
        node, None if rows is None else lifetime_lines(rows), 'lifetimes validation', 'validation.lifetimes'
    )


@al.command('timing')
@PROFILE
@click.argument('identifier')
def al_timing(profile, identifier):
    """Where the time of an AL run went: per iteration training, evaluation, MD, labelling and the rest (s)."""
    from ..analysis.timing import timing_lines

    for line in timing_lines(_load(profile, identifier)):
        click.echo(line)


@al.command('export')
@PROFILE
@click.argument('identifier')
@click.argument('path', type=click.Path(dir_okay=False))
def al_export(profile, identifier, path):
    """Write the (final) training set of an AL run to extended XYZ, with labels and origin columns."""
    training_set = _training_set(profile, identifier)
    training_set.write_extxyz(path)
    click.echo(f'wrote {len(training_set)} frames of TrainingSet<{training_set.pk}> to {path}')


@al.command('plot')
@PROFILE
@click.argument('identifier')
@click.option(
    '-o', '--output', default='.', show_default=True, type=click.Path(file_okay=False), help='Folder of the PNG files.'
)
def al_plot(profile, identifier, output):
    """PNG plots: learning curve (MAE vs labels), UCE along each exploration, P values of each acquisition, and the
    validations that ran (MD, NEB, lifetimes)."""
    for path in write_plots(_load(profile, identifier), output):
        click.echo(f'wrote {path}')
