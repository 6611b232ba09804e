"""``anharmal-label``: compute energy, forces and stress of a batch of structures.

The program that :class:`aiida_anharmal.calculations.LabelCalculation` runs. It reads

* ``aiida.json``: ``engine``, ``parameters`` (passed to the engine's calculator),
  ``properties``, ``indices`` (the source index of each structure), optional ``max_seconds``
  (a time budget: no new structure is started once it is spent), ``model_file`` and, for the
  ``ensemble`` engine, ``member_files``;
* ``structures.npz``: the structures (:class:`aiida_anharmal.core.structures.frames.Frames` format),

and writes

* ``labels.jsonl``: one JSON line per structure as soon as it is done (flushed and synced, so
  a killed job keeps every finished label): ``{"index", "status", ...}`` with status ``ok``
  (``energy``, ``forces``, ``stress``, ``seconds``, ``scf_iterations``),
  ``scf_not_converged`` or ``error`` (``message``);
* ``status.json`` at the very end (:mod:`.runner`): state ``finished``, ``time_budget_spent``
  (with ``done``), ``setup_failed`` or ``failed``. Per-structure failures are data for the
  parser, not a failure of the program.

Floats are written with ``repr`` precision by :mod:`json`, so labels round-trip exactly.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..core.labelling.labellers import check_request
from ..core.structures.frames import Frames
from .runner import Program, describe, read_config

STRUCTURES_FILE = 'structures.npz'
LABELS_FILE = 'labels.jsonl'
LOG_FILE = 'label.log'


def _append_line(handle, record: dict) -> None:
    handle.write(json.dumps(record) + '\n')
    handle.flush()
    os.fsync(handle.fileno())


def setup(directory: Path) -> SimpleNamespace:
    start = time.monotonic()  # the time budget counts the loading of the engine and the model too
    config = read_config(directory)
    frames = Frames.from_npz(directory / config.get('structures_file', STRUCTURES_FILE))
    indices = config.get('indices') or list(range(len(frames)))
    if len(indices) != len(frames):
        raise ValueError(f'{len(indices)} indices for {len(frames)} structures')
    parameters = config.get('parameters', {})
    labeller, properties = check_request(config['engine'], parameters, config.get('properties'))
    model_file = config.get('model_file')
    model_path = directory / model_file if model_file else None
    member_paths = [directory / name for name in config.get('member_files') or []]
    calculator = labeller.make_calculator(
        parameters, model_path=model_path, directory=directory, member_paths=member_paths or None
    )
    return SimpleNamespace(
        directory=directory,
        frames=frames,
        indices=indices,
        labeller=labeller,
        properties=properties,
        calculator=calculator,
        max_seconds=config.get('max_seconds'),
        start=start,
    )


def label_one(job: SimpleNamespace, local: int, source_index: int) -> dict:
    """The record of one structure: its labels, or why it has none (never raises)."""
    atoms = job.frames.get_atoms(local, with_labels=False)
    atoms.calc = job.calculator
    t0 = time.monotonic()
    record = {'index': int(source_index)}
    try:
        record['energy'] = float(atoms.get_potential_energy())
        if 'forces' in job.properties:
            record['forces'] = np.asarray(atoms.get_forces(), dtype=float).tolist()
        if 'stress' in job.properties:
            record['stress'] = np.asarray(atoms.get_stress(voigt=True), dtype=float).tolist()
        values = [record['energy'], *np.ravel(record.get('forces', [])), *record.get('stress', [])]
        if not np.all(np.isfinite(values)):
            raise FloatingPointError('the engine returned a non-finite energy, force or stress')
        record['status'] = 'ok'
        record['scf_iterations'] = job.labeller.scf_iterations(job.calculator)
    except Exception as exc:  # noqa: BLE001 - classify and record, never lose the batch
        status = 'scf_not_converged' if job.labeller.is_scf_failure(exc) else 'error'
        record = {'index': int(source_index), 'status': status, 'message': describe(exc)}
        PROGRAM.logger.warning('structure %d failed: %s', source_index, record['message'])
        PROGRAM.logger.debug(traceback.format_exc())
    record['seconds'] = time.monotonic() - t0
    return record


def run(job: SimpleNamespace) -> dict:
    logger = PROGRAM.logger
    logger.info(
        'engine %s, %d structures, properties %s', job.labeller.name, len(job.frames), ', '.join(job.properties)
    )
    done = 0
    with open(job.directory / LABELS_FILE, 'a', encoding='utf-8') as handle:
        for local, source_index in enumerate(job.indices):
            elapsed = time.monotonic() - job.start
            if job.max_seconds is not None and done > 0 and elapsed >= job.max_seconds:
                logger.info('time budget of %s s spent after %d structures', job.max_seconds, done)
                return {'state': 'time_budget_spent', 'message': f'stopped after {elapsed:.1f} s', 'done': done}
            record = label_one(job, local, source_index)
            _append_line(handle, record)
            done += 1
            logger.info('structure %d: %s (%.2f s)', source_index, record['status'], record['seconds'])
    return {'state': 'finished', 'done': done}


PROGRAM = Program('anharmal-label', __doc__.split('\n\n')[0], setup, run, log_file=LOG_FILE)
main = PROGRAM.main
