"""Benchmark: time per energy+forces call of one nequip model vs an ensemble of N members.

Variants, timed side by side in one run (same models, same structure):

* ``single``      one model, nequip's own ``NequIPCalculator``, torch on 1 thread  -> the baseline (a)
* ``single_all``  the same, torch on all cores ('single, all cores')
* ``loop``        N separate ``NequIPCalculator`` objects called one after the other, each building
                  its own neighbour list (torch on 1 thread)                        -> (b)
* ``ens_w<W>``    ``aiida_anharmal.core.models.ensemble.EnsembleCalculator(models, workers=W)``: one
                  neighbour list, W members at a time in threads (torch on 1 thread per member) -> (c)

Every timed call does ``calc.reset()`` then energy + forces, so each call recomputes everything
(neighbour list included). Each variant is warmed up first; the timed calls of the variants are
interleaved (time slices, round robin) so that a change of machine load hits all of them alike.
Reported: median ms per call and the ratio of each median to ``single``.

Models are built in-process with random weights (timing does not depend on the weights), or
loaded from packaged files with ``--models``.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ensemble_eval.py           # full run
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ensemble_eval.py --quick   # short run
    python benchmarks/ensemble_eval.py --device cuda
    python benchmarks/ensemble_eval.py --models m0.nequip.zip m1.nequip.zip ...

Results: ``benchmarks/results/ensemble_eval_<tag>.json`` and ``.md`` (tag: ``cpu-2core`` etc.).
The timing helpers are in ``_timing.py``, the report writing in ``_ensemble_eval_report.py``.
"""

from __future__ import annotations

import os

# thread settings must be in place before numpy / torch are imported
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse
import datetime
import platform
import socket
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _ensemble_eval_report import goal_lines, shared_note, table, write_report
from _timing import Variant, cpu_model, measure_block, result_rows, uptime_line

RESULTS_DIR = Path(__file__).resolve().parent / 'results'
TYPE_NAMES = ['Cu', 'I']

_COMMON = {
    'model_dtype': 'float64',
    'type_names': TYPE_NAMES,
    'avg_num_neighbors': 20.0,
    'per_type_energy_shifts': {'Cu': 0.0, 'I': 0.0},
    'per_type_energy_scales': {'Cu': 1.0, 'I': 1.0},
}

# NequIPGNNModel keyword arguments of the built-in model sizes (float64, species Cu, I).
MODEL_CONFIGS = {
    'fast': {
        'r_max': 4.0,
        'l_max': 1,
        'parity': True,
        'num_layers': 2,
        'num_features': 16,
        'radial_mlp_depth': 1,
        'radial_mlp_width': 16,
    },
    # Kang et al.: the values not given in the paper summary (parity, radial MLP) are those of the
    # bundled reference model aiida_anharmal/resources/cui_reference (nequip 0.5.6 config:
    # parity false, invariant_layers 2, invariant_neurons 32, num_basis 8).
    'paper': {
        'r_max': 5.0,
        'l_max': 3,
        'parity': False,
        'num_layers': 4,
        'num_features': 32,
        'num_bessels': 8,
        'radial_mlp_depth': 2,
        'radial_mlp_width': 32,
    },
    # not run by default: 'paper' with parity=True and nequip's default radial MLP (1 x 128);
    # several times slower than 'paper'
    'paper-parity': {
        'r_max': 5.0,
        'l_max': 3,
        'parity': True,
        'num_layers': 4,
        'num_features': 32,
        'num_bessels': 8,
        'radial_mlp_depth': 1,
        'radial_mlp_width': 128,
    },
}

VARIANT_TEXT = {
    'single': '(a) one model, NequIPCalculator, torch 1 thread',
    'single_all': '(a) one model, NequIPCalculator, torch on all cores',
    'loop': '(b) loop of N NequIPCalculators (N neighbour lists), torch 1 thread',
}


# ---------------------------------------------------------------------------- models & structures


def build_models(config: dict, n_members: int, device: str) -> list:
    from nequip.model import NequIPGNNModel

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        models = [NequIPGNNModel(seed=seed, **_COMMON, **config).eval().to(device) for seed in range(n_members)]
    return models


def load_models(paths: list[str], device: str) -> list:
    from aiida_anharmal.core.models.ensemble import load_member

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return [load_member(p, device) for p in paths]


def make_structure(repeat: int, seed: int):
    from ase.build import bulk

    atoms = bulk('CuI', 'zincblende', a=6.05, cubic=True).repeat((repeat, repeat, repeat))
    atoms.rattle(stdev=0.05, seed=seed)
    return atoms


def consistency(loop: Variant, ensembles: list[Variant]) -> dict:
    """Largest difference between the members of the ensemble and the separate calculators."""
    e_loop = np.array([c.results['energy'] for c in loop.calcs], dtype=float)
    f_loop = np.stack([c.results['forces'] for c in loop.calcs])
    out = {}
    for ens in ensembles:
        calc = ens.calcs[0]
        out[ens.name] = {
            'max_abs_member_energy_diff_eV': float(np.max(np.abs(calc.results['member_energies'] - e_loop))),
            'max_abs_member_force_diff_eV_A': float(np.max(np.abs(calc.results['member_forces'] - f_loop))),
        }
    return out


