"""Harmonic phonons with phonopy's finite displacements: displacements, force constants, reference; no AiiDA import.

The workflow is phonopy's finite-displacement method::

    displacements = make_displacements(unitcell, supercell_matrix)   # DisplacementSet
    supercells = displacements.displaced_supercells()                # label their forces elsewhere
    force_constants = force_constants_from_forces(displacements, forces)
    phonon = phonopy_object(displacements, force_constants)          # spectra: core.phonons.spectra
    reference = harmonic_reference(displacements, force_constants)   # HarmonicReference

Frequencies, band structure and DOS of ``phonon`` are in :mod:`~aiida_anharmal.core.phonons.spectra`;
structure conversion, force-constant layouts and ``phonopy.yaml`` files in
:mod:`~aiida_anharmal.core.phonons.phonopy_io` (the names in ``__all__`` are importable from here too).

Units are ASE's, which are also phonopy's defaults (no ``calculator``): Angstrom, eV, eV/Angstrom,
atomic mass units; force constants in eV/Angstrom^2.

Force constants are phonopy's full array ``fc[i, j, a, b]`` of shape ``(N, N, 3, 3)``, defined
as ``-dF_jb / du_ia`` (first index: the displaced atom); :func:`force_constants_to_matrix` turns
it into the ``(3N, 3N)`` matrix of :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference`,
for which ``F = -Phi u`` with ``u`` flattened atom-major (atom 0 x, y, z, atom 1 x, y, z, ...).

The atoms of the supercell are in phonopy's order: structures compared with a harmonic
reference (molecular dynamics, for instance) must be built from :attr:`DisplacementSet.supercell`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from ase import Atoms
from phonopy import Phonopy

from ..structures.frames import ORIGIN_PREFIX, _json_safe
from .anharmonicity import HarmonicReference, minimum_image_displacements
from .phonopy_io import (
    ase_to_phonopy,
    force_constants_to_matrix,
    full_force_constants,
    load_phonopy_yaml,
    phonopy_to_ase,
    phonopy_yaml_text,
    unitcell_from_dict,
    unitcell_to_dict,
)

__all__ = [
    'DISPLACEMENT_INDEX_KEY',
    'DisplacementSet',
    'PrimitiveMatrix',
    'ase_to_phonopy',
    'check_supercell_matches',
    'force_constants_from_forces',
    'force_constants_to_matrix',
    'force_constants_with',
    'full_force_constants',
    'harmonic_reference',
    'load_phonopy_yaml',
    'make_displacements',
    'phonopy_object',
    'phonopy_yaml_text',
    'supercell_matrix_3x3',
]

#: Key of ``atoms.info`` holding the index of a displaced supercell (read as an origin by ``Frames``).
DISPLACEMENT_INDEX_KEY = ORIGIN_PREFIX + 'phonopy_displacement'

PrimitiveMatrix = Literal['auto', 'P', 'F', 'I', 'A', 'C', 'R'] | Sequence[Sequence[float]] | np.ndarray


# ---------------------------------------------------------------------- supercells
def supercell_matrix_3x3(supercell_matrix) -> np.ndarray:
    """A supercell matrix as a 3x3 integer array from an integer, three integers or a 3x3 matrix."""
    matrix = np.asarray(supercell_matrix)
    if matrix.shape == ():
        matrix = np.eye(3) * matrix
    elif matrix.shape == (3,):
        matrix = np.diag(matrix)
    if matrix.shape != (3, 3):
        raise ValueError(f'supercell matrix of shape {matrix.shape}: give an integer, three integers or a 3x3 matrix')
    rounded = np.rint(matrix).astype(np.int64)
    if not np.allclose(matrix, rounded):
        raise ValueError(f'supercell matrix {matrix.tolist()} is not integer')
    if round(np.linalg.det(rounded)) <= 0:
        raise ValueError(f'supercell matrix {rounded.tolist()} must have a positive determinant')
    return rounded


def _quiet_phonopy(unitcell: Atoms, supercell_matrix, primitive_matrix, symprec: float) -> Phonopy:
    """A :class:`Phonopy` object, silencing phonopy 4's warning about an ``'auto'`` primitive matrix."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message="primitive_matrix defaulted to 'auto'")
        return Phonopy(
            ase_to_phonopy(unitcell),
            supercell_matrix=supercell_matrix,
            primitive_matrix=primitive_matrix,
            symprec=symprec,
            log_level=0,
        )


