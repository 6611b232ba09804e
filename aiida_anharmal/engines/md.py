"""``anharmal-md``: Langevin/NVE molecular dynamics on an ensemble's mean forces, with per-frame uncertainty.

The program that :class:`aiida_anharmal.calculations.MDCalculation` runs. It reads

* ``aiida.json``: ``md`` (fields of :class:`aiida_anharmal.core.md.loop.MDSettings`), ``guards``
  (thresholds of the stop rules of :mod:`aiida_anharmal.core.md.guards` by key; ``null`` leaves one
  out, a missing key takes the rule's default), ``member_files``, optional ``workers``,
  ``harmonic_file`` (A and UCE_A), ``bayesian_file`` (a Bayesian force-constant fit that drives the run
  instead of the members), ``max_seconds`` (time budget: the run stops cleanly at a
  saved frame), ``bias`` and ``trigger`` (``kind`` + parameters, or null: see
  :func:`aiida_anharmal.core.md.loop.build_bias` and :func:`aiida_anharmal.core.md.stop_rules.build_trigger`);
* ``start.npz`` (``numbers``, ``positions``, ``cell``, ``pbc``, optional ``velocities`` in A/fs), or
  ``checkpoint.json`` + ``frames.bin`` of an earlier run to continue (the same trajectory);

and writes ``frames.bin`` / ``frames.json`` (every saved frame, see
:mod:`aiida_anharmal.core.md.files`), ``checkpoint.json`` and ``status.json`` (:mod:`.runner`):
state ``finished``, a stop rule's reason, ``time_budget_spent``, ``setup_failed`` or ``failed``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .inputs import load_ensemble, optional_harmonic
from .runner import Program, read_config

START_FILE = 'start.npz'
CHECKPOINT_FILE = 'checkpoint.json'
FRAMES_FILE = 'frames.bin'
LAYOUT_FILE = 'frames.json'
BAYESIAN_FILE = 'bayesian_model.npz'


def read_start(path: Path):
    from ase import Atoms, units

    with np.load(path) as data:
        atoms = Atoms(numbers=data['numbers'], positions=data['positions'], cell=data['cell'], pbc=data['pbc'])
        if 'velocities' in data.files:
            atoms.set_velocities(data['velocities'] / units.fs)
    return atoms


def setup(directory: Path) -> SimpleNamespace:
    from ..core.md.loop import MDSettings, build_bias, read_checkpoint
    from ..core.md.stop_rules import build_stop_rules

    config = read_config(directory)
    settings = MDSettings(**config['md'])
    settings.check()
    checkpoint_path = directory / CHECKPOINT_FILE
    atoms = read_start(directory / START_FILE)
    calculator = load_ensemble(directory, config)
    calculator.check_atoms(atoms)
    harmonic = optional_harmonic(directory, config)
    return SimpleNamespace(
        directory=directory,
        settings=settings,
        guards=build_stop_rules(config.get('guards', {}), settings.temperature, harmonic, config.get('trigger')),
        bias=build_bias(config.get('bias')),
        trigger=config.get('trigger'),
        checkpoint=read_checkpoint(checkpoint_path) if checkpoint_path.exists() else None,
        atoms=atoms,
        calculator=calculator,
        harmonic=harmonic,
        max_seconds=config.get('max_seconds'),
    )


def run(job: SimpleNamespace) -> dict:
    from ..core.md.loop import run_md
    from ..core.md.stop_rules import Trigger

    where = f'continuing from step {job.checkpoint["step"]}' if job.checkpoint else 'from the start structure'
    bias, trigger = job.bias.key if job.bias else 'none', (job.trigger or {}).get('kind', 'none')
    extras = f', bias {bias}, trigger {trigger}'
    PROGRAM.logger.info(
        '%s MD, %d atoms, %d members%s, %s',
        job.settings.dynamics,
        len(job.atoms),
        job.calculator.n_members,
        extras,
        where,
    )
    result = run_md(
        job.atoms,
        job.calculator,
        job.settings,
        job.directory,
        guards=job.guards,
        harmonic=job.harmonic,
        checkpoint=job.checkpoint,
        max_seconds=job.max_seconds,
        bias=job.bias,
    )
    trigger = next((rule for rule in job.guards if isinstance(rule, Trigger)), None)
    return {
        'trigger': None if trigger is None else trigger.summary(),
        'state': result.state,
        'message': result.message,
        'last_step': result.last_step,
        'frames_written': result.frames_written,
        'run_seconds': result.seconds,
        'timing': result.timing,
    }


PROGRAM = Program('anharmal-md', __doc__.split('\n\n')[0], setup, run)
main = PROGRAM.main
