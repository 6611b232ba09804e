"""Calcfunctions that judge an AL iteration: the uncertainty's calibration and whether to stop."""

from __future__ import annotations

import math

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.training_set import TrainingSet

#: Parameters of the stopping rule (:class:`~aiida_anharmal.core.convergence.MaeAndSelection`).
CONVERGENCE_DEFAULTS = {'tolerance': 0.002, 'patience': 1}


def check_convergence_parameters(parameters: dict) -> dict:
    unknown = sorted(set(parameters) - set(CONVERGENCE_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown convergence parameter(s) {unknown}; known: {sorted(CONVERGENCE_DEFAULTS)}')
    p = {**CONVERGENCE_DEFAULTS, **parameters}
    if not isinstance(p['tolerance'], (int, float)) or not p['tolerance'] > 0:
        raise ValueError(f'`tolerance` (eV/A) must be positive, not {p["tolerance"]!r}')
    if not isinstance(p['patience'], int) or p['patience'] < 0:
        raise ValueError(f'`patience` must be a non-negative integer, not {p["patience"]!r}')
    return p


@calcfunction
def calibrate(labelled: TrainingSet, **runs):
    """Calibration of UCE_F against the true force error on the frames just labelled.

    ``runs``: ``trajectory_<run>`` (TrajectoryData with the ensemble-mean ``forces`` the MD
    predicted) and ``frames_<run>`` (per-frame arrays with ``uce_force_max`` and, if recorded,
    ``uce_forces``) of the runs named in the labelled frames' origins (``run``, ``frame``).
    Output Dict: frame-level and atom-level Spearman/Pearson correlation and mean error/UCE ratio,
    and per labelled frame the max force error and UCE_F^max (eV/A).
    """
    from ..core.calibration import calibration

    frames = labelled.frames
    predicted, true, uce_max, uce_atoms = [], [], [], []
    for k, origin in enumerate(frames.origins):
        run, frame = origin.get('run'), origin.get('frame')
        if f'trajectory_{run}' not in runs or f'frames_{run}' not in runs:
            raise ValueError(f'labelled frame {k} comes from run {run!r}, whose outputs were not given')
        trajectory, arrays = runs[f'trajectory_{run}'], runs[f'frames_{run}']
        predicted.append(trajectory.get_array('forces')[frame])
        true.append(frames.forces[frames.atom_slice(k)])
        uce_max.append(arrays.get_array('uce_force_max')[frame])
        if 'uce_forces' in arrays.get_arraynames():
            uce_atoms.append(arrays.get_array('uce_forces')[frame])
    per_atom = np.array(uce_atoms) if len(uce_atoms) == len(predicted) else None
    result = calibration(np.array(predicted), np.array(true), np.array(uce_max), per_atom)
    return orm.Dict(_finite_or_none(result))


def _finite_or_none(value):
    """JSON has no NaN: undefined correlations (too few frames) are stored as None."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_row(
    iteration: int, statistics: orm.Dict, selection: orm.Dict, training_frames: int, calibration: orm.Dict | None
) -> dict:
    """One row of the per-iteration table, from that iteration's nodes."""
    stats = statistics.get_dict()
    row = {
        'iteration': iteration,
        'training_frames': training_frames,
        'test_forces_mae': stats['errors'].get('forces_mae'),
        'test_energy_mae_per_atom': stats['errors'].get('energy_mae_per_atom'),
        'uce_force_max_mean': stats['uce_force_max']['mean'],
        'uce_force_max_std': stats['uce_force_max']['std'],
        'uce_energy_mean': stats['uce_energy']['mean'],
        'candidates': selection['n_candidates'],
        'accepted': selection['accepted_before_thinning'],
        'selected': len(selection['frames']),
    }
    if calibration is not None:
        row['labelled'] = len(calibration['force_max_error'])
        row['calibration_spearman'] = calibration['frames']['spearman']
        row['error_over_uncertainty'] = calibration['frames']['error_over_uncertainty']
    return row


@calcfunction
def check_convergence(parameters: orm.Dict, max_iterations: orm.Int, **iterations):
    """Decide whether the AL loop stops, and why; and the per-iteration summary table.

    ``iterations``: for each finished iteration NN, ``statistics_NN`` (test-set statistics of its
    ensemble), ``selection_NN``, ``training_set_NN`` (the set its ensemble was trained on) and,
    if frames were labelled, ``calibration_NN``. Outputs ``decision`` (``stop``, ``converged``,
    ``reason``: converged | iteration_cap | continue, ``message``) and ``summary`` (``rows``).
    """
    from ..core.convergence import IterationRecord, MaeAndSelection

    p = check_convergence_parameters(parameters.get_dict())
    numbers = sorted({int(key.rsplit('_', 1)[1]) for key in iterations})
    rows = []
    for n in numbers:
        missing = [
            f'{name}_{n:02d}'
            for name in ('statistics', 'selection', 'training_set')
            if f'{name}_{n:02d}' not in iterations
        ]
        if missing:
            raise ValueError(f'iteration {n} lacks {missing}')
        rows.append(
            summary_row(
                n,
                iterations[f'statistics_{n:02d}'],
                iterations[f'selection_{n:02d}'],
                len(iterations[f'training_set_{n:02d}']),
                iterations.get(f'calibration_{n:02d}'),
            )
        )
    rule = MaeAndSelection(max_iterations=max_iterations.value, tolerance=p['tolerance'], patience=p['patience'])
    history = [
        IterationRecord(
            r['iteration'], r['test_forces_mae'] if r['test_forces_mae'] is not None else math.nan, r['selected']
        )
        for r in rows
    ]
    decision = rule(history)
    return {
        'decision': orm.Dict({**decision.as_dict(), 'iteration': numbers[-1], **p}),
        'summary': orm.Dict({'rows': rows}),
    }
