"""Cost of the fully anharmonic lifetime analysis: 10^4 frames of 256 atoms, projection and fits.

EMT Cu, the conventional cell 4 x 4 x 4 (256 atoms, 64 q-points of the fcc primitive cell, 768
modes); frames of random displacements (0.05 A) and velocities, since the cost does not depend on
the physics. Times the three stages (commensurate modes; projection on them; autocorrelations
and fits of every mode, :func:`aiida_anharmal.core.phonons.lifetimes.lifetime_table`) and reports the peak
resident memory of the process. The goal: within 60 s and 4 GB on 2 cores, memory and
time linear in the frames (``--frames`` at two sizes shows it). Prints and writes
``benchmarks/results/lifetimes_<tag>.md``::

    OMP_NUM_THREADS=1 python benchmarks/lifetimes.py [--frames 10000 5000] [--tag cpu-2core]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _timing import cpu_model, uptime_line

RESULTS = Path(__file__).parent / 'results'


def cu_phonon(repeat: int):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from aiida_anharmal.core.phonons.harmonic import force_constants_with

    return force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6, cubic=True), [repeat] * 3)


def run(frames: int, phonon) -> dict:
    from aiida_anharmal.core.phonons.lifetimes import lifetime_table
    from aiida_anharmal.core.phonons.normal_modes import commensurate_modes, project

    start = time.perf_counter()
    modes = commensurate_modes(phonon)
    t_modes = time.perf_counter() - start
    rng = np.random.default_rng(0)
    n = len(modes.masses)
    positions = modes.positions + 0.05 * rng.normal(size=(frames, n, 3))
    velocities = 0.005 * rng.normal(size=(frames, n, 3))
    start = time.perf_counter()
    projection = project(modes, positions, velocities)
    t_project = time.perf_counter() - start
    start = time.perf_counter()
    table = lifetime_table(modes, projection, dt=0.005)
    t_fit = time.perf_counter() - start
    return {
        'frames': frames,
        'atoms': n,
        'modes': int(table['frequency'].size),
        'seconds_modes': t_modes,
        'seconds_projection': t_project,
        'seconds_fits': t_fit,
        'seconds_total': t_modes + t_project + t_fit,
        'flags': {flag: int((table['flag'] == flag).sum()) for flag in np.unique(table['flag'])},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, nargs='+', default=[5000, 10000])
    parser.add_argument('--repeat', type=int, default=4, help='conventional cells per direction (4: 256 atoms)')
    parser.add_argument('--tag', default='cpu-2core')
    args = parser.parse_args()
    phonon = cu_phonon(args.repeat)
    rows = [run(frames, phonon) for frames in args.frames]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    lines = [
        f'# Lifetime analysis cost ({args.tag})',
        '',
        f'Machine: {cpu_model()}; {uptime_line()}',
        f'Command: `OMP_NUM_THREADS=1 python benchmarks/lifetimes.py --frames {" ".join(map(str, args.frames))}`',
        '',
        '| frames | atoms | modes | modes s | projection s | fits s | total s |',
        '|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for r in rows:
        lines.append(
            f'| {r["frames"]} | {r["atoms"]} | {r["modes"]} | {r["seconds_modes"]:.2f} | '
            f'{r["seconds_projection"]:.2f} | {r["seconds_fits"]:.2f} | {r["seconds_total"]:.2f} |'
        )
    ratio = rows[-1]['seconds_total'] / rows[0]['seconds_total']
    lines += [
        '',
        (
            f'Time ratio {rows[-1]["frames"]} / {rows[0]["frames"]} frames: {ratio:.2f} '
            f'(frames ratio {rows[-1]["frames"] / rows[0]["frames"]:.2f}).'
        ),
        (
            f'Peak resident memory of the process (all runs): {peak_gb:.2f} GB. Goal: 10^4 frames x 256 atoms '
            'within 60 s and 4 GB on 2 cores.'
        ),
    ]
    text = '\n'.join(lines) + '\n'
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'lifetimes_{args.tag}.md').write_text(text)
    (RESULTS / f'lifetimes_{args.tag}.json').write_text(json.dumps({'rows': rows, 'peak_gb': peak_gb}, indent=1))


if __name__ == '__main__':
    main()
