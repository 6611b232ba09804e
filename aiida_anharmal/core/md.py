"""Molecular dynamics on an ensemble's mean forces, with per-frame uncertainty and guards; no AiiDA import.

One loop for every variant: the dynamics (Langevin NVT or velocity-Verlet NVE, from ASE), the
guards that stop a run (small strategy objects) and the recorder that writes frames are
separate pieces. Units: eV, A, fs, K. The Langevin ``friction`` is given in 1/fs (Kang et al.
use 0.03, the reference code passes it to ASE, whose time unit is ~10.18 fs, so theirs is
0.03 per ASE time unit = 0.0029/fs; here the unit is explicit and converted).

A run can stop and continue: a checkpoint (positions, momenta, step, state of the random
generator) is written atomically at the end of a run and every few seconds at a saved frame, so
:func:`run_md` started from it continues the *same* trajectory, bit for bit (frames written
after the checkpoint by a killed run are dropped and computed again).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units

from .anharmonicity import HarmonicReference

DYNAMICS = ('langevin', 'nve')


@dataclass
class MDSettings:
    """What to integrate: ``dynamics`` (``langevin`` or ``nve``), ``temperature`` (K; also the initial
    Maxwell-Boltzmann temperature), ``timestep`` (fs), ``friction`` (1/fs, Langevin only),
    ``steps``, ``save_stride`` (save every n-th step; step 0 is saved), ``seed``."""

    temperature: float = 300.0
    timestep: float = 1.0
    steps: int = 100
    save_stride: int = 1
    friction: float = 0.01
    dynamics: str = 'langevin'
    seed: int = 0
    per_atom_uncertainty: bool = True

    def check(self) -> None:
        if self.dynamics not in DYNAMICS:
            raise ValueError(f'dynamics must be one of {DYNAMICS}, not {self.dynamics!r}')
        if not self.temperature > 0:
            raise ValueError(f'the temperature must be positive, not {self.temperature} K')
        if not 0 < self.timestep <= 10:
            raise ValueError(f'the timestep must lie in (0, 10] fs, not {self.timestep} fs')
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f'steps must be a positive integer, not {self.steps!r}')
        if not isinstance(self.save_stride, int) or not 1 <= self.save_stride <= self.steps:
            raise ValueError(f'save_stride must be an integer in [1, steps={self.steps}], not {self.save_stride!r}')
        if self.dynamics == 'langevin' and not 0 < self.friction < 1:
            raise ValueError(f'the Langevin friction must lie in (0, 1) 1/fs, not {self.friction}')


# ----------------------------------------------------------------------------------------- guards
class GuardTripped(Exception):
    """Raised by a guard: ``reason`` is a short machine name, the message says what happened."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class MinDistanceGuard:
    """Stop when two atoms (periodic images included) come closer than ``threshold`` A."""

    threshold: float = 0.5
    reason = 'atoms_too_close'

    def check(self, atoms: Atoms, prediction) -> str | None:
        try:  # matscipy (a nequip dependency) is ~50x faster than ASE's Python neighbour list
            from matscipy.neighbours import neighbour_list
        except ImportError:  # pragma: no cover
            from ase.neighborlist import neighbor_list as neighbour_list
        i, j, d = neighbour_list('ijd', atoms, self.threshold)
        if len(d):
            k = int(np.argmin(d))
            return f'atoms {i[k]} and {j[k]} are {d[k]:.3f} A apart (threshold {self.threshold} A)'
        return None


@dataclass
class ForceCapGuard:
    """Stop when a mean force exceeds ``max_force`` eV/A."""

    max_force: float = 20.0
    reason = 'force_too_large'

    def check(self, atoms, prediction) -> str | None:
        f = float(np.linalg.norm(prediction.forces, axis=1).max())
        if f > self.max_force:
            return f'|F| = {f:.2f} eV/A exceeds {self.max_force} eV/A'
        return None


@dataclass
class UncertaintyCapGuard:
    """Stop when UCE_F^max exceeds ``max_uncertainty`` eV/A (the ensemble no longer knows where it is)."""

    max_uncertainty: float = 2.0
    reason = 'uncertainty_too_large'

    def check(self, atoms, prediction) -> str | None:
        u = prediction.uce_force_max
        if u > self.max_uncertainty:
            return f'UCE_F^max = {u:.3f} eV/A exceeds {self.max_uncertainty} eV/A'
        return None


