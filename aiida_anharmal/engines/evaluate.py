"""``anharmal-evaluate``: an ensemble on a set of frames -> per-frame uncertainties, errors, statistics.

The program that :class:`aiida_anharmal.calculations.EvaluateCalculation` runs. It reads

* ``aiida.json``: ``member_files`` (packaged nequip models), optional ``workers``,
  ``harmonic_file`` (``.npz`` with ``positions``, ``cell``, ``force_constants``, ``numbers`` of
  the harmonic reference, for ``A`` and ``UCE_A``) and ``member_forces`` (keep every member's forces);
* ``structures.npz``: the frames (:class:`aiida_anharmal.core.frames.Frames` format),

and writes ``evaluation.npz`` (arrays of :func:`aiida_anharmal.core.evaluation.evaluate_frames`),
``statistics.json`` (:func:`aiida_anharmal.core.evaluation.set_statistics`) and
``status.json`` ``{"state": "finished" | "setup_failed" | "failed", "message"}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from ..core.frames import Frames
from . import setup_failed

LOGGER = logging.getLogger('anharmal-evaluate')

INPUT_FILE = 'aiida.json'
STRUCTURES_FILE = 'structures.npz'
EVALUATION_FILE = 'evaluation.npz'
STATISTICS_FILE = 'statistics.json'
STATUS_FILE = 'status.json'


def read_harmonic(path: Path):
    from ase.data import chemical_symbols

    from ..core.anharmonicity import HarmonicReference

    with np.load(path) as data:
        return HarmonicReference(
            positions=data['positions'],
            cell=data['cell'],
            force_constants=data['force_constants'],
            symbols=tuple(chemical_symbols[z] for z in data['numbers']),
        )


def evaluate(directory: str | Path = '.') -> dict:
    """Evaluate the ensemble described by ``aiida.json`` in ``directory``; return the status."""
    from ..core.ensemble import EnsembleCalculator
    from ..core.evaluation import evaluate_frames, set_statistics

    directory = Path(directory)
    start = time.monotonic()
    try:
        config = json.loads((directory / INPUT_FILE).read_text())
        frames = Frames.from_npz(directory / STRUCTURES_FILE)
        calculator = EnsembleCalculator.from_files(
            [directory / f for f in config['member_files']], workers=config.get('workers')
        )
        harmonic = read_harmonic(directory / config['harmonic_file']) if config.get('harmonic_file') else None
    except Exception as exc:
        LOGGER.exception('setup failed')
        return setup_failed(directory, exc)
    try:
        LOGGER.info('%d members on %d frames (%d workers)', calculator.n_members, len(frames), calculator.workers)
        arrays = evaluate_frames(calculator, frames, harmonic, member_forces=bool(config.get('member_forces')))
        np.savez(directory / EVALUATION_FILE, **arrays)
        statistics = set_statistics(arrays)
        statistics['seconds'] = round(time.monotonic() - start, 3)
        (directory / STATISTICS_FILE).write_text(json.dumps(statistics, indent=1))
        status = {'state': 'finished', 'seconds': statistics['seconds']}
    except Exception as exc:  # noqa: BLE001
        LOGGER.error(traceback.format_exc())
        status = {'state': 'failed', 'message': f'{type(exc).__name__}: {exc}'}
    (directory / STATUS_FILE).write_text(json.dumps(status))
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='anharmal-evaluate', description=__doc__.split('\n\n')[0])
    parser.add_argument('directory', nargs='?', default='.', help='folder with aiida.json and structures.npz')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    status = evaluate(args.directory)
    print(json.dumps(status))
    return 0 if status['state'] == 'finished' else 1


if __name__ == '__main__':
    sys.exit(main())
