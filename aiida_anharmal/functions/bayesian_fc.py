"""Dynamic training as calcfunctions: the Bayesian fit, the frame a trigger stopped at, the convergence decision."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.bayesian_fc import BayesianFCModel
from ..data.training_set import TrainingSet

#: Parameters of a fit and their defaults (``cutoffs``: A, orders 2, 3, ...; evidence maximisation's own).
FIT_DEFAULTS = {'cutoffs': None, 'max_iter': 300, 'tol': 1e-6}


def check_fit_parameters(parameters: dict, primitive=None, supercell=None) -> dict:
    """The fit parameters with defaults; ``ValueError`` for unknown keys, bad cut-offs (none, not positive,
    increasing with the order, too long for the supercell) or a supercell that is not one of the primitive cell."""
    from ..core.bayesian.model import check_cutoffs, check_supercell, max_cutoff
    from ..core.registry import check_number

    unknown = sorted(set(parameters) - set(FIT_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown fit parameter(s) {unknown}; known: {sorted(FIT_DEFAULTS)}')
    p = {**FIT_DEFAULTS, **parameters}
    if not isinstance(p['cutoffs'], (list, tuple)):
        # a ValueError as every other bad parameter: the validators report ValueErrors
        raise ValueError('`cutoffs` must be a list of cut-offs (A) of orders 2, 3, ... (n_max = len + 1)')  # noqa: TRY004
    check_number('max_iter', p['max_iter'], integer=True)
    check_number('tol', p['tol'])
    if supercell is not None:
        if primitive is not None:
            check_supercell(primitive, supercell)
        p['cutoffs'] = check_cutoffs(p['cutoffs'], max_cutoff(supercell))
    else:
        p['cutoffs'] = check_cutoffs(p['cutoffs'])
    return p


@calcfunction
def fit_bayesian_fc(
    training_set: TrainingSet, primitive: orm.StructureData, supercell: orm.StructureData, parameters: orm.Dict
) -> BayesianFCModel:
    """Bayesian ridge of the force-constant expansion on every frame of ``training_set`` (forces needed; each
    frame the ``supercell``'s atoms, in its order, in its cell), cluster space on ``primitive``."""
    from ..core.bayesian.model import BayesianForceConstantModel, check_frame

    ideal = supercell.get_ase()
    p = check_fit_parameters(parameters.get_dict(), primitive.get_ase(), ideal)
    frames = training_set.frames
    if not frames.has_forces.all():
        raise ValueError(f'{int((~frames.has_forces).sum())} frame(s) of the training set have no forces')
    model = BayesianForceConstantModel(primitive.get_ase(), p['cutoffs'], ideal)
    for index in range(len(frames)):
        atoms = frames.get_atoms(index)
        check_frame(ideal, atoms.numbers, atoms.cell[:], index)
        model.add(atoms.positions, atoms.get_forces())
    model.fit(max_iter=p['max_iter'], tol=p['tol'])
    return BayesianFCModel.from_model(model, training_set)


@calcfunction
def trigger_frame(trajectory: orm.TrajectoryData, frames: orm.ArrayData, iteration: orm.Int) -> TrainingSet:
    """The last frame of a run that the retrain trigger stopped (the frame to label), with its origin: the run's
    trajectory, its step and its eps_B under the fit that drove it."""
    from ..core.structures.frames import Frames
    from .datasets import trajectory_atoms

    last = trajectory.numsteps - 1
    atoms = trajectory_atoms(trajectory, [last])[0]
    origin = {
        'kind': 'dynamic_training',
        'refit': iteration.value,
        'trajectory': trajectory.uuid,
        'frame': last,
        'step': int(frames.get_array('step')[-1]),
        'eps_b': float(frames.get_array('trigger_score')[-1]),
        'reason': 'trigger_retrain',
    }
    if not np.isfinite(origin['eps_b']):
        raise ValueError('the last frame of the run has no eps_B: it was not stopped by the retrain trigger')
    return TrainingSet(frames=Frames.from_atoms([atoms], origins=[origin]))


@calcfunction
def evaluate_bayesian_fc(model: BayesianFCModel, test_set: TrainingSet) -> orm.Dict:
    """The fit on a labelled test set: force MAE and RMSE (eV/A), mean eps_B, and the bracket
    [beta^-1/2, sqrt(1/beta + mean eps_B^2)] with whether the RMSE lies in it
    (:func:`~aiida_anharmal.core.bayesian.convergence.force_errors`)."""
    from ..core.bayesian.convergence import force_errors

    frames = test_set.frames
    pairs = ((atoms.positions, atoms.get_forces()) for atoms in map(frames.get_atoms, range(len(frames))))
    return orm.Dict(force_errors(model.get_model(), pairs))


@calcfunction
def dynamic_decision(convergence: orm.Dict, max_refits: orm.Int, history: orm.Dict) -> orm.Dict:
    """The stop rule of :mod:`aiida_anharmal.core.bayesian.convergence` on the fits so far (``history``: ``fits``,
    one row per fit with ``step``, ``n_data``, ``noise``, ``mu_k``, ``eps_b``; ``step``, the MD step reached;
    ``finished``, whether the trajectory reached its end). Returns the decision and the history."""
    from ..core.bayesian.convergence import RefitRecord, make_dynamic_convergence

    h = history.get_dict()
    nan = float('nan')
    records = [
        RefitRecord(int(r['step']), int(r['n_data']), float(r['noise']), r.get('mu_k') or nan, r.get('eps_b') or nan)
        for r in h['fits']
    ]
    rule = make_dynamic_convergence(convergence.get_dict())
    decision = rule.decide(records, int(h['step']) - records[-1].step, bool(h['finished']), max_refits.value)
    return orm.Dict({**decision.as_dict(), 'rule': rule.key, **h})
