"""Initial-structure sampling: harmonic sampling at T, random displacements, disjoint splits."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.structures.sampling import (
    harmonic_samples,
    initial_split,
    mode_variances,
    normal_modes,
    random_displacements,
)


def spring_force_constants(n: int, seed: int = 0) -> np.ndarray:
    """Pair springs of random stiffness between all atoms: symmetric, translation invariant, 3 zero modes."""
    rng = np.random.default_rng(seed)
    phi = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for j in range(i + 1, n):
            k = rng.uniform(0.5, 2.0)
            for a, b, sign in ((i, i, 1), (j, j, 1), (i, j, -1), (j, i, -1)):
                phi[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] += sign * k * np.eye(3)
    return phi


@pytest.fixture
def toy():
    atoms = Atoms('Cu2I2', positions=np.random.default_rng(1).uniform(0, 5, (4, 3)), cell=[6, 6, 6], pbc=True)
    return atoms, spring_force_constants(len(atoms))


def test_translations_are_not_sampled(toy):
    atoms, phi = toy
    omega2, _ = normal_modes(phi, atoms.get_masses())
    assert np.allclose(omega2[:3], 0, atol=1e-10) and (omega2[3:] > 0).all()
    samples = harmonic_samples(atoms, phi, 300.0, 20, seed=0)
    m = atoms.get_masses()
    for s in samples:  # mass-weighted displacement sum is exactly zero: the centre of mass does not move
        assert np.allclose(m @ (s.positions - atoms.positions), 0, atol=1e-12)


def test_classical_equipartition(toy):
    """<1/2 u Phi u> = (3N - 3) k_B T / 2 for the harmonic model (hand-derived)."""
    atoms, phi = toy
    t = 500.0
    samples = harmonic_samples(atoms, phi, t, 4000, seed=3)
    u = np.array([(s.positions - atoms.positions).ravel() for s in samples])
    energy = 0.5 * np.einsum('ki,ij,kj->k', u, phi, u)
    expected = (3 * len(atoms) - 3) * units.kB * t / 2
    assert energy.mean() == pytest.approx(expected, rel=0.03)  # 9 dof, 4000 samples: std of mean ~1.6 %


def test_same_seed_same_samples(toy):
    atoms, phi = toy
    a = harmonic_samples(atoms, phi, 300.0, 3, seed=7)
    b = harmonic_samples(atoms, phi, 300.0, 3, seed=7)
    c = harmonic_samples(atoms, phi, 300.0, 3, seed=8)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert not np.array_equal(a[0].positions, c[0].positions)


def test_quantum_variances():
    omega2 = np.array([0.0, 0.5, 2.0])
    hbar = units._hbar * units.J * units.s
    classical = mode_variances(omega2, 1e5)
    quantum = mode_variances(omega2, 1e5, quantum=True)
    assert classical[0] == quantum[0] == 0
    assert np.allclose(quantum[1:], classical[1:], rtol=1e-3)  # high T: the classical limit
    zero_point = mode_variances(omega2, 0.0, quantum=True)
    assert np.allclose(zero_point[1:], hbar / (2 * np.sqrt(omega2[1:])))  # T = 0: zero-point motion


def test_emt_copper_at_300k():
    """Finite-difference EMT force constants of Cu: sampled frames carry about (3N-3) kT/2 of energy."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.calc = EMT()
    e0 = atoms.get_potential_energy()
    n, h = len(atoms), 0.005
    phi = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for a in range(3):
            forces = []
            for sign in (1, -1):
                d = atoms.copy()
                d.calc = EMT()
                d.positions[i, a] += sign * h
                forces.append(d.get_forces().ravel())
            phi[:, 3 * i + a] = -(forces[0] - forces[1]) / (2 * h)
    samples = harmonic_samples(atoms, 0.5 * (phi + phi.T), 300.0, 200, seed=0)
    excess = []
    for s in samples:
        s.calc = EMT()
        excess.append(s.get_potential_energy() - e0)
    expected = (3 * n - 3) * units.kB * 300.0 / 2
    assert np.mean(excess) == pytest.approx(expected, rel=0.15)  # anharmonic corrections are small at 300 K


def test_bad_input(toy):
    atoms, phi = toy
    with pytest.raises(ValueError, match='n_samples'):
        harmonic_samples(atoms, phi, 300.0, 0, seed=0)
    with pytest.raises(ValueError, match='temperature'):
        harmonic_samples(atoms, phi, -1.0, 2, seed=0)
    with pytest.raises(ValueError, match='do not match'):
        harmonic_samples(atoms, phi[:6, :6], 300.0, 2, seed=0)
    with pytest.raises(ValueError, match='no stable mode'):
        harmonic_samples(atoms, np.zeros_like(phi), 300.0, 2, seed=0)
    with pytest.raises(ValueError, match='amplitude'):
        random_displacements(atoms, 0.0, 2, seed=0)


def test_random_displacements(toy):
    atoms, _ = toy
    samples = random_displacements(atoms, 0.05, 500, seed=0)
    u = np.array([s.positions - atoms.positions for s in samples])
    assert u.std() == pytest.approx(0.05, rel=0.03)
    assert abs(u.mean()) < 0.002


def test_initial_split_disjoint_and_deterministic():
    train, test = initial_split(100, 25, 10, seed=0, skip=10)
    assert len(train) == 25 and len(test) == 10
    assert not set(train) & set(test)
    assert min(train + test) >= 10
    assert train[0] == 10 and train[-1] == 99  # spread over the usable frames
    assert (train, test) == initial_split(100, 25, 10, seed=0, skip=10)
    drawn, _ = initial_split(100, 25, 10, seed=1, spread=False)
    assert len(set(drawn)) == 25
    with pytest.raises(ValueError, match='usable frames'):
        initial_split(30, 25, 10, seed=0)
