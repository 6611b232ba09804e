"""An ensemble on a set of frames: per-frame uncertainties, errors, and test-set statistics; no AiiDA import.

:func:`evaluate_frames` runs an ensemble (anything with a ``predict(atoms)`` method returning an
:class:`~aiida_anharmal.core.models.uncertainty.EnsemblePrediction`, e.g.
:class:`~aiida_anharmal.core.models.ensemble.EnsembleCalculator`) on every frame and returns flat arrays.
:func:`set_statistics` reduces them to the reference numbers of the acquisition
(docs/source/science.rst, section 2): mean and population standard deviation over the frames of ``UCE_U``,
``UCE_F^max``, ``UCE_A`` (with a harmonic reference) and of the predicted potential energy ``U``.
"""

from __future__ import annotations

import numpy as np

from ..phonons.anharmonicity import HarmonicReference
from ..structures.frames import Frames

#: Per-frame arrays (length n_frames) written by :func:`evaluate_frames`.
FRAME_ARRAYS = (
    'energy',  # ensemble-mean potential energy U (eV)
    'uce_energy',  # UCE_U (eV)
    'uce_force_max',  # UCE_F^max (eV/A)
    'energy_error',  # U - label (eV); NaN without a label
    'forces_mae',  # mean |F - F_label| over atoms and components (eV/A); NaN without labels
    'forces_rmse',
    'force_max_error',  # max over atoms of |F_i - F_label,i| (eV/A), the error UCE_F^max should predict
    'n_atoms',
)
#: Per-atom arrays (length n_atoms_total).
ATOM_ARRAYS = ('forces', 'uce_forces')


def evaluate_frames(
    ensemble, frames: Frames, harmonic: HarmonicReference | None = None, member_forces: bool = False
) -> dict[str, np.ndarray]:
    """Evaluate ``ensemble`` on every frame.

    Returns per-frame arrays (:data:`FRAME_ARRAYS`, plus ``member_energies`` of shape
    ``(n_frames, N)`` and, with ``harmonic``, ``anharmonicity`` (A of the mean forces) and
    ``uce_anharmonicity`` (population std over members of each member's A)), per-atom arrays
    (:data:`ATOM_ARRAYS`) concatenated over frames like :class:`Frames`, and with
    ``member_forces`` the per-member forces ``(N, n_atoms_total, 3)``.
    """
    n = len(frames)
    out: dict[str, list] = {name: [] for name in (*FRAME_ARRAYS, *ATOM_ARRAYS, 'member_energies')}
    if harmonic is not None:
        out['anharmonicity'] = []
        out['uce_anharmonicity'] = []
    members = [] if member_forces else None
    for k in range(n):
        atoms = frames.get_atoms(k, with_labels=False)
        prediction = ensemble.predict(atoms)
        sl = frames.atom_slice(k)
        out['energy'].append(prediction.energy)
        out['uce_energy'].append(prediction.uce_energy)
        out['uce_force_max'].append(prediction.uce_force_max)
        out['member_energies'].append(prediction.member_energies)
        out['forces'].append(prediction.forces)
        out['uce_forces'].append(prediction.uce_forces)
        out['n_atoms'].append(len(atoms))
        out['energy_error'].append(prediction.energy - frames.energy[k])  # NaN propagates
        delta = prediction.forces - frames.forces[sl]
        out['forces_mae'].append(np.mean(np.abs(delta)))
        out['forces_rmse'].append(np.sqrt(np.mean(delta**2)))
        out['force_max_error'].append(np.linalg.norm(delta, axis=1).max())
        if harmonic is not None:
            a, uce_a = harmonic.a_with_uncertainty(atoms.positions, prediction.forces, prediction.member_forces)
            out['anharmonicity'].append(a)
            out['uce_anharmonicity'].append(uce_a)
        if members is not None:
            members.append(prediction.member_forces)
    arrays = {
        name: (np.concatenate(values) if name in ATOM_ARRAYS and values else np.asarray(values))
        for name, values in out.items()
    }
    arrays['n_atoms'] = arrays['n_atoms'].astype(int)
    if members is not None:
        arrays['member_forces'] = np.concatenate(members, axis=1)
    return arrays


def _mean_std(values) -> dict:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return {'mean': None, 'std': None, 'n': 0}
    return {'mean': float(values.mean()), 'std': float(values.std(ddof=0)), 'n': len(values)}


def _calibration(errors: dict, arrays: dict, labelled) -> None:
    """The test-set calibration: mean max force error over mean UCE_F^max (1: calibrated in size; >> 1: the
    ensemble is over-confident, and a frame below its thresholds can still be far off)."""
    error = float(np.mean(np.asarray(arrays['force_max_error'])[labelled]))
    uncertainty = float(np.mean(np.asarray(arrays['uce_force_max'])[labelled]))
    errors['force_max_error_mean'] = error
    errors['error_over_uncertainty'] = error / uncertainty if uncertainty > 0 else None


def set_statistics(arrays: dict) -> dict:
    """Reference statistics of the acquisition, and errors against labels where there are labels.

    Keys ``uce_energy``, ``uce_force_max``, ``energy`` (and ``uce_anharmonicity``,
    ``anharmonicity`` with a harmonic reference): ``{'mean', 'std', 'n'}`` over the frames, std
    with 1/n (the reference code computed one of them with a mean instead: docs/source/science.rst, section 2).
    ``errors``: energy MAE per atom (eV/atom), force MAE / RMSE over all labelled components and, with
    ``force_max_error``, its mean over the labelled frames and ``error_over_uncertainty`` (that mean over
    the mean UCE_F^max of the same frames).
    """
    stats = {name: _mean_std(arrays[name]) for name in ('uce_energy', 'uce_force_max', 'energy')}
    for name in ('uce_anharmonicity', 'anharmonicity'):
        if name in arrays:
            stats[name] = _mean_std(arrays[name])
    stats['n_frames'] = len(arrays['energy'])
    energy_error = np.asarray(arrays['energy_error'], dtype=float)
    labelled = np.isfinite(energy_error)
    errors = {'n_labelled_energy': int(labelled.sum())}
    if labelled.any():
        errors['energy_mae_per_atom'] = float(np.mean(np.abs(energy_error[labelled]) / arrays['n_atoms'][labelled]))
    force_labelled = np.isfinite(arrays['forces_mae'])
    errors['n_labelled_forces'] = int(force_labelled.sum())
    if force_labelled.any():
        weights = arrays['n_atoms'][force_labelled]
        errors['forces_mae'] = float(np.average(arrays['forces_mae'][force_labelled], weights=weights))
        errors['forces_rmse'] = float(np.sqrt(np.average(arrays['forces_rmse'][force_labelled] ** 2, weights=weights)))
        if 'force_max_error' in arrays:
            _calibration(errors, arrays, force_labelled)
    stats['errors'] = errors
    return stats
