"""Soft acquisition of exploration frames (Kang et al., Eqs. 3-4); pure numpy, no AiiDA import.

For each frame ``k`` with uncertainty ``UCE_k`` (of the chosen kind) and predicted potential
energy ``U_k``, against the test-set statistics ``mu``/``sigma`` of that uncertainty and of U::

    P(UCE_k) = 1/2 [1 + erf((UCE_k - mu_UCE - s sigma_UCE) / (g sigma_UCE sqrt(0.2)))]
    P(U_k)   = 1                                                    if U_k <= mu_U + sigma_U
             = exp((ln 0.2 / 0.8) (U_k - mu_U - sigma_U) / sigma_U)  otherwise
    P_k      = P(UCE_k) P(U_k);  frame k is accepted if rng.random() < P_k

P(UCE) is 1/2 where the uncertainty is s standard deviations above the test-set mean: frames the
ensemble does not know are drawn. P(U) is 0.2 at mu_U + 1.8 sigma_U: frames of unphysically high
energy are rejected. Unlike the reference code (docs/source/science.rst, section 2), the chosen kind of
uncertainty is the one used, and the energy reference is mu_U + sigma_U (not mu_U - 2 sigma_U,
which would invert the intent). Accepted frames are sorted by uncertainty (largest first),
thinned so that no two frames of the same run are closer than ``min_spacing`` frames, and cut
to ``n_max``. Same inputs and seed, same selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..registry import Registry, Strategy, check_number
from .probabilities import (
    EnergyProbability,
    PerRunProbability,
    UncertaintyProbability,
    UniformProbability,
    energy_statistics_at,
    uncertainty_statistics_at,
)

__all__ = [
    'ACQUISITIONS',
    'EnergyProbability',
    'PerRunProbability',
    'UncertaintyProbability',
    'UniformProbability',
    'energy_statistics_at',
    'select',
    'uncertainty_statistics_at',
]


@dataclass
class Selection:
    """Result of :func:`select`: accepted frame indices (best first) and the per-frame probabilities."""

    indices: np.ndarray  # into the pooled frames, sorted by uncertainty, descending
    probability: np.ndarray
    p_uncertainty: np.ndarray
    p_energy: np.ndarray
    drawn: np.ndarray  # the uniform numbers compared with P
    accepted_before_thinning: int
    accepted: np.ndarray  # every accepted frame, before sorting and thinning


def thin(order, runs, frame_numbers, min_spacing: int, n_max: int) -> list[int]:
    """Walk ``order`` (best first) and keep a frame unless a kept frame of the same run is closer than
    ``min_spacing`` frames; stop at ``n_max``. ``min_spacing`` 1 keeps every frame (the paper)."""
    kept: list[int] = []
    for k in order:
        if len(kept) >= n_max:
            break
        if min_spacing > 1 and any(
            runs[j] == runs[k] and abs(frame_numbers[j] - frame_numbers[k]) < min_spacing for j in kept
        ):
            continue
        kept.append(int(k))
    return kept


def select(
    uncertainty,
    energy,
    p_uncertainty: UncertaintyProbability,
    p_energy: EnergyProbability,
    seed: int,
    n_max: int = 30,
    min_spacing: int = 1,
    runs=None,
    frame_numbers=None,
    order: str = 'uncertainty',
) -> Selection:
    """Draw frames with probability P(UCE) P(U); sort by uncertainty, thin and cut to ``n_max``.

    :param order: ``uncertainty`` (largest first, the acquisition) or ``random`` (the order of a
        second seeded permutation: the random baseline keeps a uniform sample of ``n_max``).

    :param runs: run label (any hashable) of each frame, for the spacing rule (default: one run).
    :param frame_numbers: position of each frame within its run (default: 0, 1, 2, ...).
    NaN uncertainties or energies give P = 0 (such frames are never drawn).
    """
    uncertainty = np.asarray(uncertainty, dtype=float)
    energy = np.asarray(energy, dtype=float)
    if uncertainty.shape != energy.shape or uncertainty.ndim != 1:
        raise ValueError(f'uncertainty {uncertainty.shape} and energy {energy.shape} must be 1-d of the same length')
    if n_max < 1 or min_spacing < 1:
        raise ValueError(f'n_max and min_spacing must be at least 1, not {n_max} and {min_spacing}')
    n = len(uncertainty)
    runs = np.zeros(n, dtype=int) if runs is None else np.asarray(runs)
    frame_numbers = np.arange(n) if frame_numbers is None else np.asarray(frame_numbers, dtype=int)
    pu = np.nan_to_num(p_uncertainty(uncertainty), nan=0.0)
    pe = np.nan_to_num(p_energy(energy), nan=0.0)
    probability = pu * pe
    drawn = np.random.default_rng(int(seed)).random(n)
    accepted = np.flatnonzero(drawn < probability)
    if order == 'uncertainty':
        ranked = accepted[np.argsort(-uncertainty[accepted], kind='stable')]
    elif order == 'random':
        ranked = np.random.default_rng([int(seed), 1]).permutation(accepted)
    else:
        raise ValueError(f'order must be `uncertainty` or `random`, not {order!r}')
    kept = thin(ranked, runs, frame_numbers, min_spacing, n_max)
    return Selection(np.array(kept, dtype=int), probability, pu, pe, drawn, len(accepted), accepted)


def run_tails(p_uncertainty, run_index, accepted, n_runs: int) -> list[dict]:
    """Per run: its frames, the mean of their P(UCE) and how many were accepted before thinning.

    What the stopping rule reads of an exploration (:mod:`aiida_anharmal.core.learning.convergence`): the mean
    P(UCE) of frames drawn like the test set is at most :func:`tail_bound` (Cantelli's inequality).
    """
    p_uncertainty, run_index = np.asarray(p_uncertainty, dtype=float), np.asarray(run_index)
    accepted_mask = np.zeros(len(p_uncertainty), dtype=bool)
    accepted_mask[np.asarray(accepted, dtype=int)] = True
    tails = []
    for r in range(n_runs):
        mine = run_index == r
        mean = float(np.mean(p_uncertainty[mine])) if mine.any() else None
        tails.append(
            {'frames': int(mine.sum()), 'p_uncertainty_mean': mean, 'accepted': int(accepted_mask[mine].sum())}
        )
    return tails


def tail_bound(s: float, g: float) -> float:
    """The largest mean P(UCE) of frames whose uncertainty has the test set's mean and std, any distribution.

    P(UCE) = Phi((x - mu - s sigma) / (g sigma sqrt(0.1))) is the probability that x - Z exceeds
    mu + s sigma, Z ~ N(0, 0.1 g^2 sigma^2) drawn apart; x - Z then has mean mu and variance
    sigma^2 (1 + g^2 / 10), and Cantelli's one-sided inequality bounds that probability by
    1 / (1 + s^2 / (1 + g^2 / 10)): 0.216 for s = 2, g = 1 (a normal spread gives 0.034).
    """
    return 1.0 / (1.0 + s * s / (1.0 + g * g / 10.0))


# ------------------------------------------------------------------------------------ the kinds
#: Parameters of every acquisition besides its kind's own: how many frames at most, how far apart.
SELECTION_DEFAULTS = {'n_max': 30, 'min_spacing': 1, 'energy_reference': 'temperature', 'uncertainty_exponent': 0.0}
#: What P(U) compares a frame's energy with: the test set's statistics carried to the frame's run temperature
#: (:func:`energy_statistics_at`), or the test set's as they are (frames of every temperature alike).
ENERGY_REFERENCES = ('temperature', 'test_set')
DEFAULT_KIND = 'force_max'


class AcquisitionKind(Strategy):
    """One kind of acquisition: which per-frame uncertainty it reads and how it turns it into P.

    ``uncertainty`` names the per-frame array (of the exploration frames and of the test-set
    statistics); ``label`` and ``scale`` say how plots show it; ``needs_harmonic``: the array
    exists only with a harmonic reference. ``s`` and ``g`` (Kang et al., Eq. 3) are parameters of
    every kind, so that selections of different kinds record the same fields.
    """

    uncertainty: ClassVar[str] = ''
    scale: ClassVar[float] = 1000.0
    #: the unit of the scaled uncertainty (tables; '' for a pure number)
    unit: ClassVar[str] = 'meV/Å'
    needs_harmonic: ClassVar[bool] = False
    order: ClassVar[str] = 'uncertainty'
    #: the frames come from where stop triggers ended runs, not from a draw (:func:`select_triggered`)
    from_stops: ClassVar[bool] = False
    #: why a frame of this kind was chosen (recorded per frame; the trigger kind says it per frame)
    reason: ClassVar[str] = 'drawn'
    defaults: ClassVar[dict] = {'s': 2.0, 'g': 1.0}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        for key in ('s', 'g'):
            check_number(key, p[key])
        return p

    @classmethod
    def probabilities(cls, statistics: dict, p: dict) -> tuple:
        """``(P(UCE), P(U))`` strategies against the test-set ``statistics``."""
        stats = statistics[cls.uncertainty]
        return (
            UncertaintyProbability(stats['mean'], stats['std'], p['s'], p['g']),
            EnergyProbability(statistics['energy']['mean'], statistics['energy']['std']),
        )

    @classmethod
    def threshold(cls, statistics: dict, p: dict) -> float | None:
        """Where P(UCE) = 1/2: mu + s sigma of the test set (``None`` where the kind has none)."""
        stats = statistics.get(cls.uncertainty)
        return None if not stats else stats['mean'] + p['s'] * stats['std']


ACQUISITIONS: Registry[type[AcquisitionKind]] = Registry('acquisition kind', group='anharmal.acquisitions')


class ForceMaxAcquisition(AcquisitionKind):
    """P(UCE) of the largest per-atom force uncertainty UCE_F^max (Kang et al.'s default)."""

    key = 'force_max'
    uncertainty = 'uce_force_max'
    label = 'UCE_F^max (meV/Å)'


class EnergyAcquisition(AcquisitionKind):
    """P(UCE) of the energy uncertainty UCE_U."""

    key = 'energy'
    uncertainty = 'uce_energy'
    label = 'UCE_U (meV)'
    unit = 'meV'


class AnharmonicityAcquisition(AcquisitionKind):
    """P(UCE) of the uncertainty of the degree of anharmonicity UCE_A (needs a harmonic reference)."""

    key = 'anharmonicity'
    uncertainty = 'uce_anharmonicity'
    label = 'UCE_A'
    scale = 1.0
    unit = ''
    needs_harmonic = True


class RandomAcquisition(AcquisitionKind):
    """The baseline of Kang et al.: every frame alike, a random ``n_max`` of them (UCE_F^max is recorded)."""

    key = 'random'
    uncertainty = 'uce_force_max'
    label = 'UCE_F^max (meV/Å)'
    order = 'random'
    reason = 'random'

    @classmethod
    def probabilities(cls, statistics: dict, p: dict) -> tuple:
        return UniformProbability(), UniformProbability()

    @classmethod
    def threshold(cls, statistics: dict, p: dict) -> float | None:
        return None


class TriggerAcquisition(AcquisitionKind):
    """The frames where a stop trigger ended a run (hyperactive learning), and ``frames_before`` saved frames
    before each; no draw. Each chosen frame's reason is ``trigger`` or ``before_trigger``. P(UCE) of UCE_F^max
    is recorded as for ``force_max``, so the stopping rule reads these runs like any others (a run a trigger
    ended is never quiet)."""

    key = 'trigger'
    uncertainty = 'uce_force_max'
    label = 'UCE_F^max (meV/Å)'
    from_stops = True
    defaults: ClassVar[dict] = {'s': 2.0, 'g': 1.0, 'frames_before': 0}

    @classmethod
    def validate(cls, parameters: dict) -> dict:
        p = super().validate(parameters)
        check_number('frames_before', p['frames_before'], integer=True, minimum=0)
        return p


def select_triggered(run_index, frame_numbers, uncertainty, triggered, frames_before: int, n_max: int):
    """The last frame of every run in ``triggered`` (run indices) and up to ``frames_before`` frames before
    it; the trigger frames first, each group sorted by uncertainty (largest first), cut to ``n_max``.
    Returns ``(indices, reasons, n_chosen)`` (``n_chosen``: before the cut)."""
    run_index, frame_numbers = np.asarray(run_index), np.asarray(frame_numbers)
    uncertainty = np.asarray(uncertainty, dtype=float)
    chosen, reasons = [], {}
    for r in sorted(triggered):
        mine = np.flatnonzero(run_index == r)
        if not len(mine):
            continue
        mine = mine[np.argsort(frame_numbers[mine], kind='stable')]
        for position, k in enumerate(mine[::-1][: frames_before + 1]):
            chosen.append(int(k))
            reasons[int(k)] = 'trigger' if position == 0 else 'before_trigger'

    # the frames triggers fired at first (the cut to n_max never drops one for an earlier frame), each group
    # by uncertainty, largest first
    def rank(k):
        return (reasons[k] != 'trigger', -uncertainty[k] if np.isfinite(uncertainty[k]) else np.inf)

    kept = sorted(chosen, key=rank)[:n_max]
    return np.array(kept, dtype=int), [reasons[k] for k in kept], len(chosen)


def with_defaults(parameters: dict) -> dict:
    """``parameters`` over the defaults of their kind (unchecked; an unknown kind gets the common ones)."""
    kind = parameters.get('kind', DEFAULT_KIND)
    own = ACQUISITIONS.get(kind).defaults if kind in ACQUISITIONS else AcquisitionKind.defaults
    return {'kind': kind, **own, **SELECTION_DEFAULTS, **parameters}


def check_acquisition_parameters(parameters: dict) -> dict:
    """The parameters of an acquisition checked, with the defaults of its kind filled in."""
    kind = parameters.get('kind', DEFAULT_KIND)
    if kind not in ACQUISITIONS:
        raise ValueError(f'`kind` must be one of {ACQUISITIONS.keys()}, not {kind!r}')
    cls = ACQUISITIONS.get(kind)
    known = {'kind', *SELECTION_DEFAULTS, *cls.defaults}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f'unknown acquisition parameter(s) {unknown}; known: {sorted(known)}')
    p = with_defaults(parameters)
    p.update(cls.validate({k: p[k] for k in cls.defaults}))
    for key in ('n_max', 'min_spacing'):
        check_number(key, p[key], integer=True)
    if p['energy_reference'] not in ENERGY_REFERENCES:
        raise ValueError(f'`energy_reference` must be one of {ENERGY_REFERENCES}, not {p["energy_reference"]!r}')
    exponent = p['uncertainty_exponent']
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)) or not 0 <= exponent <= 2:
        raise ValueError(f'`uncertainty_exponent` must be a number in [0, 2], not {exponent!r}')
    return p
