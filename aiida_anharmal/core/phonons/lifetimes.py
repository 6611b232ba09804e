"""Fully anharmonic phonon lifetimes from the mode energies of an NVE trajectory; numpy + scipy, no AiiDA.

With the mode energies ``E_s(t)`` of :func:`aiida_anharmal.core.phonons.normal_modes.project` (frames
``dt`` apart, ``N`` frames, ``T_max = N dt``), following FHI-vibes (Knoop et al., PRB 107, 224304):

1. ``dE_s = E_s - <E_s>``; its autocorrelation with the estimator divided by ``N`` (not by the
   ``N - k`` pairs of lag ``k``), times a one-sided Hann window ``cos^2(pi k / (2 (N - 1)))``,
   normalised to 1 at lag 0 (:func:`energy_autocorrelation`);
2. ``y0 exp(-t / tau)`` fitted on the lags before the autocorrelation first falls below 0.5; no
   lifetime when that happens within 2 lags (the decay is not resolved) or never (it is longer
   than the run) (:func:`fit_lifetime`);
3. the finite-time correction ``1/tau = 1/tau_fit - 1/T_max``: dividing by ``N`` multiplies lag
   ``k`` by ``1 - k/N ~ exp(-t / T_max)``, which the fit would count as decay.

``tau`` is the decay time of the energy autocorrelation. A damped harmonic oscillator
``u'' = -omega0^2 u - Gamma u' + noise`` has it at ``1/Gamma``, while its *amplitude* (and the
displacement autocorrelation) decays with ``2/Gamma``: the two differ by a factor 2. phono3py's
``1 / (4 pi gamma)``, with ``gamma`` the half width in THz, is ``1/Gamma``: the energy time, the
same as here. :func:`dho_fit` fits the DHO's displacement autocorrelation to a mode's, for a
renormalised frequency and ``1/Gamma`` as a cross-check (a fit of the spectrum instead needs runs
much longer than the lifetime: the window's width adds to the line's).

The Ioffe-Regel limit is a lifetime of one period, ``tau_IR = 1/nu``: modes below it are not
quasi-particles (:func:`ioffe_regel_fraction`). Degenerate bands at a q-point have eigenvectors
defined only up to a rotation within their shell, so their single lifetimes depend on phonopy's
choice; :func:`degenerate_shells` groups them and :func:`lifetime_table` reports shell averages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

#: Below this the autocorrelation has decayed "once": the fit window ends at its first crossing.
FIT_THRESHOLD = 0.5

#: Quality flags of a lifetime.
OK, NO_FLUCTUATION, TOO_FAST, BEYOND_RUN, NO_MODE = 'ok', 'no_fluctuation', 'too_fast', 'beyond_run', 'no_mode'


def hann_window(n: int) -> np.ndarray:
    """One-sided Hann window of ``n`` lags: 1 at lag 0, 0 at lag ``n - 1``."""
    if n < 2:
        raise ValueError(f'a window needs at least 2 lags, not {n}')
    return np.cos(np.pi * np.arange(n) / (2 * (n - 1))) ** 2


#: A mode whose energy fluctuates by less than this fraction of its mean exchanges no energy within the run
#: (a thermalised mode's energy is exponentially distributed: std / mean = 1; velocity Verlet on a harmonic
#: crystal gives ~(omega dt)^2 / 8, 1e-3 at 7 THz and 2 fs).
MIN_RELATIVE_FLUCTUATION = 0.01


def energy_autocorrelation(energies, min_relative_fluctuation: float = MIN_RELATIVE_FLUCTUATION) -> np.ndarray:
    """Normalised autocorrelation of the fluctuations of ``energies`` (frames, ...) along the frames.

    Estimator divided by the number of frames, one-sided Hann window, 1 at lag 0. Columns whose
    energy fluctuates by less than ``min_relative_fluctuation`` of its mean (a harmonic mode: its
    energy is a constant of motion) are NaN.
    """
    e = np.asarray(energies, dtype=float)
    n = e.shape[0]
    de = e - e.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n - 1)))  # zero padding: a linear, not circular, correlation
    spectrum = np.fft.rfft(de, n=size, axis=0)
    acf = np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=0)[:n] / n
    acf *= hann_window(n).reshape((n,) + (1,) * (e.ndim - 1))
    quiet = ~(np.sqrt(acf[0]) >= min_relative_fluctuation * np.abs(e.mean(axis=0)))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(quiet, np.nan, acf / np.where(quiet, 1.0, acf[0]))


@dataclass(frozen=True)
class Lifetime:
    """One mode's fit: ``tau`` (ps, finite-time corrected; NaN or inf where not resolved), the fitted
    ``tau_fit`` and ``y0``, the fit window ``[0, window)`` in lags, and a flag (``ok`` or why not)."""

    tau: float
    tau_fit: float
    y0: float
    window: int
    flag: str


def _exponential(t, y0, tau):
    return y0 * np.exp(-t / tau)


def fit_lifetime(acf, dt: float) -> Lifetime:
    """Fit ``y0 exp(-t/tau)`` to a normalised autocorrelation (lags ``dt`` ps apart), corrected for the run length."""
    acf = np.asarray(acf, dtype=float)
    if not np.all(np.isfinite(acf)):
        return Lifetime(np.inf, np.inf, np.nan, 0, NO_FLUCTUATION)
    below = np.flatnonzero(acf < FIT_THRESHOLD)
    if below.size == 0:
        return Lifetime(np.inf, np.inf, np.nan, len(acf), BEYOND_RUN)
    window = int(below[0])
    if window <= 2:
        return Lifetime(np.nan, np.nan, np.nan, window, TOO_FAST)
    t = dt * np.arange(window)
    guess = dt * window / np.log(2.0)
    (y0, tau_fit), _ = curve_fit(_exponential, t, acf[:window], p0=(1.0, guess), maxfev=10_000)
    t_max = dt * len(acf)
    rate = 1.0 / tau_fit - 1.0 / t_max
    if not rate > 0:
        return Lifetime(np.inf, float(tau_fit), float(y0), window, BEYOND_RUN)
    return Lifetime(float(1.0 / rate), float(tau_fit), float(y0), window, OK)


def degenerate_shells(frequencies, tolerance: float = 1e-3) -> np.ndarray:
    """Shell label per band (nq, nb): bands of one q-point within ``tolerance`` THz of each other share one."""
    frequencies = np.asarray(frequencies, dtype=float)
    labels = np.empty(frequencies.shape, dtype=int)
    next_label = 0
    for iq, row in enumerate(frequencies):
        order = np.argsort(row)
        for rank, band in enumerate(order):
            if rank == 0 or row[band] - row[order[rank - 1]] > tolerance:
                next_label += 1
            labels[iq, band] = next_label - 1
    return labels


def ioffe_regel_fraction(frequencies, tau, weights=None) -> float:
    """Fraction of the modes with a resolved or longer lifetime whose ``tau`` (ps) is below one period ``1/nu`` (THz).

    Modes flagged too fast to resolve (NaN ``tau``) count as below: their decay is shorter than two lags.
    ``weights``: the multiplicity of each mode (q-points of a mesh reduced by symmetry); default 1.
    """
    nu, tau = np.asarray(frequencies, dtype=float).ravel(), np.asarray(tau, dtype=float).ravel()
    weights = np.ones_like(nu) if weights is None else np.asarray(weights, dtype=float).ravel()
    keep = nu > 0
    below = np.where(np.isnan(tau[keep]), True, tau[keep] < 1.0 / nu[keep])
    return float(np.sum(weights[keep] * below) / np.sum(weights[keep])) if below.size else float('nan')


def weighted_median(values, weights=None) -> float:
    """The median of ``values`` with ``weights`` (multiplicities; default 1): the value with half the weight at or
    below it, the mean of the two values where half the weight ends exactly between them (numpy's median for unit
    weights)."""
    values = np.asarray(values, dtype=float).ravel()
    if weights is None:
        return float(np.median(values))
    order = np.argsort(values)
    ordered = values[order]
    cumulative = np.cumsum(np.asarray(weights, dtype=float).ravel()[order])
    half = cumulative[-1] / 2
    k = int(np.searchsorted(cumulative, half))
    if k + 1 < len(ordered) and np.isclose(cumulative[k], half):
        return float((ordered[k] + ordered[k + 1]) / 2)
    return float(ordered[k])


def mode_summary(frequency, tau, flag, weights=None) -> dict:
    """Modes per flag, the fraction below the Ioffe-Regel limit, median lifetimes overall and per 1-THz band (ps).

    ``weights``: multiplicities (counts and medians are then over the modes of the whole mesh).
    """
    frequency, tau, flag = np.asarray(frequency, dtype=float), np.asarray(tau, dtype=float), np.asarray(flag)
    w = np.ones_like(frequency) if weights is None else np.asarray(weights, dtype=float)
    kept, ok = flag != NO_MODE, flag == OK
    bands = {}
    for low in range(int(np.floor(max(frequency.max(), 0))) + 1):
        band = ok & (frequency >= low) & (frequency < low + 1)
        if band.any():
            bands[f'{low}-{low + 1}'] = {
                'modes': round(float(w[band].sum())),
                'median_tau': weighted_median(tau[band], None if weights is None else w[band]),
            }
    return {
        'modes': round(float(w.sum())),
        'flags': {str(f): round(float(w[flag == f].sum())) for f in np.unique(flag)},
        'ioffe_regel_fraction': ioffe_regel_fraction(frequency[kept], tau[kept], w[kept]),
        'median_tau': weighted_median(tau[ok], None if weights is None else w[ok]) if ok.any() else None,
        'bands': bands,
    }


def dho_autocorrelation(t, omega0, gamma):
    """Normalised displacement autocorrelation of a damped harmonic oscillator (underdamped):
    ``exp(-gamma t / 2) (cos(w1 t) + gamma / (2 w1) sin(w1 t))``, ``w1 = sqrt(omega0^2 - gamma^2 / 4)``."""
    w1 = np.sqrt(np.maximum(omega0**2 - gamma**2 / 4, 1e-12))
    return np.exp(-gamma * t / 2) * (np.cos(w1 * t) + gamma / (2 * w1) * np.sin(w1 * t))


def dho_fit(u, dt: float, frequency: float, tau_guess: float) -> tuple[float, float]:
    """Renormalised frequency (THz) and energy lifetime ``1/Gamma`` (ps) from a DHO fit to a mode's displacements.

    ``u``: the mode's complex coordinate per frame (``dt`` ps apart). The real part of its normalised
    autocorrelation (estimator divided by ``N``, no window) is fitted with :func:`dho_autocorrelation`
    on the lags up to ``2 tau_guess`` (the energy lifetime, where the amplitude has decayed to 1/e),
    and corrected for the run length as the energy fit is: the estimator's ``1 - k/N`` adds
    ``2 / T_max`` to the fitted ``Gamma``.
    """
    u = np.asarray(u, dtype=complex)
    n = len(u)
    size = 1 << int(np.ceil(np.log2(2 * n - 1)))
    spectrum = np.fft.fft(u - u.mean(), n=size)
    acf = np.fft.ifft(spectrum * spectrum.conj())[:n].real / n
    lags = max(8, min(n, int(np.ceil(2 * tau_guess / dt))))
    t = dt * np.arange(lags)
    omega = 2 * np.pi * frequency
    (omega0, gamma), _ = curve_fit(
        dho_autocorrelation, t, acf[:lags] / acf[0], p0=(omega, 1 / tau_guess), maxfev=20_000
    )
    gamma = abs(gamma) - 2 / (n * dt)
    return float(abs(omega0) / (2 * np.pi)), float(1.0 / gamma) if gamma > 0 else float('inf')


def lifetime_table(modes, projection, dt: float, shell_tolerance: float = 1e-3, dho: bool = False) -> dict:
    """Per mode (q-major, then band): ``q``, ``band``, ``frequency`` (THz), ``tau``, ``tau_fit`` (ps), ``window``
    (lags), ``flag``, ``shell`` and ``tau_shell`` (ps: the mean over the shell's resolved members) and,
    with ``dho``, ``frequency_dho`` (THz) and ``tau_dho`` (ps). ``dt``: ps between frames.

    The three acoustic modes at Gamma and modes of imaginary frequency are flagged ``no_mode``.
    """
    nq, nb = modes.frequencies.shape
    frequencies = modes.frequencies.reshape(-1)
    skip = (modes.acoustic() | (modes.frequencies <= 0)).reshape(-1)
    acf = energy_autocorrelation(projection.energies.reshape(len(projection.energies), -1))
    fits = [
        Lifetime(np.nan, np.nan, np.nan, 0, NO_MODE) if skip[k] else fit_lifetime(acf[:, k], dt) for k in range(nq * nb)
    ]
    shells = degenerate_shells(modes.frequencies, shell_tolerance).reshape(-1)
    tau = np.array([f.tau for f in fits])
    resolved = np.array([f.flag == OK for f in fits])
    tau_shell = np.full(nq * nb, np.nan)
    for label in np.unique(shells):
        members = (shells == label) & resolved
        if members.any():
            tau_shell[shells == label] = tau[members].mean()
    table = {
        'q': np.repeat(modes.qpoints, nb, axis=0),
        'band': np.tile(np.arange(nb), nq),
        'frequency': frequencies,
        'tau': tau,
        'tau_fit': np.array([f.tau_fit for f in fits]),
        'window': np.array([f.window for f in fits]),
        'flag': np.array([f.flag for f in fits]),
        'shell': shells,
        'tau_shell': tau_shell,
    }
    if dho:
        u = projection.u.reshape(len(projection.u), -1)
        pairs = [
            dho_fit(u[:, k], dt, frequencies[k], tau[k]) if fits[k].flag == OK else (np.nan, np.nan)
            for k in range(nq * nb)
        ]
        table['frequency_dho'], table['tau_dho'] = (np.array(column) for column in zip(*pairs))
    return table
