"""``anharmal-md``: Langevin/NVE molecular dynamics on an ensemble's mean forces, with per-frame uncertainty.

The program that :class:`aiida_anharmal.calculations.MDCalculation` runs. It reads

* ``aiida.json``: ``md`` (fields of :class:`aiida_anharmal.core.md.MDSettings`), ``guards``
  (``min_distance``, ``max_force``, ``max_uncertainty``, ``temperature_factor``; ``null`` leaves a
  guard out), ``member_files``, optional ``workers``, ``harmonic_file`` (A and UCE_A),
  ``max_seconds`` (time budget: the run stops cleanly at a saved frame);
* ``start.npz`` (``numbers``, ``positions``, ``cell``, ``pbc``, optional ``velocities`` in A/fs), or
  ``checkpoint.json`` + ``frames.bin`` of an earlier run to continue (the same trajectory);

and writes ``frames.bin`` / ``frames.json`` (every saved frame, see
:class:`aiida_anharmal.core.md.FrameRecorder`), ``checkpoint.json`` and ``status.json``
``{"state": "finished" | guard reason | "time_budget_spent" | "setup_failed" | "failed", ...}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

import numpy as np

from . import setup_failed

LOGGER = logging.getLogger('anharmal-md')

INPUT_FILE = 'aiida.json'
START_FILE = 'start.npz'
CHECKPOINT_FILE = 'checkpoint.json'
FRAMES_FILE = 'frames.bin'
LAYOUT_FILE = 'frames.json'
STATUS_FILE = 'status.json'

GUARD_KEYS = ('min_distance', 'max_force', 'max_uncertainty', 'temperature_factor')


def read_start(path: Path):
    from ase import Atoms, units

    with np.load(path) as data:
        atoms = Atoms(numbers=data['numbers'], positions=data['positions'], cell=data['cell'], pbc=data['pbc'])
        if 'velocities' in data.files:
            atoms.set_velocities(data['velocities'] / units.fs)
    return atoms


def run(directory: str | Path = '.') -> dict:
    from ..core.ensemble import EnsembleCalculator
    from ..core.md import MDSettings, default_guards, read_checkpoint, run_md
    from .evaluate import read_harmonic

    directory = Path(directory)
    try:
        config = json.loads((directory / INPUT_FILE).read_text())
        settings = MDSettings(**config['md'])
        settings.check()
        guards = default_guards(
            settings, **{k: config.get('guards', {}).get(k, d) for k, d in zip(GUARD_KEYS, (0.5, 20.0, 2.0, 3.0))}
        )
        checkpoint = read_checkpoint(directory / CHECKPOINT_FILE) if (directory / CHECKPOINT_FILE).exists() else None
        atoms = read_start(directory / START_FILE)
        calculator = EnsembleCalculator.from_files(
            [directory / f for f in config['member_files']], workers=config.get('workers')
        )
        calculator.check_atoms(atoms)
        harmonic = read_harmonic(directory / config['harmonic_file']) if config.get('harmonic_file') else None
    except Exception as exc:
        LOGGER.exception('setup failed')
        return setup_failed(directory, exc)
    try:
        where = f'continuing from step {checkpoint["step"]}' if checkpoint else 'from the start structure'
        LOGGER.info('%s MD, %d atoms, %d members, %s', settings.dynamics, len(atoms), calculator.n_members, where)
        result = run_md(
            atoms,
            calculator,
            settings,
            directory,
            guards=guards,
            harmonic=harmonic,
            checkpoint=checkpoint,
            max_seconds=config.get('max_seconds'),
        )
        status = {
            'state': result.state,
            'message': result.message,
            'last_step': result.last_step,
            'frames_written': result.frames_written,
            'seconds': result.seconds,
            'timing': result.timing,
        }
    except Exception as exc:  # noqa: BLE001
        LOGGER.error(traceback.format_exc())
        status = {'state': 'failed', 'message': f'{type(exc).__name__}: {exc}'}
    (directory / STATUS_FILE).write_text(json.dumps(status, indent=1))
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='anharmal-md', description=__doc__.split('\n\n')[0])
    parser.add_argument('directory', nargs='?', default='.')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    status = run(args.directory)
    print(json.dumps(status))
    return 0 if status['state'] in ('finished',) else 1


if __name__ == '__main__':
    sys.exit(main())
