"""Fully anharmonic lifetimes: the normal-mode projection and the energy-autocorrelation fit, by construction."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.phonons.harmonic import force_constants_with
from aiida_anharmal.core.phonons.lifetimes import (
    BEYOND_RUN,
    NO_FLUCTUATION,
    OK,
    TOO_FAST,
    energy_autocorrelation,
    fit_lifetime,
    hann_window,
    ioffe_regel_fraction,
    lifetime_table,
)
from aiida_anharmal.core.phonons.normal_modes import ENERGY_UNIT, check_frames, commensurate_modes, project


@pytest.fixture(scope='module')
def cu_phonon():
    """EMT Cu, the fcc primitive cell in a 2 x 2 x 2 supercell: 8 atoms, 8 q-points, 24 modes."""
    return force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6), [2, 2, 2])


def test_the_mode_vectors_are_orthonormal_and_diagonalise_the_dynamical_matrix(cu_phonon):
    from phonopy.physical_units import get_physical_units

    modes = commensurate_modes(cu_phonon)
    assert modes.qpoints.shape == (8, 3) and modes.vectors.shape == (8, 3, 24)
    matrix = modes.matrix()
    np.testing.assert_allclose(matrix.conj().T @ matrix, np.eye(24), atol=1e-12)
    fc = cu_phonon.force_constants.transpose(0, 2, 1, 3).reshape(24, 24)
    weights = 1 / np.sqrt(np.repeat(modes.masses, 3))
    diagonal = matrix.conj().T @ (fc * weights[:, None] * weights[None, :]) @ matrix
    assert np.abs(diagonal - np.diag(np.diag(diagonal))).max() < 1e-10
    thz = (
        np.sign(diagonal.diagonal().real)
        * np.sqrt(np.abs(diagonal.diagonal().real))
        * get_physical_units().DefaultToTHz
    )
    np.testing.assert_allclose(thz, modes.frequencies.reshape(-1), atol=1e-6)
    # phonopy's own frequencies at the same q-points, asked separately
    cu_phonon.run_qpoints(modes.qpoints)
    np.testing.assert_allclose(cu_phonon.get_qpoints_dict()['frequencies'], modes.frequencies, atol=1e-6)
    assert modes.acoustic().sum() == 3 and np.all(np.abs(modes.frequencies[modes.acoustic()]) < 1e-3)


def synthetic_trajectory(modes, tau, frames, dt, seed=0):
    """Positions and velocities whose mode amplitudes are a_k = alpha_k exp(-i omega_k t), alpha_k complex
    Ornstein-Uhlenbeck processes of correlation time 2 tau_k: each mode energy decorrelates with tau_k."""
    rng = np.random.default_rng(seed)
    omega = modes.omegas.reshape(-1)
    from scipy.signal import lfilter

    rho = np.exp(-dt / (2 * tau))
    kicks = (rng.normal(size=(frames, len(omega))) + 1j * rng.normal(size=(frames, len(omega)))) / np.sqrt(2)
    kicks[1:] *= np.sqrt(1 - rho**2)  # alpha_n = rho alpha_(n-1) + sqrt(1 - rho^2) xi_n, stationary from n = 0
    alpha = np.column_stack([lfilter([1.0], [1.0, -r], kicks[:, k]) for k, r in enumerate(rho)])
    acoustic = modes.acoustic().reshape(-1)
    scale = np.where(acoustic, 0.0, 0.02 / np.sqrt(np.abs(omega) + 1e-3))  # ~0.05 A; no translation
    c = alpha * scale * np.exp(-1j * np.outer(dt * 1000 * np.arange(frames), omega))  # t in fs
    matrix = modes.matrix()
    weights = np.sqrt(np.repeat(modes.masses, 3))
    u = 2 * (c @ matrix.T).real / weights
    v = 2 * ((-1j * omega * c) @ matrix.T).real / weights
    n = len(modes.masses)
    return modes.positions + u.reshape(frames, n, 3), v.reshape(frames, n, 3)


def test_damped_modes_of_known_lifetime_are_recovered_within_2_percent(cu_phonon):
    # three lifetimes, seven modes each; a run of 4 ns, 4400-13000 lifetimes long. One mode's estimate
    # scatters by ~3 % (the ACF of a finite run); the mean of seven is unbiased to within 2 %
    modes = commensurate_modes(cu_phonon)
    kept = ~modes.acoustic().reshape(-1)
    tau = np.zeros(24)
    tau[kept] = np.repeat([0.3, 0.6, 0.9], 7)  # ps
    dt, frames = 0.02, 200_000
    positions, velocities = synthetic_trajectory(modes, np.where(kept, tau, 1.0), frames, dt)
    table = lifetime_table(modes, project(modes, positions, velocities), dt, dho=True)
    assert set(table['flag'][kept]) == {OK} and set(table['flag'][~kept]) == {'no_mode'}
    ratio = table['tau'][kept] / tau[kept]
    for group in ratio.reshape(3, 7):
        assert abs(group.mean() - 1) < 0.02, group
    assert np.abs(ratio - 1).max() < 0.1, ratio
    # the cross-check: a DHO fit of each mode's spectrum finds the (here unrenormalised) frequency and 1/Gamma = tau.
    # These lines are Lorentzians, not DHOs: at Gamma / omega0 = 0.15 (3.5 THz, 0.3 ps) the DHO's omega0 lies ~1 % high
    np.testing.assert_allclose(table['frequency_dho'][kept], table['frequency'][kept], rtol=0.02)
    dho = table['tau_dho'][kept] / tau[kept]
    assert np.abs(dho.reshape(3, 7).mean(axis=1) - 1).max() < 0.05 and np.abs(dho - 1).max() < 0.2, dho  # noisier


def test_the_finite_time_correction_and_the_fit_window():
    dt, n, tau = 0.01, 4000, 0.5
    t = dt * np.arange(n)
    # the estimator divided by N and the Hann window turn exp(-t/tau) into this
    acf = np.exp(-t / tau) * (1 - np.arange(n) / n) * hann_window(n)
    fit = fit_lifetime(acf, dt)
    assert fit.flag == OK and fit.window == int(np.flatnonzero(acf < 0.5)[0])
    assert fit.tau_fit == pytest.approx(1 / (1 / tau + 1 / (n * dt)), rel=2e-3)
    assert fit.tau == pytest.approx(tau, rel=2e-3)  # 1/tau = 1/tau_fit - 1/T_max
    # below 0.5 within 2 lags: not resolved; never below 0.5: longer than the run; NaN: no fluctuation
    assert fit_lifetime(np.exp(-t / (1.5 * dt)), dt).flag == TOO_FAST
    assert fit_lifetime(np.exp(-t / (100 * n * dt)), dt).flag == BEYOND_RUN
    assert fit_lifetime(np.full(n, np.nan), dt).flag == NO_FLUCTUATION


def test_the_autocorrelation_is_the_fhi_vibes_estimator():
    rng = np.random.default_rng(0)
    e = rng.exponential(size=(500, 3))
    acf = energy_autocorrelation(e)
    de = e - e.mean(axis=0)
    direct = np.array([(de[: 500 - k] * de[k:]).sum(axis=0) / 500 for k in range(500)]) * hann_window(500)[:, None]
    np.testing.assert_allclose(acf, direct / direct[0], atol=1e-12)
    assert np.all(np.isnan(energy_autocorrelation(np.full((50, 2), 3.0) + 1e-6 * rng.normal(size=(50, 2)))))


def test_a_harmonic_crystal_has_no_finite_lifetime(cu_phonon):
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    from aiida_anharmal.core.phonons.anharmonicity import HarmonicCalculator, HarmonicReference
    from aiida_anharmal.core.phonons.harmonic import force_constants_to_matrix
    from aiida_anharmal.core.phonons.phonopy_io import phonopy_to_ase

    modes = commensurate_modes(cu_phonon)
    reference = HarmonicReference(modes.positions, modes.cell, force_constants_to_matrix(cu_phonon.force_constants))
    atoms = phonopy_to_ase(cu_phonon.supercell)
    atoms.calc = HarmonicCalculator(reference)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)  # the acoustic modes at Gamma (translations) are not projected
    dynamics = VelocityVerlet(atoms, timestep=2 * units.fs)
    positions, velocities, energies = [], [], []
    for _ in range(2000):  # 20 ps, a frame every 10 fs
        dynamics.run(5)
        positions.append(atoms.positions.copy())
        velocities.append(atoms.get_velocities() * units.fs)
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())
    projection = project(modes, np.array(positions), np.array(velocities))
    # the mode energies add up to the harmonic (here: total) energy, and each is a constant of motion
    np.testing.assert_allclose(np.nansum(projection.energies, axis=(1, 2)), energies, rtol=2e-3)
    kept = ~modes.acoustic().reshape(-1)
    per_mode = projection.energies.reshape(2000, -1)[:, kept]
    assert (per_mode.std(axis=0) / per_mode.mean(axis=0)).max() < 5e-3
    table = lifetime_table(modes, projection, dt=0.01)
    assert set(table['flag'][kept]) == {NO_FLUCTUATION} and np.all(np.isinf(table['tau'][kept]))
    np.testing.assert_allclose(table['frequency'], modes.frequencies.reshape(-1))
    assert ioffe_regel_fraction(table['frequency'][kept], table['tau'][kept]) == 0.0


def test_ioffe_regel_fraction_and_units():
    # 1 THz: one period is 1 ps
    assert ioffe_regel_fraction([1.0, 1.0, 2.0, 2.0], [0.5, 2.0, 0.4, np.inf]) == pytest.approx(0.5)
    assert ioffe_regel_fraction([1.0], [np.nan]) == 1.0  # decayed within two lags: below the limit
    assert ENERGY_UNIT == pytest.approx(103.6427, rel=1e-6)  # eV per amu A^2 / fs^2


def test_frames_that_cannot_be_projected_are_refused(cu_phonon):
    modes = commensurate_modes(cu_phonon)
    rng = np.random.default_rng(0)
    positions = modes.positions + 0.02 * rng.normal(size=(200, 8, 3))
    velocities = 0.01 * rng.normal(size=(200, 8, 3))
    cells = np.repeat(modes.cell[None], 200, axis=0)
    check_frames(modes, positions, velocities, cells)  # fine
    with pytest.raises(ValueError, match='no velocities'):
        check_frames(modes, positions, None)
    with pytest.raises(ValueError, match='too few'):
        check_frames(modes, positions[:50], velocities[:50])
    with pytest.raises(ValueError, match='must both be'):
        check_frames(modes, positions[:, :7], velocities[:, :7])
    stretched = cells.copy()
    stretched[100:] *= 1.01
    with pytest.raises(ValueError, match='fixed cell'):
        check_frames(modes, positions, velocities, stretched)
    with pytest.raises(ValueError, match="differs from the force constants' supercell"):
        check_frames(modes, positions, velocities, cells * 1.01)
    swapped = positions[:, [1, 0, *range(2, 8)]]
    with pytest.raises(ValueError, match='another order'):
        check_frames(modes, swapped, velocities)


def test_a_drifting_crystal_projects_as_a_resting_one(cu_phonon):
    # a thermostat that does not conserve momentum lets the crystal drift by more than a cell: same modes
    modes = commensurate_modes(cu_phonon)
    tau = np.where(modes.acoustic().reshape(-1), 1.0, 0.5)
    positions, velocities = synthetic_trajectory(modes, tau, 2000, 0.02, seed=5)
    drift = np.array([1e-3, 2e-3, -5e-4])  # A/fs
    times = 20.0 * np.arange(2000)[:, None, None]  # fs
    resting, moving = (
        project(modes, positions, velocities),
        project(modes, positions + drift * times, velocities + drift),
    )
    np.testing.assert_allclose(moving.energies, resting.energies, rtol=1e-8, atol=1e-14)
    check_frames(modes, positions + drift * times, velocities + drift)  # not refused as another atom order


def test_weighted_statistics_count_each_mode_by_its_multiplicity():
    from aiida_anharmal.core.phonons.lifetimes import mode_summary, weighted_median

    assert weighted_median([1.0, 2.0, 3.0], [1, 1, 5]) == 3.0
    assert weighted_median([1.0, 2.0, 3.0, 4.0]) == 2.5  # no weights: numpy's median
    assert weighted_median([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1]) == 2.5  # unit weights: the same
    assert weighted_median([1.0, 2.0, 3.0, 4.0], [1, 2, 1, 1]) == 2.0
    # 1 THz modes: tau 0.5 ps is below the limit (weight 3), 2 ps is not (weight 1)
    assert ioffe_regel_fraction([1.0, 1.0], [0.5, 2.0], [3, 1]) == 0.75
    summary = mode_summary([0.0, 1.0, 1.5], [np.nan, 0.5, 2.0], ['no_mode', OK, OK], [1, 3, 1])
    assert summary['modes'] == 5 and summary['flags'] == {'no_mode': 1, OK: 4}
    assert summary['ioffe_regel_fraction'] == 0.75 and summary['median_tau'] == 0.5
    assert summary['bands'] == {'1-2': {'modes': 4, 'median_tau': 0.5}}
