"""``anharmal-train``: train one NequIP ensemble member with nequip 0.19 and package it.

The program that :class:`aiida_anharmal.calculations.TrainCalculation` runs. It reads

* ``aiida.json``: ``species``, ``hyperparameters`` (see :mod:`aiida_anharmal.core.models.nequip_config`),
  ``seed``, ``train_indices``, ``validation_indices``, optional ``parent_file`` (a packaged
  model to fine-tune from) and ``compile`` (also run ``nequip-compile --mode aotinductor``);
* ``structures.npz``: the training set (:class:`aiida_anharmal.core.structures.frames.Frames` format),

and runs, each step only if the one before succeeded:

1. ``train.extxyz`` / ``validation.extxyz`` (energy, forces, and stress if it is in the loss)
   and ``config.yaml``;
2. ``nequip-train`` into ``run/`` (``best.ckpt``, ``last.ckpt``, ``csvlog/metrics.csv``);
3. ``nequip-package build run/best.ckpt model.nequip.zip`` (self-contained: no checkpoint or
   parent file is needed to load it);
4. optionally ``nequip-compile`` to ``model.nequip.pt2``.

Steps 2-4 are nequip's console scripts run in one child interpreter (:mod:`.nequip_stages`):
torch and nequip are imported once per member, not once per stage.

It writes ``metrics.json`` (final errors of the best model on the training and validation
frames, epochs run, seconds; also after a failed stage), ``learning_curve.csv`` (per-epoch
validation errors) and ``status.json`` (:mod:`.runner`): state ``finished``, ``setup_failed``,
``training_failed``, ``packaging_failed``, ``compile_failed`` or ``failed``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..core.models.nequip_config import check_hyperparameters, training_config
from ..core.structures.frames import Frames
from .runner import Program, Stop, read_config

STRUCTURES_FILE = 'structures.npz'
METRICS_FILE = 'metrics.json'
CURVE_FILE = 'learning_curve.csv'
MODEL_FILE = 'model.nequip.zip'
COMPILED_FILE = 'model.nequip.pt2'
RUN_DIR = 'run'
LOG_FILE = 'train.log'

#: Metric names reported by nequip's EnergyForce(Stress)Metrics, in the order we report them.
METRIC_NAMES = (
    'per_atom_energy_mae',
    'per_atom_energy_rmse',
    'total_energy_mae',
    'total_energy_rmse',
    'forces_mae',
    'forces_rmse',
    'stress_mae',
    'stress_rmse',
)


def write_training_file(frames: Frames, indices, path: Path, with_stress: bool) -> None:
    """Write the frames at ``indices`` with energy and forces (and stress) only, as nequip reads them."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    subset = frames.subset(indices)
    atoms_list = []
    for k in range(len(subset)):
        sl = subset.atom_slice(k)
        atoms = Atoms(
            numbers=subset.numbers[sl], positions=subset.positions[sl], cell=subset.cells[k], pbc=subset.pbc[k]
        )
        results = {'energy': float(subset.energy[k]), 'forces': subset.forces[sl].copy()}
        if with_stress:
            results['stress'] = subset.stress[k].copy()
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms_list.append(atoms)
    write(str(path), atoms_list, format='extxyz')


def check_request(config: dict, frames: Frames) -> dict:
    """Validate what the job was asked to do; return the checked hyperparameters."""
    hp = check_hyperparameters(config.get('hyperparameters', {}))
    train, validation = list(config['train_indices']), list(config['validation_indices'])
    if not train or not validation:
        raise ValueError('a member needs at least one training and one validation frame')
    if set(train) & set(validation):
        raise ValueError(f'frames {sorted(set(train) & set(validation))[:5]} are both training and validation frames')
    if max(train + validation) >= len(frames) or min(train + validation) < 0:
        raise ValueError(f'frame indices out of range for a set of {len(frames)} frames')
    used = train + validation
    labelled = frames.has_energy & frames.has_forces
    if not labelled[used].all():
        missing = [i for i in used if not labelled[i]]
        raise ValueError(f'frames {missing[:5]} have no energy or forces')
    if hp['stress_weight'] > 0 and not frames.has_stress[used].all():
        raise ValueError('stress is in the loss but some frames have no stress label')
    species = set(frames.subset(used).species)
    unknown = sorted(species - set(config['species']))
    if unknown:
        raise ValueError(
            f'elements {unknown} of the training frames are not among the model species {config["species"]}'
        )
    return hp


#: The stages and the state of the job when each fails.
STAGE_STATES = {
    'nequip-train': 'training_failed',
    'nequip-package': 'packaging_failed',
    'nequip-compile': 'compile_failed',
}
STAGES_FILE = 'stages.json'


def die_with_parent() -> None:
    """In the child, before nequip starts: on Linux, be killed when this program dies (``kill -9`` of the job
    included), so that no orphaned training goes on writing into the job folder after the job ended."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
    except OSError:  # not Linux: nothing to ask for
        return
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run(stages: list[tuple[str, list[str]]], directory: Path, log, seconds: dict) -> None:
    """Run nequip's ``stages`` in one interpreter (:mod:`.nequip_stages`); a failed stage raises :class:`Stop`."""
    from . import nequip_stages

    request = directory / STAGES_FILE
    request.write_text(json.dumps({'stages': stages}))
    command = [sys.executable, '-m', nequip_stages.__name__, str(request)]
    PROGRAM.logger.info('running %s', ' | '.join(' '.join([name, *args]) for name, args in stages))
    log.write(f'\n$ {" ".join(command)}  # {", ".join(name for name, _ in stages)}\n')
    log.flush()
    result = subprocess.run(
        command, cwd=directory, stdout=log, stderr=subprocess.STDOUT, check=False, preexec_fn=die_with_parent
    )
    seconds.update(json.loads(request.read_text()).get('seconds', {}))
    failed = result.returncode - nequip_stages.FIRST_STAGE_CODE
    if result.returncode == 0:
        return
    name = stages[failed][0] if 0 <= failed < len(stages) else stages[0][0]
    tail = (directory / LOG_FILE).read_text(errors='replace').strip().splitlines()[-5:]
    raise Stop(STAGE_STATES[name], f'{name} failed: ' + ' | '.join(tail))


