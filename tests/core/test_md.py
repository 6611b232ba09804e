"""The MD loop on pure force-constant (and quartic) potentials: A(t), temperature, guards, restart."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_anharmal.core.md.guards import ForceCapGuard, MinDistanceGuard, TemperatureGuard, UncertaintyCapGuard
from aiida_anharmal.core.md.loop import MDSettings, read_checkpoint, read_frames, run_md
from aiida_anharmal.core.md.stop_rules import build_stop_rules
from aiida_anharmal.core.models.uncertainty import EnsemblePrediction
from aiida_anharmal.core.phonons.anharmonicity import HarmonicReference, harmonic_forces, minimum_image_displacements


def cu_reference():
    """Nearest-neighbour springs in fcc Cu (k = 2 eV/A^2 along the bonds): a real, stable force-constant model."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)
    n = len(atoms)
    phi = np.zeros((3 * n, 3 * n))
    from ase.neighborlist import neighbor_list

    i, j, vectors = neighbor_list('ijD', atoms, 2.6)
    for a, b, v in zip(i, j, vectors):
        e = v / np.linalg.norm(v)
        block = 2.0 * np.outer(e, e)
        phi[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] -= block
        phi[3 * a : 3 * a + 3, 3 * a : 3 * a + 3] += block
    return atoms, HarmonicReference(atoms.positions, atoms.cell[:], phi, tuple(atoms.get_chemical_symbols()))


class ModelPotential:
    """An 'ensemble' whose members are F = s_I (-Phi u - quartic |u|^2 u), for testing the loop."""

    def __init__(self, reference, scales=(1.0, 1.0), quartic=0.0, nan_after=None):
        self.reference, self.scales, self.quartic, self.nan_after = reference, scales, quartic, nan_after
        self.calls = 0

    def predict(self, atoms):
        self.calls += 1
        u = minimum_image_displacements(atoms.positions, self.reference.positions, self.reference.cell)
        forces = harmonic_forces(u, self.reference.force_constants) - self.quartic * (u * u).sum(1)[:, None] * u
        phi = self.reference.force_constants
        energy = 0.5 * u.ravel() @ phi @ u.ravel() + 0.25 * self.quartic * ((u * u).sum(1) ** 2).sum()
        if self.nan_after is not None and self.calls > self.nan_after:
            forces = forces * np.nan
        return EnsemblePrediction(
            np.array([s * energy for s in self.scales]), np.stack([s * forces for s in self.scales])
        )


def test_harmonic_system_has_zero_anharmonicity_and_a_quartic_one_does_not(tmp_path):
    atoms, reference = cu_reference()
    settings = MDSettings(temperature=300, timestep=2.0, steps=60, save_stride=2, friction=0.01, seed=1)
    (tmp_path / 'h').mkdir()
    run_md(atoms.copy(), ModelPotential(reference), settings, tmp_path / 'h', harmonic=reference)
    harmonic = read_frames(tmp_path / 'h')
    assert np.nanmax(harmonic['anharmonicity'][1:]) < 1e-10
    (tmp_path / 'q').mkdir()
    run_md(atoms.copy(), ModelPotential(reference, quartic=200.0), settings, tmp_path / 'q', harmonic=reference)
    quartic = read_frames(tmp_path / 'q')
    assert np.mean(quartic['anharmonicity'][5:]) > 0.2


def test_langevin_reaches_the_target_temperature(tmp_path):
    atoms, reference = cu_reference()
    settings = MDSettings(temperature=500, timestep=2.0, steps=400, save_stride=10, friction=0.02, seed=3)
    result = run_md(atoms.copy(), ModelPotential(reference), settings, tmp_path)
    frames = read_frames(tmp_path)
    assert result.state == 'finished' and result.frames_written == 41
    assert frames['positions'].shape == (41, 32, 3) and frames['uce_forces'].shape == (41, 32)
    assert list(frames['step']) == list(range(0, 401, 10))
    assert abs(np.mean(frames['temperature'][10:]) - 500) < 100


def test_nve_conserves_energy(tmp_path):
    atoms, reference = cu_reference()
    settings = MDSettings(temperature=300, timestep=1.0, steps=100, save_stride=10, dynamics='nve', seed=2)
    run_md(atoms.copy(), ModelPotential(reference), settings, tmp_path)
    frames = read_frames(tmp_path)
    total = frames['energy'] + frames['kinetic_energy']
    assert np.ptp(total) < 2e-3 * np.mean(frames['kinetic_energy'])


