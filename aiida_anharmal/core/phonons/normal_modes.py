"""Harmonic normal modes of a supercell and the projection of MD on them; numpy + phonopy, no AiiDA import.

The modes are those of the commensurate q-points of the supercell (phonopy's primitive cell; every q
with ``q . L`` integer for the supercell lattice vectors ``L``, so there are exactly as many modes as
degrees of freedom). With phonopy's eigenvectors ``e_s(q)`` (phase convention of atomic positions:
phonopy's dynamical matrix carries ``exp(2 pi i q . (r_j - r_i))``) the supercell mode vector is::

    E_qs[j, alpha] = e_s(q)[3 kappa(j) + alpha] exp(2 pi i q . r_j) / sqrt(N_cells)

with ``kappa(j)`` the primitive atom of supercell atom ``j`` and ``r_j`` its position in reduced
coordinates of the primitive cell. The ``E_qs`` are orthonormal and diagonalise the mass-weighted
force constants: ``D E_qs = omega_qs^2 E_qs``.

A trajectory (positions ``R(t)``, velocities ``V(t)`` in A/fs, fixed cell) projects as::

    u_qs(t) = E_qs^H  sqrt(m) (R(t) - R0)   (minimum image)      p_qs(t) = E_qs^H  sqrt(m) V(t)

(the drift of the centre of mass taken out of both: :func:`displacements`, :func:`stationary`)
    a_qs(t) = (u_qs + i p_qs / omega_qs) / 2                      E_qs(t) = 2 omega_qs^2 |a_qs|^2

``a_qs`` is the amplitude of the wave travelling along +q (a wave ``A exp(-i omega t)`` gives
``a = A exp(-i omega t)``, the wave along -q gives 0), and ``E_qs`` its energy: for every mode of a
harmonic crystal it is a constant of motion, and the energies add up to the harmonic energy
``sum (|p|^2 + omega^2 |u|^2) / 2``. Units: u in A amu^1/2, p in A/fs amu^1/2, omega in rad/fs,
energies in eV (:data:`ENERGY_UNIT` converts amu A^2 / fs^2). Memory and time are linear in the
frames: they are projected in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from phonopy import Phonopy
from phonopy.harmonic.dynmat_to_fc import get_commensurate_points

from .anharmonicity import minimum_image_displacements
from .phonopy_io import _require_force_constants

#: eV per amu A^2 / fs^2.
ENERGY_UNIT = 1.66053906660e-27 * 1e-20 / 1e-30 / 1.602176634e-19

#: Frames projected at a time (bounds the memory to chunk x 3N complex numbers per array).
CHUNK = 2048


@dataclass(frozen=True)
class NormalModes:
    """The harmonic modes of a supercell at its commensurate q-points.

    ``qpoints`` (nq, 3) reduced coordinates of phonopy's primitive reciprocal cell; ``frequencies``
    (nq, nb) THz (imaginary as negative); ``vectors`` (nq, nb, 3N) the supercell mode vectors
    ``E_qs`` (complex, orthonormal); ``masses`` (N,) amu; ``positions`` (N, 3) and ``cell`` (3, 3)
    the reference supercell in Angstrom, in phonopy's atom order.
    """

    qpoints: np.ndarray
    frequencies: np.ndarray
    vectors: np.ndarray
    masses: np.ndarray
    positions: np.ndarray
    cell: np.ndarray

    @property
    def omegas(self) -> np.ndarray:
        """Angular frequencies (rad/fs), negative where the frequency is imaginary."""
        return 2 * np.pi * 1e-3 * self.frequencies

    @property
    def gamma_index(self) -> int:
        return int(np.flatnonzero(np.all(np.abs(self.qpoints) < 1e-8, axis=1))[0])

    def acoustic(self) -> np.ndarray:
        """Mask (nq, nb) of the three acoustic modes at Gamma (the lowest three bands there)."""
        mask = np.zeros(self.frequencies.shape, dtype=bool)
        mask[self.gamma_index, np.argsort(np.abs(self.frequencies[self.gamma_index]))[:3]] = True
        return mask

    def matrix(self) -> np.ndarray:
        """The (3N, 3N) unitary matrix whose columns are the mode vectors, q-major then band."""
        nq, nb, dim = self.vectors.shape
        return self.vectors.reshape(nq * nb, dim).T


def commensurate_modes(phonon: Phonopy) -> NormalModes:
    """The modes of ``phonon``'s supercell at its commensurate q-points (force constants required)."""
    _require_force_constants(phonon)
    primitive, supercell = phonon.primitive, phonon.supercell
    # the supercell in primitive lattice vectors (the primitive's own matrix is relative to the supercell)
    to_primitive = np.rint(np.linalg.inv(primitive.primitive_matrix)).astype(int)
    qpoints = np.asarray(get_commensurate_points(to_primitive), dtype=float)
    phonon.run_qpoints(qpoints, with_eigenvectors=True)
    result = phonon.get_qpoints_dict()
    frequencies, eigenvectors = np.asarray(result['frequencies']), np.asarray(result['eigenvectors'])
    kappa = np.array([primitive.p2p_map[k] for k in primitive.s2p_map])
    reduced = supercell.positions @ np.linalg.inv(primitive.cell)
    n_cells = len(supercell) // len(primitive)
    vectors = np.empty((len(qpoints), 3 * len(primitive), 3 * len(supercell)), dtype=complex)
    for iq, q in enumerate(qpoints):
        phase = np.exp(2j * np.pi * reduced @ q) / np.sqrt(n_cells)  # (N,)
        per_atom = eigenvectors[iq].reshape(len(primitive), 3, -1)[kappa]  # (N, 3, nb)
        vectors[iq] = (per_atom * phase[:, None, None]).reshape(3 * len(supercell), -1).T
    return NormalModes(
        qpoints=qpoints,
        frequencies=frequencies,
        vectors=vectors,
        masses=np.asarray(supercell.masses, dtype=float),
        positions=np.asarray(supercell.positions, dtype=float),
        cell=np.asarray(supercell.cell, dtype=float),
    )


