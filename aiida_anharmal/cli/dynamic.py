"""``anharmal dynamic``: the fits and the decision of a dynamic training run, and its figures."""

from __future__ import annotations

import click

PROFILE = click.option('-p', '--profile', default=None, help='AiiDA profile.')


@click.group('dynamic')
def dynamic():
    """Inspect dynamic-training runs (Bayesian force-constant force fields)."""


def _load(profile, identifier):
    from ..analysis.dynamic import PROCESS_LABEL
    from .common import load_node

    return load_node(profile, identifier, (PROCESS_LABEL,), f'a {PROCESS_LABEL}')


@dynamic.command('status')
@PROFILE
@click.argument('identifier')
def dynamic_status(profile, identifier):
    """Per fit: the step that triggered it, N_data, beta^-1/2, mu_k[eps_B], eps_B, test RMSE; the decision."""
    from ..analysis.dynamic import status_lines

    for line in status_lines(_load(profile, identifier)):
        click.echo(line)


@dynamic.command('plot')
@PROFILE
@click.argument('identifier')
@click.option(
    '-o', '--output', default='.', show_default=True, type=click.Path(file_okay=False), help='Folder of the PNG files.'
)
def dynamic_plot(profile, identifier, output):
    """PNG figures: eps_B with mu_k and sigma_k along the run, RMSE and beta^-1/2 vs N_data, z_B distribution."""
    from ..analysis.dynamic import write_plots

    try:
        paths = write_plots(_load(profile, identifier), output)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        click.echo(f'wrote {path}')
