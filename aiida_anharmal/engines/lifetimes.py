"""``anharmal-lifetimes``: an NVE trajectory and harmonic force constants -> the lifetime of every mode.

The program that :class:`aiida_anharmal.calculations.LifetimeCalculation` runs. It reads

* ``aiida.json``: ``dho`` (also the damped-oscillator cross-check), ``shell_tolerance`` (THz),
  ``min_frames``;
* ``phonopy.yaml``: the harmonic reference with its force constants (the ``ForceConstants`` node's file);
* ``trajectory.npz``: ``positions`` (A), ``velocities`` (A/fs), ``cells`` (A) and ``times`` (fs),
  in the atom order of the force constants' supercell,

checks the frames (:func:`aiida_anharmal.core.phonons.normal_modes.check_frames`) before any compute,
projects them on the harmonic modes and fits every mode's energy autocorrelation
(:func:`aiida_anharmal.core.phonons.lifetimes.lifetime_table`). Writes ``lifetimes.npz`` (the per-mode
table), ``summary.json`` (:func:`summary`) and ``status.json`` (states ``finished``,
``setup_failed``, ``failed``; see :mod:`.runner`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .runner import Program, read_config

PHONOPY_FILE = 'phonopy.yaml'
TRAJECTORY_FILE = 'trajectory.npz'
LIFETIMES_FILE = 'lifetimes.npz'
SUMMARY_FILE = 'summary.json'


def frame_interval(times) -> float:
    """The time between frames (ps) of ``times`` (fs), which must be evenly spaced."""
    steps = np.diff(np.asarray(times, dtype=float))
    if steps.size == 0 or steps.min() <= 0 or np.ptp(steps) > 1e-6 * max(abs(steps.mean()), 1e-12):
        raise ValueError('the frames must be evenly spaced in time (one stride, no gaps or restarts out of order)')
    return float(steps.mean()) / 1000.0


def summary(table: dict, frames: int, dt: float) -> dict:
    """The run (frames, interval, length) and :func:`aiida_anharmal.core.phonons.lifetimes.mode_summary` of the table."""
    from ..core.phonons.lifetimes import mode_summary

    return {
        'frames': frames,
        'frame_interval': dt,
        't_max': frames * dt,
        **mode_summary(table['frequency'], table['tau'], table['flag']),
    }


def setup(directory: Path) -> SimpleNamespace:
    from ..core.phonons.harmonic import load_phonopy_yaml
    from ..core.phonons.normal_modes import MIN_FRAMES, check_frames, commensurate_modes

    config = read_config(directory)
    modes = commensurate_modes(load_phonopy_yaml(directory / PHONOPY_FILE))
    with np.load(directory / TRAJECTORY_FILE) as data:
        arrays = {name: data[name] for name in data.files}
    velocities = arrays.get('velocities')
    check_frames(modes, arrays['positions'], velocities, arrays.get('cells'), int(config.get('min_frames', MIN_FRAMES)))
    return SimpleNamespace(
        directory=directory,
        start=time.monotonic(),
        modes=modes,
        positions=arrays['positions'],
        velocities=velocities,
        dt=frame_interval(arrays['times']),
        dho=bool(config.get('dho', False)),
        shell_tolerance=float(config.get('shell_tolerance', 1e-3)),
    )


def run(job: SimpleNamespace) -> dict:
    from ..core.phonons.lifetimes import lifetime_table
    from ..core.phonons.normal_modes import project

    PROGRAM.logger.info('%d frames, %d modes, %.4f ps apart', len(job.positions), job.modes.frequencies.size, job.dt)
    projection = project(job.modes, job.positions, job.velocities)
    table = lifetime_table(job.modes, projection, job.dt, job.shell_tolerance, dho=job.dho)
    np.savez(job.directory / LIFETIMES_FILE, **table)
    result = summary(table, len(job.positions), job.dt)
    result['seconds'] = round(time.monotonic() - job.start, 3)
    (job.directory / SUMMARY_FILE).write_text(json.dumps(result, indent=1))
    return {'state': 'finished'}


PROGRAM = Program('anharmal-lifetimes', __doc__.split('\n\n')[0], setup, run)
main = PROGRAM.main
