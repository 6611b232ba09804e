"""Calcfunction of the lifetimes of the AL loop: both routes for every source in one table."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

#: The routes: fully anharmonic (NVE MD) and perturbative (phono3py RTA).
ROUTES = ('md', 'perturbative')
#: The sources, in the order of the table: the labelling engine, the potential before and after learning.
SOURCES = ('reference', 'initial', 'final')


def lifetime_row(route: str, source: str, summary: dict | None, ended: str) -> dict:
    """One row: the numbers of a run's summary (``None`` when it gave none) and how it ended."""
    row = {'route': route, 'source': source, 'ended': ended}
    if summary is None:
        return row
    row.update(
        modes=summary['modes'],
        resolved=summary['flags'].get('ok', 0),
        median_tau=summary['median_tau'],
        ioffe_regel_fraction=summary['ioffe_regel_fraction'],
        bands={band: values['median_tau'] for band, values in summary['bands'].items()},
    )
    if route == 'perturbative':
        row['kappa_xx'] = summary['kappa'][f'{summary["temperature"]:g}']['xx']
        row['mesh'] = summary['mesh']
    else:
        row['t_max'] = summary['t_max']
    return row


@calcfunction
def compare_lifetimes(parameters: orm.Dict, **summaries) -> orm.Dict:
    """The lifetimes table: per route and source, the median lifetime, the Ioffe-Regel fraction, the band medians.

    ``summaries``: ``<route>_<source>`` -> the summary Dict of a finished run. ``parameters``:
    ``ended`` (``<route>_<source>`` -> ``finished`` or why the run gave no lifetimes), for every run.
    """
    ended = parameters.get_dict()['ended']
    rows = []
    for key in sorted(ended, key=lambda k: (ROUTES.index(k.split('_', 1)[0]), SOURCES.index(k.split('_', 1)[1]))):
        route, source = key.split('_', 1)
        summary = summaries[key].get_dict() if key in summaries else None
        rows.append(lifetime_row(route, source, summary, ended[key]))
    return orm.Dict({'rows': rows})
