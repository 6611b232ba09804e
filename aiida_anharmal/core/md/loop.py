"""Molecular dynamics on an ensemble's mean forces, with per-frame uncertainty and guards; no AiiDA import.

One loop for every variant: the dynamics (Langevin NVT or velocity-Verlet NVE, from ASE), the
stop rules (guards and triggers of :mod:`aiida_anharmal.core.md.guards`), an optional bias of the
forces (registry :data:`BIASES`) and the recorder that writes frames are separate pieces. Units: eV, A, fs, K. The Langevin ``friction`` is given in 1/fs (Kang et al.
use 0.03, the reference code passes it to ASE, whose time unit is ~10.18 fs, so theirs is
0.03 per ASE time unit = 0.0029/fs; here the unit is explicit and converted).

A run can stop and continue: a checkpoint (positions, momenta, step, state of the random
generator) is written atomically at the end of a run and every few seconds at a saved frame, so
:func:`run_md` started from it continues the *same* trajectory, bit for bit (frames written
after the checkpoint by a killed run are dropped and computed again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes

from ..phonons.anharmonicity import HarmonicReference
from .biases import BIASES, Bias, build_bias, check_bias_settings
from .files import FrameRecorder, read_checkpoint, read_frames, write_checkpoint
from .stop_rules import Trigger, build_stop_rules

__all__ = [
    'BIASES',
    'Bias',
    'MDResult',
    'MDSettings',
    'build_bias',
    'check_bias_settings',
    'read_checkpoint',
    'read_frames',
    'run_md',
]

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
        from ..structures.checks import check_seed, check_temperature

        check_temperature('temperature', self.temperature)
        check_seed('seed', self.seed)
        if not 0 < self.timestep <= 10:
            raise ValueError(f'the timestep must lie in (0, 10] fs, not {self.timestep} fs')
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f'steps must be a positive integer, not {self.steps!r}')
        if not isinstance(self.save_stride, int) or not 1 <= self.save_stride <= self.steps:
            raise ValueError(f'save_stride must be an integer in [1, steps={self.steps}], not {self.save_stride!r}')
        if self.dynamics == 'langevin' and not 0 < self.friction < 1:
            raise ValueError(f'the Langevin friction must lie in (0, 1) 1/fs, not {self.friction}')


# ------------------------------------------------------------------------------------------- loop
@dataclass
class MDResult:
    state: str  # 'finished' | a stop rule's reason | 'time_budget_spent'
    message: str = ''
    last_step: int = 0
    frames_written: int = 0
    seconds: float = 0.0
    timing: dict = field(default_factory=dict)


class RunStopped(Exception):
    """Raised inside the integrator's run: ``state`` is why (a stop rule's reason, or the budget)."""

    def __init__(self, state: str, message: str):
        super().__init__(message)
        self.state = state


class MeanForces(Calculator):
    """What the integrator sees: the ensemble-mean energy and forces (or a bias of them).

    The full prediction of the last call stays in ``prediction`` for the stop rules and the recorder.
    """

    implemented_properties: ClassVar[list[str]] = ['energy', 'forces', 'free_energy']

    def __init__(self, ensemble, timing: dict, bias: Bias | None = None):
        super().__init__()
        self.ensemble, self.timing, self.bias = ensemble, timing, bias
        self.prediction = None

    def calculate(self, atoms=None, properties=('forces',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        t0 = time.perf_counter()
        self.prediction = self.ensemble.predict(self.atoms)
        self.timing['predict'] += time.perf_counter() - t0
        energy, forces = self.prediction.energy, self.prediction.forces
        if self.bias is not None:
            energy, forces = self.bias(self.atoms, self.prediction)
        self.results = {'energy': energy, 'free_energy': energy, 'forces': forces}


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


class MDRun:
    """One run of :func:`run_md`: the integrator, its observer, the recorder and the checkpoints."""

    def __init__(
        self,
        atoms: Atoms,
        calculator,
        settings: MDSettings,
        directory: Path,
        guards: list,
        harmonic: HarmonicReference | None,
        checkpoint: dict | None,
        max_seconds: float | None,
        checkpoint_seconds: float,
        bias: Bias | None,
    ):
        self.atoms, self.settings, self.directory = atoms, settings, directory
        self.guards, self.harmonic = guards, harmonic
        self.max_seconds, self.checkpoint_seconds = max_seconds, checkpoint_seconds
        self.rng = np.random.default_rng(settings.seed)
        self.bias = bias
        self.trigger = next((rule for rule in guards if isinstance(rule, Trigger)), None)
        self.start_step = self._restore(checkpoint)
        self.timing = {'predict': 0.0, 'guards': 0.0, 'record': 0.0, 'integrate': 0.0}
        self.frames_written = 0
        self.begin = self.last_checkpoint = time.monotonic()
        self.forces = MeanForces(calculator, self.timing, bias)
        atoms.calc = self.forces
        self.dynamics = _make_dynamics(atoms, settings, self.rng)
        self.dynamics.nsteps = self.start_step
        self.recorder = FrameRecorder(
            directory,
            len(atoms),
            settings.per_atom_uncertainty,
            append_after_step=self.start_step if checkpoint is not None else None,
        )

    def _restore(self, checkpoint: dict | None) -> int:
        """Positions, momenta and random state of ``checkpoint``; else Maxwell-Boltzmann momenta if none."""
        if checkpoint is not None:
            self.atoms.positions = np.array(checkpoint['positions'])
            self.atoms.set_momenta(np.array(checkpoint['momenta']))
            self.rng.bit_generator.state = checkpoint['rng_state']
            if self.bias is not None:
                self.bias.restore(checkpoint.get('bias_state') or {})
            if self.trigger is not None:
                self.trigger.restore(checkpoint.get('trigger_state') or {})
            return int(checkpoint['step'])
        if not self.atoms.get_momenta().any():
            from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

            MaxwellBoltzmannDistribution(self.atoms, temperature_K=self.settings.temperature, rng=self.rng)
        return 0

    def observe(self) -> None:
        """After every step (and before the first): stop rules, the frame, the time budget."""
        step = self.dynamics.nsteps
        prediction = self.forces.prediction
        if self.bias is not None:
            self.bias.observe(prediction)
        if self.trigger is not None:
            self.trigger.last_score = np.nan
        t0 = time.perf_counter()
        saved = False
        for guard in self.guards:
            message = guard.check(self.atoms, prediction)
            if message:
                self.timing['guards'] += time.perf_counter() - t0
                self.save(step, prediction)  # keep the frame that fired: it says what went wrong
                if getattr(guard, 'refit', None) is None:
                    raise RunStopped(guard.reason, message)
                self.refit_in_place(guard)
                saved = True
        self.timing['guards'] += time.perf_counter() - t0
        stride = self.settings.save_stride
        if step % stride == 0 and not saved:
            self.save(step, prediction)
        if self.bias is not None:
            self.bias.advance()
        # the budget is checked at saved frames after the first stride, so every run makes progress
        spent = self.max_seconds is not None and time.monotonic() - self.begin > self.max_seconds
        if spent and self.start_step < step < self.settings.steps and step % stride == 0:
            raise RunStopped('time_budget_spent', f'stopped at step {step} after {self.max_seconds} s')

    def refit_in_place(self, trigger) -> None:
        """What a stop and its continuation do, in one run: refit, the frame's forces again, the trigger told."""
        trigger.refit(self.atoms)
        self.forces.reset()
        self.atoms.get_forces()
        trigger.resume(self.forces.prediction)

    def save(self, step: int, prediction) -> None:
        t0 = time.perf_counter()
        atoms = self.atoms
        a = ua = np.nan
        if self.harmonic is not None:
            a, ua = self.harmonic.a_with_uncertainty(atoms.positions, prediction.forces, prediction.member_forces)
        scalars = {
            'step': step,
            'time': step * self.settings.timestep,
            'energy': prediction.energy,
            'uce_energy': prediction.uce_energy,
            'uce_force_max': prediction.uce_force_max,
            'anharmonicity': a,
            'uce_anharmonicity': ua,
            'temperature': atoms.get_temperature(),
            'kinetic_energy': atoms.get_kinetic_energy(),
            'tau': np.nan,
            'bias_force': np.nan,
            'trigger_score': np.nan if self.trigger is None else self.trigger.last_score,
        }
        if self.bias is not None:
            scalars.update(self.bias.record())
        velocities = atoms.get_velocities() * units.fs
        self.recorder.write(scalars, atoms.positions, velocities, prediction.forces, prediction.uce_forces)
        self.frames_written += 1
        # never at the run's first step: a continuation from there would observe that step twice
        if step > self.start_step and time.monotonic() - self.last_checkpoint > self.checkpoint_seconds:
            self.write_checkpoint(step)
            self.last_checkpoint = time.monotonic()
        self.timing['record'] += time.perf_counter() - t0

    def write_checkpoint(self, step: int) -> None:
        extra = {'bias_state': self.bias.state()} if self.bias is not None else {}
        if self.trigger is not None:
            extra['trigger_state'] = self.trigger.state()
        write_checkpoint(self.directory / 'checkpoint.json', self.atoms, step, self.rng, self.settings, extra)

    def run(self) -> MDResult:
        state, message = 'finished', ''
        if self.start_step:
            # a continuation: the checkpoint step's forces (with the bias they had), then the next step's bias;
            # the trigger sees the frame under the current model (after a refit: the new one)
            self.atoms.get_forces()
            if self.bias is not None:
                self.bias.advance()
            if self.trigger is not None:
                self.trigger.resume(self.forces.prediction)
        self.dynamics.attach(self.observe, interval=1)
        t0 = time.perf_counter()
        try:
            # ASE calls the observer after every step, and before the first one of a new run
            self.dynamics.run(self.settings.steps - self.start_step)
        except RunStopped as stopped:
            state, message = stopped.state, str(stopped)
        finally:
            self.timing['integrate'] += time.perf_counter() - t0
            self.recorder.close()
        t0 = time.perf_counter()
        step = self.dynamics.nsteps
        self.write_checkpoint(step)
        self.timing['record'] += time.perf_counter() - t0
        timing = self.timing
        # `integrate` includes the force calls, guards and records made inside the integrator's run
        inside = timing['predict'] + timing['guards'] + timing['record']
        timing['integrate_only'] = max(0.0, timing['integrate'] - inside)
        seconds = round(time.monotonic() - self.begin, 3)
        return MDResult(state, message, step, self.frames_written, seconds, {k: round(v, 4) for k, v in timing.items()})


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
    bias: Bias | None = None,
) -> MDResult:
    """Integrate ``settings.steps`` steps on ``calculator`` (an ensemble: ``predict(atoms)``), saving
    frames, per-frame uncertainty and A/UCE_A (with ``harmonic``) into ``directory``.

    ``guards``: the stop rules of :mod:`aiida_anharmal.core.md.guards` (default: every guard at its
    default threshold). ``bias``: drives the dynamics instead of the ensemble mean (the frames
    keep the unbiased prediction). Without ``checkpoint`` the velocities are drawn from
    Maxwell-Boltzmann at the target temperature (unless ``atoms`` has momenta) with the run's
    seed. With ``checkpoint`` (from :func:`read_checkpoint`) the run continues from its step,
    positions, momenta and random state, appending to the frames already in ``directory``. A
    checkpoint is written at the end and, during the run, at a saved frame every
    ``checkpoint_seconds``: after a hard kill the continuation recomputes (identically) what
    came after the last one.
    """
    settings.check()
    if checkpoint is not None and int(checkpoint['step']) == 0:
        checkpoint = None  # nothing done yet: a fresh start with the same seed is the same run
    if bias is not None and getattr(calculator, 'n_members', bias.min_members) < bias.min_members:
        raise ValueError(f'bias `{bias.key}` needs a committee of at least {bias.min_members} members')
    if guards is None:
        guards = build_stop_rules({}, settings.temperature)
    run = MDRun(
        atoms,
        calculator,
        settings,
        Path(directory),
        guards,
        harmonic,
        checkpoint,
        max_seconds,
        checkpoint_seconds,
        bias,
    )
    return run.run()
