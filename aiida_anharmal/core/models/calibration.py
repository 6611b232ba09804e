"""Is the ensemble's uncertainty a good predictor of its error? (no AiiDA import)

After each labelling the true error of the ensemble-mean forces on the frames just labelled is
known. We compare it with the uncertainty the ensemble assigned to those frames during the
exploration: per frame max_i |F_pred^i - F_true^i| against UCE_F^max, and per atom
|F_pred^i - F_true^i| against UCE_F^i. A useful uncertainty ranks frames like their errors
(Spearman rank correlation near 1); ``error / uncertainty`` near 1 means it is also calibrated in
size (an ensemble of few members typically underestimates: ratio > 1).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr


def force_errors(predicted, true) -> np.ndarray:
    """Per-atom norm of the force error, shape ``(frames, atoms)``."""
    predicted = np.asarray(predicted, dtype=float)
    true = np.asarray(true, dtype=float)
    if predicted.shape != true.shape or predicted.ndim != 3 or predicted.shape[-1] != 3:
        raise ValueError(f'predicted {predicted.shape} and true {true.shape} forces must both be (frames, atoms, 3)')
    return np.linalg.norm(predicted - true, axis=-1)


def correlation(uncertainty, error) -> dict:
    """Spearman and Pearson correlation and the mean ratio error/uncertainty (NaN with < 3 finite pairs)."""
    u = np.ravel(np.asarray(uncertainty, dtype=float))
    e = np.ravel(np.asarray(error, dtype=float))
    if u.shape != e.shape:
        raise ValueError(f'{u.shape} uncertainties but {e.shape} errors')
    ok = np.isfinite(u) & np.isfinite(e)
    u, e = u[ok], e[ok]
    out = {
        'n': len(u),
        'spearman': float('nan'),
        'pearson': float('nan'),
        'mean_uncertainty': float(u.mean()) if len(u) else float('nan'),
        'mean_error': float(e.mean()) if len(e) else float('nan'),
    }
    out['error_over_uncertainty'] = (
        out['mean_error'] / out['mean_uncertainty'] if len(u) and out['mean_uncertainty'] > 0 else float('nan')
    )
    if len(u) >= 3 and np.ptp(u) > 0 and np.ptp(e) > 0:
        out['spearman'] = float(spearmanr(u, e).statistic)
        out['pearson'] = float(pearsonr(u, e).statistic)
    return out


def calibration(predicted_forces, true_forces, uce_force_max, uce_forces=None) -> dict:
    """Frame-level (``frames``) and, with per-atom uncertainties, atom-level (``atoms``) calibration."""
    errors = force_errors(predicted_forces, true_forces)
    uce_force_max = np.asarray(uce_force_max, dtype=float)
    if uce_force_max.shape != (len(errors),):
        raise ValueError(f'{uce_force_max.shape} UCE_F^max values for {len(errors)} frames')
    out = {
        'frames': correlation(uce_force_max, errors.max(axis=1)),
        'force_max_error': errors.max(axis=1).tolist(),
        'uce_force_max': uce_force_max.tolist(),
    }
    if uce_forces is not None:
        out['atoms'] = correlation(uce_forces, errors)
    return out
