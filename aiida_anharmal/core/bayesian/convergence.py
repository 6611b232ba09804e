"""Has dynamic training converged? Judged from the fit itself, without a DFT test set (no AiiDA import).

Callsen et al. read convergence off two numbers that the Bayesian fit carries: the noise estimate beta^-1/2 of
each refit (it settles when new structures no longer change what the model cannot explain) and the Bayesian
error eps_B along the trajectory (it stays low when the model knows the configurations it visits). This module
gives

* :func:`running_statistics`: mu_k[eps_B] and sigma_k[eps_B] over the last k steps, along a run (Fig. 2);
* :func:`force_errors`: a fit's force errors on labelled frames, with :func:`error_bracket`, the bracket beta^-1/2 <= RMSE <= sqrt(beta^-1 + mean eps_B^2) of the force error on
  structures like the trajectory's (the predictive variance is 1/beta + eps_B^2 per component);
* :func:`z_scores` and :func:`skewness`: the distribution of z_B = (eps_B - mu_k)/sigma_k (Fig. 4): a long
  tail to the right is what the trajectory-average rule catches;
* the stop rule as a strategy (registry :data:`DYNAMIC_CONVERGENCE`): ``noise_plateau`` stops when beta^-1/2
  changed by less than ``tolerance`` (relative) over the last ``refits`` refits and no refit was triggered in
  the last ``quiet_steps`` MD steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from ..registry import Registry, Strategy, check_number


def running_statistics(eps_b, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mu_k, sigma_k)`` at every step: mean and standard deviation of eps_B over that step and the ``k - 1``
    before it (fewer at the start). NaN values (frames without eps_B) are left out."""
    eps = np.asarray(eps_b, dtype=float)
    mu, sigma = np.full(eps.shape, np.nan), np.full(eps.shape, np.nan)
    for i in range(len(eps)):
        window = eps[max(0, i - k + 1) : i + 1]
        window = window[np.isfinite(window)]
        if window.size:
            mu[i], sigma[i] = window.mean(), window.std()
    return mu, sigma


def error_bracket(noise: float, eps_b) -> tuple[float, float]:
    """``(beta^-1/2, sqrt(beta^-1 + mean eps_B^2))``: the fit's bracket of the force RMSE (eV/A) on frames with
    Bayesian errors ``eps_b``."""
    eps = np.asarray(eps_b, dtype=float)
    eps = eps[np.isfinite(eps)]
    if not eps.size:
        raise ValueError('no finite eps_B values')
    return float(noise), float(np.sqrt(noise**2 + np.mean(eps**2)))


def force_errors(model, frames) -> dict:
    """A fitted :class:`~aiida_anharmal.core.bayesian.model.BayesianForceConstantModel` on labelled ``frames``
    (pairs of positions and forces, eV/A): force MAE and RMSE over all components, mean eps_B, the
    :func:`error_bracket` and whether the RMSE lies in it."""
    errors, eps = [], []
    for positions, forces in frames:
        A = model.sensing_matrix(positions)
        errors.append((model.forces(positions, A) - np.asarray(forces)).ravel())
        eps.append(model.bayesian_error(positions, A)[0])
    errors = np.concatenate(errors)
    lower, upper = error_bracket(model.fit_result.noise, eps)
    rmse = float(np.sqrt(np.mean(errors**2)))
    return {
        'frames': len(eps),
        'forces_mae': float(np.mean(np.abs(errors))),
        'forces_rmse': rmse,
        'mean_eps_b': float(np.mean(eps)),
        'bracket': [lower, upper],
        'in_bracket': bool(lower <= rmse <= upper),
    }


def z_scores(eps_b, k: int) -> np.ndarray:
    """z_B = (eps_B - mu_k) / sigma_k with the statistics of the k steps *before* each step (NaN where they are
    undefined or sigma_k is 0)."""
    eps = np.asarray(eps_b, dtype=float)
    mu, sigma = running_statistics(eps, k)
    previous_mu, previous_sigma = np.roll(mu, 1), np.roll(sigma, 1)
    previous_mu[0] = previous_sigma[0] = np.nan
    with np.errstate(invalid='ignore', divide='ignore'):
        z = (eps - previous_mu) / previous_sigma
    z[~(previous_sigma > 0)] = np.nan
    return z