def displacements(modes: NormalModes, positions) -> np.ndarray:
    """Displacements (frames, N, 3) from the reference sites, without the drift of the centre of mass.

    ``modes`` needs only ``positions``, ``cell`` and ``masses`` of the reference supercell.

    A thermostat that does not conserve momentum lets the whole crystal drift (1e-3 A/fs is 10 A in
    10 ps). A uniform shift projects on the translations alone, but wrapped into the supercell atom
    by atom it would not be uniform: so the shift of atom 0 is taken out before the minimum image,
    and the mass-weighted mean displacement after it.
    """
    positions = np.asarray(positions, dtype=float)
    shift = minimum_image_displacements(positions[:, :1], modes.positions[:1], modes.cell)  # (frames, 1, 3)
    d = minimum_image_displacements(positions - shift, modes.positions, modes.cell) + shift
    weights = modes.masses / modes.masses.sum()
    return d - np.einsum('i,fij->fj', weights, d)[:, None, :]


def stationary(modes: NormalModes, velocities) -> np.ndarray:
    """Velocities (frames, N, 3) without the velocity of the centre of mass."""
    velocities = np.asarray(velocities, dtype=float)
    weights = modes.masses / modes.masses.sum()
    return velocities - np.einsum('i,fij->fj', weights, velocities)[:, None, :]


#: Fewest frames a lifetime analysis accepts: the fit needs the autocorrelation to decay over several lags.
MIN_FRAMES = 100


def check_frames(modes: NormalModes, positions, velocities, cells=None, min_frames: int = MIN_FRAMES) -> None:
    """Raise ``ValueError`` unless the frames can be projected on ``modes``: checked before any compute.

    Positions (frames, N, 3) in A and velocities of the same shape in A/fs, both present; at least
    ``min_frames`` frames; a fixed cell (``cells``, per frame, if given) equal to the reference
    supercell's; and every atom of the first frame nearer its own reference site than half the
    shortest interatomic distance, once the drift of the centre of mass is taken out (another atom
    order, or a structure other than the force constants' supercell, fails here).
    """
    n = len(modes.masses)
    if velocities is None:
        raise ValueError('the trajectory has no velocities: the mode energies need them (NVE MD with velocities)')
    positions, velocities = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
    if positions.ndim != 3 or positions.shape[1:] != (n, 3) or velocities.shape != positions.shape:
        raise ValueError(
            f'positions {positions.shape} and velocities {velocities.shape} must both be (frames, {n}, 3): '
            f'the supercell of the force constants has {n} atoms'
        )
    if len(positions) < min_frames:
        raise ValueError(f'{len(positions)} frames are too few for a lifetime fit (at least {min_frames})')
    problem = (cell_problem(cells, modes.cell) if cells is not None else None) or site_problem(modes, positions[0])
    if problem:
        raise ValueError(problem)


