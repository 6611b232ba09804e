"""The probabilities of the soft acquisition (Kang et al., Eqs. 3-4) as small callables; pure numpy.

:class:`UncertaintyProbability` is P(UCE) against the test set's mean and std of an uncertainty,
:class:`EnergyProbability` P(U) against its energy statistics, :func:`energy_statistics_at` and
:func:`uncertainty_statistics_at` carry those to another temperature, :class:`PerRunProbability`
applies each run's own probability to pooled frames, :class:`UniformProbability` is the random
baseline. :mod:`aiida_anharmal.core.learning.acquisition`
draws frames with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf


@dataclass(frozen=True)
class UncertaintyProbability:
    """P(UCE) of one uncertainty kind against the test-set mean ``mu`` and std ``sigma``."""

    mu: float
    sigma: float
    s: float = 2.0
    g: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma)) or self.sigma <= 0:
            raise ValueError(f'the test-set std of the uncertainty must be positive and finite, not {self.sigma}')
        if self.g <= 0:
            raise ValueError(f'g must be positive, not {self.g}')

    def __call__(self, uncertainty) -> np.ndarray:
        x = (np.asarray(uncertainty, dtype=float) - self.mu - self.s * self.sigma) / (
            self.g * self.sigma * math.sqrt(0.2)
        )
        return 0.5 * (1.0 + erf(x))


@dataclass(frozen=True)
class EnergyProbability:
    """P(U): 1 up to mu_U + sigma_U, then an exponential decay that reaches 0.2 at mu_U + 1.8 sigma_U."""

    mu: float
    sigma: float

    def __post_init__(self):
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma)) or self.sigma <= 0:
            raise ValueError(f'the test-set std of the energy must be positive and finite, not {self.sigma}')

    def __call__(self, energy) -> np.ndarray:
        excess = (np.asarray(energy, dtype=float) - self.mu - self.sigma) / self.sigma
        return np.where(excess <= 0, 1.0, np.exp(math.log(0.2) / 0.8 * np.maximum(excess, 0.0)))


def energy_statistics_at(mean: float, std: float, t_test: float, t_run: float, n_atoms: int) -> tuple[float, float]:
    """The test set's mu_U and sigma_U carried from its temperature ``t_test`` to a run's ``t_run`` (K).

    A classical harmonic crystal of N atoms holds (3N - 3)/2 k_B T of potential energy on average with a
    spread k_B T sqrt((3N - 3)/2): the mean moves by (3N - 3)/2 k_B (T - T0) and the spread scales with T/T0.
    So a frame of a hotter run is judged against frames of its own temperature, not rejected for being hot
    (docs/source/science.rst, rare events). Equal temperatures give the statistics unchanged.
    """
    from ase.units import kB

    if not (t_test > 0 and t_run > 0):
        raise ValueError(f'temperatures must be positive, not {t_test} and {t_run} K')
    if n_atoms < 2:
        raise ValueError(f'a crystal of {n_atoms} atom(s) has no vibrational degrees of freedom')
    shift = 0.5 * (3 * n_atoms - 3) * kB * (t_run - t_test)
    return float(mean + shift), float(std * t_run / t_test)


def uncertainty_statistics_at(mean: float, std: float, t_test: float, t_run: float, exponent: float):
    """The test set's mean and std of an uncertainty carried from ``t_test`` to a run's ``t_run`` (K): both times
    ``(t_run / t_test) ** exponent``. With ``exponent`` 1/2 the ensemble's disagreement grows like the thermal
    displacements (sqrt T), as a linear extrapolation error would (measured on CuI: UCE_F^max of the crystal at
    900 K about twice that at 300 K, docs/source/rare_events.rst); 0 leaves them as they are."""
    if not (t_test > 0 and t_run > 0):
        raise ValueError(f'temperatures must be positive, not {t_test} and {t_run} K')
    if not 0 <= exponent <= 2:
        raise ValueError(f'the temperature exponent of the uncertainty must lie in [0, 2], not {exponent}')
    ratio = (t_run / t_test) ** exponent
    return float(mean * ratio), float(std * ratio)


@dataclass(frozen=True)
class PerRunProbability:
    """A probability of pooled frames, each frame against the probability (a callable) of its own run."""

    per_run: tuple
    run_index: np.ndarray

    def __call__(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        run_index = np.asarray(self.run_index)
        if run_index.shape != values.shape:
            raise ValueError(f'{len(run_index)} run indices for {len(values)} values')
        out = np.empty_like(values)
        for r, probability in enumerate(self.per_run):
            mine = run_index == r
            out[mine] = probability(values[mine])
        return out


@dataclass(frozen=True)
class UniformProbability:
    """The random baseline: the same probability ``p`` for every frame with a finite uncertainty."""

    p: float = 1.0

    def __post_init__(self):
        if not 0 < self.p <= 1:
            raise ValueError(f'the uniform probability must lie in (0, 1], not {self.p}')

    def __call__(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return np.where(np.isfinite(values), self.p, np.nan)
