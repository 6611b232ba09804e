"""``anharmal-evaluate``: an ensemble on a set of frames -> per-frame uncertainties, errors, statistics.

The program that :class:`aiida_anharmal.calculations.EvaluateCalculation` runs. It reads

* ``aiida.json``: ``member_files`` (packaged nequip models), optional ``workers``,
  ``harmonic_file`` (``.npz`` with ``positions``, ``cell``, ``force_constants``, ``numbers`` of
  the harmonic reference, for ``A`` and ``UCE_A``) and ``member_forces`` (keep every member's forces);
* ``structures.npz``: the frames (:class:`aiida_anharmal.core.structures.frames.Frames` format),

and writes ``evaluation.npz`` (arrays of :func:`aiida_anharmal.core.models.evaluation.evaluate_frames`),
``statistics.json`` (:func:`aiida_anharmal.core.models.evaluation.set_statistics`) and ``status.json``
(states ``finished``, ``setup_failed``, ``failed``; see :mod:`.runner`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..core.structures.frames import Frames
from .inputs import load_ensemble, optional_harmonic
from .runner import Program, read_config

STRUCTURES_FILE = 'structures.npz'
EVALUATION_FILE = 'evaluation.npz'
STATISTICS_FILE = 'statistics.json'


def setup(directory: Path) -> SimpleNamespace:
    config = read_config(directory)
    return SimpleNamespace(
        directory=directory,
        start=time.monotonic(),
        frames=Frames.from_npz(directory / STRUCTURES_FILE),
        calculator=load_ensemble(directory, config),
        harmonic=optional_harmonic(directory, config),
        member_forces=bool(config.get('member_forces')),
    )


def run(job: SimpleNamespace) -> dict:
    from ..core.models.evaluation import evaluate_frames, set_statistics

    calculator = job.calculator
    PROGRAM.logger.info(
        '%d members on %d frames (%d workers)', calculator.n_members, len(job.frames), calculator.workers
    )
    arrays = evaluate_frames(calculator, job.frames, job.harmonic, member_forces=job.member_forces)
    np.savez(job.directory / EVALUATION_FILE, **arrays)
    statistics = set_statistics(arrays)
    statistics['seconds'] = round(time.monotonic() - job.start, 3)
    (job.directory / STATISTICS_FILE).write_text(json.dumps(statistics, indent=1))
    return {'state': 'finished'}


PROGRAM = Program('anharmal-evaluate', __doc__.split('\n\n')[0], setup, run)
main = PROGRAM.main
