"""``anharmal-label``: compute energy, forces and stress of a batch of structures.

The program that :class:`aiida_anharmal.calculations.LabelCalculation` runs. It reads

* ``aiida.json``: ``engine``, ``parameters`` (passed to the engine's calculator),
  ``properties``, ``indices`` (the source index of each structure), optional ``max_seconds``
  (a time budget: no new structure is started once it is spent) and ``model_file``;
* ``structures.npz``: the structures (:class:`aiida_anharmal.core.frames.Frames` format),

and writes

* ``labels.jsonl``: one JSON line per structure as soon as it is done (flushed and synced, so
  a killed job keeps every finished label): ``{"index", "status", ...}`` with status ``ok``
  (``energy``, ``forces``, ``stress``, ``seconds``, ``scf_iterations``),
  ``scf_not_converged`` or ``error`` (``message``);
* ``status.json`` at the very end: ``{"state": "finished" | "time_budget_spent" |
  "setup_failed", ...}``. A job without it was killed (for instance by the scheduler's walltime).

Floats are written with ``repr`` precision by :mod:`json`, so labels round-trip exactly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from ..core.frames import Frames
from ..core.labellers import check_request

LOGGER = logging.getLogger('anharmal-label')

INPUT_FILE = 'aiida.json'
STRUCTURES_FILE = 'structures.npz'
LABELS_FILE = 'labels.jsonl'
STATUS_FILE = 'status.json'
LOG_FILE = 'label.log'


def _append_line(handle, record: dict) -> None:
    handle.write(json.dumps(record) + '\n')
    handle.flush()
    os.fsync(handle.fileno())


def _write_status(directory: Path, **status) -> None:
    (directory / STATUS_FILE).write_text(json.dumps(status, indent=1))


def label_structures(directory: str | Path = '.') -> dict:
    """Label the structures described by ``aiida.json`` in ``directory``; return the final status."""
    directory = Path(directory)
    start = time.monotonic()
    try:
        config = json.loads((directory / INPUT_FILE).read_text())
        frames = Frames.from_npz(directory / config.get('structures_file', STRUCTURES_FILE))
        indices = config.get('indices') or list(range(len(frames)))
        if len(indices) != len(frames):
            raise ValueError(f'{len(indices)} indices for {len(frames)} structures')
        labeller, properties = check_request(config['engine'], config.get('parameters', {}), config.get('properties'))
        model_file = config.get('model_file')
        model_path = directory / model_file if model_file else None
        parameters = config.get('parameters', {})
        calculator = labeller.make_calculator(parameters, model_path=model_path, directory=directory)
    except Exception as exc:
        LOGGER.exception('setup failed')
        status = {'state': 'setup_failed', 'message': f'{type(exc).__name__}: {exc}'}
        _write_status(directory, **status)
        return status

    max_seconds = config.get('max_seconds')
    LOGGER.info('engine %s, %d structures, properties %s', labeller.name, len(frames), ', '.join(properties))
    done = 0
    with open(directory / LABELS_FILE, 'a', encoding='utf-8') as handle:
        for local, source_index in enumerate(indices):
            elapsed = time.monotonic() - start
            if max_seconds is not None and done > 0 and elapsed >= max_seconds:
                status = {'state': 'time_budget_spent', 'message': f'stopped after {elapsed:.1f} s', 'done': done}
                LOGGER.info('time budget of %s s spent after %d structures', max_seconds, done)
                _write_status(directory, **status)
                return status
            atoms = frames.get_atoms(local, with_labels=False)
            atoms.calc = calculator
            t0 = time.monotonic()
            record = {'index': int(source_index)}
            try:
                record['energy'] = float(atoms.get_potential_energy())
                if 'forces' in properties:
                    record['forces'] = np.asarray(atoms.get_forces(), dtype=float).tolist()
                if 'stress' in properties:
                    record['stress'] = np.asarray(atoms.get_stress(voigt=True), dtype=float).tolist()
                values = [record['energy'], *np.ravel(record.get('forces', [])), *record.get('stress', [])]
                if not np.all(np.isfinite(values)):
                    raise FloatingPointError('the engine returned a non-finite energy, force or stress')
                record['status'] = 'ok'
                record['scf_iterations'] = labeller.scf_iterations(calculator)
            except Exception as exc:  # noqa: BLE001 - classify and record, never lose the batch
                record = {
                    'index': int(source_index),
                    'status': 'scf_not_converged' if labeller.is_scf_failure(exc) else 'error',
                    'message': f'{type(exc).__name__}: {exc}'.strip(),
                }
                LOGGER.warning('structure %d failed: %s', source_index, record['message'])
                LOGGER.debug(traceback.format_exc())
            record['seconds'] = time.monotonic() - t0
            _append_line(handle, record)
            done += 1
            LOGGER.info('structure %d: %s (%.2f s)', source_index, record['status'], record['seconds'])

    status = {'state': 'finished', 'done': done, 'seconds': time.monotonic() - start}
    _write_status(directory, **status)
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='anharmal-label', description=__doc__.split('\n\n')[0])
    parser.add_argument('directory', nargs='?', default='.', help='folder with aiida.json and structures.npz')
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='%(asctime)s %(levelname)s %(message)s',
        handlers=[logging.FileHandler(Path(args.directory) / LOG_FILE), logging.StreamHandler(sys.stdout)],
    )
    status = label_structures(args.directory)
    # Exit 0 whenever the program itself worked: per-structure failures are data for the parser.
    return 0 if status['state'] != 'setup_failed' else 2


if __name__ == '__main__':
    sys.exit(main())