# ---------------------------------------------------------------------------- one model and structure


def make_variants(models: list, type_names: list, r_max: float, args, n_cores: int) -> tuple[list, list]:
    """The variants (a), (b) and the ensembles (c) of the given workers; returns ``(all variants, ensembles)``."""
    from nequip.integrations.ase import NequIPCalculator
    from nequip.integrations.utils import basic_transforms

    from aiida_anharmal.core.models.ensemble import EnsembleCalculator

    def nequip_calc(model):
        transforms = basic_transforms(model.metadata, r_max, type_names, {s: s for s in type_names})
        return NequIPCalculator(model=model, device=args.device, transforms=transforms)

    n = len(models)
    variants = [
        Variant('single', VARIANT_TEXT['single'], [nequip_calc(models[0])], torch_threads=1),
        Variant('single_all', VARIANT_TEXT['single_all'], [nequip_calc(models[0])], torch_threads=n_cores),
        Variant('loop', VARIANT_TEXT['loop'].replace(' N ', f' {n} '), [nequip_calc(m) for m in models], 1),
    ]
    ensembles = []
    for w in args.workers:
        calc = EnsembleCalculator(models, workers=w, device=args.device)
        mode = 'sequential' if calc.workers == 1 else f'{calc.workers} members at a time in threads'
        text = f'(c) EnsembleCalculator({n} models, workers={w}): one neighbour list, {mode}'
        if w is None:
            text = text.replace('workers=None', f'workers=default={calc.workers}')
        variant = Variant(f'ens_w{calc.workers}', text, [calc], torch_threads=1, workers=calc.workers)
        if any(v.name == variant.name for v in ensembles):
            continue  # e.g. workers=default on a 1-core machine is workers=1
        ensembles.append(variant)
    return variants + ensembles, ensembles


def run_config(label: str, model_info: dict, models: list, repeat: int, args, n_cores: int, sync) -> dict:
    from aiida_anharmal.core.models.ensemble import model_species_and_cutoff

    type_names, r_max = model_species_and_cutoff(models[0])
    atoms = make_structure(repeat, args.seed)
    missing = sorted(set(atoms.get_chemical_symbols()) - set(type_names))
    if missing:
        sys.exit(f'the benchmark structure is CuI, the models know only {type_names} (missing {missing})')

    n = len(models)
    variants, ensembles = make_variants(models, type_names, r_max, args, n_cores)
    n_edges = int(ensembles[0].calcs[0].graph(atoms)['edge_index'].shape[1])
    print(
        f'\n== {label}: {len(atoms)} atoms, {n} members, r_max {r_max}, '
        f'{n_edges} directed edges ({n_edges / len(atoms):.1f} neighbours/atom)',
        flush=True,
    )

    machine, rejected = measure_block(variants, atoms, args, sync)
    rows = result_rows(variants)
    check = consistency(variants[2], ensembles)
    busy = machine.get('other_cores_busy', float('nan'))
    print(f'   other processes kept {busy:.2f} cores busy on average', flush=True)
    return {
        'model': label,
        'model_info': model_info,
        'n_members': n,
        'n_atoms': len(atoms),
        'repeat': repeat,
        'r_max': r_max,
        'n_edges': n_edges,
        'variants': rows,
        'consistency': check,
        'machine_during': machine,
        'discarded_attempts': rejected,
    }


