"""Degree of anharmonicity (Knoop et al. 2020, as computed by FHI-vibes); no AiiDA import.

With reference positions ``R0`` of a supercell, its cell, and harmonic force constants ``Phi``
(``3N x 3N``, eV/A^2), the displacement is the minimum image of ``R - R0`` (fractional
differences wrapped to [-0.5, 0.5)), the harmonic force ``F_ha = -Phi u`` and the anharmonic
part ``F_A = F - F_ha``::

    A(t)    = std(F_A(t)) / std(F(t))     over the atoms and components of one frame
    sigma_A = std(F_A) / std(F)           over all frames, atoms and components

``std`` is numpy's (mean-subtracted), as FHI-vibes uses; for zero-mean forces it equals the
paper's sqrt(sum F_A^2 / sum F^2). Per species: the same over that species' atoms only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


def minimum_image_displacements(positions, reference_positions, reference_cell) -> np.ndarray:
    """Displacements ``R - R0`` wrapped into the reference cell (fractional parts in [-0.5, 0.5))."""
    cell = np.asarray(reference_cell, dtype=float)
    delta = np.asarray(positions, dtype=float) - np.asarray(reference_positions, dtype=float)
    frac = delta @ np.linalg.inv(cell)
    frac -= np.floor(frac + 0.5)
    return frac @ cell


def harmonic_forces(displacements, force_constants) -> np.ndarray:
    """``F_ha = -Phi u`` for displacements of shape ``(..., N, 3)`` and ``Phi`` of shape ``(3N, 3N)``."""
    u = np.asarray(displacements, dtype=float)
    phi = np.asarray(force_constants, dtype=float)
    n = u.shape[-2]
    if phi.shape != (3 * n, 3 * n):
        raise ValueError(f'force constants of shape {phi.shape} do not match {n} atoms (expected {(3 * n, 3 * n)})')
    flat = u.reshape(*u.shape[:-2], 3 * n)
    return -(flat @ phi.T).reshape(u.shape)


#: Below this force spread (eV/A) A is undefined (0/0, e.g. a frame at the ideal lattice) and NaN.
MIN_FORCE_STD = 1e-8


def _ratio(forces, anharmonic, axis=None) -> np.ndarray:
    spread = np.std(forces, axis=axis)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(spread > MIN_FORCE_STD, np.std(anharmonic, axis=axis) / spread, np.nan)


@dataclass
class HarmonicReference:
    """A supercell's reference positions, cell, force constants and atomic symbols."""

    positions: np.ndarray
    cell: np.ndarray
    force_constants: np.ndarray
    symbols: tuple[str, ...] | None = None

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=float)
        self.cell = np.asarray(self.cell, dtype=float)
        self.force_constants = np.asarray(self.force_constants, dtype=float)
        n = len(self.positions)
        if self.force_constants.shape != (3 * n, 3 * n):
            raise ValueError(f'force constants of shape {self.force_constants.shape} do not match {n} atoms')
        if self.symbols is not None and len(self.symbols) != n:
            raise ValueError(f'{len(self.symbols)} symbols for {n} atoms')

    def anharmonic_forces(self, positions, forces) -> np.ndarray:
        """``F - F_ha`` for one frame ``(N, 3)`` or a trajectory ``(T, N, 3)``."""
        positions = np.asarray(positions, dtype=float)
        if positions.shape[-2:] != self.positions.shape:
            raise ValueError(f'positions of shape {positions.shape} do not match the reference {self.positions.shape}')
        u = minimum_image_displacements(positions, self.positions, self.cell)
        return np.asarray(forces, dtype=float) - harmonic_forces(u, self.force_constants)

    def _mask(self, species):
        if species is None:
            return slice(None)
        if self.symbols is None:
            raise ValueError('per-species anharmonicity needs the reference symbols')
        mask = np.array([s == species for s in self.symbols])
        if not mask.any():
            raise ValueError(f'no atom of species {species!r} in the reference')
        return mask

    def _masked_forces(self, positions, forces, species):
        """Total and anharmonic forces of the atoms of ``species`` (all atoms if ``None``)."""
        forces = np.asarray(forces, dtype=float)
        anharmonic = self.anharmonic_forces(positions, forces)
        mask = self._mask(species)
        return forces[..., mask, :], anharmonic[..., mask, :]

    def a_per_frame(self, positions, forces, species: str | None = None) -> np.ndarray:
        """A(t) for each frame of a trajectory ``(T, N, 3)`` (optionally of one species)."""
        return _ratio(*self._masked_forces(positions, forces, species), axis=(1, 2))

    def a_with_uncertainty(self, positions, mean_forces, member_forces) -> tuple[float, float]:
        """A of one frame with the ensemble-mean forces, and UCE_A: the population std over members
        of A computed with each member's forces ``(N, n_atoms, 3)``."""
        positions = np.asarray(positions, dtype=float)
        a = float(self.a_per_frame(positions[None], np.asarray(mean_forces)[None])[0])
        members = np.asarray(member_forces, dtype=float)
        per_member = self.a_per_frame(np.repeat(positions[None], len(members), axis=0), members)
        return a, float(np.std(per_member))

    def sigma(self, positions, forces, species: str | None = None) -> float:
        """sigma_A over all frames (optionally of one species)."""
        return float(_ratio(*self._masked_forces(positions, forces, species)))

    def sigma_per_species(self, positions, forces) -> dict[str, float]:
        return {s: self.sigma(positions, forces, s) for s in dict.fromkeys(self.symbols or ())}


class HarmonicCalculator(Calculator):
    """An ASE calculator of the harmonic model of ``reference``: ``E = u . Phi u / 2``, ``F = -Phi u``.

    For MD of a purely harmonic crystal (whose mode energies are constants of motion) and tests.
    """

    implemented_properties = ('energy', 'forces')

    def __init__(self, reference: HarmonicReference, **kwargs):
        super().__init__(**kwargs)
        self.reference = reference

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        reference = self.reference
        if len(self.atoms) != len(reference.positions):
            raise ValueError(f'{len(self.atoms)} atoms, the harmonic reference has {len(reference.positions)}')
        u = minimum_image_displacements(self.atoms.positions, reference.positions, reference.cell)
        forces = harmonic_forces(u, reference.force_constants)
        self.results = {'energy': -0.5 * float(np.sum(u * forces)), 'forces': forces}
