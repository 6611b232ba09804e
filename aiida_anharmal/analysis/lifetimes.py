"""The lifetimes validation of an AL run: the table (``anharmal al lifetimes``) and the paper's figure (Figs. 12, 13).

Read from the graph: ``lifetimes.table`` (``compare_lifetimes``) and, per route and source, the
``modes`` of the run (``lifetimes.<route>_<source>.modes``). :func:`plot_lifetimes` draws the inverse
lifetime against the harmonic frequency, fully anharmonic and perturbative side by side, one colour
per source, with the Ioffe-Regel line ``tau^-1 = nu`` and the population density of the modes (a
Gaussian convolution in the plane, drawn as contours).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

ROUTE_TITLES = {'md': 'fully anharmonic (NVE MD)', 'perturbative': 'perturbative (phono3py RTA)'}
SOURCE_COLORS = {'reference': 'black', 'initial': 'tab:orange', 'final': 'tab:blue'}
COLUMNS = 'route         source     ended     median tau (ps)  below Ioffe-Regel  kappa_xx (W/mK)  median per band (ps)'


def lifetime_table(node) -> list[dict] | None:
    """The rows of ``lifetimes.table`` of an ActiveLearningWorkChain, or ``None`` without a lifetimes validation."""
    if 'lifetimes' not in node.outputs or 'table' not in node.outputs.lifetimes:
        return None
    return node.outputs.lifetimes['table']['rows']


def lifetime_lines(rows: list[dict]) -> list[str]:
    """Per route and source: how the run ended, the median lifetime, the fraction below the Ioffe-Regel limit."""
    lines = [COLUMNS]
    for row in rows:
        if 'median_tau' not in row:
            lines.append(f'{row["route"]:12}  {row["source"]:9}  no lifetimes: {row["ended"]}')
            continue
        median = '-' if row['median_tau'] is None else f'{row["median_tau"]:.3f}'
        kappa = f'{row["kappa_xx"]:.3g}' if 'kappa_xx' in row else '-'
        bands = ', '.join(f'{band} THz {tau:.2f}' for band, tau in row['bands'].items())
        lines.append(
            f'{row["route"]:12}  {row["source"]:9}  {"finished":8}  {median:>15}  '
            f'{100 * row["ioffe_regel_fraction"]:16.0f} %  {kappa:>15}  {bands}'
        )
    return lines


def modes_of(node) -> dict[tuple[str, str], dict]:
    """(route, source) -> ``frequency``, ``tau``, ``flag`` and ``weight`` of the run's modes."""
    lifetimes = node.outputs.lifetimes if 'lifetimes' in node.outputs else {}
    runs = {}
    for name in lifetimes:
        if name == 'table' or 'modes' not in lifetimes[name]:
            continue
        route, source = name.split('_', 1)
        runs[(route, source)] = modes_arrays(lifetimes[name]['modes'])
    return runs


def modes_arrays(modes) -> dict:
    """The arrays of a ``modes`` ArrayData (of either route) that the figure needs."""
    names = modes.get_arraynames()
    frequency = modes.get_array('frequency')
    return {
        'frequency': frequency,
        'tau': modes.get_array('tau'),
        'flag': modes.get_array('flag'),
        'weight': modes.get_array('weight') if 'weight' in names else np.ones_like(frequency),
    }


def _density(ax, nu, rate, weight, color, extent) -> None:
    """Contours of the modes' density in the (nu, 1/tau) plane: each mode a Gaussian of 1/25 of the extent."""
    grid_x = np.linspace(0, extent[0], 80)
    grid_y = np.linspace(0, extent[1], 80)
    gx, gy = np.meshgrid(grid_x, grid_y)
    sx, sy = extent[0] / 25, extent[1] / 25
    density = np.zeros_like(gx)
    for x, y, w in zip(nu, rate, weight, strict=True):
        density += w * np.exp(-0.5 * (((gx - x) / sx) ** 2 + ((gy - y) / sy) ** 2))
    if density.max() > 0:
        ax.contour(gx, gy, density / density.max(), levels=[0.25, 0.5, 0.75], colors=[color], linewidths=0.8)


def plot_lifetimes(runs: dict[tuple[str, str], dict], path: str | PathLike) -> Path:
    """tau^-1 against nu for every (route, source): one panel per route, the Ioffe-Regel line, the mode density."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not runs:
        raise ValueError('no lifetimes to plot')
    routes = [route for route in ROUTE_TITLES if any(r == route for r, _ in runs)]
    kept = {key: run['flag'] == 'ok' for key, run in runs.items()}
    nu_max = max(float(run['frequency'][kept[key]].max(initial=0)) for key, run in runs.items()) * 1.05 or 1.0
    rates = [1 / run['tau'][kept[key]] for key, run in runs.items() if kept[key].any()]
    rate_max = max(float(np.percentile(np.concatenate(rates), 99)) * 1.2, nu_max) if rates else nu_max
    fig = Figure(figsize=(5 * len(routes), 4))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(routes), sharey=True))
    for ax, route in zip(axes, routes, strict=True):
        for (r, source), run in sorted(runs.items(), key=lambda item: list(SOURCE_COLORS).index(item[0][1])):
            if r != route:
                continue
            ok = kept[(r, source)]
            nu, rate, weight = run['frequency'][ok], 1 / run['tau'][ok], run['weight'][ok]
            color = SOURCE_COLORS.get(source, 'tab:green')
            ax.scatter(nu, rate, s=6, color=color, alpha=0.5, label=f'{source} ({round(float(weight.sum()))} modes)')
            _density(ax, nu, rate, weight, color, (nu_max, rate_max))
        grid = np.linspace(0, nu_max, 50)
        ax.plot(grid, grid, 'k--', lw=1, label=r'Ioffe-Regel $\tau^{-1} = \nu$')
        ax.set_xlim(0, nu_max)
        ax.set_ylim(0, rate_max)
        ax.set_xlabel('harmonic frequency (THz)')
        ax.set_title(ROUTE_TITLES[route], fontsize=10)
        ax.legend(fontsize=7, loc='upper left')
    axes[0].set_ylabel(r'$\tau^{-1}$ (1/ps)')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