def cell_problem(cells, reference_cell) -> str | None:
    """Why the cells (frames, 3, 3) are not the fixed supercell ``reference_cell``, or ``None``."""
    cells = np.asarray(cells, dtype=float).reshape(-1, 3, 3)
    drift = np.abs(cells - cells[0]).max()
    if drift > 1e-6:
        return f'the cell changes by up to {drift:.3g} A along the trajectory: lifetimes need a fixed cell'
    mismatch = np.abs(cells[0] - np.asarray(reference_cell, dtype=float)).max()
    if mismatch > 1e-4:
        return f"the cell differs from the force constants' supercell by up to {mismatch:.3g} A"
    return None


def site_problem(reference, frame) -> str | None:
    """Why ``frame`` (N, 3) is not the supercell of ``reference`` in its atom order, or ``None``.

    ``reference``: anything with ``positions``, ``cell`` and ``masses`` of the supercell (a
    :class:`NormalModes`, or the arrays of a ``ForceConstants`` node). Every atom must lie nearer its
    own site than half the shortest interatomic distance, once the drift of the centre of mass is out.
    """
    n = len(reference.positions)
    distances = np.linalg.norm(displacements(reference, np.asarray(frame, dtype=float)[None])[0], axis=1)
    offsets = reference.positions[:, None] - reference.positions[None]
    pairs = np.linalg.norm(minimum_image_displacements(offsets, np.zeros(3), reference.cell), axis=-1)
    limit = 0.5 * pairs[~np.eye(n, dtype=bool)].min()
    if distances.max() < limit:
        return None
    i = int(distances.argmax())
    return (
        f'atom {i} is {distances[i]:.3g} A from its reference site (limit {limit:.3g} A): atoms in another '
        "order than the force constants' supercell, or another structure"
    )


@dataclass(frozen=True)
class ModeProjection:
    """Per frame and mode (frames, nq, nb): ``u``, ``p``, the amplitudes ``a`` and energies (eV)."""

    u: np.ndarray
    p: np.ndarray
    amplitudes: np.ndarray
    energies: np.ndarray


def project(modes: NormalModes, positions, velocities) -> ModeProjection:
    """Project frames (positions in A, velocities in A/fs, the reference supercell's atom order) on ``modes``.

    Modes of zero or imaginary frequency get NaN amplitudes and energies (``u`` and ``p`` are kept).
    """
    positions, velocities = np.asarray(positions, dtype=float), np.asarray(velocities, dtype=float)
    n = len(modes.masses)
    if positions.ndim != 3 or positions.shape[1:] != (n, 3) or velocities.shape != positions.shape:
        raise ValueError(f'positions {positions.shape} and velocities {velocities.shape} must both be (frames, {n}, 3)')
    nq, nb, dim = modes.vectors.shape
    conjugate = modes.matrix().conj()  # (3N, nq nb)
    weights = np.sqrt(np.repeat(modes.masses, 3))
    u = np.empty((len(positions), nq * nb), dtype=complex)
    p = np.empty_like(u)
    for start in range(0, len(positions), CHUNK):
        chunk = slice(start, start + CHUNK)
        displacement = displacements(modes, positions[chunk]).reshape(-1, dim)
        u[chunk] = (displacement * weights) @ conjugate
        p[chunk] = (stationary(modes, velocities[chunk]).reshape(-1, dim) * weights) @ conjugate
    omega = modes.omegas.reshape(-1)
    valid = omega > 1e-9
    safe = np.where(valid, omega, 1.0)
    amplitudes = np.where(valid, (u + 1j * p / safe) / 2, np.nan)
    energies = 2 * safe**2 * np.abs(amplitudes) ** 2 * ENERGY_UNIT
    shape = (len(positions), nq, nb)
    return ModeProjection(u.reshape(shape), p.reshape(shape), amplitudes.reshape(shape), energies.reshape(shape))