# ---------------------------------------------------------------------- displacements
@dataclass(frozen=True)
class DisplacementSet:
    """A unit cell, its supercell and primitive matrices, and phonopy's displacement dataset.

    :param unitcell: the unit cell (ASE Atoms; its masses are used).
    :param supercell_matrix: 3x3 integer matrix, ``supercell = supercell_matrix @ unitcell.cell``.
    :param primitive_matrix: 3x3 matrix, ``primitive = (unitcell.cell.T @ primitive_matrix).T``,
        stored resolved (never ``'auto'``) so that a stored set does not depend on a symmetry search.
    :param dataset: phonopy's displacement dataset without forces: type 1
        (``{'natom', 'first_atoms': [{'number', 'displacement'}, ...]}``) or type 2
        (``{'displacements': (n, N, 3)}``); displacements Cartesian, in Angstrom.
    :param symprec: phonopy's symmetry tolerance (Angstrom).

    The set is frozen: phonopy's symmetry search (seconds for a hundred atoms) is done once and
    kept, and :func:`phonopy_object` hands out copies.
    """

    unitcell: Atoms
    supercell_matrix: np.ndarray
    primitive_matrix: np.ndarray
    dataset: dict
    symprec: float = 1e-5
    _phonopy: Phonopy | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unitcell = self.unitcell.copy()
        unitcell.calc = None
        primitive_matrix = np.asarray(self.primitive_matrix, dtype=float)
        if primitive_matrix.shape != (3, 3):
            raise ValueError(f'primitive matrix of shape {primitive_matrix.shape}, expected (3, 3)')
        set_ = object.__setattr__  # frozen dataclass
        set_(self, 'unitcell', unitcell)
        set_(self, 'supercell_matrix', supercell_matrix_3x3(self.supercell_matrix))
        set_(self, 'primitive_matrix', primitive_matrix)
        set_(self, 'dataset', _displacement_dataset(self.dataset, self.n_supercell_atoms))
        set_(self, 'symprec', float(self.symprec))

    def _base_phonopy(self) -> Phonopy:
        """The cached :class:`Phonopy` object with the cells and the dataset; not to be modified."""
        if self._phonopy is None:
            phonon = _quiet_phonopy(self.unitcell, self.supercell_matrix, self.primitive_matrix, self.symprec)
            phonon.dataset = copy.deepcopy(self.dataset)
            object.__setattr__(self, '_phonopy', phonon)
        return self._phonopy

    @property
    def n_supercell_atoms(self) -> int:
        return len(self.unitcell) * round(np.linalg.det(self.supercell_matrix))

    @property
    def n_displacements(self) -> int:
        if 'first_atoms' in self.dataset:
            return len(self.dataset['first_atoms'])
        return len(self.dataset['displacements'])

    @property
    def displacements(self) -> np.ndarray:
        """Cartesian displacements of all atoms in each displaced supercell, shape ``(n, N, 3)``."""
        if 'displacements' in self.dataset:
            return np.array(self.dataset['displacements'], dtype=float)
        u = np.zeros((self.n_displacements, self.n_supercell_atoms, 3))
        for k, entry in enumerate(self.dataset['first_atoms']):
            u[k, entry['number']] = entry['displacement']
        return u

    @property
    def supercell(self) -> Atoms:
        """The perfect supercell, atoms in phonopy's order."""
        return phonopy_to_ase(self._base_phonopy().supercell)

    def displaced_supercells(self) -> list[Atoms]:
        """The displaced supercells, in the order of the dataset, each tagged with its index."""
        supercells = []
        for k, cell in enumerate(self._base_phonopy().supercells_with_displacements):
            atoms = phonopy_to_ase(cell)
            atoms.info[DISPLACEMENT_INDEX_KEY] = k
            supercells.append(atoms)
        return supercells

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """A JSON-serialisable dict (plain lists, numbers and strings)."""
        return _json_safe(
            {
                'unitcell': unitcell_to_dict(self.unitcell),
                'supercell_matrix': self.supercell_matrix,
                'primitive_matrix': self.primitive_matrix,
                'dataset': self.dataset,
                'symprec': self.symprec,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> DisplacementSet:
        return cls(
            unitcell=unitcell_from_dict(data['unitcell']),
            supercell_matrix=data['supercell_matrix'],
            primitive_matrix=data['primitive_matrix'],
            dataset=data['dataset'],
            symprec=data.get('symprec', 1e-5),
        )

    @classmethod
    def from_phonopy(cls, phonon: Phonopy, symprec: float = 1e-5) -> DisplacementSet:
        """The displacement set of a :class:`Phonopy` object (its forces, if any, are left out)."""
        if phonon.dataset is None:
            raise ValueError('the phonopy object has no displacement dataset')
        return cls(
            unitcell=phonopy_to_ase(phonon.unitcell),
            supercell_matrix=phonon.supercell_matrix,
            primitive_matrix=phonon.primitive_matrix,
            dataset=phonon.dataset,
            symprec=symprec,
        )


def _displacement_dataset(dataset: dict, n_atoms: int) -> dict:
    """Phonopy's displacement dataset with numpy displacements and without forces or energies."""
    if 'first_atoms' in dataset:
        if int(dataset.get('natom', n_atoms)) != n_atoms:
            raise ValueError(f'dataset for {dataset["natom"]} atoms, but the supercell has {n_atoms}')
        first_atoms = []
        for entry in dataset['first_atoms']:
            number = int(entry['number'])
            displacement = np.asarray(entry['displacement'], dtype=float)
            if not 0 <= number < n_atoms or displacement.shape != (3,):
                raise ValueError(f'bad dataset entry: atom {number} of {n_atoms}, displacement {displacement}')
            first_atoms.append({'number': number, 'displacement': displacement})
        return {'natom': n_atoms, 'first_atoms': first_atoms}
    if 'displacements' in dataset:
        displacements = np.asarray(dataset['displacements'], dtype=float)
        if displacements.ndim != 3 or displacements.shape[1:] != (n_atoms, 3):
            raise ValueError(f'displacements of shape {displacements.shape}, expected (n, {n_atoms}, 3)')
        return {'displacements': displacements}
    raise ValueError("a phonopy dataset needs 'first_atoms' (type 1) or 'displacements' (type 2)")


def make_displacements(
    unitcell: Atoms,
    supercell_matrix,
    distance: float = 0.01,
    is_plusminus: Literal['auto'] | bool = 'auto',
    primitive_matrix: PrimitiveMatrix = 'auto',
    symprec: float = 1e-5,
) -> DisplacementSet:
    """Phonopy's symmetry-reduced finite displacements of ``distance`` Angstrom in a supercell.

    :param is_plusminus: displace each atom in both directions (``True``), in one (``False``), or in
        both only where symmetry does not relate them (``'auto'``, phonopy's default).
    :param primitive_matrix: ``'auto'`` (phonopy 4's default: the primitive cell found by symmetry,
        so that band paths and the DOS refer to the true Brillouin zone), ``'P'`` (the unit cell
        itself), a centring letter or an explicit 3x3 matrix. The resolved matrix is stored.
    """
    if distance <= 0:
        raise ValueError(f'displacement distance must be positive, got {distance}')
    phonon = _quiet_phonopy(unitcell, supercell_matrix_3x3(supercell_matrix), primitive_matrix, symprec)
    phonon.generate_displacements(distance=distance, is_plusminus=is_plusminus)
    displacement_set = DisplacementSet.from_phonopy(phonon, symprec=symprec)
    object.__setattr__(displacement_set, '_phonopy', phonon)  # its symmetry is already searched
    return displacement_set


# ---------------------------------------------------------------------- force constants
def phonopy_object(displacement_set: DisplacementSet, force_constants=None) -> Phonopy:
    """A :class:`Phonopy` object with the set's cells and dataset, and the force constants if given.

    ``force_constants`` is the full ``(N, N, 3, 3)`` array or phonopy's compact ``(n_primitive, N, 3, 3)``.
    """
    phonon = copy.deepcopy(displacement_set._base_phonopy())
    if force_constants is not None:
        fc = np.asarray(force_constants, dtype=float)
        n, n_primitive = len(phonon.supercell), len(phonon.primitive)
        if fc.shape not in ((n, n, 3, 3), (n_primitive, n, 3, 3)):
            raise ValueError(
                f'force constants of shape {fc.shape} do not match the supercell of {n} atoms '
                f'(expected {(n, n, 3, 3)}, or {(n_primitive, n, 3, 3)} compact)'
            )
        phonon.force_constants = fc
    return phonon


def force_constants_from_forces(displacement_set: DisplacementSet, forces, symmetrize: bool = True) -> np.ndarray:
    """Full force constants ``(N, N, 3, 3)`` in eV/Angstrom^2 from the forces on the displaced supercells.

    :param forces: forces in eV/Angstrom, shape ``(n_displacements, N, 3)``, in the order of
        :meth:`DisplacementSet.displaced_supercells`.
    :param symmetrize: impose translational invariance and index permutation symmetry with
        phonopy's ``symmetrize_force_constants``.
    """
    forces = np.asarray(forces, dtype=float)
    expected = (displacement_set.n_displacements, displacement_set.n_supercell_atoms, 3)
    if forces.shape != expected:
        raise ValueError(f'forces of shape {forces.shape} do not match the displacement set (expected {expected})')
    if not np.isfinite(forces).all():
        raise ValueError('forces contain NaN or infinite values')
    phonon = phonopy_object(displacement_set)
    phonon.forces = forces  # the copy's dataset; the set's own stays without forces
    phonon.produce_force_constants(calculate_full_force_constants=True, show_drift=False)
    if symmetrize:
        phonon.symmetrize_force_constants(show_drift=False)
    return np.array(phonon.force_constants, dtype=float)


def force_constants_with(calculator, unitcell: Atoms, supercell_matrix, distance: float = 0.01) -> Phonopy:
    """Phonopy with force constants from any cheap ASE ``calculator``, here (DFT: ``HarmonicWorkChain``)."""
    displacements = make_displacements(unitcell, supercell_matrix, distance=distance)
    forces = []
    for atoms in displacements.displaced_supercells():
        atoms.calc = calculator
        forces.append(atoms.get_forces())
    return phonopy_object(displacements, force_constants_from_forces(displacements, forces))


def harmonic_reference(displacement_set: DisplacementSet, force_constants) -> HarmonicReference:
    """The perfect supercell with its force constants as a :class:`HarmonicReference`."""
    supercell = displacement_set.supercell
    fc = np.asarray(force_constants, dtype=float)
    n = len(supercell)
    if fc.shape != (n, n, 3, 3):
        raise ValueError(f'force constants of shape {fc.shape} do not match the supercell (expected {(n, n, 3, 3)})')
    return HarmonicReference(
        positions=supercell.positions,
        cell=supercell.cell.array,
        force_constants=force_constants_to_matrix(fc),
        symbols=tuple(supercell.get_chemical_symbols()),
    )


# ---------------------------------------------------------------------- checks
def check_supercell_matches(
    reference: HarmonicReference,
    atoms: Atoms,
    cell_tolerance: float = 1e-4,
    max_displacement: float | None = None,
) -> None:
    """Raise ``ValueError`` unless ``atoms`` is the reference supercell, displaced.

    Checked: the number of atoms, the species in order (when the reference has symbols), the cell
    (each component within ``cell_tolerance`` Angstrom) and that no atom lies ``max_displacement``
    or further from its reference site (minimum image). The last catches the same species in
    another order (a supercell built by ASE rather than phonopy, say); by default it is half the
    shortest distance between reference atoms, so that each atom is nearest its own site. Pass
    ``float('inf')`` to skip it.
    """
    n = len(reference.positions)
    if len(atoms) != n:
        raise ValueError(f'structure has {len(atoms)} atoms, the reference supercell {n}')
    if reference.symbols is not None:
        symbols = atoms.get_chemical_symbols()
        wrong = [i for i, (a, b) in enumerate(zip(symbols, reference.symbols)) if a != b]
        if wrong:
            i = wrong[0]
            raise ValueError(
                f'species differ from the reference supercell at {len(wrong)} atoms '
                f'(first: atom {i} is {symbols[i]}, the reference has {reference.symbols[i]})'
            )
    deviation = np.abs(atoms.cell.array - reference.cell).max()
    if deviation > cell_tolerance:
        raise ValueError(
            f'cell differs from the reference supercell by up to {deviation:.3g} A (tolerance {cell_tolerance} A)'
        )
    if max_displacement is None:
        max_displacement = 0.5 * _shortest_distance(reference.positions, reference.cell)
    u = np.linalg.norm(minimum_image_displacements(atoms.positions, reference.positions, reference.cell), axis=1)
    if u.max() >= max_displacement:
        i = int(u.argmax())
        raise ValueError(
            f'atom {i} is {u[i]:.3g} A from its reference site (limit {max_displacement:.3g} A): '
            'atoms in another order than the reference supercell, or not near their sites'
        )


def _shortest_distance(positions, cell) -> float:
    """The shortest minimum-image distance between two atoms of a periodic structure."""
    atoms = Atoms(positions=positions, cell=cell, pbc=True)
    if len(atoms) < 2:
        return float(np.min(np.linalg.norm(cell, axis=1)))
    distances = atoms.get_all_distances(mic=True)
    return float(distances[np.triu_indices(len(atoms), 1)].min())
