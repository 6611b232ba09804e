"""Exchange with phonopy: structures, force-constant arrays and ``phonopy.yaml`` files; no AiiDA import.

- :func:`ase_to_phonopy` and :func:`phonopy_to_ase` convert structures, keeping the masses.
- :func:`full_force_constants` reads phonopy's full ``(N, N, 3, 3)`` force constants off a
  :class:`Phonopy` object (expanding compact ones); :func:`force_constants_to_matrix` and
  :func:`force_constants_from_matrix` convert them to and from the ``(3N, 3N)`` matrix of
  :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference` (``F = -Phi u``, ``u`` flattened
  atom-major).
- :func:`phonopy_yaml_text` / :func:`save_phonopy_yaml` write phonopy's own ``phonopy.yaml`` (cells,
  matrices, displacement dataset, full force constants); :func:`load_phonopy_yaml` reads one back
  into a :class:`Phonopy` object and nothing else (no ``FORCE_SETS``, no recomputed force constants).

Units are ASE's, which are also phonopy's defaults: Angstrom, eV, atomic mass units, force
constants in eV/Angstrom^2. The finite-displacement method itself is in
:mod:`~aiida_anharmal.core.phonons.harmonic`, which re-exports :func:`ase_to_phonopy`,
:func:`full_force_constants`, :func:`force_constants_to_matrix`, :func:`phonopy_yaml_text` and
:func:`load_phonopy_yaml`.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from phonopy import Phonopy
from phonopy.interface.phonopy_yaml import PhonopyYaml
from phonopy.structure.atoms import PhonopyAtoms


# ---------------------------------------------------------------------- structures
def ase_to_phonopy(atoms: Atoms) -> PhonopyAtoms:
    """The structure as :class:`PhonopyAtoms`, keeping ASE's masses."""
    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell.array,
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def phonopy_to_ase(cell: PhonopyAtoms) -> Atoms:
    """A periodic ASE structure from :class:`PhonopyAtoms`, keeping its masses."""
    return Atoms(
        symbols=list(cell.symbols),
        cell=np.asarray(cell.cell, dtype=float),
        scaled_positions=np.asarray(cell.scaled_positions, dtype=float),
        masses=None if cell.masses is None else np.asarray(cell.masses, dtype=float),
        pbc=True,
    )


def unitcell_to_dict(atoms: Atoms) -> dict:
    """Symbols, cell, scaled positions and masses of ``atoms`` as plain lists (JSON)."""
    return {
        'symbols': atoms.get_chemical_symbols(),
        'cell': atoms.cell.array.tolist(),
        'scaled_positions': atoms.get_scaled_positions(wrap=False).tolist(),
        'masses': atoms.get_masses().tolist(),
    }


def unitcell_from_dict(data: dict) -> Atoms:
    """The periodic structure of :func:`unitcell_to_dict`."""
    return Atoms(
        symbols=data['symbols'],
        cell=data['cell'],
        scaled_positions=data['scaled_positions'],
        masses=data['masses'],
        pbc=True,
    )


# ---------------------------------------------------------------------- force constants
def _require_force_constants(phonon: Phonopy) -> np.ndarray:
    """The force constants of a :class:`Phonopy` object; ``ValueError`` if it has none."""
    if phonon.force_constants is None:
        raise ValueError('the phonopy object has no force constants')
    return phonon.force_constants


def full_force_constants(phonon: Phonopy) -> np.ndarray:
    """The full ``(N, N, 3, 3)`` force constants of a :class:`Phonopy` object (expanding compact ones)."""
    fc = _require_force_constants(phonon)
    if fc.shape[0] == fc.shape[1]:
        return np.array(fc, dtype=float)
    from phonopy.harmonic.force_constants import compact_fc_to_full_fc

    return np.array(compact_fc_to_full_fc(phonon.primitive, fc), dtype=float)


