"""The NEB validation of an AL run: the per-iteration table (``anharmal al neb``) and the paper's figure (Figs. 7, 10).

Read from the graph: each ``iterations.iter_NN.neb`` output is the ``compare_paths`` table of that
iteration's ensemble (its own relaxed end points and band); the engine's own path is the loop's
``neb_reference`` output (runs before this output existed: ``engine_path`` of the first table). The
defect energy is the path's reaction energy: the relaxed final state (the defect) minus the relaxed
initial state (the crystal).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

COLUMNS = (
    'iter  labels  defect energy  barrier  engine on this path (defect / barrier)  energy MAE  max UCE_F^max (meV/A)'
)


def neb_tables(node) -> dict[int, dict]:
    """Iteration -> its ``compare_paths`` dict, for an ActiveLearningWorkChain with a NEB validation."""
    iterations = node.outputs.iterations if 'iterations' in node.outputs else {}
    return {
        int(name.split('_')[1]): iterations[name]['neb'].get_dict() for name in iterations if 'neb' in iterations[name]
    }


def engine_path(node, tables: dict[int, dict] | None = None) -> dict | None:
    """The engine's own path: ``barrier``, ``reaction_energy``, ``converged`` and the image ``energies`` (eV)."""
    outputs = node.outputs
    if 'neb_reference' in outputs and 'summary' in outputs.neb_reference:
        summary = outputs.neb_reference.summary.get_dict()
        path = {k: summary.get(k) for k in ('barrier', 'reaction_energy', 'converged')}
        path['energies'] = outputs.neb_reference.images_data.get_array('energies').tolist()
        return path
    tables = neb_tables(node) if tables is None else tables
    for table in tables.values():
        if 'engine_path' in table:
            return {**table['engine_path'], 'energies': table.get('engine_path_energies')}
    return None


def iteration_labels(node) -> dict[int, int]:
    """Iteration -> the labelled frames its ensemble was trained on (from the summary table)."""
    if 'summary' not in node.outputs:
        return {}
    return {row['iteration']: row['training_frames'] for row in node.outputs.summary['rows']}


def neb_lines(node) -> list[str]:
    """The table: per iteration the defect energy and barrier of its ensemble's own path (eV), the engine's
    energies on the same images, the largest UCE_F^max along the path; then the engine's own path."""
    tables = neb_tables(node)
    if not tables:
        return []
    labels = iteration_labels(node)
    lines = [COLUMNS]
    for k, t in sorted(tables.items()):
        engine = t.get('engine_on_mlip_path', {})
        on_path = f'{engine["reaction_energy"]:.3f} / {engine["barrier"]:.3f}' if engine else '-'
        mae = f'{t["energy_mae"]:.3f}' if 'energy_mae' in t else '-'
        n = labels.get(k, '-')
        lines.append(
            f'{k:4d}  {n!s:>6}  {t["mlip"]["reaction_energy"]:13.3f}  {t["mlip"]["barrier"]:7.3f}  {on_path:>38}  '
            f'{mae:>10}  {1000 * t["max_uce_force_max"]:21.0f}'
        )
    own = engine_path(node, tables)
    if own:
        lines.append(
            f"engine's own path: defect energy {own['reaction_energy']:.3f} eV, barrier {own['barrier']:.3f} eV "
            f'(converged {own.get("converged")})'
        )
    return lines


def rare_event_record(node, minutes: float) -> dict:
    """The results of a CuI main job in the results format of benchmarks/cui_rare_event.py (eV, minutes): ``reference``, ``iterations``,
    ``final``, ``decision``, ``labels_total``, ``minutes``. ``ValueError`` without a NEB validation."""
    tables = neb_tables(node)
    own = engine_path(node, tables)
    if not tables or own is None:
        raise ValueError(f"{node.process_label}<{node.pk}> has no NEB validation with the engine's own path")
    labels = iteration_labels(node)
    rows = [
        {
            'iteration': k,
            'labels': labels.get(k),
            'defect_energy': t['mlip']['reaction_energy'],
            'barrier': t['mlip']['barrier'],
            'max_uce_path': t['max_uce_force_max'],
        }
        for k, t in sorted(tables.items())
    ]
    return {
        'reference': {'defect_energy': own['reaction_energy'], 'barrier': own['barrier']},
        'iterations': rows,
        'final': {'defect_energy': rows[-1]['defect_energy'], 'barrier': rows[-1]['barrier']},
        'decision': node.outputs.convergence['reason'] if 'convergence' in node.outputs else None,
        'labels_total': len(node.outputs.training_set) if 'training_set' in node.outputs else None,
        'minutes': round(float(minutes), 1),
    }


def plot_neb(tables: dict[int, dict], path: str | PathLike, engine: dict | None = None) -> Path:
    """Kang et al.'s Fig. 7: energy along the path and UCE_F^max per image, one line per iteration (colour by
    iteration), the engine's own path in black (``engine``: :func:`engine_path`)."""
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
    if engine is None:
        engine = next(
            ({'energies': t['engine_path_energies']} for t in tables.values() if 'engine_path_energies' in t), None
        )
    if engine is not None and engine.get('energies'):
        energies = engine['energies']
        top.plot(np.linspace(0, 1, len(energies)), energies, 's-', color='black', lw=2, label='ground truth')
    top.axhline(0.0, color='grey', lw=0.5)
    top.set_ylabel('E - E(crystal) (eV)')
    top.legend(fontsize=8)
    top.set_title('NEB from the crystal to the defect, each ensemble on its own path')
    bottom.set_ylabel('UCE$_F^{max}$ (meV/Å)')
    bottom.set_xlabel('reaction coordinate (image, normalised)')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