@dataclass
class TemperatureGuard:
    """Stop when the instantaneous temperature exceeds ``factor`` times the target."""

    target: float
    factor: float = 3.0
    reason = 'temperature_runaway'

    def check(self, atoms, prediction) -> str | None:
        t = atoms.get_temperature()
        if t > self.factor * self.target:
            return f'temperature {t:.0f} K exceeds {self.factor} x {self.target} K'
        return None


@dataclass
class FiniteGuard:
    """Stop on NaN or infinite energy, forces or positions."""

    reason = 'not_finite'

    def check(self, atoms, prediction) -> str | None:
        if not (
            np.isfinite(prediction.energy)
            and np.isfinite(prediction.forces).all()
            and np.isfinite(atoms.positions).all()
        ):
            return 'energy, forces or positions are not finite'
        return None


def default_guards(
    settings: MDSettings, min_distance=0.5, max_force=20.0, max_uncertainty=2.0, temperature_factor=3.0
) -> list:
    """The guards of a run; a ``None`` threshold leaves that guard out (the finite check always runs)."""
    guards = [FiniteGuard()]
    if min_distance is not None:
        guards.append(MinDistanceGuard(min_distance))
    if max_force is not None:
        guards.append(ForceCapGuard(max_force))
    if max_uncertainty is not None:
        guards.append(UncertaintyCapGuard(max_uncertainty))
    if temperature_factor is not None:
        guards.append(TemperatureGuard(settings.temperature, temperature_factor))
    return guards


# --------------------------------------------------------------------------------------- recorder
#: Scalars of every saved frame, in record order.
SCALARS = (
    'step',
    'time',
    'energy',
    'uce_energy',
    'uce_force_max',
    'anharmonicity',
    'uce_anharmonicity',
    'temperature',
    'kinetic_energy',
)


class FrameRecorder:
    """Append-only binary file of fixed-size frame records (a killed run keeps every complete frame).

    Record: :data:`SCALARS`, positions (3N), velocities (3N, A/fs), mean forces (3N), and per-atom
    UCE_F (N) if ``per_atom``. ``frames.json`` says the layout; :func:`read_frames` reads it back.
    """

    def __init__(
        self,
        directory: str | Path,
        n_atoms: int,
        per_atom: bool = True,
        append_after_step: int | None = None,
        sync_seconds: float = 10.0,
    ):
        self.directory = Path(directory)
        self.n_atoms = n_atoms
        self.per_atom = per_atom
        self.sync_seconds = sync_seconds
        layout = {'n_atoms': n_atoms, 'scalars': list(SCALARS), 'per_atom_uncertainty': per_atom}
        (self.directory / 'frames.json').write_text(json.dumps(layout))
        path = self.directory / 'frames.bin'
        if append_after_step is not None:
            keep_frames_until(path, record_length(n_atoms, per_atom), append_after_step)
        self._handle = path.open('wb' if append_after_step is None else 'ab')
        self._last_sync = time.monotonic()

    def write(self, scalars: dict, positions, velocities, forces, uce_forces) -> None:
        parts = [
            np.array([scalars[name] for name in SCALARS], dtype=float),
            np.ravel(positions),
            np.ravel(velocities),
            np.ravel(forces),
        ]
        if self.per_atom:
            parts.append(np.ravel(uce_forces))
        self._handle.write(np.concatenate(parts).astype('<f8').tobytes())
        # flushed to the OS at once (a killed process loses nothing); synced to disk every
        # `sync_seconds` (what a crash of the machine could lose), as fsync costs milliseconds
        self._handle.flush()
        if time.monotonic() - self._last_sync > self.sync_seconds:
            os.fsync(self._handle.fileno())
            self._last_sync = time.monotonic()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


def record_length(n_atoms: int, per_atom: bool) -> int:
    return len(SCALARS) + 9 * n_atoms + (n_atoms if per_atom else 0)


