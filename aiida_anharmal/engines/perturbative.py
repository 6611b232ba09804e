"""``anharmal-perturbative``: labelled fc3 displacements and the harmonic reference -> RTA linewidths, lifetimes, kappa.

The program that :class:`aiida_anharmal.calculations.PerturbativeCalculation` runs. It reads

* ``aiida.json``: ``mesh`` (three integers), ``temperatures`` (K), ``fc_calculator`` (``null`` for
  phono3py's pair differences, ``symfc`` to fit random displacements), ``fc2`` (``reference``: the
  harmonic reference's force constants; ``labels``: phono3py's own from the same labels), ``sigma``
  (THz, Gaussian smearing; ``null``: the tetrahedron method);
* ``phonopy.yaml``: the harmonic reference with its force constants (the ``ForceConstants`` node's file);
* ``fc3_displacements.json``: :meth:`aiida_anharmal.core.phonons.perturbative.Fc3DisplacementSet.to_dict`;
* ``forces.npy``: the forces of the labelled supercells ``(n, N, 3)``, eV/A, in the set's order,

checks them before any compute, and runs :func:`aiida_anharmal.core.phonons.perturbative.perturbative_lifetimes`.
Writes ``perturbative.npz`` (the RTA arrays), ``modes.npz`` (the per-mode table at the first
temperature), ``summary.json`` (:func:`summary`) and ``status.json`` (states ``finished``,
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
DISPLACEMENTS_FILE = 'fc3_displacements.json'
FORCES_FILE = 'forces.npy'
RESULT_FILE = 'perturbative.npz'
MODES_FILE = 'modes.npz'
SUMMARY_FILE = 'summary.json'


def summary(result, seconds: float, sigma: float | None = None, fc2: str = 'reference', fc_calculator=None) -> dict:
    """kappa per temperature, how it was computed, and :func:`aiida_anharmal.core.phonons.lifetimes.mode_summary` of the
    modes at the first temperature."""
    from ..core.phonons.lifetimes import mode_summary

    table = result.table(0)
    return {
        'mesh': result.mesh.tolist(),
        'temperatures': result.temperatures.tolist(),
        'temperature': float(result.temperatures[0]),
        'kappa': {
            f'{t:g}': dict(zip(('xx', 'yy', 'zz', 'yz', 'xz', 'xy'), k.tolist(), strict=True))
            for t, k in zip(result.temperatures, result.kappa, strict=True)
        },
        'irreducible_qpoints': len(result.qpoints),
        'integration': 'tetrahedra' if sigma is None else f'smearing {sigma:g} THz',
        'fc2': fc2,
        'fc_calculator': fc_calculator,
        **mode_summary(table['frequency'], table['tau'], table['flag'], table['weight']),
        'seconds': round(seconds, 3),
    }


def setup(directory: Path) -> SimpleNamespace:
    from ..core.phonons.harmonic import load_phonopy_yaml
    from ..core.phonons.perturbative import FC2_SOURCES, FC_CALCULATORS, Fc3DisplacementSet

    start = time.monotonic()
    config = read_config(directory)
    if config.get('fc_calculator') not in FC_CALCULATORS:
        raise ValueError(f'fc_calculator must be one of {FC_CALCULATORS}, not {config.get("fc_calculator")!r}')
    if config.get('fc2', 'reference') not in FC2_SOURCES:
        raise ValueError(f'fc2 must be one of {FC2_SOURCES}, not {config.get("fc2")!r}')
    displacements = Fc3DisplacementSet.from_dict(json.loads((directory / DISPLACEMENTS_FILE).read_text()))
    forces = np.load(directory / FORCES_FILE)
    displacements.full_forces(forces)  # shape and finiteness, before any compute
    phonon = load_phonopy_yaml(directory / PHONOPY_FILE)
    return SimpleNamespace(
        directory=directory,
        start=start,
        displacements=displacements,
        forces=forces,
        fc2=phonon.force_constants if config.get('fc2', 'reference') == 'reference' else None,
        mesh=config.get('mesh', [11, 11, 11]),
        temperatures=config.get('temperatures', [300.0]),
        fc_calculator=config.get('fc_calculator'),
        sigma=config.get('sigma'),
    )


def run(job: SimpleNamespace) -> dict:
    from ..core.phonons.perturbative import perturbative_lifetimes

    PROGRAM.logger.info(
        '%d labelled supercells, mesh %s, T %s K, fc2 from the %s',
        len(job.forces),
        job.mesh,
        job.temperatures,
        'harmonic reference' if job.fc2 is not None else 'labels',
    )
    result = perturbative_lifetimes(
        job.displacements, job.forces, job.fc2, job.mesh, job.temperatures, job.fc_calculator, job.sigma
    )
    np.savez(job.directory / RESULT_FILE, **result.arrays())
    np.savez(job.directory / MODES_FILE, **result.table(0))
    fc2 = 'reference' if job.fc2 is not None else 'labels'
    text = json.dumps(summary(result, time.monotonic() - job.start, job.sigma, fc2, job.fc_calculator), indent=1)
    (job.directory / SUMMARY_FILE).write_text(text)
    return {'state': 'finished'}


PROGRAM = Program('anharmal-perturbative', __doc__.split('\n\n')[0], setup, run)
main = PROGRAM.main