def read_learning_curve(metrics_csv: Path) -> list[dict]:
    """Per-epoch validation metrics from Lightning's CSV log (``val0_epoch/...`` columns)."""
    if not metrics_csv.exists():
        return []
    by_epoch: dict[int, dict] = {}
    with metrics_csv.open() as handle:
        for row in csv.DictReader(handle):
            if not row.get('epoch'):
                continue
            epoch = int(float(row['epoch']))
            for key, value in row.items():
                if key.startswith('val0_epoch/') and value not in ('', None):
                    name = key.split('/', 1)[1]
                    by_epoch.setdefault(epoch, {'epoch': epoch})[name] = float(value)
    return [by_epoch[e] for e in sorted(by_epoch) if len(by_epoch[e]) > 1]


def read_test_metrics(metrics_csv: Path) -> dict:
    """Final metrics of the best model: ``test0`` = training frames, ``test1`` = validation frames."""
    final = {'train': {}, 'validation': {}}
    if not metrics_csv.exists():
        return final
    with metrics_csv.open() as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if value in ('', None) or not key.startswith('test'):
                    continue
                prefix, _, name = key.partition('/')
                target = {'test0_epoch': 'train', 'test1_epoch': 'validation'}.get(prefix)
                if target and name in METRIC_NAMES:
                    final[target][name] = float(value)
    return final


def setup(directory: Path) -> SimpleNamespace:
    """Check the request, write the member's frames and the nequip config."""
    import yaml

    directory = directory.resolve()
    config = read_config(directory)
    frames = Frames.from_npz(directory / STRUCTURES_FILE)
    hp = check_request(config, frames)
    with_stress = hp['stress_weight'] > 0
    write_training_file(frames, config['train_indices'], directory / 'train.extxyz', with_stress)
    write_training_file(frames, config['validation_indices'], directory / 'validation.extxyz', with_stress)
    parent = config.get('parent_file')
    nequip_config = training_config(
        hp,
        config['species'],
        str(directory / 'train.extxyz'),
        str(directory / 'validation.extxyz'),
        int(config['seed']),
        parent_package=str(directory / parent) if parent else None,
    )
    (directory / 'config.yaml').write_text(yaml.safe_dump(nequip_config, sort_keys=False))
    return SimpleNamespace(directory=directory, compile=bool(config.get('compile')), start=time.monotonic(), stages={})


def run_stages(job: SimpleNamespace, log) -> None:
    """nequip-train, nequip-package and optionally nequip-compile; a failed stage raises :class:`Stop`."""
    directory = job.directory
    run_dir = directory / RUN_DIR
    best = run_dir / 'best.ckpt'
    stages = [
        ('nequip-train', ['-cp', str(directory), '-cn', 'config', f'hydra.run.dir={run_dir}']),
        ('nequip-package', ['build', str(best), str(directory / MODEL_FILE)]),
    ]
    if job.compile:
        compile_args = [str(directory / MODEL_FILE), str(directory / COMPILED_FILE), '--mode', 'aotinductor']
        stages.append(('nequip-compile', [*compile_args, '--device', 'cpu', '--target', 'ase']))
    _run(stages, directory, log, job.stages)
    if not best.exists():
        raise Stop('training_failed', 'nequip-train finished without writing best.ckpt')


def write_metrics(job: SimpleNamespace) -> None:
    """``metrics.json`` and ``learning_curve.csv`` from nequip's CSV log (whatever the stages reached)."""
    directory = job.directory
    metrics_csv = directory / RUN_DIR / 'csvlog' / 'metrics.csv'
    curve = read_learning_curve(metrics_csv)
    metrics = read_test_metrics(metrics_csv)
    metrics['epochs'] = len(curve)
    metrics['seconds'] = round(time.monotonic() - job.start, 2)
    metrics['stages'] = dict(job.stages)  # wall seconds of nequip-train, nequip-package (, nequip-compile)
    if curve:
        metrics['best_validation'] = min(curve, key=lambda row: row.get('weighted_sum', np.inf))
    (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    if curve:
        columns = sorted({key for row in curve for key in row} - {'epoch'})
        with (directory / CURVE_FILE).open('w', newline='') as handle:
            writer = csv.DictWriter(handle, fieldnames=['epoch', *columns])
            writer.writeheader()
            writer.writerows(curve)


def run(job: SimpleNamespace) -> dict:
    try:
        with (job.directory / LOG_FILE).open('a') as log:
            run_stages(job, log)
    finally:
        write_metrics(job)
    return {'state': 'finished'}


PROGRAM = Program(
    'anharmal-train',
    __doc__.split('\n\n')[0],
    setup,
    run,
    environment={'OMP_NUM_THREADS': '1'},  # nequip-train and its data loaders: one thread per member job
)
main = PROGRAM.main
