"""Checks of structures that must hold before anything is computed (no AiiDA import).

Each check raises :class:`StructureError` with a message that names the structure (its index in
the batch) and what is wrong, so a user can fix the input without reading a traceback.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from .frames import Frames

#: Default smallest allowed interatomic distance in Angstrom. The shortest bonds in solids
#: without hydrogen are above 1.5 Angstrom; anything below this is an overlapping atom.
DEFAULT_MIN_DISTANCE = 0.5


class StructureError(ValueError):
    """A structure is not fit to be computed."""


def check_cell(atoms: Atoms, label: str = 'structure') -> None:
    """Refuse non-periodic structures and singular (or nearly flat) cells."""
    if not np.all(atoms.pbc):
        missing = ''.join('xyz'[i] for i in range(3) if not atoms.pbc[i])
        raise StructureError(f'{label} is not periodic along {missing}: every structure must be a periodic crystal')
    cell = atoms.cell.array
    lengths = np.linalg.norm(cell, axis=1)
    if np.any(lengths < 1e-8):
        raise StructureError(f'{label} has a cell vector of zero length: the cell is singular')
    volume = abs(np.linalg.det(cell))
    # Normalised volume: 1 for a cubic cell, 0 for a flat one.
    if volume / np.prod(lengths) < 1e-6:
        raise StructureError(f'{label} has a singular cell (volume {volume:.3g} A^3): its vectors are coplanar')


def closest_pair(atoms: Atoms, cutoff: float) -> tuple[int, int, float] | None:
    """Return ``(i, j, distance)`` of the closest pair (periodic images included) below ``cutoff``."""
    if len(atoms) == 0 or cutoff <= 0:
        return None
    i, j, d = neighbor_list('ijd', atoms, cutoff)
    if len(d) == 0:
        return None
    k = int(np.argmin(d))
    return int(i[k]), int(j[k]), float(d[k])


def check_distances(atoms: Atoms, min_distance: float = DEFAULT_MIN_DISTANCE, label: str = 'structure') -> None:
    """Refuse structures with two atoms (or an atom and a periodic image) closer than ``min_distance``."""
    pair = closest_pair(atoms, min_distance)
    if pair is not None:
        i, j, d = pair
        what = f'atom {i} and a periodic image of itself' if i == j else f'atoms {i} and {j}'
        raise StructureError(
            f'{label}: {what} are {d:.3f} A apart, closer than the threshold {min_distance:.3f} A '
            '(overlapping atoms; change `min_distance` only if this is intended)'
        )


def check_frames(frames: Frames, min_distance: float = DEFAULT_MIN_DISTANCE, indices=None) -> None:
    """Check every frame (or the frames at ``indices``): non-empty, periodic, regular cell, no overlaps."""
    selected = range(len(frames)) if indices is None else list(indices)
    if len(frames) == 0 or len(selected) == 0:
        raise StructureError('the batch is empty: there is no structure to compute')
    for index in selected:
        if not 0 <= index < len(frames):
            raise StructureError(f'index {index} is out of range for a set of {len(frames)} structures')
        atoms = frames.get_atoms(index, with_labels=False)
        check_structure(atoms, min_distance, f'structure {index} ({atoms.get_chemical_formula()})')


def check_structure(atoms: Atoms, min_distance: float = DEFAULT_MIN_DISTANCE, label: str = 'structure') -> None:
    """Finite positions and cell, periodic with a regular cell, no atoms closer than ``min_distance``."""
    if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
        raise StructureError(f'{label} has NaN or infinite positions or cell vectors')
    check_cell(atoms, label)
    check_distances(atoms, min_distance, label)


def check_species(species, supported, what: str) -> None:
    """Refuse species that ``what`` (an engine or a model) cannot handle."""
    if supported is None:
        return
    missing = sorted(set(species) - set(supported))
    if missing:
        raise StructureError(
            f'{what} does not support the element(s) {", ".join(missing)}; it supports: {", ".join(sorted(supported))}'
        )


#: The coldest MD temperature accepted (K): below it a run is a typo, not a simulation.
MIN_TEMPERATURE = 1.0


def check_seed(name: str, value) -> int:
    """A random seed: a non-negative integer (not a bool); ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f'`{name}` must be a non-negative integer (a random seed), not {value!r}')
    return int(value)


def check_temperature(name: str, value) -> float:
    """An MD temperature of at least :data:`MIN_TEMPERATURE` K and finite; ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        raise ValueError(f'`{name}` must be a temperature in K, not {value!r}')
    if value < MIN_TEMPERATURE:
        raise ValueError(f'`{name}` must be at least {MIN_TEMPERATURE:g} K, not {value!r} K')
    return float(value)


def label_problem(frames: Frames, indices=None) -> str | None:
    """Why frames (``indices``, default all) cannot be trained or tested on: a missing energy or force label
    (NaN anywhere), or an infinite one; ``None`` if every label is there and finite."""
    selected = list(range(len(frames))) if indices is None else [int(i) for i in indices]
    missing = [i for i in selected if not (frames.has_energy[i] and frames.has_forces[i])]
    if missing:
        return f'frame(s) {missing[:5]} have no energy or forces label (NaN)'
    infinite = [
        i
        for i in selected
        if not (np.isfinite(frames.energy[i]) and np.isfinite(frames.forces[frames.atom_slice(i)]).all())
    ]
    if infinite:
        return f'frame(s) {infinite[:5]} have an infinite energy or force label'
    return None


def structure_fingerprint(numbers, positions, cell, decimals: int = 4) -> bytes:
    """A key equal for structures equal up to a rigid translation, a lattice translation of any atom or a
    permutation of the atoms: the cell, and the sorted (Z_i, Z_j, minimum-image distance) of every pair, rounded
    to ``decimals`` A. (Two different structures with the same distances, homometric ones, share it too: rare
    enough to ask the user to look when it says two frames are equal.)"""
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    i, j = np.triu_indices(len(atoms), k=1)
    distances = atoms.get_all_distances(mic=True)[i, j].round(decimals)
    z = np.asarray(numbers)
    low, high = np.minimum(z[i], z[j]), np.maximum(z[i], z[j])
    table = np.stack([low, high, distances], axis=1)
    table = table[np.lexsort((table[:, 2], table[:, 1], table[:, 0]))]
    return np.sort(z).tobytes() + np.asarray(cell, dtype=float).round(decimals).tobytes() + table.tobytes()