def force_constants_to_matrix(force_constants) -> np.ndarray:
    """``(N, N, 3, 3)`` phonopy force constants as the ``(3N, 3N)`` matrix with ``F = -Phi u``.

    ``Phi[3j + b, 3i + a] = fc[i, j, a, b]``: the force on atom ``j`` responds to atom ``i``'s
    displacement. For symmetrised force constants ``fc[i, j, a, b] = fc[j, i, b, a]`` and ``Phi``
    is symmetric.
    """
    fc = np.asarray(force_constants, dtype=float)
    n = fc.shape[0]
    if fc.shape != (n, n, 3, 3):
        raise ValueError(f'force constants of shape {fc.shape}: expected full (N, N, 3, 3)')
    return fc.transpose(1, 3, 0, 2).reshape(3 * n, 3 * n)


def force_constants_from_matrix(matrix) -> np.ndarray:
    """The inverse of :func:`force_constants_to_matrix`: ``(3N, 3N)`` to ``(N, N, 3, 3)``."""
    phi = np.asarray(matrix, dtype=float)
    if phi.ndim != 2 or phi.shape[0] != phi.shape[1] or phi.shape[0] % 3:
        raise ValueError(f'force constant matrix of shape {phi.shape}: expected (3N, 3N)')
    n = phi.shape[0] // 3
    return phi.reshape(n, 3, n, 3).transpose(2, 0, 3, 1).copy()


# ---------------------------------------------------------------------- phonopy's own file
def phonopy_yaml_text(phonon: Phonopy, force_constants: bool = True) -> str:
    """Phonopy's ``phonopy.yaml``: cells, matrices, displacement dataset and (full) force constants."""
    if force_constants:
        _require_force_constants(phonon)
    return str(phonon.to_phonopy_yaml(settings={'force_constants': force_constants}))


def save_phonopy_yaml(phonon: Phonopy, path: str | Path, force_constants: bool = True) -> Path:
    """Write :func:`phonopy_yaml_text` to ``path`` and return the path."""
    path = Path(path)
    path.write_text(phonopy_yaml_text(phonon, force_constants=force_constants))
    return path


def load_phonopy_yaml(source: str | Path | io.IOBase, symprec: float = 1e-5) -> Phonopy:
    """A :class:`Phonopy` object from a ``phonopy.yaml`` file or stream, its force constants as stored.

    Unlike ``phonopy.load``, nothing else is read (no ``FORCE_SETS`` from the working directory)
    and the stored force constants are neither recomputed nor symmetrised. A file without a
    primitive matrix is read with the unit cell as primitive cell (phonopy 3's default).
    """
    data = PhonopyYaml().read(source)
    if data.unitcell is None:
        raise ValueError(f'no unit cell in the phonopy yaml {source}')
    supercell_matrix = np.eye(3, dtype=np.int64) if data.supercell_matrix is None else data.supercell_matrix
    primitive_matrix = 'P' if data.primitive_matrix is None else data.primitive_matrix
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message="primitive_matrix defaulted to 'auto'")
        phonon = Phonopy(data.unitcell, supercell_matrix, primitive_matrix=primitive_matrix, symprec=symprec)
    if data.dataset is not None:
        phonon.dataset = data.dataset
    if data.force_constants is not None:
        phonon.force_constants = data.force_constants
    return phonon


def check_supercell_matrix(matrix) -> None:
    """Raise :class:`ValueError` unless ``matrix`` is 3 integers or a 3x3 integer matrix with a positive determinant."""
    try:
        array = np.array(matrix, dtype=object)
    except Exception:  # noqa: BLE001 - ragged input
        array = None
    if array is None or array.shape not in ((3,), (3, 3)):
        raise ValueError(f'`supercell_matrix` must be 3 integers or a 3x3 integer matrix, not {matrix!r}')
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in array.flat):
        raise ValueError(f'`supercell_matrix` must hold integers only, not {matrix!r}')
    square = np.diag(array.astype(int)) if array.shape == (3,) else array.astype(int)
    det = round(np.linalg.det(square))
    if det == 0:
        raise ValueError(f'`supercell_matrix` {square.tolist()} is singular (determinant 0)')
    if det < 0:
        raise ValueError(
            f'`supercell_matrix` {square.tolist()} has a negative determinant ({det}); phonopy needs a positive one'
        )
