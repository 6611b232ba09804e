"""MD throughput: steps per second of ``aiida_anharmal.core.md.loop.run_md``, 6-member ensemble vs one model.

Same run, same machine, CuI zincblende with 64 and 216 atoms, Langevin 300 K, 2 fs. Reports where
the time of a step goes: graph (type mapping + neighbour list, built once per step for all
members), members (the model evaluations), guards, recording (frame file + checkpoint, every
``save_stride`` steps) and the integrator itself. Models have random weights (timing does not
depend on them); sizes as in ensemble_eval.py.

    OMP_NUM_THREADS=1 python benchmarks/md_throughput.py [--quick] [--sizes fast paper]

Writes benchmarks/results/md_throughput_<machine>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ensemble_eval import MODEL_CONFIGS, build_models, cpu_model, make_structure

RESULTS = Path(__file__).parent / 'results'


def run_one(models, repeat: int, steps: int, stride: int, workers: int | None) -> dict:
    from aiida_anharmal.core.md.loop import MDSettings, run_md
    from aiida_anharmal.core.models.ensemble import EnsembleCalculator

    calc = EnsembleCalculator(models, workers=workers)
    atoms = make_structure(repeat, seed=1)
    calc.predict(atoms)  # warm-up (first calls are slow)
    calc.predict(atoms)
    calc.timing = {'graph': 0.0, 'members': 0.0, 'calls': 0}
    settings = MDSettings(temperature=300, timestep=2.0, steps=steps, save_stride=stride, friction=0.01, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_md(atoms, calc, settings, tmp)
    t = result.timing
    total = result.seconds
    parts = {
        'graph': calc.timing['graph'],
        'members': calc.timing['members'],
        'guards': t['guards'],
        'record': t['record'],
        'integrator': t['integrate_only'],
    }
    parts['other'] = max(0.0, total - sum(parts.values()))
    return {
        'atoms': len(atoms),
        'members': len(models),
        'workers': calc.workers,
        'steps': steps,
        'save_stride': stride,
        'seconds': total,
        'steps_per_second': steps / total,
        'ms_per_step': 1000 * total / steps,
        'share': {k: v / total for k, v in parts.items()},
        'bookkeeping_share': (parts['guards'] + parts['record'] + parts['other']) / total,
    }


def measure(sizes, quick: bool) -> list[dict]:
    """Steps per second of one model and of 6 members, per model size, supercell and save stride."""
    rows = []
    for size in sizes:
        models = build_models(MODEL_CONFIGS[size], 6, 'cpu')
        for repeat in (2, 3):
            for label, members in (('one model', models[:1]), ('6 members', models)):
                steps = {('fast', 2): 60, ('fast', 3): 40, ('paper', 2): 20, ('paper', 3): 8}[(size, repeat)]
                if quick:
                    steps = max(4, steps // 4)
                for stride in (1, 10) if steps >= 10 else (1,):
                    row = run_one(members, repeat, steps, stride, None)
                    row.update(model=size, variant=label)
                    rows.append(row)
                    share = ', '.join(f'{k} {100 * v:.1f}%' for k, v in row['share'].items())
                    print(
                        f'{size:5s} {row["atoms"]:4d} atoms {label:9s} stride {stride:2d}: '
                        f'{row["steps_per_second"]:7.2f} steps/s ({row["ms_per_step"]:8.1f} ms/step); {share}',
                        flush=True,
                    )
    return rows


def ratios_of(rows: list[dict], sizes) -> list[dict]:
    """Time per step of 6 members over one model, measured side by side (save stride 1)."""
    ratios = []
    for size in sizes:
        for atoms in (64, 216):
            found = {
                r['variant']: r for r in rows if r['model'] == size and r['atoms'] == atoms and r['save_stride'] == 1
            }
            if 'one model' in found and '6 members' in found:
                ratio = found['6 members']['ms_per_step'] / found['one model']['ms_per_step']
                ratios.append({'model': size, 'atoms': atoms, 'time_ratio_6_vs_1': ratio})
    return ratios


def report_lines(machine: dict, rows: list[dict], ratios: list[dict]) -> list[str]:
    lines = [
        f'# MD throughput ({machine["date"]})',
        '',
        (
            f'Machine: {machine["cpu"]}, {machine["cores"]} cores, '
            f'torch {machine["torch"]}, OMP_NUM_THREADS={machine["OMP_NUM_THREADS"]}; members run in '
            f'{rows[0]["workers"] if rows else "?"}-thread pools (one per core).'
        ),
        '',
        '| model | atoms | variant | save stride | steps/s | ms/step | graph | members | guards | record | integrator | other |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        s = r['share']
        lines.append(
            f'| {r["model"]} | {r["atoms"]} | {r["variant"]} | {r["save_stride"]} | {r["steps_per_second"]:.2f} | '
            f'{r["ms_per_step"]:.1f} | '
            + ' | '.join(f'{100 * s[k]:.1f}%' for k in ('graph', 'members', 'guards', 'record', 'integrator', 'other'))
            + ' |'
        )
    lines += ['', '| model | atoms | time per step, 6 members / 1 model |', '|---|---|---|']
    lines += [f'| {r["model"]} | {r["atoms"]} | {r["time_ratio_6_vs_1"]:.2f} |' for r in ratios]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', nargs='+', default=['fast', 'paper'], choices=sorted(MODEL_CONFIGS))
    p.add_argument('--quick', action='store_true', help='fewer steps')
    p.add_argument('--tag', default=None, help='results file suffix (default: machine kind)')
    args = p.parse_args(argv)
    from nequip.utils.global_state import set_global_state

    set_global_state()
    import torch

    rows = measure(args.sizes, args.quick)
    ratios = ratios_of(rows, args.sizes)
    machine = {
        'cpu': cpu_model(),
        'cores': len(os.sched_getaffinity(0)),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS'),
        'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'loadavg_end': os.getloadavg(),
    }
    tag = args.tag or f'cpu-{machine["cores"]}core'
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'md_throughput_{tag}.json').write_text(
        json.dumps({'machine': machine, 'rows': rows, 'ratios': ratios}, indent=1)
    )
    lines = report_lines(machine, rows, ratios)
    (RESULTS / f'md_throughput_{tag}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    warnings.simplefilter('ignore')
    sys.exit(main())
