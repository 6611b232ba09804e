"""Many periodic structures and their labels as a few flat arrays.

This is the pure-numpy heart of :class:`aiida_anharmal.data.TrainingSet`: no AiiDA import.
A :class:`Frames` object holds ``n_frames`` structures with possibly different atom counts.
Per-atom quantities are concatenated along the first axis; ``n_atoms`` gives the split.

Units are ASE's: eV, Angstrom, eV/Angstrom, eV/Angstrom^3. Stress is stored in Voigt order
(xx, yy, zz, yz, xz, xy) with ASE's sign convention. A missing label is NaN.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols

ORIGIN_PREFIX = 'origin_'

#: Names of the arrays stored in the ``.npz`` file, in order.
ARRAY_NAMES = ('numbers', 'positions', 'cells', 'pbc', 'n_atoms', 'energy', 'forces', 'stress')


def _json_safe(value: Any) -> Any:
    """Turn numpy scalars and arrays into plain Python values so that origins serialise to JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@dataclass
class Frames:
    """Structures and labels of many frames, stored as concatenated arrays.

    :param numbers: atomic numbers of all atoms of all frames, shape ``(n_total,)``.
    :param positions: Cartesian positions, shape ``(n_total, 3)``.
    :param cells: cell vectors (rows), shape ``(n_frames, 3, 3)``.
    :param pbc: periodicity, shape ``(n_frames, 3)``.
    :param n_atoms: atoms per frame, shape ``(n_frames,)``.
    :param energy: potential energy per frame (NaN: no label), shape ``(n_frames,)``.
    :param forces: forces (NaN: no label), shape ``(n_total, 3)``.
    :param stress: Voigt stress (NaN: no label), shape ``(n_frames, 6)``.
    :param origins: one JSON-serialisable dict per frame saying where the frame came from.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    n_atoms: np.ndarray
    energy: np.ndarray | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    origins: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.cells = np.asarray(self.cells, dtype=np.float64).reshape(-1, 3, 3)
        self.pbc = np.asarray(self.pbc, dtype=bool).reshape(-1, 3)
        self.n_atoms = np.asarray(self.n_atoms, dtype=np.int64).reshape(-1)
        n_frames, n_total = len(self.n_atoms), int(self.n_atoms.sum())
        if self.energy is None:
            self.energy = np.full(n_frames, np.nan)
        if self.forces is None:
            self.forces = np.full((n_total, 3), np.nan)
        if self.stress is None:
            self.stress = np.full((n_frames, 6), np.nan)
        self.energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        self.forces = np.asarray(self.forces, dtype=np.float64).reshape(-1, 3)
        self.stress = np.asarray(self.stress, dtype=np.float64).reshape(-1, 6)
        if not self.origins:
            self.origins = [{} for _ in range(n_frames)]
        self.origins = [_json_safe(dict(o)) for o in self.origins]

        expected = {
            'numbers': (self.numbers.shape, (n_total,)),
            'positions': (self.positions.shape, (n_total, 3)),
            'forces': (self.forces.shape, (n_total, 3)),
            'cells': (self.cells.shape, (n_frames, 3, 3)),
            'pbc': (self.pbc.shape, (n_frames, 3)),
            'energy': (self.energy.shape, (n_frames,)),
            'stress': (self.stress.shape, (n_frames, 6)),
        }
        for name, (got, want) in expected.items():
            if got != want:
                raise ValueError(f'array `{name}` has shape {got}, expected {want} for {n_frames} frames')
        if len(self.origins) != n_frames:
            raise ValueError(f'{len(self.origins)} origins given for {n_frames} frames')
        if np.any(self.n_atoms < 1):
            raise ValueError('every frame needs at least one atom')
        if np.any((self.numbers < 1) | (self.numbers >= len(chemical_symbols))):
            raise ValueError('atomic numbers must lie between 1 and 118')

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_atoms(cls, atoms_list: Iterable[Atoms], origins: Sequence[dict] | None = None) -> Frames:
        """Build from ASE Atoms; labels are taken from results already stored on ``atoms.calc``.

        Nothing is computed: an attached calculator contributes only what it already holds in
        ``calc.results`` (a :class:`SinglePointCalculator` from ``ase.io.read``, for instance).
        ``atoms.info`` keys starting with ``origin_`` become the frame's origin unless ``origins``
        is given.
        """
        atoms_list = list(atoms_list)
        numbers, positions, cells, pbc, n_atoms = [], [], [], [], []
        energy, forces, stress, read_origins = [], [], [], []
        for atoms in atoms_list:
            n = len(atoms)
            numbers.append(atoms.numbers)
            positions.append(atoms.positions)
            cells.append(atoms.cell.array)
            pbc.append(atoms.pbc)
            n_atoms.append(n)
            results = dict(atoms.calc.results) if atoms.calc is not None else {}
            energy.append(results.get('energy', np.nan))
            forces.append(results.get('forces', np.full((n, 3), np.nan)))
            stress.append(_voigt(results['stress']) if 'stress' in results else np.full(6, np.nan))
            read_origins.append(
                {k[len(ORIGIN_PREFIX) :]: v for k, v in atoms.info.items() if k.startswith(ORIGIN_PREFIX)}
            )
        if not atoms_list:
            return cls.empty()
        return cls(
            numbers=np.concatenate(numbers),
            positions=np.concatenate(positions),
            cells=np.array(cells),
            pbc=np.array(pbc),
            n_atoms=np.array(n_atoms),
            energy=np.array(energy, dtype=float),
            forces=np.concatenate(forces),
            stress=np.array(stress),
            origins=list(origins) if origins is not None else read_origins,
        )

    @classmethod
    def empty(cls) -> Frames:
        return cls(
            numbers=np.zeros(0, int),
            positions=np.zeros((0, 3)),
            cells=np.zeros((0, 3, 3)),
            pbc=np.zeros((0, 3), bool),
            n_atoms=np.zeros(0, int),
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Frames]) -> Frames:
        """Join several :class:`Frames` in the given order."""
        parts = list(parts)
        if not parts:
            return cls.empty()
        return cls(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in ARRAY_NAMES},
            origins=[o for p in parts for o in p.origins],
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.n_atoms)

    @property
    def offsets(self) -> np.ndarray:
        """Index of the first atom of each frame in the per-atom arrays, shape ``(n_frames + 1,)``."""
        return np.concatenate([[0], np.cumsum(self.n_atoms)])

    def atom_slice(self, index: int) -> slice:
        offsets = self.offsets
        return slice(int(offsets[index]), int(offsets[index + 1]))

    @property
    def species(self) -> list[str]:
        """Chemical symbols present, sorted alphabetically."""
        return sorted({chemical_symbols[z] for z in np.unique(self.numbers)})

    @property
    def has_energy(self) -> np.ndarray:
        return ~np.isnan(self.energy)

    @property
    def has_forces(self) -> np.ndarray:
        if len(self) == 0:
            return np.zeros(0, bool)
        finite = ~np.isnan(self.forces).any(axis=1)
        return np.logical_and.reduceat(finite, self.offsets[:-1])

    @property
    def has_stress(self) -> np.ndarray:
        return ~np.isnan(self.stress).any(axis=1)

    def get_atoms(self, index: int, with_labels: bool = True) -> Atoms:
        """Return frame ``index`` as ASE Atoms; labels as a :class:`SinglePointCalculator`."""
        index = range(len(self))[index]
        sl = self.atom_slice(index)
        atoms = Atoms(
            numbers=self.numbers[sl], positions=self.positions[sl], cell=self.cells[index], pbc=self.pbc[index]
        )
        for key, value in self.origins[index].items():
            atoms.info[ORIGIN_PREFIX + key] = value
        if with_labels:
            results = {}
            if self.has_energy[index]:
                results['energy'] = float(self.energy[index])
            if not np.isnan(self.forces[sl]).any():
                results['forces'] = self.forces[sl].copy()
            if self.has_stress[index]:
                results['stress'] = self.stress[index].copy()
            if results:
                atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    def to_atoms(self, with_labels: bool = True) -> list[Atoms]:
        return [self.get_atoms(i, with_labels) for i in range(len(self))]

    def subset(self, indices: Sequence[int]) -> Frames:
        """Return the frames at ``indices`` (in that order) as a new object."""
        indices = [range(len(self))[int(i)] for i in indices]
        if not indices:
            return self.empty()
        offsets = self.offsets
        atom_idx = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
        return Frames(
            numbers=self.numbers[atom_idx],
            positions=self.positions[atom_idx],
            cells=self.cells[indices],
            pbc=self.pbc[indices],
            n_atoms=self.n_atoms[indices],
            energy=self.energy[indices],
            forces=self.forces[atom_idx],
            stress=self.stress[indices],
            origins=[dict(self.origins[i]) for i in indices],
        )

    # ------------------------------------------------------------------ files
    def to_npz(self, handle) -> None:
        """Write all arrays and the origins (as JSON) to an ``.npz`` file or binary handle."""
        origins = np.frombuffer(json.dumps(self.origins).encode('utf-8'), dtype=np.uint8)
        np.savez(handle, **{name: getattr(self, name) for name in ARRAY_NAMES}, origins_json=origins)

    def to_npz_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.to_npz(buffer)
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, handle) -> Frames:
        with np.load(handle, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ARRAY_NAMES}
            origins = json.loads(bytes(data['origins_json']).decode('utf-8'))
        return cls(**arrays, origins=origins)

    def write_extxyz(self, path: str | Path, info: dict | None = None) -> None:
        """Write extended XYZ; labels as energy/forces/stress, origins as ``origin_*`` info keys, and ``info``
        (e.g. the labelling engine) as info keys of every frame."""
        from ase.io import write

        atoms_list = self.to_atoms()
        for atoms in atoms_list:
            atoms.info.update(info or {})
            for key in list(atoms.info):
                if key.startswith(ORIGIN_PREFIX) and isinstance(atoms.info[key], (dict, list)):
                    atoms.info[key] = json.dumps(atoms.info[key])
        write(str(path), atoms_list, format='extxyz')

    @classmethod
    def read_extxyz(cls, path: str | Path, index: str = ':') -> Frames:
        """Read frames (and any labels and ``origin_*`` info) from an extended XYZ file."""
        from ase.io import read

        return cls.from_atoms(read(str(path), index=index, format='extxyz'))


def _voigt(stress: np.ndarray) -> np.ndarray:
    """Return stress in Voigt order from either a Voigt 6-vector or a 3x3 matrix."""
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (6,):
        return stress
    if stress.shape == (3, 3):
        return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    raise ValueError(f'stress of shape {stress.shape} is neither Voigt (6,) nor (3, 3)')