# ---------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--quick', action='store_true', help='short run: fast model, 64 atoms, few calls')
    p.add_argument('--device', default='cpu', help="torch device, e.g. 'cpu' or 'cuda' (default cpu)")
    p.add_argument('--models', nargs='+', metavar='PATH', help='packaged models (.nequip.zip) instead of random ones')
    p.add_argument(
        '--model', nargs='+', choices=sorted(MODEL_CONFIGS), help='built-in model sizes (default fast paper)'
    )
    p.add_argument('--members', type=int, default=6, help='ensemble members of built-in models (default 6)')
    p.add_argument(
        '--repeats', nargs='+', type=int, help='supercell repeats of the 8-atom cell (default 2 3: 64, 216 atoms)'
    )
    p.add_argument(
        '--workers', nargs='+', help="ensemble workers to time; 'default' = number of cores (default: 1 default)"
    )
    p.add_argument('--warmup', type=int, help='warm-up calls per variant (default 3)')
    p.add_argument('--slow-call', type=float, default=2.0, help='end warm-up after a call slower than this (s)')
    p.add_argument('--min-time', type=float, help='timed seconds per variant (default 3)')
    p.add_argument('--min-calls', type=int, help='timed calls per variant (default 5)')
    p.add_argument('--max-time', type=float, help='stop a slow variant after this many seconds, ≥ 2 calls (default 30)')
    p.add_argument('--slice-time', type=float, default=0.5, help='round-robin time slice (s)')
    p.add_argument(
        '--max-other-load',
        type=float,
        help=(
            'wait until other processes keep fewer cores than this busy, and measure a block again '
            'if they kept more busy while it ran (e.g. 0.2; default: measure regardless)'
        ),
    )
    p.add_argument('--retries', type=int, default=3, help='re-measurements of a busy block (with --max-other-load)')
    p.add_argument('--idle-timeout', type=float, default=900.0, help='longest wait for an idle machine (s)')
    p.add_argument('--seed', type=int, default=0, help='rattle seed')
    p.add_argument('--tag', help="results file tag (default '<device>-<n>core', plus '-quick' for --quick)")
    p.add_argument('--out-dir', type=Path, default=RESULTS_DIR)
    p.add_argument('--no-write', action='store_true', help='print only')
    args = p.parse_args(argv)

    quick = args.quick
    defaults = {
        'model': ['fast'] if quick else ['fast', 'paper'],
        'repeats': [2] if quick else [2, 3],
        'warmup': 1 if quick else 3,
        'min_time': 0.5 if quick else 3.0,
        'min_calls': 3 if quick else 5,
        'max_time': 5.0 if quick else 30.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    workers = args.workers or ['1', 'default']
    args.workers = [None if w == 'default' else int(w) for w in workers]
    return args


def machine_info(args, n_cores: int, cuda: bool) -> dict:
    """The machine and software of the run (the load after it is added at the end as ``uptime_after``)."""
    import ase
    import nequip
    import torch

    return {
        'hostname': socket.gethostname(),
        'cpu_model': cpu_model(),
        'n_cores': n_cores,
        'os_cpu_count': os.cpu_count(),
        'cuda_device': torch.cuda.get_device_name() if cuda else None,
        'python': platform.python_version(),
        'torch': torch.__version__,
        'nequip': nequip.__version__,
        'ase': ase.__version__,
        'numpy': np.__version__,
        'env': {k: os.environ.get(k, 'unset') for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')},
        'torch_interop_threads': torch.get_num_interop_threads(),
        'uptime_before': uptime_line(),
    }


def model_sets(args) -> dict[str, tuple[list | None, dict]]:
    """``label: (models, info)``: the loaded models, or the built-in sizes (``None``: built when their turn comes)."""
    if args.models:
        info = {'description': 'loaded: ' + ', '.join(args.models)}
        return {'loaded': (load_models(args.models, args.device), info)}
    sets = {}
    for label in args.model:
        cfg = MODEL_CONFIGS[label]
        desc = 'NequIPGNNModel(' + ', '.join(f'{k}={v}' for k, v in cfg.items()) + ', model_dtype=float64)'
        sets[label] = (None, {'description': desc, 'kwargs': {**_COMMON, **cfg}})
    return sets


def run_all(sets: dict, args, n_cores: int, sync) -> tuple[list[dict], dict]:
    """Time every model set on every supercell size; returns the results and the model information."""
    results, model_info = [], {}
    for label, (models, info) in sets.items():
        if models is None:
            models = build_models(MODEL_CONFIGS[label], args.members, args.device)
        info['n_params'] = sum(p.numel() for p in models[0].parameters())
        model_info[label] = info
        for repeat in args.repeats:
            results.append(run_config(label, info, models, repeat, args, n_cores, sync))
        del models
    return results, model_info


def main(argv=None) -> int:
    args = parse_args(argv)
    import nequip
    import torch
    from nequip.utils.global_state import set_global_state

    from aiida_anharmal.core.models.ensemble import available_cores

    set_global_state()
    torch.set_num_threads(1)
    n_cores = available_cores()
    cuda = args.device.startswith('cuda')
    if cuda and not torch.cuda.is_available():
        sys.exit('--device cuda: no CUDA device visible to torch')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    tag = args.tag or (f'{args.device.split(":")[0]}-{n_cores}core' + ('-quick' if args.quick else ''))

    machine = machine_info(args, n_cores, cuda)
    print(f'{machine["cpu_model"]}, {n_cores} cores; torch {torch.__version__}, nequip {nequip.__version__}')
    print(f'load before: {machine["uptime_before"]}', flush=True)
    sets = model_sets(args)

    t_start = time.perf_counter()
    results, model_info = run_all(sets, args, n_cores, sync)
    total = time.perf_counter() - t_start
    machine['uptime_after'] = uptime_line()

    note = shared_note(results)
    diffs = [d for r in results for d in r['consistency'].values()]
    report = {
        'tag': tag,
        'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'command': ' '.join(['python', *sys.argv]),
        'settings': {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ('out_dir',)},
        'machine': machine,
        'models': model_info,
        'shared_note': note,
        'max_energy_diff': max(d['max_abs_member_energy_diff_eV'] for d in diffs),
        'max_force_diff': max(d['max_abs_member_force_diff_eV_A'] for d in diffs),
        'total_wall_s': total,
        'results': results,
    }

    print('\n' + '\n'.join(table(results)))
    print('\n' + '\n'.join(goal_lines(results)))
    print(f'\nload after: {machine["uptime_after"]}; shared machine: {note}; total {total:.0f} s')
    if not args.no_write:
        json_path, md_path = write_report(args.out_dir, tag, report)
        print(f'wrote {json_path} and {md_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