def skewness(values) -> float:
    """The sample skewness (third standardised moment, biased estimator) of the finite ``values``."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 3 or x.std() == 0:
        return float('nan')
    return float(np.mean((x - x.mean()) ** 3) / x.std() ** 3)


@dataclass(frozen=True)
class RefitRecord:
    """One fit of a dynamic training: the MD step it was triggered at (0: the initial fit), the training
    structures, beta^-1/2 (eV/A), mu_k[eps_B] before the trigger (NaN for the initial fit) and the trigger
    frame's eps_B."""

    step: int
    n_data: int
    noise: float
    mu_k: float = float('nan')
    eps_b: float = float('nan')


@dataclass(frozen=True)
class DynamicDecision:
    """Whether to stop, and why (``reason``: ``converged``, ``running``, ``steps_exhausted``, ``max_refits``)."""

    converged: bool
    stop: bool
    reason: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


class DynamicConvergence(Strategy):
    """Base of the stop rules of dynamic training (registry :data:`DYNAMIC_CONVERGENCE`)."""

    def __init__(self, parameters: dict | None = None):
        self.parameters = self.validate(parameters or {})

    def decide(self, refits: list[RefitRecord], steps_since_refit: int, finished: bool, max_refits: int):
        raise NotImplementedError


DYNAMIC_CONVERGENCE: Registry[type[DynamicConvergence]] = Registry(
    'dynamic-training convergence rule', group='anharmal.dynamic_convergence'
)


class NoisePlateau(DynamicConvergence):
    """beta^-1/2 changed by less than ``tolerance`` (relative) over the last ``refits`` refits, and no refit in
    the last ``quiet_steps`` MD steps."""

    key = 'noise_plateau'
    label = 'beta^-1/2 settled and no refit for quiet_steps'
    defaults: ClassVar[dict] = {'tolerance': 0.05, 'refits': 3, 'quiet_steps': 1000}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('tolerance', p['tolerance'])
        check_number('refits', p['refits'], integer=True, minimum=1)
        check_number('quiet_steps', p['quiet_steps'], integer=True, minimum=1)
        return p

    def noise_settled(self, refits: list[RefitRecord]) -> bool:
        """The last ``refits`` + 1 fits' beta^-1/2 lie within ``tolerance`` (relative) of the last one."""
        m = self.parameters['refits']
        if len(refits) < m + 1:
            return False
        noise = np.array([r.noise for r in refits[-(m + 1) :]])
        return bool(np.all(np.abs(noise - noise[-1]) <= self.parameters['tolerance'] * noise[-1]))

    def decide(self, refits, steps_since_refit: int, finished: bool, max_refits: int) -> DynamicDecision:
        settled = self.noise_settled(refits)
        quiet = steps_since_refit >= self.parameters['quiet_steps']
        n = len(refits) - 1
        noise = f'beta^-1/2 {1000 * refits[-1].noise:.2f} meV/A after {n} refit(s)'
        if settled and quiet:
            message = (
                f'{noise}, settled within {self.parameters["tolerance"]:g}; no refit for {steps_since_refit} steps'
            )
            return DynamicDecision(True, True, 'converged', message)
        why = 'not settled' if not settled else f'only {steps_since_refit} steps since the last refit'
        if finished:
            return DynamicDecision(False, True, 'steps_exhausted', f'the trajectory ended: {noise}, {why}')
        if n >= max_refits:
            return DynamicDecision(False, True, 'max_refits', f'{max_refits} refits done: {noise}, {why}')
        return DynamicDecision(False, False, 'running', f'{noise}, {why}')


def make_dynamic_convergence(settings: dict | None) -> DynamicConvergence:
    """The rule of ``{'kind': key, parameters}`` (default ``noise_plateau``)."""
    settings = dict(settings or {})
    key = settings.pop('kind', NoisePlateau.key)
    return DYNAMIC_CONVERGENCE.get(key)(settings)