def keep_frames_until(path: Path, length: int, step: int) -> None:
    """Before continuing from a checkpoint at ``step``: cut a record a kill left half-written, and
    any frame written after the checkpoint (it will be computed again, identically)."""
    if not path.exists():
        return
    raw = np.fromfile(path, dtype='<f8')
    n_whole = len(raw) // length
    steps = raw[: n_whole * length].reshape(n_whole, length)[:, 0] if n_whole else np.zeros(0)
    keep = int(np.searchsorted(steps, step, side='right'))
    if keep * length * 8 != path.stat().st_size:
        with path.open('r+b') as handle:
            handle.truncate(keep * length * 8)


def read_frames(directory: str | Path) -> dict[str, np.ndarray]:
    """Arrays of every complete frame: the scalars, ``positions``/``velocities``/``forces`` (T, N, 3),
    ``uce_forces`` (T, N) if recorded."""
    directory = Path(directory)
    layout = json.loads((directory / 'frames.json').read_text())
    n, per_atom = layout['n_atoms'], layout['per_atom_uncertainty']
    length = record_length(n, per_atom)
    raw = np.fromfile(directory / 'frames.bin', dtype='<f8') if (directory / 'frames.bin').exists() else np.zeros(0)
    raw = raw[: len(raw) - len(raw) % length].reshape(-1, length)
    out = {name: raw[:, k] for k, name in enumerate(layout['scalars'])}
    out['step'] = out['step'].astype(int)
    offset = len(layout['scalars'])
    for name in ('positions', 'velocities', 'forces'):
        out[name] = raw[:, offset : offset + 3 * n].reshape(-1, n, 3)
        offset += 3 * n
    if per_atom:
        out['uce_forces'] = raw[:, offset : offset + n]
    return out


# ------------------------------------------------------------------------------------- checkpoint
def write_checkpoint(path: Path, atoms: Atoms, step: int, rng: np.random.Generator, settings: MDSettings) -> None:
    state = {
        'step': step,
        'positions': atoms.positions.tolist(),
        'momenta': atoms.get_momenta().tolist(),
        'rng_state': rng.bit_generator.state,
        'settings': asdict(settings),
    }
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------- loop
@dataclass
class MDResult:
    state: str  # 'finished' | a guard's reason | 'time_budget_spent'
    message: str = ''
    last_step: int = 0
    frames_written: int = 0
    seconds: float = 0.0
    timing: dict = field(default_factory=dict)


def _make_dynamics(atoms, settings: MDSettings, rng):
    if settings.dynamics == 'nve':
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=settings.timestep * units.fs)
    from ase.md.langevin import Langevin

    return Langevin(
        atoms,
        timestep=settings.timestep * units.fs,
        temperature_K=settings.temperature,
        friction=settings.friction / units.fs,
        rng=rng,
        fixcm=False,
    )


