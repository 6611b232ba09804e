"""Perturbative phonon lifetimes with phono3py: fc3 displacements, fc3 from forces, RTA linewidths; no AiiDA import.

The route, next to the fully anharmonic one of :mod:`~aiida_anharmal.core.phonons.lifetimes`::

    displacements = make_fc3_displacements(phonon)        # Fc3DisplacementSet; phonon: the harmonic reference
    supercells = displacements.supercells()               # label their forces elsewhere
    result = perturbative_lifetimes(displacements, forces, phonon.force_constants, mesh=(11, 11, 11))
    table = result.table(0)                               # per mode, at the first temperature

Third-order force constants come from phono3py's finite displacements (pairs of displaced atoms;
``cutoff_pair_distance`` drops pairs farther apart, whose supercells then need no label) or, for
larger cells as phono3py's author recommends, from ``n_random`` supercells with every atom displaced
and a fitting force-constant calculator (``fc_calculator='symfc'``). The second-order force constants
are those of the harmonic reference by default (the same reference the MD route projects on), or,
with ``fc2='labels'``, phono3py's own from the singly displaced supercells of the same labels.

Linewidths are the imaginary part of the bubble self-energy in the relaxation-time approximation
(phono3py's ``gamma``, THz, the half width at half maximum of the spectral line in ordinary
frequency); the lifetime of the mode's energy is ``tau = 1 / (2 Gamma) = 1 / (4 pi gamma)`` ps with
``Gamma = 2 pi gamma`` its angular HWHM. That is the quantity the energy-autocorrelation fit of the
MD route measures, so the two are compared directly. Units: Angstrom, eV, amu, THz, ps, W/(m K).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from phonopy import Phonopy

from ..structures.frames import _json_safe
from .harmonic import supercell_matrix_3x3
from .lifetimes import NO_MODE, OK
from .phonopy_io import ase_to_phonopy, phonopy_to_ase, unitcell_from_dict, unitcell_to_dict

#: Finite displacement (Angstrom) of phono3py's default.
DEFAULT_DISTANCE = 0.03
#: Force-constant calculators for fc3 (``None``: phono3py's own finite differences of displacement pairs).
FC_CALCULATORS = (None, 'symfc')
#: Where the second-order force constants come from.
FC2_SOURCES = ('reference', 'labels')
#: No scattering found (gamma = 0, infinite tau); the other flags are the MD route's (a finite lifetime, not a mode).
NO_SCATTERING = 'no_scattering'
#: Frequencies (THz) below this are not modes (phono3py's default cutoff frequency).
CUTOFF_FREQUENCY = 1e-4
#: Linewidths (THz) below this are no scattering (tau > 8e6 ps): the round-off of a harmonic crystal's fc3 gives ~1e-10.
NO_SCATTERING_GAMMA = 1e-8


def _phono3py(unitcell: Atoms, supercell_matrix, primitive_matrix, phonon_supercell_matrix, symprec: float):
    from phono3py import Phono3py

    phonon_supercell = None
    if not np.array_equal(supercell_matrix_3x3(phonon_supercell_matrix), supercell_matrix_3x3(supercell_matrix)):
        phonon_supercell = supercell_matrix_3x3(phonon_supercell_matrix)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return Phono3py(
            ase_to_phonopy(unitcell),
            supercell_matrix=supercell_matrix_3x3(supercell_matrix),
            primitive_matrix=np.asarray(primitive_matrix, dtype=float),
            phonon_supercell_matrix=phonon_supercell,
            symprec=symprec,
            log_level=0,
        )


def _strip(dataset: dict) -> dict:
    """The displacement dataset without forces, with numpy displacements."""
    clean = {key: value for key, value in dataset.items() if key not in ('forces', 'supercell_energies')}
    if 'displacements' in clean:
        clean['displacements'] = np.array(clean['displacements'], dtype=float)
    for first in clean.get('first_atoms', []):
        first.pop('forces', None)
        first['displacement'] = np.array(first['displacement'], dtype=float)
        for second in first.get('second_atoms', []):
            second.pop('forces', None)
            second['displacement'] = np.array(second['displacement'], dtype=float)
    return clean


@dataclass(frozen=True)
class Fc3DisplacementSet:
    """The displaced supercells of a third-order force-constant calculation and how they were made.

    ``supercell_matrix`` is the fc3 supercell; ``phonon_supercell_matrix`` that of the harmonic
    reference (fc2). ``dataset`` is phono3py's displacement dataset (no forces). Supercells that
    phono3py skips (pairs beyond ``cutoff_pair_distance``) need no label: :meth:`supercells` leaves
    them out and :attr:`labelled` gives the position of each labelled one in phono3py's list.
    """

    unitcell: Atoms
    supercell_matrix: np.ndarray
    primitive_matrix: np.ndarray
    phonon_supercell_matrix: np.ndarray
    dataset: dict
    distance: float = DEFAULT_DISTANCE
    cutoff_pair_distance: float | None = None
    n_random: int | None = None
    seed: int | None = None
    symprec: float = 1e-5
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass
        set_(self, 'supercell_matrix', supercell_matrix_3x3(self.supercell_matrix))
        set_(self, 'phonon_supercell_matrix', supercell_matrix_3x3(self.phonon_supercell_matrix))
        set_(self, 'primitive_matrix', np.asarray(self.primitive_matrix, dtype=float))

    def phono3py(self):
        """A new :class:`phono3py.Phono3py` object with the cells and this dataset."""
        ph3 = _phono3py(
            self.unitcell, self.supercell_matrix, self.primitive_matrix, self.phonon_supercell_matrix, self.symprec
        )
        ph3.dataset = copy.deepcopy(_strip(self.dataset))
        return ph3

    def _all_supercells(self) -> list:
        if 'supercells' not in self._cache:
            self._cache['supercells'] = self.phono3py().supercells_with_displacements
        return self._cache['supercells']

    @property
    def n_all(self) -> int:
        """Supercells in phono3py's list (those skipped by the pair cut-off included)."""
        return len(self._all_supercells())

    @property
    def labelled(self) -> list[int]:
        """Positions in phono3py's list of the supercells that need a label."""
        return [k for k, cell in enumerate(self._all_supercells()) if cell is not None]

    @property
    def n_supercell_atoms(self) -> int:
        return len(self.unitcell) * round(abs(np.linalg.det(supercell_matrix_3x3(self.supercell_matrix))))

    def supercells(self) -> list[Atoms]:
        """The supercells to label, in the order of :attr:`labelled`."""
        return [phonopy_to_ase(cell) for cell in self._all_supercells() if cell is not None]

    #: The interface of the harmonic :class:`~aiida_anharmal.core.phonons.harmonic.DisplacementSet`: what is labelled.
    displaced_supercells = supercells

    @property
    def n_displacements(self) -> int:
        """Supercells to label."""
        return len(self.labelled)

    def full_forces(self, forces) -> np.ndarray:
        """Forces ``(len(labelled), N, 3)`` placed in phono3py's list (zeros where it skips a supercell)."""
        forces = np.asarray(forces, dtype=float)
        shape = (len(self.labelled), self.n_supercell_atoms, 3)
        if forces.shape != shape:
            raise ValueError(f'forces of shape {forces.shape}, expected {shape} (one per labelled supercell)')
        if not np.isfinite(forces).all():
            raise ValueError('the forces contain NaN or infinite values')
        full = np.zeros((self.n_all, *shape[1:]))
        full[self.labelled] = forces
        return full

    def to_dict(self) -> dict:
        """A JSON-serialisable dict."""
        return _json_safe(
            {
                'unitcell': unitcell_to_dict(self.unitcell),
                'supercell_matrix': supercell_matrix_3x3(self.supercell_matrix),
                'primitive_matrix': np.asarray(self.primitive_matrix, dtype=float),
                'phonon_supercell_matrix': supercell_matrix_3x3(self.phonon_supercell_matrix),
                'dataset': _strip(self.dataset),
                'distance': self.distance,
                'cutoff_pair_distance': self.cutoff_pair_distance,
                'n_random': self.n_random,
                'seed': self.seed,
                'symprec': self.symprec,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> Fc3DisplacementSet:
        data = dict(data)
        return cls(unitcell=unitcell_from_dict(data.pop('unitcell')), **data)


def make_fc3_displacements(
    phonon: Phonopy,
    distance: float = DEFAULT_DISTANCE,
    cutoff_pair_distance: float | None = None,
    n_random: int | None = None,
    seed: int = 0,
    supercell_matrix=None,
    symprec: float = 1e-5,
) -> Fc3DisplacementSet:
    """The fc3 displacements of the harmonic reference ``phonon`` (its unit cell, primitive and supercell matrices).

    :param distance: displacement length (Angstrom); with ``n_random`` every atom moves by it in a random direction.
    :param cutoff_pair_distance: skip the pairs of displaced atoms farther apart (Angstrom; ``None``: all pairs).
    :param n_random: random supercells instead of pairs (fit fc3 with ``fc_calculator='symfc'``).
    :param supercell_matrix: the fc3 supercell (default: the harmonic reference's).
    """
    if not distance > 0:
        raise ValueError(f'the displacement distance must be positive, not {distance}')
    if cutoff_pair_distance is not None and not cutoff_pair_distance > 0:
        raise ValueError(f'cutoff_pair_distance must be positive, not {cutoff_pair_distance}')
    if n_random is not None and (int(n_random) != n_random or n_random < 1):
        raise ValueError(f'n_random must be a positive integer, not {n_random}')
    if n_random is not None and cutoff_pair_distance is not None:
        raise ValueError('give cutoff_pair_distance (pairs) or n_random (random supercells), not both')
    if seed is not None and (int(seed) != seed or seed < 0):
        raise ValueError(f'the seed must be a non-negative integer, not {seed}')
    matrix = phonon.supercell_matrix if supercell_matrix is None else supercell_matrix_3x3(supercell_matrix)
    unitcell = phonopy_to_ase(phonon.unitcell)
    ph3 = _phono3py(unitcell, matrix, phonon.primitive_matrix, phonon.supercell_matrix, symprec)
    ph3.generate_displacements(
        distance=distance,
        cutoff_pair_distance=cutoff_pair_distance,
        number_of_snapshots=n_random,
        random_seed=seed if n_random is not None else None,
    )
    return Fc3DisplacementSet(
        unitcell=unitcell,
        supercell_matrix=matrix,
        primitive_matrix=np.asarray(phonon.primitive_matrix, dtype=float),
        phonon_supercell_matrix=supercell_matrix_3x3(phonon.supercell_matrix),
        dataset=ph3.dataset,
        distance=float(distance),
        cutoff_pair_distance=None if cutoff_pair_distance is None else float(cutoff_pair_distance),
        n_random=None if n_random is None else int(n_random),
        seed=int(seed) if n_random is not None else None,
        symprec=float(symprec),
    )


def lifetime_from_linewidth(gamma) -> np.ndarray:
    """``tau = 1 / (4 pi gamma)`` ps from phono3py's linewidth ``gamma`` (THz); ``inf`` where ``gamma`` is 0."""
    gamma = np.asarray(gamma, dtype=float)
    with np.errstate(divide='ignore'):
        return np.where(gamma > 0, 1.0 / (4 * np.pi * np.where(gamma > 0, gamma, 1.0)), np.inf)


@dataclass
class PerturbativeResult:
    """RTA on a mesh: per irreducible q-point ``qpoints`` (reduced), ``weights`` (multiplicity), ``frequencies``
    (THz, ``(n_q, n_bands)``); per temperature ``gamma`` (THz) and ``tau`` (ps), ``(n_T, n_q, n_bands)``, and
    ``kappa`` (W/(m K), ``(n_T, 6)``: xx, yy, zz, yz, xz, xy)."""

    mesh: np.ndarray
    temperatures: np.ndarray
    qpoints: np.ndarray
    weights: np.ndarray
    frequencies: np.ndarray
    gamma: np.ndarray
    tau: np.ndarray
    kappa: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self.__dataclass_fields__}

    def table(self, t_index: int = 0) -> dict[str, np.ndarray]:
        """Per mode at temperature number ``t_index``: ``q`` (reduced), ``band``, ``weight``, ``frequency`` (THz),
        ``gamma`` (THz), ``tau`` (ps) and ``flag`` (``ok``, :data:`NO_SCATTERING` below :data:`NO_SCATTERING_GAMMA`
        with ``tau = inf``, ``no_mode``)."""
        n_q, n_bands = self.frequencies.shape
        frequency = self.frequencies.ravel()
        gamma = self.gamma[t_index].ravel()
        flag = np.where(frequency < CUTOFF_FREQUENCY, NO_MODE, np.where(gamma > NO_SCATTERING_GAMMA, OK, NO_SCATTERING))
        return {
            'q': np.repeat(self.qpoints, n_bands, axis=0),
            'band': np.tile(np.arange(n_bands), n_q),
            'weight': np.repeat(self.weights, n_bands),
            'frequency': frequency,
            'gamma': gamma,
            'tau': np.where(flag == NO_MODE, np.nan, np.where(flag == OK, lifetime_from_linewidth(gamma), np.inf)),
            'flag': flag.astype(str),
        }


def fc3_from_forces(displacements: Fc3DisplacementSet, forces, fc_calculator: str | None = None):
    """A :class:`phono3py.Phono3py` object with fc3 (and fc2 of the same labels) from the labelled ``forces``."""
    if fc_calculator not in FC_CALCULATORS:
        raise ValueError(f'fc_calculator must be one of {FC_CALCULATORS}, not {fc_calculator!r}')
    if displacements.n_random is not None and fc_calculator is None:
        raise ValueError("random displacements need a fitting force-constant calculator: fc_calculator='symfc'")
    ph3 = displacements.phono3py()
    ph3.forces = displacements.full_forces(forces)
    ph3.produce_fc3(fc_calculator=fc_calculator)
    return ph3


def perturbative_lifetimes(
    displacements: Fc3DisplacementSet,
    forces,
    fc2=None,
    mesh: Sequence[int] = (11, 11, 11),
    temperatures: Sequence[float] = (300.0,),
    fc_calculator: str | None = None,
    sigma: float | None = None,
) -> PerturbativeResult:
    """Linewidths, lifetimes and kappa in the RTA from fc3 of ``forces`` and ``fc2`` (``None``: fc2 of the labels).

    :param fc2: full ``(N, N, 3, 3)`` force constants of the harmonic reference's supercell (eV/A^2).
    :param sigma: Gaussian smearing (THz) of the energy conservation; ``None``: the tetrahedron method
        (phono3py's default). Measured on EMT Cu: the tetrahedron method's linewidths change by up to
        10 % (kappa by 1-15 %, the more the coarser the mesh) when fc2 changes by 1e-14 eV/A^2, as in a
        round trip through ``phonopy.yaml``; smearing changes by 1e-12 relative. Give the same fc2 bit for
        bit when comparing runs.
    """
    mesh = np.asarray(mesh, dtype=int)
    if mesh.shape != (3,) or (mesh < 1).any():
        raise ValueError(f'the mesh must be three positive integers, not {mesh.tolist()}')
    temperatures = np.asarray(temperatures, dtype=float)
    if temperatures.ndim != 1 or not temperatures.size or not (temperatures > 0).all():
        raise ValueError(f'temperatures must be positive (K), not {temperatures.tolist()}')
    if sigma is not None and not sigma > 0:
        raise ValueError(f'the smearing width sigma must be positive (THz), not {sigma}')
    ph3 = fc3_from_forces(displacements, forces, fc_calculator)
    if sigma is not None:
        ph3.sigmas = [float(sigma)]
    if fc2 is not None:
        n = displacements.n_supercell_atoms if ph3.phonon_supercell_matrix is None else len(ph3.phonon_supercell)
        fc2 = np.asarray(fc2, dtype=float)
        if fc2.shape != (n, n, 3, 3):
            raise ValueError(f'fc2 of shape {fc2.shape}, expected {(n, n, 3, 3)} (the harmonic supercell)')
        ph3.fc2 = fc2
    elif ph3.phonon_supercell_matrix is not None:
        raise ValueError('fc2 from the labels needs the fc3 supercell to be the harmonic one')
    ph3.mesh_numbers = mesh
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=temperatures, write_kappa=False)
    conductivity = ph3.thermal_conductivity
    gamma = np.asarray(conductivity.gamma, dtype=float)[0]  # the one integration: sigma, or the tetrahedra
    return PerturbativeResult(
        mesh=mesh,
        temperatures=temperatures,
        qpoints=np.asarray(conductivity.qpoints, dtype=float),
        weights=np.asarray(conductivity.grid_weights, dtype=int),
        frequencies=np.asarray(conductivity.frequencies, dtype=float),
        gamma=gamma,
        tau=lifetime_from_linewidth(gamma),
        kappa=np.asarray(conductivity.kappa, dtype=float)[0],
    )
