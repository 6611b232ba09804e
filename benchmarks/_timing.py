"""Timing helpers of the benchmarks: how busy the machine is, and interleaved timing of calculator variants.

- :class:`MachineMeter` measures the CPU time that processes other than this one use while it
  runs (``/proc/stat``); :func:`wait_idle` waits for a quiet machine; :func:`cpu_model` and
  :func:`uptime_line` describe the machine.
- A :class:`Variant` is a list of ASE calculators timed together: :func:`warm_up` makes its untimed
  calls, :func:`measure` times the variants round robin in time slices (so that a change of load
  hits all of them alike) and :func:`summarize` turns a variant's timings into a result row.
- :func:`measure_block` does both for a list of variants, measuring again while other processes
  kept the machine busy (``args.max_other_load``); :func:`result_rows` prints and returns the rows
  with each median's ratio to the first variant's.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

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
        return subprocess.run(['uptime'], capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ' '.join(str(x) for x in (_loadavg() or []))


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


def measure_block(variants: list[Variant], atoms, args, sync) -> tuple[dict, list[dict]]:
    """Warm up and time all variants; with ``--max-other-load`` measure again while the machine was busy.

    Returns the machine state during the block kept and the discarded attempts.
    """
    import torch

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
    return machine, rejected


def result_rows(variants: list[Variant]) -> list[dict]:
    """The summaries of the variants with their ratio to ``single`` (the first), printed."""
    rows = [summarize(v) for v in variants]
    base = rows[0]['median_ms']
    for row in rows:
        row['ratio_to_single'] = row['median_ms'] / base
        print(
            f'   {row["name"]:<11} {row["n_calls"]:3d} calls  median {row["median_ms"]:10.2f} ms  '
            f'(min {row["min_ms"]:.2f}, max {row["max_ms"]:.2f})  / single = {row["ratio_to_single"]:.2f}',
            flush=True,
        )
    return rows