def run_md(
    atoms: Atoms,
    calculator,
    settings: MDSettings,
    directory: str | Path,
    guards: list | None = None,
    harmonic: HarmonicReference | None = None,
    checkpoint: dict | None = None,
    max_seconds: float | None = None,
    checkpoint_seconds: float = 5.0,
) -> MDResult:
    """Integrate ``settings.steps`` steps on ``calculator`` (an ensemble: ``predict(atoms)``), saving
    frames, per-frame uncertainty and A/UCE_A (with ``harmonic``) into ``directory``.

    Without ``checkpoint`` the velocities are drawn from Maxwell-Boltzmann at the target
    temperature (unless ``atoms`` has momenta) with the run's seed. With ``checkpoint`` (from
    :func:`read_checkpoint`) the run continues from its step, positions, momenta and random
    state, appending to the frames already in ``directory``. A checkpoint is written at the end
    and, during the run, at a saved frame every ``checkpoint_seconds``: after a hard kill the
    continuation recomputes (identically) what came after the last one.
    """

    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    settings.check()
    directory = Path(directory)
    guards = guards if guards is not None else default_guards(settings)
    rng = np.random.default_rng(settings.seed)
    start_step = 0
    if checkpoint is not None:
        atoms.positions = np.array(checkpoint['positions'])
        atoms.set_momenta(np.array(checkpoint['momenta']))
        rng.bit_generator.state = checkpoint['rng_state']
        start_step = int(checkpoint['step'])
    elif not atoms.get_momenta().any():
        MaxwellBoltzmannDistribution(atoms, temperature_K=settings.temperature, rng=rng)

    n = len(atoms)
    recorder = FrameRecorder(
        directory, n, settings.per_atom_uncertainty, append_after_step=start_step if checkpoint is not None else None
    )
    timing = {'predict': 0.0, 'guards': 0.0, 'record': 0.0, 'integrate': 0.0}
    frames_written = 0
    begin = time.monotonic()
    last_checkpoint = [begin]

    last = {}

    from ase.calculators.calculator import Calculator, all_changes

    class MeanForces(Calculator):
        """What the integrator sees: the ensemble-mean forces; the full prediction is kept for the observer."""

        implemented_properties = ['energy', 'forces', 'free_energy']

        def calculate(self, atoms=None, properties=('forces',), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            t0 = time.perf_counter()
            prediction = calculator.predict(self.atoms)
            timing['predict'] += time.perf_counter() - t0
            last['prediction'] = prediction
            self.results = {'energy': prediction.energy, 'free_energy': prediction.energy, 'forces': prediction.forces}

    atoms.calc = MeanForces()
    dynamics = _make_dynamics(atoms, settings, rng)

    def observe(step: int) -> None:
        prediction = last['prediction']
        t0 = time.perf_counter()
        for guard in guards:
            message = guard.check(atoms, prediction)
            if message:
                timing['guards'] += time.perf_counter() - t0
                # keep the frame that tripped the guard: it says what went wrong
                save(step, prediction)
                raise GuardTripped(guard.reason, message)
        timing['guards'] += time.perf_counter() - t0
        if step % settings.save_stride == 0:
            save(step, prediction)

    def save(step: int, prediction) -> None:
        nonlocal frames_written
        t0 = time.perf_counter()
        a = ua = np.nan
        if harmonic is not None:
            a, ua = harmonic.a_with_uncertainty(atoms.positions, prediction.forces, prediction.member_forces)
        scalars = {
            'step': step,
            'time': step * settings.timestep,
            'energy': prediction.energy,
            'uce_energy': prediction.uce_energy,
            'uce_force_max': prediction.uce_force_max,
            'anharmonicity': a,
            'uce_anharmonicity': ua,
            'temperature': atoms.get_temperature(),
            'kinetic_energy': atoms.get_kinetic_energy(),
        }
        recorder.write(
            scalars, atoms.positions, atoms.get_velocities() * units.fs, prediction.forces, prediction.uce_forces
        )
        frames_written += 1
        if time.monotonic() - last_checkpoint[0] > checkpoint_seconds:
            write_checkpoint(directory / 'checkpoint.json', atoms, step, rng, settings)
            last_checkpoint[0] = time.monotonic()
        timing['record'] += time.perf_counter() - t0

    class BudgetSpent(Exception):
        pass

    def observer():
        step = dynamics.nsteps
        observe(step)
        # the budget is checked at saved frames after the first stride, so every run makes progress
        if (
            max_seconds is not None
            and start_step < step < settings.steps
            and step % settings.save_stride == 0
            and time.monotonic() - begin > max_seconds
        ):
            raise BudgetSpent(f'stopped at step {step} after {max_seconds} s')

    state, message = 'finished', ''
    dynamics.nsteps = start_step
    dynamics.attach(observer, interval=1)
    try:
        t0 = time.perf_counter()
        try:
            # ASE calls the observer after every step, and before the first one of a new run
            dynamics.run(settings.steps - start_step)
        finally:
            timing['integrate'] += time.perf_counter() - t0
    except BudgetSpent as spent:
        state, message = 'time_budget_spent', str(spent)
    except GuardTripped as tripped:
        state, message = tripped.reason, str(tripped)
    finally:
        recorder.close()
    t0 = time.perf_counter()
    step = dynamics.nsteps
    write_checkpoint(directory / 'checkpoint.json', atoms, step, rng, settings)
    timing['record'] += time.perf_counter() - t0
    seconds = time.monotonic() - begin
    # `integrate` includes the force calls, guards and records made inside the integrator's run
    timing['integrate_only'] = max(0.0, timing['integrate'] - timing['predict'] - timing['guards'] - timing['record'])
    return MDResult(
        state, message, step, frames_written, round(seconds, 3), {k: round(v, 4) for k, v in timing.items()}
    )
