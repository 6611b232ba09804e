"""Initial structures of an active-learning run (no AiiDA import).

Three ways to get the first labelled frames and the fixed test set (Kang et al. start from an
aiMD trajectory; a harmonic or random sampling is cheaper):

``harmonic_samples``
    Canonical sampling of the harmonic model at temperature T from the supercell force
    constants: in mass-weighted coordinates the dynamical matrix ``D = M^-1/2 Phi M^-1/2`` has
    eigenpairs ``(omega_s^2, e_s)``; every non-translational mode gets an independent Gaussian
    amplitude of variance ``<A_s^2> = k_B T / omega_s^2`` (classical) or
    ``hbar / (2 omega_s) coth(hbar omega_s / 2 k_B T)`` (quantum), and
    ``u = M^-1/2 sum_s A_s e_s``. Classically the mean harmonic energy is ``(3N - 3) k_B T / 2``.
    Units: Phi in eV/A^2, masses in amu, so ``omega^2`` is in eV/(A^2 amu) (ASE units).
``random_displacements``
    Every Cartesian coordinate displaced by a Gaussian of standard deviation ``amplitude`` (A).
``initial_split``
    Training and test frames of a given trajectory: training frames evenly spaced (or drawn),
    test frames drawn from the frames never used for training, so the two sets are disjoint.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units

#: Modes with omega^2 below this (eV/(A^2 amu)) are translations (or unstable) and are not sampled.
MIN_OMEGA2 = 1e-6


def _masses(atoms: Atoms, masses=None) -> np.ndarray:
    masses = atoms.get_masses() if masses is None else np.asarray(masses, dtype=float)
    if masses.shape != (len(atoms),) or (masses <= 0).any():
        raise ValueError(f'need one positive mass per atom ({len(atoms)}), got {masses.shape}')
    return masses


def normal_modes(force_constants, masses) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``omega^2`` (ascending, eV/(A^2 amu)) and mass-weighted eigenvectors (columns)."""
    phi = np.asarray(force_constants, dtype=float)
    n = len(masses)
    if phi.shape != (3 * n, 3 * n):
        raise ValueError(f'force constants of shape {phi.shape} do not match {n} atoms (expected {(3 * n, 3 * n)})')
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)
    dynamical = inv_sqrt_m[:, None] * 0.5 * (phi + phi.T) * inv_sqrt_m[None, :]
    return np.linalg.eigh(dynamical)


def mode_variances(omega2, temperature: float, quantum: bool = False) -> np.ndarray:
    """``<A_s^2>`` of each mode at ``temperature`` (K); 0 for modes with ``omega^2 < MIN_OMEGA2``."""
    omega2 = np.asarray(omega2, dtype=float)
    kt = units.kB * float(temperature)
    variance = np.zeros_like(omega2)
    active = omega2 > MIN_OMEGA2
    if not quantum:
        variance[active] = kt / omega2[active]
        return variance
    hbar = units._hbar * units.J * units.s  # eV * ASE time
    omega = np.sqrt(omega2[active])
    x = hbar * omega / (2.0 * kt) if kt > 0 else np.inf
    variance[active] = hbar / (2.0 * omega) / np.tanh(x)
    return variance


def harmonic_samples(
    atoms: Atoms,
    force_constants,
    temperature: float,
    n_samples: int,
    seed: int,
    quantum: bool = False,
    masses=None,
) -> list[Atoms]:
    """``n_samples`` copies of the reference supercell ``atoms`` displaced by harmonic sampling at ``temperature`` K.

    :param force_constants: ``(3N, 3N)`` supercell force constants in eV/A^2, in the order of ``atoms``.
    :raises ValueError: non-positive ``n_samples``, negative temperature, or no stable mode.
    """
    if int(n_samples) < 1:
        raise ValueError(f'n_samples must be at least 1, not {n_samples}')
    if not temperature >= 0:
        raise ValueError(f'temperature must be >= 0 K, not {temperature}')
    m = _masses(atoms, masses)
    omega2, vectors = normal_modes(force_constants, m)
    if not (omega2 > MIN_OMEGA2).any():
        raise ValueError('the force constants have no stable mode (all omega^2 <= 0): cannot sample')
    std = np.sqrt(mode_variances(omega2, temperature, quantum))
    rng = np.random.default_rng(int(seed))
    amplitudes = rng.standard_normal((int(n_samples), len(omega2))) * std
    displacements = (amplitudes @ vectors.T) / np.repeat(np.sqrt(m), 3)
    samples = []
    for u in displacements.reshape(int(n_samples), len(atoms), 3):
        sample = atoms.copy()
        sample.calc = None
        sample.positions = atoms.positions + u
        samples.append(sample)
    return samples


def random_displacements(atoms: Atoms, amplitude: float, n_samples: int, seed: int) -> list[Atoms]:
    """``n_samples`` copies of ``atoms`` with every coordinate displaced by N(0, ``amplitude``^2) (A)."""
    if int(n_samples) < 1:
        raise ValueError(f'n_samples must be at least 1, not {n_samples}')
    if not amplitude > 0:
        raise ValueError(f'amplitude must be positive, not {amplitude}')
    rng = np.random.default_rng(int(seed))
    samples = []
    for _ in range(int(n_samples)):
        sample = atoms.copy()
        sample.calc = None
        sample.positions = atoms.positions + rng.normal(0.0, float(amplitude), (len(atoms), 3))
        samples.append(sample)
    return samples


def initial_split(n_frames: int, n_train: int, n_test: int, seed: int, skip: int = 0, spread: bool = True):
    """Indices ``(train, test)`` of a trajectory of ``n_frames``, disjoint and sorted.

    :param skip: frames at the start left out (equilibration).
    :param spread: training frames evenly spaced over the usable frames (``True``) or drawn at random.
    The test frames are drawn at random from the usable frames not used for training.
    """
    usable = np.arange(int(skip), int(n_frames))
    if n_train < 1 or n_test < 0:
        raise ValueError(f'n_train must be at least 1 and n_test at least 0, not {n_train} and {n_test}')
    if n_train + n_test > len(usable):
        raise ValueError(
            f'{n_train} training + {n_test} test frames requested, but only {len(usable)} usable frames '
            f'({n_frames} frames, {skip} skipped)'
        )
    rng = np.random.default_rng(int(seed))
    if spread:
        train = usable[np.unique(np.linspace(0, len(usable) - 1, int(n_train)).round().astype(int))]
    else:
        train = np.sort(rng.choice(usable, int(n_train), replace=False))
    rest = np.setdiff1d(usable, train)
    test = np.sort(rng.choice(rest, int(n_test), replace=False)) if n_test else np.array([], dtype=int)
    return train.tolist(), test.tolist()
