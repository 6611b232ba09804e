"""Dynamic training (Callsen et al.): MD with the current Bayesian fit, refit where eps_B is unusually high; no AiiDA.

The MD is the one loop of :mod:`aiida_anharmal.core.md.loop` on a :class:`BayesianPotential` (the posterior-mean
forces of a :class:`~aiida_anharmal.core.bayesian.model.BayesianForceConstantModel`; per frame eps_B, recorded as
``uce_force_max`` / ``uce_forces``), with the stop trigger :class:`RetrainTrigger` (exit code 342), which asks
its retrain rule (:mod:`aiida_anharmal.core.bayesian.retrain`) at every step. When it fires, the run stops with a
checkpoint; the frame is labelled, the model refitted, and the run continues from the checkpoint (positions,
momenta, thermostat random state, the rule's window) with the new fit: :func:`dynamic_training` does that in
a loop, as the workchain does with jobs. With the trigger's ``refit`` set instead, one run refits in place;
both give the same trajectory, bit for bit (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..md.stop_rules import Trigger
from .model import displacements_from
from .retrain import RETRAIN_RULES, make_retrain_rule


@dataclass(frozen=True)
class BayesianPrediction:
    """What the MD loop reads of one frame: posterior-mean energy and forces, the Bayesian error, and (with a
    committee of posterior samples) each sample's energy and forces."""

    energy: float
    forces: np.ndarray
    eps_b: float
    eps_b_atoms: np.ndarray
    sample_energies: np.ndarray | None = None
    sample_forces: np.ndarray | None = None

    @property
    def n_members(self) -> int:
        return 1 if self.sample_energies is None else len(self.sample_energies)

    @property
    def member_forces(self) -> np.ndarray:
        return self.forces[None] if self.sample_forces is None else self.sample_forces

    @property
    def member_energies(self) -> np.ndarray:
        return np.array([self.energy]) if self.sample_energies is None else self.sample_energies

    @property
    def uce_energy(self) -> float:
        """The committee's energy spread (sigma of the HAL bias); NaN without posterior samples."""
        return float('nan') if self.sample_energies is None else float(np.std(self.sample_energies))

    @property
    def uce_forces(self) -> np.ndarray:
        """Per-atom eps_B (eV/A) in the place of the ensemble's UCE_F."""
        return self.eps_b_atoms

    @property
    def uce_force_max(self) -> float:
        return float(self.eps_b_atoms.max())


class BayesianPotential:
    """The MD driver of a fitted model: ``predict(atoms)`` -> :class:`BayesianPrediction`; :meth:`refit` adds
    a labelled structure and fits again.

    With ``samples`` > 0, a committee of that many posterior samples c_k ~ N(c, Sigma) (drawn with
    ``seed + N_data`` of the fit, so a continued run draws the same ones) gives each frame member energies
    and forces: what the hyperactive-learning bias reads of an ensemble.
    """

    workers = 1

    def __init__(self, model, samples: int = 0, seed: int = 0):
        self.model = model
        self.samples, self.seed = int(samples), int(seed)
        self._draw()

    @property
    def n_members(self) -> int:
        return max(1, self.samples)

    def _draw(self) -> None:
        fit = self.model.fit_result
        self.coefficients = None
        if self.samples and fit is not None:
            self.coefficients = self.model.sample_coefficients(self.samples, self.seed + fit.n_structures)

    def check_atoms(self, atoms) -> None:
        if len(atoms) != len(self.model.ideal) or list(atoms.numbers) != list(self.model.ideal.numbers):
            raise ValueError("the structure is not the model's ideal supercell (atom count or order)")

    def predict(self, atoms) -> BayesianPrediction:
        u = displacements_from(self.model.ideal, atoms.positions)  # once per step: A and the energy row read it
        A = self.model.sensing_matrix(atoms.positions, u)
        forces = self.model.forces(atoms.positions, A)
        eps, per_atom = self.model.bayesian_error(atoms.positions, A)
        row = self.model.energy_row(atoms.positions, A, u)
        energy = float(row @ self.model.fit_result.coefficients)
        if self.coefficients is None:
            return BayesianPrediction(energy, forces, eps, per_atom)
        sample_forces = np.einsum('ij,kj->ki', A, self.coefficients).reshape(self.samples, -1, 3)
        return BayesianPrediction(energy, forces, eps, per_atom, self.coefficients @ row, sample_forces)

    def refit(self, positions, forces) -> None:
        self.model.add(positions, forces)
        self.model.fit()
        self._draw()


