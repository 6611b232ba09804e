"""``anharmal-neb``: a climbing-image NEB on an ensemble's mean (or on the labelling engine), uncertainties per image.

The program that :class:`aiida_anharmal.calculations.NEBCalculation` runs. It reads

* ``aiida.json``: ``member_files`` (packaged nequip models) or ``engine`` (the labelling engine
  itself: ``{'engine', 'parameters', 'model_file'}``), optional ``workers``, ``harmonic_file``
  (A and UCE_A per image), ``neb`` (:class:`aiida_anharmal.core.md.neb.NEBSettings` fields),
  ``interpolate`` (true: the band file holds the two end points only) and ``max_seconds``
  (time budget: the run stops cleanly at the first step after it, never before the first);
* ``band.npz``: ``numbers``, ``cell``, ``pbc`` and ``positions`` (images x atoms x 3),

and (with ``neb.relax_end_points``, when interpolating) first relaxes both end points with the
same potential, then runs the band relaxation (:func:`aiida_anharmal.core.md.neb.run_neb`, one shared calculator),
rewriting ``band.npz`` after every optimizer step (the band so far, for a restart), then the
profile of the final band. It writes ``profile.npz`` (per image: ``energies`` relative to the
initial image, ``total_energies``, ``uce_energy``, ``uce_force_max``, ``uce_forces``, mean ``forces``,
``anharmonicity`` and ``uce_anharmonicity`` with a harmonic reference; the path coordinate, the
spline of the fit, ``fmax_history``), ``summary.json`` (barrier, reaction energy, highest image,
fit barrier, max UCE_F^max, converged, steps, seconds) and ``status.json``: state ``finished``,
``not_converged`` (step cap reached; profile of the last band written), ``min_distance`` or
``non_finite`` (an image became unphysical; the band of that step is kept, no profile),
``time_budget_spent``, ``setup_failed`` or ``failed``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .inputs import load_ensemble, optional_harmonic
from .runner import Program, Stop, read_config

BAND_FILE = 'band.npz'
PROFILE_FILE = 'profile.npz'
SUMMARY_FILE = 'summary.json'


def read_band(path: Path) -> list:
    from ase import Atoms

    with np.load(path) as data:
        return [
            Atoms(numbers=data['numbers'], positions=positions, cell=data['cell'], pbc=data['pbc'])
            for positions in data['positions']
        ]


def band_arrays(images) -> dict:
    """The arrays of ``band.npz``: ``numbers``, ``cell``, ``pbc`` and ``positions`` (images x atoms x 3)."""
    first = images[0]
    return {
        'numbers': first.numbers,
        'cell': first.cell[:],
        'pbc': first.pbc,
        'positions': np.stack([image.positions for image in images]),
    }


def write_band(path: Path, images, **extra) -> None:
    """The band's positions (atomically: a reader sees the old band or the whole new one)."""
    tmp = path.with_name(path.stem + '.tmp.npz')
    np.savez(tmp, **band_arrays(images), **extra)
    os.replace(tmp, path)


def relaxed_end(atoms, calculator, settings):
    """An end point relaxed with the band's potential (fixed cell, the band's ``fmax`` and step cap)."""
    from ..core.structures.defects import relax

    result = relax(atoms, calculator, fmax=settings.fmax, steps=settings.steps)
    PROGRAM.logger.info('end point relaxed in %d steps (converged %s)', result.steps, result.converged)
    end = result.atoms.copy()
    end.calc = None
    return end


def setup(directory: Path) -> SimpleNamespace:
    from ..core.md.neb import NEBSettings, check_images, interpolate

    directory = Path(directory)
    config = read_config(directory)
    settings = NEBSettings.from_dict(config.get('neb', {}))
    images = read_band(directory / BAND_FILE)
    predictor = load_ensemble(directory, config)
    predictor.check_atoms(images[0])
    calculator = getattr(predictor, 'calculator', predictor)  # the engine's own, or the ensemble itself
    if config.get('interpolate'):
        if len(images) != 2:
            raise ValueError(f'`interpolate` needs the two end points, the band file holds {len(images)} images')
        if settings.relax_end_points:
            images = [relaxed_end(atoms, calculator, settings) for atoms in images]
        images = interpolate(images[0], images[1], settings)
    check_images(images, settings.max_image_step)
    return SimpleNamespace(
        directory=directory,
        start=time.monotonic(),
        settings=settings,
        images=images,
        predictor=predictor,
        calculator=calculator,
        harmonic=optional_harmonic(directory, config),
        max_seconds=config.get('max_seconds'),
    )


def write_profile(job: SimpleNamespace, run) -> dict:
    from ..core.md.neb import path_profile

    profile = path_profile(run.images, job.predictor, job.harmonic)
    arrays = {
        'energies': profile.energies,
        'uce_energy': profile.uce_energy,
        'uce_force_max': profile.uce_force_max,
        'uce_forces': profile.uce_forces,
        'forces': profile.forces,
        'total_energies': profile.total_energies,
        'path': profile.path,
        'fit_path': profile.fit_path,
        'fit_energies': profile.fit_energies,
        'fmax_history': np.asarray(run.fmax_history),
    }
    if profile.anharmonicity is not None:
        arrays.update(anharmonicity=profile.anharmonicity, uce_anharmonicity=profile.uce_anharmonicity)
    np.savez(job.directory / PROFILE_FILE, **arrays)
    return profile.summary()


def run(job: SimpleNamespace) -> dict:
    from ..core.md.neb import GuardTripped, run_neb

    band = job.directory / BAND_FILE
    write_band(band, job.images, step=0)

    def on_step(images, step, fmax):
        write_band(band, images, step=step)
        spent = job.max_seconds is not None and time.monotonic() - job.start > job.max_seconds
        if spent and step > 0:  # every job makes at least one step, so that a restart always progresses
            raise Stop('time_budget_spent', f'time budget of {job.max_seconds:.0f} s spent after {step} steps')

    PROGRAM.logger.info('NEB of %d images (%s, climb %s)', len(job.images), job.settings.method, job.settings.climb)
    summary = {'n_images': len(job.images)}
    try:
        result = run_neb(job.images, job.settings, calculator=job.calculator, on_step=on_step)
    except GuardTripped as exc:
        summary.update(converged=False, steps=exc.step, seconds=round(time.monotonic() - job.start, 2))
        (job.directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
        raise Stop(exc.reason, str(exc)) from exc
    write_band(band, result.images, step=result.steps)
    summary.update(write_profile(job, result))
    summary.update(converged=result.converged, steps=result.steps, seconds=round(time.monotonic() - job.start, 2))
    (job.directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    if not result.converged:
        message = f'fmax {result.fmax_history[-1]:.3f} eV/A after {result.steps} steps (limit {job.settings.fmax:g})'
        return {'state': 'not_converged', 'message': message}
    return {'state': 'finished'}


PROGRAM = Program('anharmal-neb', __doc__.split('\n\n')[0], setup, run, environment={'OMP_NUM_THREADS': '1'})
main = PROGRAM.main