def test_restart_from_checkpoint_continues_the_same_trajectory(tmp_path):
    atoms, reference = cu_reference()
    full = MDSettings(temperature=300, timestep=2.0, steps=40, save_stride=5, friction=0.01, seed=7)
    (tmp_path / 'one').mkdir()
    run_md(atoms.copy(), ModelPotential(reference), full, tmp_path / 'one')
    (tmp_path / 'two').mkdir()
    half = MDSettings(**{**full.__dict__, 'steps': 20})
    run_md(atoms.copy(), ModelPotential(reference), half, tmp_path / 'two')
    checkpoint = read_checkpoint(tmp_path / 'two' / 'checkpoint.json')
    assert checkpoint['step'] == 20
    run_md(atoms.copy(), ModelPotential(reference), full, tmp_path / 'two', checkpoint=checkpoint)
    one, two = read_frames(tmp_path / 'one'), read_frames(tmp_path / 'two')
    assert list(two['step']) == list(one['step'])
    np.testing.assert_array_equal(two['positions'], one['positions'])
    np.testing.assert_array_equal(two['velocities'], one['velocities'])


def test_frames_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    """A kill between writing a frame and its checkpoint leaves a frame the continuation computes again."""
    atoms, reference = cu_reference()
    full = MDSettings(temperature=300, timestep=2.0, steps=40, save_stride=5, friction=0.01, seed=7)
    (tmp_path / 'one').mkdir()
    (tmp_path / 'two').mkdir()
    run_md(atoms.copy(), ModelPotential(reference), full, tmp_path / 'one')
    run_md(atoms.copy(), ModelPotential(reference), MDSettings(**{**full.__dict__, 'steps': 20}), tmp_path / 'two')
    checkpoint = read_checkpoint(tmp_path / 'two' / 'checkpoint.json')
    # continue in the folder of the full run, as if it had been killed right after the checkpoint at step 20
    run_md(atoms.copy(), ModelPotential(reference), full, tmp_path / 'one', checkpoint=checkpoint)
    frames = read_frames(tmp_path / 'one')
    assert list(frames['step']) == list(range(0, 41, 5))


def test_a_run_that_reaches_its_last_step_is_finished_even_with_the_budget_spent(tmp_path):
    atoms, reference = cu_reference()
    settings = MDSettings(steps=20, save_stride=10)
    first = run_md(atoms.copy(), ModelPotential(reference), settings, tmp_path, max_seconds=1e-9)
    assert (first.state, first.last_step) == ('time_budget_spent', 10)
    rest = run_md(
        atoms.copy(),
        ModelPotential(reference),
        settings,
        tmp_path,
        max_seconds=1e-9,
        checkpoint=read_checkpoint(tmp_path / 'checkpoint.json'),
    )
    assert (rest.state, rest.last_step) == ('finished', 20)
    assert list(read_frames(tmp_path)['step']) == [0, 10, 20]


def test_a_half_written_frame_is_dropped(tmp_path):
    atoms, reference = cu_reference()
    run_md(atoms.copy(), ModelPotential(reference), MDSettings(steps=10, save_stride=5), tmp_path)
    with (tmp_path / 'frames.bin').open('ab') as handle:
        handle.write(b'\x00' * 100)  # a kill in the middle of a record
    assert len(read_frames(tmp_path)['step']) == 3


@pytest.mark.parametrize(
    'guard, potential, reason',
    [
        (MinDistanceGuard(2.35), {}, 'atoms_too_close'),
        (ForceCapGuard(0.5), {}, 'force_too_large'),
        (UncertaintyCapGuard(0.05), {'scales': (1.0, 1.3)}, 'uncertainty_too_large'),
        (TemperatureGuard(1.2, target_temperature=300), {}, 'temperature_runaway'),
        (None, {'nan_after': 12}, 'not_finite'),
    ],
)
def test_each_guard_stops_the_run_and_keeps_the_frames(tmp_path, guard, potential, reason):
    atoms, reference = cu_reference()
    settings = MDSettings(temperature=300, timestep=2.0, steps=500, save_stride=2, friction=0.01, seed=5)
    off = {'min_distance': None, 'max_force': None, 'max_uncertainty': None, 'temperature_factor': None}
    guards = build_stop_rules(off, settings.temperature)
    if guard is not None:
        guards.append(guard)
    result = run_md(atoms.copy(), ModelPotential(reference, **potential), settings, tmp_path, guards=guards)
    assert result.state == reason, result
    assert 0 < result.last_step < 500
    frames = read_frames(tmp_path)
    # every saved frame before the stop, plus the frame that tripped the guard
    assert len(frames['step']) == result.last_step // 2 + 1 + (result.last_step % 2)
    assert frames['step'][-1] == result.last_step


@pytest.mark.parametrize(
    'kwargs, match',
    [
        ({'temperature': 0}, '`temperature` must be at least 1 K'),
        ({'seed': -1}, '`seed` must be a non-negative integer'),
        ({'timestep': 0}, r'timestep must lie in \(0, 10\]'),
        ({'timestep': 50}, r'timestep must lie in \(0, 10\]'),
        ({'steps': 10, 'save_stride': 20}, 'save_stride must be an integer in'),
        ({'dynamics': 'nose'}, 'dynamics must be one of'),
        ({'friction': 3.0}, 'friction must lie in'),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MDSettings(**kwargs).check()
