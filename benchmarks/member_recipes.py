"""Benchmark: which NequIP member size and training recipe for CuI? Accuracy on the ground truth's frames vs MD cost.

Ground truth: the bundled CuI reference model (stand-in for DFT), 64-atom supercell (``_cui_data``).
Members are trained by this package's own ``anharmal-train`` program, so the recipe is the one the
TrainCalculation runs: 16 training + 4 validation frames of harmonic samples at 300 K (the main
job's initial data), two seeds per setting. Each member is scored on 10 harmonic test frames and
on 37 frames of the reference model's own MD at 300 K (what an explored crystal looks like), and
its size by the time per MD step of a 6-member ensemble on the 64 atoms. Then fine-tuning is put
against training from scratch on the same enlarged set (+10 MD frames). Run from the repository
root::

    OMP_NUM_THREADS=1 python benchmarks/member_recipes.py [--budget 240] [--tag cpu-2core]

and read ``benchmarks/results/member_recipes_<tag>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _cui_data import RESULTS, cached_data

SIZES = {  # the fast protocol's members, a wider one, the moderate protocol's
    'tiny': {
        'r_max': 4.0,
        'l_max': 1,
        'num_layers': 2,
        'num_features': 16,
        'radial_mlp_depth': 1,
        'radial_mlp_width': 16,
    },
    'small': {
        'r_max': 4.0,
        'l_max': 1,
        'num_layers': 3,
        'num_features': 32,
        'radial_mlp_depth': 2,
        'radial_mlp_width': 32,
    },
    'medium': {'r_max': 5.0, 'l_max': 2, 'num_layers': 3, 'num_features': 32},
}
RECIPES = {  # the fast protocol's fixed 30 epochs; training to the plateau of the validation loss
    'fixed-30': {'max_epochs': 30, 'learning_rate': 0.01, 'lr_patience': 5},
    'plateau': {'max_epochs': 2000, 'learning_rate': 0.01, 'lr_patience': 10, 'early_stopping_patience': 40},
    # the fast protocol's recipe since 0.2: an epoch cap (not a time budget), early stopping
    'capped-400': {'max_epochs': 400, 'learning_rate': 0.01, 'lr_patience': 10, 'early_stopping_patience': 40},
}
SEEDS = (0, 1)
SPECIES = ['Cu', 'I']


def train(
    frames, train, validation, hyperparameters, seed, folder: Path, parent: Path | None = None, species=SPECIES
) -> dict:
    """Train one member with ``anharmal-train`` in ``folder``; its metrics, epochs, seconds and model path."""
    folder.mkdir(parents=True)
    (folder / 'structures.npz').write_bytes(frames.to_npz_bytes())
    config = {
        'species': list(species),
        'seed': seed,
        'train_indices': list(train),
        'validation_indices': list(validation),
        'hyperparameters': hyperparameters,
        'parent_file': None,
    }
    if parent is not None:
        (folder / 'parent.nequip.zip').write_bytes(parent.read_bytes())
        config['parent_file'] = 'parent.nequip.zip'
    (folder / 'aiida.json').write_text(json.dumps(config))
    program = Path(sys.executable).parent / 'anharmal-train'
    start = time.monotonic()
    subprocess.run(
        [str(program), '.'], cwd=folder, capture_output=True, check=False, env={**os.environ, 'OMP_NUM_THREADS': '1'}
    )
    status = json.loads((folder / 'status.json').read_text())
    if status['state'] != 'finished':
        raise RuntimeError(f'{folder}: {status}')
    metrics = json.loads((folder / 'metrics.json').read_text())
    return {
        'epochs': metrics['epochs'],
        'seconds': round(time.monotonic() - start, 1),
        'model': str(folder / 'model.nequip.zip'),
    }


#: Loading nequip packages is not thread-safe (torch.fx tracing); the two training threads score one at a time.
SCORING = threading.Lock()


def score(model: str, frames) -> dict:
    """Force MAE (meV/A) and energy MAE (meV/atom) of one member on labelled frames."""
    with SCORING:
        return _score(model, frames)


def _score(model: str, frames) -> dict:
    from aiida_anharmal.core.models.ensemble import EnsembleCalculator

    calculator = EnsembleCalculator.from_files([model], workers=1)
    force, energy = [], []
    for k in range(len(frames)):
        atoms = frames.get_atoms(k, with_labels=False)
        prediction = calculator.predict(atoms)
        force.append(np.abs(prediction.forces - frames.forces[frames.atom_slice(k)]).mean())
        energy.append(abs(prediction.energy - frames.energy[k]) / len(atoms))
    return {'forces_mae': 1000 * float(np.mean(force)), 'energy_mae': 1000 * float(np.mean(energy))}


def md_cost(model: str, supercell, steps: int = 20) -> float:
    """ms per MD step of a 6-member ensemble (the member six times: the same cost) on ``supercell``."""
    from aiida_anharmal.core.md.loop import MDSettings, run_md
    from aiida_anharmal.core.md.stop_rules import build_stop_rules
    from aiida_anharmal.core.models.ensemble import EnsembleCalculator

    calculator = EnsembleCalculator.from_files([model] * 6)
    settings = MDSettings(temperature=300.0, timestep=5.0, steps=steps, save_stride=steps, friction=0.00295)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_md(supercell.copy(), calculator, settings, tmp, guards=build_stop_rules({}, 300.0))
    return 1000 * result.seconds / steps


def jobs_of_sizes(budget: float, sizes=tuple(SIZES), recipes=tuple(RECIPES)) -> list[tuple]:
    """(label, size, recipe, seed, hyperparameters) of every size x recipe x seed."""
    jobs = []
    for size, model in ((s, SIZES[s]) for s in sizes):
        for recipe, schedule in ((r, RECIPES[r]) for r in recipes):
            for seed in SEEDS:
                jobs.append(
                    (
                        f'{size}-{recipe}-{seed}',
                        size,
                        recipe,
                        seed,
                        {**model, **schedule, 'batch_size': 4, 'max_seconds': budget},
                    )
                )
    return jobs


def run_sizes(data, work: Path, budget: float, sizes=tuple(SIZES), recipes=tuple(RECIPES)) -> list[dict]:
    harmonic = data['harmonic']
    tests = {'harmonic': harmonic.subset(range(20, 30)), 'md': data['md']}

    def one(job):
        label, size, recipe, seed, hp = job
        trained = train(harmonic, range(16), range(16, 20), hp, seed, work / label)
        row = {'size': size, 'recipe': recipe, 'seed': seed, **trained}
        for name, frames in tests.items():
            row.update({f'{name}_{k}': v for k, v in score(trained['model'], frames).items()})
        print(
            f'{label}: {row["epochs"]} epochs, {row["seconds"]} s, MD test force MAE {row["md_forces_mae"]:.1f} meV/A',
            flush=True,
        )
        return row

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, jobs_of_sizes(budget, sizes, recipes)))


def run_finetune(data, work: Path, rows: list[dict], sizes, budget: float, recipe: str, caps) -> list[dict]:
    """Scratch on the enlarged set (16 + 8 train, 4 + 2 validation) against fine-tuning from the ``recipe`` member.

    ``caps``: epoch caps of the fine-tuning (``finetune_max_epochs``; None: the recipe's own ``max_epochs``).
    """
    from aiida_anharmal.core.structures.frames import Frames

    enlarged = Frames.concatenate([data['harmonic'].subset(range(20)), data['md'].subset(range(10))])
    train_idx, val_idx = [*range(16), *range(20, 28)], [16, 17, 18, 19, 28, 29]
    test = data['md'].subset(range(10, len(data['md'])))
    jobs = []
    for size in sizes:
        for seed in SEEDS:
            base = next(r for r in rows if r['size'] == size and r['recipe'] == recipe and r['seed'] == seed)
            hp = {**SIZES[size], **RECIPES[recipe], 'batch_size': 4, 'max_seconds': budget}
            jobs.append((size, seed, 'scratch', hp, None))
            for cap in caps:
                tuned = {**hp, 'finetune_learning_rate': 0.002, 'finetune_max_epochs': cap}
                jobs.append((size, seed, finetune_label(cap), tuned, Path(base['model'])))

    def one(job):
        size, seed, how, hp, parent = job
        trained = train(enlarged, train_idx, val_idx, hp, seed, work / f'{size}-{how}-{seed}', parent)
        row = {'size': size, 'seed': seed, 'how': how, **trained, **score(trained['model'], test)}
        print(f'{size} {how} {seed}: MD test force MAE {row["forces_mae"]:.1f} meV/A', flush=True)
        return row

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, jobs))


def finetune_label(cap) -> str:
    return 'finetune' if cap is None else f'finetune-{cap}'


def table(rows: list[dict], costs: dict) -> list[str]:
    sizes = [s for s in SIZES if any(r['size'] == s for r in rows)]
    recipes = [r for r in RECIPES if any(row['recipe'] == r for row in rows)]
    lines = [
        '| size | recipe | epochs | train s | F MAE harmonic | F MAE MD | E MAE MD (meV/atom) | MD ms/step (6 members) |',
        '|---|---|---:|---:|---:|---:|---:|---:|',
    ]
    for size in sizes:
        for recipe in recipes:
            group = [r for r in rows if r['size'] == size and r['recipe'] == recipe]

            def both(key, spec, group=group):
                values = [r[key] for r in group]
                return ' / '.join(format(v, spec) for v in values)

            lines.append(
                f'| {size} | {recipe} | {both("epochs", "d")} | {both("seconds", ".0f")} | '
                f'{both("harmonic_forces_mae", ".1f")} | {both("md_forces_mae", ".1f")} | '
                f'{both("md_energy_mae", ".2f")} | {costs[size]:.0f} |'
            )
    return lines


def finetune_table(rows: list[dict]) -> list[str]:
    kinds = ['scratch', *sorted({r['how'] for r in rows} - {'scratch'})]
    lines = [
        '| size | seed | ' + ' | '.join(f'{k}: F MAE MD, epochs, s' for k in kinds) + ' |',
        '|---|---:|' + '---:|' * len(kinds),
    ]
    for size in sorted({r['size'] for r in rows}):
        for seed in SEEDS:
            cells = []
            for kind in kinds:
                r = next(r for r in rows if r['size'] == size and r['seed'] == seed and r['how'] == kind)
                cells.append(f'{r["forces_mae"]:.1f}, {r["epochs"]}, {r["seconds"]:.0f}')
            lines.append(f'| {size} | {seed} | ' + ' | '.join(cells) + ' |')
    return lines


def machine() -> dict:
    import torch

    from aiida_anharmal.engines.runner import environment

    return {
        **environment(),
        'torch': torch.__version__,
        'platform': platform.platform(),
        'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--budget', type=float, default=240.0, help='seconds of training per member (max)')
    parser.add_argument('--tag', default=None, help='results file suffix (default: cpu-<cores>core)')
    parser.add_argument('--sizes', nargs='+', default=list(SIZES), choices=list(SIZES))
    parser.add_argument('--recipes', nargs='+', default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument('--finetune', nargs='*', default=['tiny', 'small'], help='sizes of the fine-tuning comparison')
    parser.add_argument('--finetune-recipe', default='plateau', choices=list(RECIPES), help='recipe of the parents')
    parser.add_argument(
        '--finetune-epochs', nargs='*', type=int, default=[], help='epoch caps of fine-tuning (default: the recipe)'
    )
    args = parser.parse_args(argv)
    data = cached_data()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_sizes(data, Path(tmp), args.budget, args.sizes, args.recipes)
        costs = {s: md_cost(next(r['model'] for r in rows if r['size'] == s), data['supercell']) for s in args.sizes}
        caps = args.finetune_epochs or [None]
        finetune = (
            run_finetune(data, Path(tmp) / 'finetune', rows, args.finetune, args.budget, args.finetune_recipe, caps)
            if args.finetune
            else []
        )
    for row in rows:
        row.pop('model')
    for row in finetune:
        row.pop('model')
    info = machine()
    tag = args.tag or f'cpu-{info["cores"]}core'
    report = {
        'machine': info,
        'budget_seconds': args.budget,
        'sizes': SIZES,
        'recipes': RECIPES,
        'rows': rows,
        'md_ms_per_step': costs,
        'finetune': finetune,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'member_recipes_{tag}.json').write_text(json.dumps(report, indent=1))
    lines = [
        f'# Member sizes and recipes on CuI ({info["date"]})',
        '',
        (
            f'Machine: {info["cpu"]}, {info["cores"]} cores, torch {info["torch"]}; one thread per training job, two '
            f'jobs at a time; training budget {args.budget:.0f} s per member. Values per seed (0 / 1); force MAE in '
            "meV/A on 10 harmonic test frames and on 37 frames of the reference model's own MD at 300 K."
        ),
        '',
        *table(rows, costs),
    ]
    if finetune:
        lines += [
            '',
            (
                f'Fine-tuning ({args.finetune_recipe} recipe, from the member above; `finetune-N`: at most N epochs) '
                'against training from scratch, '
                'on the same 30 frames (+10 MD frames); force MAE on the other 27 MD frames:'
            ),
            '',
            *finetune_table(finetune),
        ]
    (RESULTS / f'member_recipes_{tag}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
