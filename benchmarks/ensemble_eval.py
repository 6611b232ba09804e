#!/usr/bin/env python
"""Benchmark: time per energy+forces call of one nequip model vs an ensemble of N members.

Variants, timed side by side in one run (same models, same structure):

* ``single``      one model, nequip's own ``NequIPCalculator``, torch on 1 thread  -> the baseline (a)
* ``single_all``  the same, torch on all cores ('single, all cores')
* ``loop``        N separate ``NequIPCalculator`` objects called one after the other, each building
                  its own neighbour list (torch on 1 thread)                        -> (b)
* ``ens_w<W>``    ``aiida_anharmal.core.ensemble.EnsembleCalculator(models, workers=W)``: one
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
"""

from __future__ import annotations

import os

# thread settings must be in place before numpy / torch are imported
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse
import datetime
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / 'results'
TYPE_NAMES = ['Cu', 'I']

_COMMON = dict(
    model_dtype='float64',
    type_names=TYPE_NAMES,
    avg_num_neighbors=20.0,
    per_type_energy_shifts={'Cu': 0.0, 'I': 0.0},
    per_type_energy_scales={'Cu': 1.0, 'I': 1.0},
)

# NequIPGNNModel keyword arguments of the built-in model sizes (float64, species Cu, I).
MODEL_CONFIGS = {
    'fast': dict(
        r_max=4.0, l_max=1, parity=True, num_layers=2, num_features=16, radial_mlp_depth=1, radial_mlp_width=16
    ),
    # Kang et al.: the values not given in the paper summary (parity, radial MLP) are those of the
    # bundled reference model aiida_anharmal/resources/cui_reference (nequip 0.5.6 config:
    # parity false, invariant_layers 2, invariant_neurons 32, num_basis 8).
    'paper': dict(
        r_max=5.0,
        l_max=3,
        parity=False,
        num_layers=4,
        num_features=32,
        num_bessels=8,
        radial_mlp_depth=2,
        radial_mlp_width=32,
    ),
    # not run by default: 'paper' with parity=True and nequip's default radial MLP (1 x 128);
    # several times slower than 'paper'
    'paper-parity': dict(
        r_max=5.0,
        l_max=3,
        parity=True,
        num_layers=4,
        num_features=32,
        num_bessels=8,
        radial_mlp_depth=1,
        radial_mlp_width=128,
    ),
}

VARIANT_TEXT = {
    'single': '(a) one model, NequIPCalculator, torch 1 thread',
    'single_all': '(a) one model, NequIPCalculator, torch on all cores',
    'loop': '(b) loop of N NequIPCalculators (N neighbour lists), torch 1 thread',
}


# ---------------------------------------------------------------------------- machine state


def _read_cpu_busy_s() -> float | None:
    """CPU seconds spent busy by the whole machine since boot (all cores), from /proc/stat."""
    try:
        with open('/proc/stat') as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...
    values = [int(v) for v in fields[1:]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + (values[7] if len(values) > 7 else 0)
    return busy / os.sysconf('SC_CLK_TCK')


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path('/proc/loadavg').read_text().split()[:3]]
    except OSError:
        return None


def wait_idle(max_other: float, timeout: float, window: float = 10.0) -> None:
    """Wait (at most ``timeout`` s) until other processes keep fewer than ``max_other`` cores busy over ``window`` s."""
    t_end = time.perf_counter() + timeout
    while True:
        meter = MachineMeter()
        time.sleep(window)
        busy = meter.read().get('other_cores_busy')
        if busy is None or busy <= max_other:
            return
        if time.perf_counter() > t_end:
            print(f'   machine still busy ({busy:.2f} cores) after {timeout:.0f} s: measuring anyway', flush=True)
            return
        print(f'   waiting for an idle machine: other processes keep {busy:.2f} cores busy', flush=True)


class MachineMeter:
    """CPU used on the machine by processes other than this one while the meter runs."""

    def __init__(self):
        self.wall0 = time.perf_counter()
        self.busy0 = _read_cpu_busy_s()
        self.self0 = _self_cpu_s()
        self.load0 = _loadavg()

    def read(self) -> dict:
        wall = time.perf_counter() - self.wall0
        busy1 = _read_cpu_busy_s()
        own = _self_cpu_s() - self.self0
        out = {
            'wall_s': round(wall, 2),
            'own_cpu_s': round(own, 2),
            'loadavg_start': self.load0,
            'loadavg_end': _loadavg(),
        }
        if busy1 is not None and self.busy0 is not None and wall > 0:
            other = max(0.0, (busy1 - self.busy0) - own)
            out['other_cpu_s'] = round(other, 2)
            # average number of cores kept busy by other processes during the measurement
            out['other_cores_busy'] = round(other / wall, 3)
        return out


def cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def uptime_line() -> str:
    try:
        return subprocess.run(['uptime'], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ' '.join(str(x) for x in (_loadavg() or []))


# ---------------------------------------------------------------------------- models & structures


def build_models(config: dict, n_members: int, device: str) -> list:
    from nequip.model import NequIPGNNModel

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        models = [NequIPGNNModel(seed=seed, **_COMMON, **config).eval().to(device) for seed in range(n_members)]
    return models


def load_models(paths: list[str], device: str) -> list:
    from aiida_anharmal.core.ensemble import load_member

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return [load_member(p, device) for p in paths]


def make_structure(repeat: int, seed: int):
    from ase.build import bulk

    atoms = bulk('CuI', 'zincblende', a=6.05, cubic=True).repeat((repeat, repeat, repeat))
    atoms.rattle(stdev=0.05, seed=seed)
    return atoms


# ---------------------------------------------------------------------------- variants & timing


@dataclass
class Variant:
    name: str
    text: str
    calcs: list
    torch_threads: int
    workers: int | None = None
    warmup_s: list = field(default_factory=list)
    times_s: list = field(default_factory=list)

    def call(self, atoms, sync) -> float:
        """One timed energy+forces evaluation (every calculator recomputes from scratch)."""
        import torch

        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        sync()
        t0 = time.perf_counter()
        for calc in self.calcs:
            calc.reset()
            calc.get_potential_energy(atoms)
            calc.get_forces(atoms)
        sync()
        return time.perf_counter() - t0

    def done(self, min_time: float, min_calls: int, max_time: float) -> bool:
        n, total = len(self.times_s), sum(self.times_s)
        if n >= min_calls and total >= min_time:
            return True
        # slow variants: stop at max_time, but never with fewer than 2 timed calls
        return n >= 2 and total >= max_time


def warm_up(variant: Variant, atoms, sync, n_warmup: int, slow_call_s: float) -> None:
    """``n_warmup`` untimed calls; fewer if a call is slower than ``slow_call_s``.

    The one-off costs of a first call are fixed (a fraction of a second); for calls of seconds
    one warm-up call covers them, and further ones would only cost time.
    """
    for _ in range(n_warmup):
        dt = variant.call(atoms, sync)
        variant.warmup_s.append(dt)
        if dt > slow_call_s:
            break


def measure(variants: list[Variant], atoms, sync, args) -> None:
    """Round robin over the variants, each round a time slice per variant (at least one call)."""
    active = list(variants)
    while active:
        for variant in list(active):
            t_slice = time.perf_counter()
            while True:
                variant.times_s.append(variant.call(atoms, sync))
                finished = variant.done(args.min_time, args.min_calls, args.max_time)
                if finished or time.perf_counter() - t_slice >= args.slice_time:
                    break
            if finished:
                active.remove(variant)


def summarize(variant: Variant) -> dict:
    ms = [1e3 * t for t in variant.times_s]
    return {
        'name': variant.name,
        'text': variant.text,
        'torch_threads': variant.torch_threads,
        'workers': variant.workers,
        'n_calculators': len(variant.calcs),
        'n_warmup': len(variant.warmup_s),
        'warmup_ms': [round(1e3 * t, 3) for t in variant.warmup_s],
        'n_calls': len(ms),
        'median_ms': statistics.median(ms),
        'mean_ms': statistics.fmean(ms),
        'min_ms': min(ms),
        'max_ms': max(ms),
        'stdev_ms': statistics.stdev(ms) if len(ms) > 1 else 0.0,
        'times_ms': [round(t, 3) for t in ms],
    }


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


def run_config(label: str, model_info: dict, models: list, repeat: int, args, n_cores: int, sync) -> dict:
    import torch
    from nequip.integrations.ase import NequIPCalculator
    from nequip.integrations.utils import basic_transforms

    from aiida_anharmal.core.ensemble import EnsembleCalculator, model_species_and_cutoff

    type_names, r_max = model_species_and_cutoff(models[0])
    atoms = make_structure(repeat, args.seed)
    missing = sorted(set(atoms.get_chemical_symbols()) - set(type_names))
    if missing:
        sys.exit(f'the benchmark structure is CuI, the models know only {type_names} (missing {missing})')

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
    variants += ensembles

    n_edges = int(ensembles[0].calcs[0].graph(atoms)['edge_index'].shape[1])
    print(
        f'\n== {label}: {len(atoms)} atoms, {n} members, r_max {r_max}, '
        f'{n_edges} directed edges ({n_edges / len(atoms):.1f} neighbours/atom)',
        flush=True,
    )

    rejected = []
    for attempt in range(1 + args.retries):
        if args.max_other_load is not None:
            wait_idle(args.max_other_load, args.idle_timeout)
        meter = MachineMeter()
        for variant in variants:
            variant.warmup_s, variant.times_s = [], []
            warm_up(variant, atoms, sync, args.warmup, args.slow_call)
            print(
                f'   warm-up {variant.name:<11} ' + ' '.join(f'{1e3 * t:.1f}' for t in variant.warmup_s) + ' ms',
                flush=True,
            )
        measure(variants, atoms, sync, args)
        machine = meter.read()
        torch.set_num_threads(1)
        busy = machine.get('other_cores_busy')
        if args.max_other_load is None or busy is None or busy <= args.max_other_load or attempt == args.retries:
            break
        rejected.append({'machine_during': machine, 'variants': [summarize(v) for v in variants]})
        print(f'   other processes kept {busy:.2f} cores busy: block discarded, measuring again', flush=True)

    rows = [summarize(v) for v in variants]
    base = rows[0]['median_ms']
    for row in rows:
        row['ratio_to_single'] = row['median_ms'] / base
        print(
            f'   {row["name"]:<11} {row["n_calls"]:3d} calls  median {row["median_ms"]:10.2f} ms  '
            f'(min {row["min_ms"]:.2f}, max {row["max_ms"]:.2f})  / single = {row["ratio_to_single"]:.2f}',
            flush=True,
        )
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


# ---------------------------------------------------------------------------- report


def table(results: list[dict]) -> list[str]:
    lines = [
        '| model | atoms | variant | torch threads | calls | median ms/call | min–max ms | / single |',
        '|---|---:|---|---:|---:|---:|---:|---:|',
    ]
    for res in results:
        for row in res['variants']:
            name = row['name'] if row['workers'] is None else f'ensemble W={row["workers"]}'
            names = {'single': 'single (a)', 'single_all': 'single, all cores', 'loop': f'loop of {res["n_members"]}'}
            name = names.get(name, name)
            lines.append(
                f'| {res["model"]} | {res["n_atoms"]} | {name} | {row["torch_threads"]} | {row["n_calls"]} | '
                f'{row["median_ms"]:.1f} | {row["min_ms"]:.1f}–{row["max_ms"]:.1f} | {row["ratio_to_single"]:.2f} |'
            )
    return lines


def goal_lines(results: list[dict]) -> list[str]:
    lines = [
        '| model | atoms | loop/single (goal ≥ 6) | ensemble W=1 / single | ensemble best W / single (goal ≤ 3.5) '
        '| ensemble best W / single on all cores | other processes (cores busy) |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for res in results:
        rows = {r['name']: r for r in res['variants']}
        ens = [r for r in res['variants'] if r['workers'] is not None]
        best = min(ens, key=lambda r: r['ratio_to_single'])
        w1 = rows.get('ens_w1')
        other = res['machine_during'].get('other_cores_busy')
        w1_text = f'{w1["ratio_to_single"]:.2f}' if w1 else '–'
        verdict = 'met' if best['ratio_to_single'] <= 3.5 else 'not met'
        lines.append(
            f'| {res["model"]} | {res["n_atoms"]} | {rows["loop"]["ratio_to_single"]:.2f} | {w1_text} | '
            f'{best["ratio_to_single"]:.2f} (W={best["workers"]}, {verdict}) | '
            f'{best["median_ms"] / rows["single_all"]["median_ms"]:.2f} | '
            f'{other if other is not None else "n/a"} |'
        )
    return lines


def write_markdown(path: Path, report: dict) -> None:
    m = report['machine']
    a = report['settings']
    measured = sum(r['machine_during']['wall_s'] for r in report['results'])
    busy_blocks = [
        f'{r["model"]}/{r["n_atoms"]} atoms ({r["machine_during"]["other_cores_busy"]:.2f} cores)'
        for r in report['results']
        if a['max_other_load'] is not None and r['machine_during'].get('other_cores_busy', 0.0) > a['max_other_load']
    ]
    lines = [
        f'# Ensemble evaluation benchmark ({report["tag"]})',
        '',
        f'Date: {report["date"]}  ',
        f'Command: `{report["command"]}`  ',
        f'Machine: {m["cpu_model"]}, {m["n_cores"]} cores available to the process ({m["os_cpu_count"]} online), '
        f'device `{a["device"]}`{", " + m["cuda_device"] if m.get("cuda_device") else ""}  ',
        f'Software: Python {m["python"]}, torch {m["torch"]}, nequip {m["nequip"]}, ase {m["ase"]}, '
        f'numpy {m["numpy"]}  ',
        'Threads: ' + ', '.join(f'{k}={v}' for k, v in m['env'].items()) + '; torch.set_num_threads as in the table '
        '(ensemble W>1: each member thread runs torch on 1 thread)  ',
        f'Load (`uptime`, counts this benchmark too): at start `{m["uptime_before"]}`; at end `{m["uptime_after"]}`  ',
        f'Shared machine: {report["shared_note"]}',
        '',
        'Per-call time of energy + forces (`calc.reset()` before every call, so the neighbour list and all '
        'members are recomputed). Ratios are medians divided by the median of (a) on 1 thread.',
        '',
        *table(report['results']),
        '',
        '## Against the goal of the issue',
        '',
        *goal_lines(report['results']),
        '',
        '## Models',
        '',
    ]
    for label, info in report['models'].items():
        lines.append(f'- `{label}`: {info["description"]}; {info["n_params"]} parameters per member')
    lines += [
        '',
        '## Method',
        '',
        f'- Structure: CuI zincblende, a = 6.05 Å, 8-atom cubic cell repeated n×n×n, rattled with stdev 0.05 Å '
        f'(seed {a["seed"]}).',
        f'- Models: {a["members"]} members with random weights (seeds 0..{a["members"] - 1}), float64, eager mode; '
        '(a) uses member 0.',
        f'- Warm-up: {a["warmup"]} untimed calls per variant, stopping after the first call slower than '
        f'{a["slow_call"]} s (one-off costs are a fraction of a second).',
        '- Timing: `time.perf_counter` around each call'
        + ('; `torch.cuda.synchronize()` before both readings' if a['device'].startswith('cuda') else '')
        + f'. Variants interleaved round robin in {a["slice_time"]} s slices; a variant stops once it has '
        f'≥ {a["min_calls"]} calls '
        f'and ≥ {a["min_time"]} s, or ≥ 2 calls and ≥ {a["max_time"]} s (slow variants).',
        '- "other processes (cores busy)": CPU time used by all other processes during the block '
        '(/proc/stat busy time, steal included, minus this process), divided by the wall time.',
        (
            f'- Blocks during which other processes kept more than {a["max_other_load"]} cores busy were discarded '
            f'and measured again (up to {a["retries"]} times); discarded: '
            f'{sum(len(r["discarded_attempts"]) for r in report["results"])}.'
            + (
                ' Still busy on the last attempt, kept as measured: ' + ', '.join(busy_blocks) + '.'
                if busy_blocks
                else ''
            )
            if a['max_other_load'] is not None
            else '- Blocks were not re-measured when the machine was busy (no --max-other-load).'
        ),
        '- Members of the ensemble were checked against the separate calculators: largest differences '
        f'{report["max_energy_diff"]:.2e} eV (energy), {report["max_force_diff"]:.2e} eV/Å (forces).',
        f'- Run time: {measured:.0f} s for the blocks kept; {report["total_wall_s"]:.0f} s in all, including '
        'waits for an idle machine and discarded blocks.',
        '',
    ]
    path.write_text('\n'.join(lines))


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
        help='wait until other processes keep fewer cores than this busy, and measure a block again '
        'if they kept more busy while it ran (e.g. 0.2; default: measure regardless)',
    )
    p.add_argument('--retries', type=int, default=3, help='re-measurements of a busy block (with --max-other-load)')
    p.add_argument('--idle-timeout', type=float, default=900.0, help='longest wait for an idle machine (s)')
    p.add_argument('--seed', type=int, default=0, help='rattle seed')
    p.add_argument('--tag', help="results file tag (default '<device>-<n>core', plus '-quick' for --quick)")
    p.add_argument('--out-dir', type=Path, default=RESULTS_DIR)
    p.add_argument('--no-write', action='store_true', help='print only')
    args = p.parse_args(argv)

    quick = args.quick
    defaults = dict(
        model=['fast'] if quick else ['fast', 'paper'],
        repeats=[2] if quick else [2, 3],
        warmup=1 if quick else 3,
        min_time=0.5 if quick else 3.0,
        min_calls=3 if quick else 5,
        max_time=5.0 if quick else 30.0,
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    workers = args.workers or ['1', 'default']
    args.workers = [None if w == 'default' else int(w) for w in workers]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import ase
    import nequip
    import torch
    from nequip.utils.global_state import set_global_state

    from aiida_anharmal.core.ensemble import available_cores

    set_global_state()
    torch.set_num_threads(1)
    n_cores = available_cores()
    cuda = args.device.startswith('cuda')
    if cuda and not torch.cuda.is_available():
        sys.exit('--device cuda: no CUDA device visible to torch')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    tag = args.tag or (f'{args.device.split(":")[0]}-{n_cores}core' + ('-quick' if args.quick else ''))

    uptime_before = uptime_line()
    machine = {
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
        'uptime_before': uptime_before,
    }
    print(f'{machine["cpu_model"]}, {n_cores} cores; torch {torch.__version__}, nequip {nequip.__version__}')
    print(f'load before: {uptime_before}', flush=True)

    if args.models:
        info = {'description': 'loaded: ' + ', '.join(args.models)}
        model_sets = {'loaded': (load_models(args.models, args.device), info)}
    else:
        model_sets = {}
        for label in args.model:
            cfg = MODEL_CONFIGS[label]
            desc = 'NequIPGNNModel(' + ', '.join(f'{k}={v}' for k, v in cfg.items()) + ', model_dtype=float64)'
            model_sets[label] = (None, {'description': desc, 'kwargs': {**_COMMON, **cfg}})

    t_start = time.perf_counter()
    results, model_info = [], {}
    for label, (models, info) in model_sets.items():
        if models is None:
            models = build_models(MODEL_CONFIGS[label], args.members, args.device)
        info['n_params'] = sum(p.numel() for p in models[0].parameters())
        model_info[label] = info
        for repeat in args.repeats:
            results.append(run_config(label, info, models, repeat, args, n_cores, sync))
        del models
    total = time.perf_counter() - t_start
    machine['uptime_after'] = uptime_line()

    other = [r['machine_during'].get('other_cores_busy') for r in results]
    other = [x for x in other if x is not None]
    worst = max(other) if other else None
    if worst is None:
        shared_note = 'unknown (no /proc/stat)'
    elif worst < 0.1:
        shared_note = f'no: other processes used at most {worst:.2f} cores on average during any block'
    else:
        shared_note = (
            f'yes: other processes used up to {worst:.2f} cores on average during a block '
            '(see the last column of the goal table); timings with all cores busy are affected most'
        )
    diffs = [d for r in results for d in r['consistency'].values()]
    report = {
        'tag': tag,
        'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'command': ' '.join(['python', *sys.argv]),
        'settings': {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ('out_dir',)},
        'machine': machine,
        'models': model_info,
        'shared_note': shared_note,
        'max_energy_diff': max(d['max_abs_member_energy_diff_eV'] for d in diffs),
        'max_force_diff': max(d['max_abs_member_force_diff_eV_A'] for d in diffs),
        'total_wall_s': total,
        'results': results,
    }

    print('\n' + '\n'.join(table(results)))
    print('\n' + '\n'.join(goal_lines(results)))
    print(f'\nload after: {machine["uptime_after"]}; shared machine: {shared_note}; total {total:.0f} s')
    if not args.no_write:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        json_path = args.out_dir / f'ensemble_eval_{tag}.json'
        md_path = args.out_dir / f'ensemble_eval_{tag}.md'
        json_path.write_text(json.dumps(report, indent=1) + '\n')
        write_markdown(md_path, report)
        print(f'wrote {json_path} and {md_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
