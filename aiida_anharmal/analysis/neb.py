"""The NEB validation of an AL run: the per-iteration table (``anharmal al neb``) and the paper's figure (Figs. 7, 10).

Read from the graph: each ``iterations.iter_NN.neb`` output is the ``compare_paths`` table of that
iteration's ensemble; the engine's own path is in the first one (``engine_path``).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

COLUMNS = 'iter  MLIP barrier  reaction  engine on MLIP path  energy MAE  max UCE_F^max (meV/A)'


def neb_tables(node) -> dict[int, dict]:
    """Iteration -> its ``compare_paths`` dict, for an ActiveLearningWorkChain with a NEB validation."""
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    return {
        int(name.split('_')[1]): iterations[name]['neb'].get_dict() for name in iterations if 'neb' in iterations[name]
    }


def _engine_path(tables: dict[int, dict]) -> dict | None:
    return next((t['engine_path'] for t in tables.values() if 'engine_path' in t), None)


def neb_lines(node) -> list[str]:
    """The table: per iteration the MLIP path's barrier and reaction energy (eV), the engine on the same images."""
    tables = neb_tables(node)
    if not tables:
        return []
    lines = [COLUMNS]
    for k, t in sorted(tables.items()):
        engine = t.get('engine_on_mlip_path', {})
        on_path = f'{engine["barrier"]:.3f} / {engine["reaction_energy"]:.3f}' if engine else '-'
        mae = f'{t["energy_mae"]:.3f}' if 'energy_mae' in t else '-'
        lines.append(
            f'{k:4d}  {t["mlip"]["barrier"]:12.3f}  {t["mlip"]["reaction_energy"]:8.3f}  {on_path:>19}  {mae:>10}  '
            f'{1000 * t["max_uce_force_max"]:21.0f}'
        )
    own = _engine_path(tables)
    if own:
        lines.append(
            f"engine's own path: barrier {own['barrier']:.3f} eV, reaction energy {own['reaction_energy']:.3f} eV "
            f'(converged {own.get("converged")})'
        )
    return lines


def plot_neb(tables: dict[int, dict], path: str | PathLike) -> Path:
    """Energy along the path per iteration (colour by iteration) with the engine's own path; UCE_F^max per image."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not tables:
        raise ValueError('no NEB to plot')
    fig = Figure(figsize=(7, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={'height_ratios': [2, 1]})
    cmap = matplotlib.colormaps['viridis']
    last = max(tables)
    for k, t in sorted(tables.items()):
        rows = t['rows']
        x = np.linspace(0, 1, len(rows))
        color = cmap(0.0 if last == min(tables) else (k - min(tables)) / (last - min(tables)))
        top.plot(x, [r['mlip_energy'] for r in rows], 'o-', color=color, label=f'iteration {k}')
        bottom.plot(x, [1000 * r['uce_force_max'] for r in rows], 'o-', color=color)
    engine = next((t for t in tables.values() if 'engine_path_energies' in t), None)
    if engine is not None:
        energies = engine['engine_path_energies']
        top.plot(np.linspace(0, 1, len(energies)), energies, 's--', color='black', label='ground truth (own path)')
    top.set_ylabel('E - E(initial) (eV)')
    top.legend(fontsize=8)
    top.set_title('NEB from the crystal to the defect')
    bottom.set_ylabel('UCE$_F^{max}$ (meV/Å)')
    bottom.set_xlabel('image (normalised)')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
