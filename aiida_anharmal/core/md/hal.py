"""Hyperactive learning (van der Oord et al.): MD biased towards where a committee disagrees; no AiiDA import.

For a committee of ``K`` members (the members of a NequIP ensemble, or posterior samples of a
linear model) with energies ``E_k`` and forces ``F_k`` of one frame::

    sigma  = sqrt( (1/K) sum_k (E_k - E_mean)^2 )                         (= UCE_U)
    E_HAL  = E_mean - tau sigma
    F_HAL  = F_mean - tau (1/K) sum_k (E_k - E_mean)(F_k - F_mean) / sigma  (= -grad E_HAL)

The second term of ``F_HAL`` is ``tau`` times ``grad sigma``: the bias pushes the atoms towards
larger committee disagreement. Its unscaled part, :func:`sigma_gradient` (per atom, eV/A per eV of
``tau``), is what the frames record as ``bias_force`` (mean over atoms of its norm).

``tau`` (dimensionless) sets how strongly: fixed, or adaptive (:class:`AdaptiveTau`, the
published controller) ``tau = tau_r <|F_mean|> / <|grad sigma|>``, the averages (mean over atoms
of the norm per atom) taken over the last ``tau_hist`` MD steps, no bias during the first
``tau_hist`` steps. ``tau_r`` is the size of the bias force relative to the physical force; the
paper uses 0.05-0.25. (ACEHAL's code smooths exponentially with mixing ``1/tau_hist`` by default;
the window here is the published, original form.)

The bias is a strategy of the one MD loop (:data:`aiida_anharmal.core.md.loop.BIASES`): the loop
calls it for the forces, reports every step to it (:meth:`HALBias.observe`), and stores its state
in the checkpoint, so a continued run is the same trajectory, tau controller included.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

import numpy as np

from ..registry import check_number
from .biases import Bias


def committee_sigma(member_energies) -> float:
    """sigma = the population standard deviation of the member energies (eV)."""
    return float(np.std(np.asarray(member_energies, dtype=float), ddof=0))


def sigma_gradient(member_energies, member_forces) -> np.ndarray:
    """grad sigma = -(1/K) sum_k (E_k - E_mean)(F_k - F_mean) / sigma, shape ``(n_atoms, 3)`` (eV/A).

    Zero where the members agree exactly (sigma = 0: no direction to push in).
    """
    energies = np.asarray(member_energies, dtype=float)
    forces = np.asarray(member_forces, dtype=float)
    if energies.ndim != 1 or forces.shape[:1] != energies.shape or forces.ndim != 3:
        raise ValueError(f'member energies {energies.shape} and forces {forces.shape} do not match')
    sigma = committee_sigma(energies)
    if sigma == 0.0:
        return np.zeros(forces.shape[1:])
    de = energies - energies.mean()
    df = forces - forces.mean(axis=0)
    return -np.einsum('k,kij->ij', de, df) / (len(energies) * sigma)


def mean_norm(vectors) -> float:
    """Mean over atoms of the norm per atom."""
    return float(np.linalg.norm(np.asarray(vectors, dtype=float), axis=1).mean())


class AdaptiveTau:
    """tau = tau_r <|F_mean|> / <|grad sigma|> over the last ``tau_hist`` observed steps; 0 for the first
    ``tau_hist`` steps (and while the window's mean bias force is 0).

    :meth:`observe` is called once per MD step (step 0 included) with the step's mean-over-atoms force
    norms; :attr:`tau` is then the value for the forces of the next step.
    """

    def __init__(self, tau_r: float, tau_hist: int):
        self.tau_r, self.tau_hist = float(tau_r), int(tau_hist)
        self.forces: deque[float] = deque(maxlen=self.tau_hist)
        self.biases: deque[float] = deque(maxlen=self.tau_hist)
        self.observed = 0

    def observe(self, mean_force: float, bias_force: float) -> None:
        self.forces.append(float(mean_force))
        self.biases.append(float(bias_force))
        self.observed += 1

    @property
    def tau(self) -> float:
        if self.observed <= self.tau_hist:
            return 0.0
        bias = float(np.mean(self.biases))
        return 0.0 if bias == 0.0 else self.tau_r * float(np.mean(self.forces)) / bias

    def state(self) -> dict:
        return {
            'forces': list(self.forces),
            'biases': list(self.biases),
            'observed': self.observed,
            'tau_hist': self.tau_hist,
        }

    def restore(self, state: dict) -> None:
        if state.get('tau_hist', self.tau_hist) != self.tau_hist:
            raise ValueError(
                f'the checkpoint was written with tau_hist {state["tau_hist"]}, not {self.tau_hist}: continue a run with '
                'the bias it was started with'
            )
        self.forces = deque((float(x) for x in state['forces']), maxlen=self.tau_hist)
        self.biases = deque((float(x) for x in state['biases']), maxlen=self.tau_hist)
        self.observed = int(state['observed'])


class HALBias(Bias):
    """E_HAL = E - tau sigma on the committee of the MD's ensemble (hyperactive learning).

    Parameters: ``tau`` (a fixed value >= 0; ``None``: adaptive), ``tau_r`` (the adaptive target of
    <|tau grad sigma|> / <|F_mean|>, in (0, 1]; 0.05-0.25 published), ``tau_hist`` (steps of the running
    averages and of the unbiased start, >= 1).
    """

    key = 'hal'
    label = 'hyperactive learning (E - tau sigma)'
    defaults: ClassVar[dict] = {'tau': None, 'tau_r': 0.1, 'tau_hist': 100}
    min_members = 2

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        tau_r = p['tau_r']
        if isinstance(tau_r, bool) or not isinstance(tau_r, (int, float)) or not 0 < tau_r <= 1:
            raise ValueError(f'`tau_r` must lie in (0, 1] (published: 0.05-0.25), not {tau_r!r}')
        check_number('tau_hist', p['tau_hist'], integer=True, minimum=1)
        tau = p['tau']
        if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 0 <= tau < np.inf):
            raise ValueError(f'`tau` must be a number >= 0 (fixed) or null (adaptive), not {tau!r}')
        return p

    def __init__(self, parameters: dict | None = None):
        p = self.validate(parameters or {})
        self.parameters = p
        self.fixed = None if p['tau'] is None else float(p['tau'])
        self.controller = AdaptiveTau(p['tau_r'], p['tau_hist'])
        self.tau = self.fixed if self.fixed is not None else 0.0  # applied to the next force call
        self.tau_frame = self.tau  # applied to the forces of the last observed step
        self.last = {'sigma': np.nan, 'bias_force': np.nan, 'mean_force': np.nan}

    def __call__(self, atoms, prediction) -> tuple[float, np.ndarray]:
        energies, forces = prediction.member_energies, prediction.member_forces
        if len(energies) < self.min_members:
            raise ValueError(
                f'the HAL bias needs a committee of at least {self.min_members} members, not {len(energies)}'
            )
        gradient = sigma_gradient(energies, forces)
        mean_forces = prediction.forces
        self.last = {
            'sigma': committee_sigma(energies),
            'bias_force': mean_norm(gradient),
            'mean_force': mean_norm(mean_forces),
        }
        if self.tau == 0.0:
            return prediction.energy, mean_forces
        return prediction.energy - self.tau * self.last['sigma'], mean_forces + self.tau * gradient

    def observe(self, prediction) -> None:
        """One MD step done (its forces computed with :attr:`tau`): feed the controller."""
        self.tau_frame = self.tau
        self.controller.observe(self.last['mean_force'], self.last['bias_force'])

    def advance(self) -> None:
        """The tau of the next step's forces."""
        self.tau = self.fixed if self.fixed is not None else self.controller.tau

    def record(self) -> dict:
        return {'tau': self.tau_frame, 'bias_force': self.last['bias_force']}

    def state(self) -> dict:
        return {'tau_frame': self.tau_frame, 'controller': self.controller.state()}

    def restore(self, state: dict) -> None:
        """Back to a checkpoint: the next force call recomputes the checkpoint step's forces (with its tau)."""
        if 'controller' not in state:
            raise ValueError(
                'the checkpoint holds no state of the HAL bias: it was written by a run without it; continue a run with '
                'the bias it was started with'
            )
        self.controller.restore(state['controller'])
        self.tau = self.tau_frame = float(state['tau_frame'])
