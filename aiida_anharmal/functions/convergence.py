"""Calcfunctions that judge an AL iteration: the uncertainty's calibration and whether to stop."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.training_set import TrainingSet
from ..jsonsafe import finite_or_none


@calcfunction
def calibrate(labelled: TrainingSet, **runs):
    """Calibration of UCE_F against the true force error on the frames just labelled.

    ``runs``: ``trajectory_<run>`` (TrajectoryData with the ensemble-mean ``forces`` the MD
    predicted) and ``frames_<run>`` (per-frame arrays with ``uce_force_max`` and, if recorded,
    ``uce_forces``) of the runs named in the labelled frames' origins (``run``, ``frame``).
    Output Dict: frame-level and atom-level Spearman/Pearson correlation and mean error/UCE ratio,
    and per labelled frame the max force error and UCE_F^max (eV/A).
    """
    from ..core.models.calibration import calibration

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
    return orm.Dict(finite_or_none(result))


def summary_row(iteration: int, nodes: dict) -> dict:
    """One row of the per-iteration table, from that iteration's nodes (the one place the table is built)."""
    stats = nodes['statistics'].get_dict()
    selection = nodes['selection']
    row = {
        'iteration': iteration,
        'training_frames': len(nodes['training_set']),
        'members': nodes['ensemble'].n_members if 'ensemble' in nodes else None,
        'test_forces_mae': stats['errors'].get('forces_mae'),
        'test_energy_mae_per_atom': stats['errors'].get('energy_mae_per_atom'),
        'uce_force_max_mean': stats['uce_force_max']['mean'],
        'uce_force_max_std': stats['uce_force_max']['std'],
        'uce_energy_mean': stats['uce_energy']['mean'],
        'test_error_over_uncertainty': stats['errors'].get('error_over_uncertainty'),
        'candidates': selection['n_candidates'],
        'accepted': selection['accepted_before_thinning'],
        'selected': len(selection['frames']),
    }
    if 'runs' in selection.get_dict():  # per run: frames, mean P(UCE), accepted, ended normally
        row.update(runs=selection['runs'], tail_bound=selection['tail_bound'], threshold=selection['threshold'])
    neb_selection = nodes.get('neb_selection')
    if neb_selection is not None:  # neb.acquire: the path images added to the training set
        row['neb_images'] = len(neb_selection['added'])
    calibration = nodes.get('calibration')
    if calibration is not None:
        row['labelled'] = len(calibration['force_max_error'])
        row['calibration_spearman'] = calibration['frames']['spearman']
        row['error_over_uncertainty'] = calibration['frames']['error_over_uncertainty']
    return row


RECORDS = ('statistics', 'selection', 'training_set')


@calcfunction
def check_convergence(parameters: orm.Dict, max_iterations: orm.Int, **iterations):
    """Decide whether the AL loop stops, and why; and the per-iteration summary table.

    ``iterations``: for each finished iteration NN, ``statistics_NN`` (test-set statistics of its
    ensemble), ``selection_NN``, ``training_set_NN`` (the set its ensemble was trained on),
    ``ensemble_NN`` and, if frames were labelled, ``calibration_NN``. ``parameters``: ``rule``
    (a key of :data:`~aiida_anharmal.core.learning.convergence.CONVERGENCE_RULES`) and its parameters.
    Outputs ``decision`` (``stop``, ``converged``, ``reason``: converged | iteration_cap |
    continue, ``message``) and ``summary`` (``rows``: one per iteration, with the decision the
    rule takes on the history up to that iteration).
    """
    from ..core.learning.convergence import check_convergence_parameters, history_from_rows, make_rule

    p = check_convergence_parameters(parameters.get_dict())
    by_iteration: dict[int, dict] = {}
    for key, node in iterations.items():
        name, number = key.rsplit('_', 1)
        by_iteration.setdefault(int(number), {})[name] = node
    numbers = sorted(by_iteration)
    rows = []
    for n in numbers:
        nodes = by_iteration[n]
        missing = [f'{name}_{n:02d}' for name in RECORDS if name not in nodes]
        if missing:
            raise ValueError(f'iteration {n} lacks {missing}')
        rows.append(summary_row(n, nodes))
    rule = make_rule(p, max_iterations.value)
    ensembles = [
        by_iteration[r['iteration']]['ensemble'].uuid if 'ensemble' in by_iteration[r['iteration']] else None
        for r in rows
    ]
    history = history_from_rows(rows, ensembles)
    for k, row in enumerate(rows):
        row['decision'] = rule(history[: k + 1]).reason
    decision = rule(history)
    return {
        'decision': orm.Dict({**decision.as_dict(), 'iteration': numbers[-1], **p}),
        'summary': orm.Dict({'rows': rows}),
    }