class RetrainTrigger(Trigger):
    """Stop where the retrain rule fires on eps_B (dynamic training; parameters: ``rule`` and its own)."""

    key = 'retrain'
    label = 'Bayesian error eps_B'
    reason = 'trigger_retrain'
    exit_status = 342
    exit_label = 'STOPPED_FOR_REFIT'
    message = 'Stopped by the retrain rule at a frame to label and refit: {message}.'
    unit = 'eps_B, eV/A'
    prediction_kind = 'bayesian'
    defaults: ClassVar[dict] = {'rule': 'trajectory_average', 'gamma': 3.0, 'k': 1000}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = dict(parameters)
        rule = p.get('rule', cls.defaults['rule'])
        own = {k: v for k, v in p.items() if k != 'rule'}
        checked = RETRAIN_RULES.get(rule).validate(own)
        return {'rule': rule, **checked}

    def __init__(self, parameters: dict | None = None, target_temperature: float | None = None, harmonic=None):
        p = self.validate(parameters or {})
        super().__init__(None, target_temperature, harmonic)
        self.parameters = p
        self.rule = make_retrain_rule(p)
        self.fired = False
        self.last_score = np.nan

    def check(self, atoms, prediction) -> str | None:
        self.last_score = float(prediction.eps_b)
        self.fired = self.rule.fires(self.last_score)
        if self.fired:
            return f'eps_B {1000 * self.last_score:.3f} meV/A ({self.rule.label})'
        return None

    def resume(self, prediction) -> None:
        if self.fired:  # the run stopped here to refit: the frame's eps_B under the new fit
            self.rule.refitted(float(prediction.eps_b))
            self.fired = False

    def state(self) -> dict:
        return {'rule': self.rule.state(), 'fired': self.fired}

    def summary(self) -> dict:
        """Also the rule, its reference value (mu_k[eps_B] or the mean stored eps_B) and whether it fired last."""
        return {**super().summary(), 'rule': self.rule.key, 'reference': self.rule.reference, 'fired': self.fired}

    def restore(self, state: dict) -> None:
        if state:
            self.rule.restore(state['rule'])
            self.fired = bool(state['fired'])


@dataclass
class DynamicRun:
    """What :func:`dynamic_training` did: the refits (step, eps_B before, the rule's reference value: mu_k or the mean
    stored eps_B, N_data, beta^-1/2) and the last MD result."""

    refits: list[dict] = field(default_factory=list)
    result: object = None


def dynamic_training(atoms, potential, labeller, settings, directory, rule: dict, guards=None, max_refits=100):
    """MD on ``potential`` until the end; at each firing of the retrain rule the stop frame is labelled by
    ``labeller`` (an ASE calculator), the model refitted, the run continued from its checkpoint. After
    ``max_refits`` refits a further firing ends it (its result's state is then ``trigger_retrain``, that frame
    not labelled)."""
    from ..md.loop import read_checkpoint, run_md
    from ..md.stop_rules import build_stop_rules

    directory = Path(directory)
    run = DynamicRun()
    checkpoint = None
    while True:
        rules = build_stop_rules(
            guards or {'max_uncertainty': None}, settings.temperature, trigger={'kind': 'retrain', **rule}
        )
        run.result = run_md(atoms.copy(), potential, settings, directory, rules, checkpoint=checkpoint)
        if run.result.state != RetrainTrigger.reason or len(run.refits) >= max_refits:
            return run
        checkpoint = read_checkpoint(directory / 'checkpoint.json')
        frame = potential.model.ideal.copy()
        frame.positions = np.array(checkpoint['positions'])
        frame.calc = labeller
        trigger = rules[-1]
        eps_before, reference = trigger.last_score, trigger.rule.reference
        potential.refit(frame.positions, frame.get_forces())
        fit = potential.model.fit_result
        run.refits.append(
            {
                'step': checkpoint['step'],
                'eps_b': eps_before,
                'reference': reference,
                'n_data': fit.n_structures,
                'noise': fit.noise,
            }
        )
