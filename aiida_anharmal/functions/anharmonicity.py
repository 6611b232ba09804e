"""sigma_A of any stored trajectory against a harmonic reference, as a calcfunction."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase.data import chemical_symbols

from ..data.force_constants import harmonic_reference
from ..data.training_set import TrainingSet


def trajectory_arrays(trajectory) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Positions (T, N, 3), forces (T, N, 3) and symbols of a TrainingSet or a TrajectoryData with `forces`."""
    if isinstance(trajectory, TrainingSet):
        frames = trajectory.frames
        if len(set(frames.n_atoms.tolist())) != 1:
            raise ValueError('all frames must have the same atoms to compute sigma_A')
        n = int(frames.n_atoms[0])
        if not frames.has_forces.all():
            raise ValueError(f'frames {np.flatnonzero(~frames.has_forces)[:5].tolist()} have no forces')
        if not all(
            np.array_equal(frames.numbers[frames.atom_slice(k)], frames.numbers[:n]) for k in range(len(frames))
        ):
            raise ValueError('all frames must have the same species order to compute sigma_A')
        return (
            frames.positions.reshape(-1, n, 3),
            frames.forces.reshape(-1, n, 3),
            [chemical_symbols[z] for z in frames.numbers[:n]],
        )
    if 'forces' not in trajectory.get_arraynames():
        raise ValueError('the trajectory has no `forces` array')
    return trajectory.get_positions(), trajectory.get_array('forces'), list(trajectory.symbols)


@calcfunction
def anharmonicity(trajectory: orm.Data, harmonic: orm.ArrayData):
    """sigma_A (total and per species) and A(t) of ``trajectory`` (a TrainingSet with forces, e.g.
    ab initio MD imported from extxyz, or an MD TrajectoryData) against the ``harmonic`` reference.

    Outputs ``sigma`` (Dict: ``sigma_A``, ``per_species``, ``n_frames``) and ``per_frame``
    (ArrayData ``anharmonicity``: A(t)). The frames must be the reference supercell (same atom
    count and species order); displacements are minimum-image, so wrapped positions are fine.
    """
    reference = harmonic_reference(harmonic)
    positions, forces, symbols = trajectory_arrays(trajectory)
    if tuple(symbols) != tuple(reference.symbols):
        raise ValueError(
            f'the trajectory ({len(symbols)} atoms) does not match the harmonic reference ({len(reference.symbols)} atoms, '
            'same species order required)'
        )
    per_frame = orm.ArrayData()
    per_frame.set_array('anharmonicity', reference.a_per_frame(positions, forces))
    return {
        'sigma': orm.Dict(
            {
                'sigma_A': reference.sigma(positions, forces),
                'per_species': reference.sigma_per_species(positions, forces),
                'n_frames': len(positions),
            }
        ),
        'per_frame': per_frame,
    }
