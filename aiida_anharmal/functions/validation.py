"""Calcfunctions of the validation MD: the ground-truth frames the ensembles are scored on, and the comparison."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.training_set import TrainingSet
from .datasets import trajectory_atoms


@calcfunction
def reference_frames(trajectory: orm.TrajectoryData, frames: orm.ArrayData, parameters: orm.Dict) -> TrainingSet:
    """Frames of the ground-truth MD run, labelled by the engine that drove it: energy and forces as it computed them.

    ``parameters``: ``equilibration`` (fs, frames before are left out), ``stride`` (every n-th saved frame
    after it), ``engine`` and ``description`` of the label provenance, ``kind`` of the frames' origin
    (default ``validation_md``).
    """
    from ..core.learning.validation import reference_frame_indices

    p = parameters.get_dict()
    indices = reference_frame_indices(frames.get_array('time'), p['equilibration'], p['stride'])
    if not indices:
        raise ValueError('the ground-truth run has no frame after the equilibration time')
    from ase.calculators.singlepoint import SinglePointCalculator

    forces, energies = trajectory.get_array('forces'), frames.get_array('energy')
    steps = trajectory.get_stepids()
    atoms_list, origins = [], []
    for k, atoms in zip(indices, trajectory_atoms(trajectory, indices), strict=True):
        atoms.calc = SinglePointCalculator(atoms, energy=float(energies[k]), forces=np.array(forces[k]))
        atoms_list.append(atoms)
        origins.append(
            {
                'kind': p.get('kind', 'validation_md'),
                'frame': int(k),
                'step': int(steps[k]),
                'trajectory_uuid': trajectory.uuid,
            }
        )
    labelled = TrainingSet.from_ase(atoms_list, origins=origins)
    labelled.set_label_provenance(p['engine'], p.get('ground_truth', 'stand-in'), p.get('description', ''))
    return labelled


@calcfunction
def compare_validation(harmonic: orm.ArrayData, parameters: orm.Dict, **runs) -> orm.Dict:
    """The validation table: per MD run its A(t) numbers, and per ensemble its error on the ground-truth frames.

    ``runs``: ``trajectory_<label>`` and ``frames_<label>`` of every run (the ground truth's label is
    ``parameters['reference']``), ``statistics_<label>`` of each ensemble evaluated on the ground-truth
    frames. ``parameters``: ``equilibration`` (fs), ``reference`` (label), ``ended`` (label -> how
    the run ended: ``finished`` or the exit message of a stop).
    """
    from ..core.learning.validation import run_summary
    from ..data.force_constants import harmonic_reference

    p = parameters.get_dict()
    reference = harmonic_reference(harmonic)
    labels = sorted({key.split('_', 1)[1] for key in runs if key.startswith('frames_')})
    rows = []
    for label in labels:
        frames, trajectory = runs[f'frames_{label}'], runs[f'trajectory_{label}']
        names = frames.get_arraynames()
        a = (
            frames.get_array('anharmonicity')
            if 'anharmonicity' in names
            else np.full(len(frames.get_array('time')), np.nan)
        )
        row = {
            'run': label,
            'driver': 'reference' if label == p['reference'] else 'ensemble',
            'ended': p.get('ended', {}).get(label, 'finished'),
            'steps': int(frames.get_array('step')[-1]),
            'time_fs': float(frames.get_array('time')[-1]),
        }
        row.update(
            run_summary(
                frames.get_array('time'),
                a,
                trajectory.get_positions(),
                trajectory.get_array('forces'),
                reference,
                p['equilibration'],
            )
        )
        if f'statistics_{label}' in runs:
            errors = runs[f'statistics_{label}'].get_dict()['errors']
            row['reference_forces_mae'] = errors.get('forces_mae')
            row['reference_energy_mae_per_atom'] = errors.get('energy_mae_per_atom')
            row['reference_force_max_error_mean'] = errors.get('force_max_error_mean')
        rows.append(row)
    return orm.Dict({'rows': rows, 'reference': p['reference'], 'equilibration_fs': p['equilibration']})
