"""The acquisition as calcfunctions: which exploration frames to label, and the structures to label."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.learning.acquisition import (
    ACQUISITIONS,
    EnergyProbability,
    PerRunProbability,
    Selection,
    UncertaintyProbability,
    check_acquisition_parameters,
    energy_statistics_at,
    run_tails,
    select,
    select_triggered,
    tail_bound,
    uncertainty_statistics_at,
)
from ..core.md.stop_rules import TRIGGERS
from ..data.training_set import TrainingSet
from .datasets import trajectory_atoms

__all__ = ['acquire', 'check_acquisition_parameters', 'resolve_trigger', 'selected_structures']


def pooled_frames(frames: dict, runs: list[str], name: str) -> tuple[np.ndarray, ...]:
    """Run index, frame number, uncertainty ``name`` and energy of every frame of every run, pooled."""
    run_index, frame, uncertainty, energy = [], [], [], []
    for r, run in enumerate(runs):
        arrays = frames[run]
        if name not in arrays.get_arraynames():
            raise ValueError(f'the frames of run `{run}` have no `{name}`')
        u = arrays.get_array(name)
        run_index.append(np.full(len(u), r))
        frame.append(np.arange(len(u)))
        uncertainty.append(u)
        energy.append(arrays.get_array('energy'))
    return tuple(np.concatenate(part) for part in (run_index, frame, uncertainty, energy))


def probabilities_node(runs: list[str], pooled, result: Selection) -> orm.ArrayData:
    """Per pooled frame: run index, frame, uncertainty, energy and the probabilities of ``result``."""
    run_index, frame, uncertainty, energy = pooled
    probabilities = orm.ArrayData()
    for key, values in {
        'run_index': run_index,
        'frame': frame,
        'uncertainty': uncertainty,
        'energy': energy,
        'p': result.probability,
        'p_uncertainty': result.p_uncertainty,
        'p_energy': result.p_energy,
        'drawn': result.drawn,
    }.items():
        probabilities.set_array(key, np.asarray(values))
    probabilities.base.attributes.set('runs', runs)
    return probabilities


def triggered_selection(kind, p, runs, stops: dict, pooled, probabilities) -> tuple[Selection, list[str]]:
    """The selection of a kind that takes its frames from where stop triggers ended runs (no draw)."""
    run_index, frame, uncertainty, energy = pooled
    if not stops:
        raise ValueError(f'acquisition kind `{kind.key}` needs the `stop_reasons` of the runs')
    unknown = sorted(set(stops) - set(runs))
    if unknown:
        raise ValueError(f'`stop_reasons` names runs without frames: {unknown}')
    reasons = {rule.reason for rule in TRIGGERS}
    triggered = [r for r, run in enumerate(runs) if stops.get(run) in reasons]
    indices, why, n_chosen = select_triggered(run_index, frame, uncertainty, triggered, p['frames_before'], p['n_max'])
    pu = np.nan_to_num(probabilities[0](uncertainty), nan=0.0)
    pe = np.nan_to_num(probabilities[1](energy), nan=0.0)
    chosen = np.zeros(len(uncertainty))
    chosen[indices] = 1.0
    selection = Selection(indices, chosen, pu, pe, np.full(len(uncertainty), np.nan), n_chosen, indices)
    return selection, why


def _checked_temperatures(runs: list[str], temperatures: dict) -> None:
    missing = sorted(set(runs) - set(temperatures.get('runs', {})))
    if missing or 'test_set' not in temperatures or 'n_atoms' not in temperatures:
        raise ValueError(f'`temperatures` needs test_set, n_atoms and runs with every run; missing runs {missing}')


def run_energy_probability(p_energy, p: dict, runs: list[str], run_index, temperatures: dict):
    """P(U) of each run against the test set's energy statistics carried to the run's temperature (acquisition
    parameter ``energy_reference: temperature``), and per run the ``mu`` and ``sigma`` used; ``p_energy`` as it
    is (and no record) for ``test_set``, without ``temperatures``, or for a kind without P(U)."""
    if p['energy_reference'] != 'temperature' or not temperatures or not isinstance(p_energy, EnergyProbability):
        return p_energy, None
    _checked_temperatures(runs, temperatures)
    per_run, record = [], {}
    for run in runs:
        t_run = float(temperatures['runs'][run])
        mu, sigma = energy_statistics_at(
            p_energy.mu, p_energy.sigma, float(temperatures['test_set']), t_run, int(temperatures['n_atoms'])
        )
        per_run.append(EnergyProbability(mu, sigma))
        record[run] = {'temperature': t_run, 'mu': mu, 'sigma': sigma}
    return PerRunProbability(tuple(per_run), np.asarray(run_index)), record


def run_uncertainty_probability(p_uncertainty, p: dict, runs: list[str], run_index, temperatures: dict):
    """P(UCE) of each run against the test set's uncertainty statistics times ``(T / T0) ** uncertainty_exponent``
    (0, the default: every run against the test set as it is), and per run the ``mu`` and ``sigma`` used."""
    exponent = p['uncertainty_exponent']
    if not exponent or not temperatures or not isinstance(p_uncertainty, UncertaintyProbability):
        return p_uncertainty, None
    _checked_temperatures(runs, temperatures)
    per_run, record = [], {}
    for run in runs:
        t_run = float(temperatures['runs'][run])
        mu, sigma = uncertainty_statistics_at(
            p_uncertainty.mu, p_uncertainty.sigma, float(temperatures['test_set']), t_run, exponent
        )
        per_run.append(UncertaintyProbability(mu, sigma, p_uncertainty.s, p_uncertainty.g))
        record[run] = {'temperature': t_run, 'mu': mu, 'sigma': sigma, 'threshold': mu + p_uncertainty.s * sigma}
    return PerRunProbability(tuple(per_run), np.asarray(run_index)), record


def run_records(runs: list[str], run_index, result: Selection, ended: dict, temperatures: dict) -> list[dict]:
    """Per run what the stopping rule reads: frames, mean P(UCE), accepted, whether it ended normally, temperature."""
    unknown = sorted(set(ended) - set(runs))
    if unknown:
        raise ValueError(f'`ended_normally` names runs without frames: {unknown}')
    tails = run_tails(result.p_uncertainty, run_index, result.accepted, len(runs))
    return [
        {'run': run, **tail, 'ended_normally': bool(ended.get(run, True)), 'temperature': temperatures.get(run)}
        for run, tail in zip(runs, tails)
    ]


@calcfunction
def acquire(
    statistics: orm.Dict,
    parameters: orm.Dict,
    seed: orm.Int,
    ended_normally: orm.Dict | None = None,
    stop_reasons: orm.Dict | None = None,
    temperatures: orm.Dict | None = None,
    **frames,
):
    """Draw exploration frames with P(UCE) P(U) (Kang et al.) against the test-set ``statistics``.

    ``frames``: the per-frame ArrayData of each MD run (``frames.<run>`` of an exploration), with
    ``energy`` and the uncertainty of ``parameters['kind']``. Outputs ``selection`` (Dict:
    ``frames`` = ``[[run, frame], ...]`` best first, and the parameters) and ``probabilities``
    (ArrayData: per pooled frame ``run_index``, ``frame``, ``uncertainty``, ``energy``, ``p``,
    ``p_uncertainty``, ``p_energy``, ``drawn``; attribute ``runs``). Same inputs, same selection.
    The selection also says, per run (``runs``: ``run``, ``frames``, ``p_uncertainty_mean``, ``accepted``,
    ``ended_normally``), what the stopping rule reads: ``ended_normally`` (Dict run -> bool, default
    true) tells which runs a guard or stop trigger ended; ``threshold`` is mu + s sigma of the test set
    and ``tail_bound`` the largest mean P(UCE) of frames like the test set (``None`` for ``random``).
    ``stop_reasons`` (Dict run -> the MD state: ``finished`` or the reason of the stop rule that ended it)
    is what the ``trigger`` kind selects from: the frame each trigger fired at (and ``frames_before``
    before it), P = 1 for those and 0 for every other frame, no draw (``drawn`` is NaN). The selection's
    ``reasons`` say, per chosen frame, why: ``drawn``, ``random``, ``trigger`` or ``before_trigger``.
    ``temperatures`` (``test_set``: K, ``n_atoms``, ``runs``: run -> K): with ``energy_reference: temperature``
    (the default) each run's P(U) uses the test set's energy statistics carried to the run's temperature; the
    selection's ``energy_statistics`` records, per run, the temperature, mu and sigma used. With
    ``uncertainty_exponent`` > 0, each run's P(UCE) uses the test set's uncertainty statistics times
    ``(T / T0) ** uncertainty_exponent`` (``uncertainty_statistics``: per run mu, sigma, threshold).
    """
    p = check_acquisition_parameters(parameters.get_dict())
    kind = ACQUISITIONS.get(p['kind'])
    stats = statistics.get_dict()
    name = kind.uncertainty
    if name not in stats or stats[name].get('std') is None:
        raise ValueError(f'the test-set statistics have no `{name}` (kind `{p["kind"]}`)')
    runs = sorted(frames)
    if not runs:
        raise ValueError('no exploration frames given')
    pooled = pooled_frames(frames, runs, name)
    run_index, frame, uncertainty, energy = pooled
    p_uncertainty, p_energy = kind.probabilities(stats, p)
    given = temperatures.get_dict() if temperatures is not None else {}
    p_energy, energy_record = run_energy_probability(p_energy, p, runs, run_index, given)
    p_uncertainty, uncertainty_record = run_uncertainty_probability(p_uncertainty, p, runs, run_index, given)
    stops = stop_reasons.get_dict() if stop_reasons is not None else {}
    if kind.from_stops:
        result, reasons = triggered_selection(kind, p, runs, stops, pooled, (p_uncertainty, p_energy))
    else:
        order = {'n_max': p['n_max'], 'min_spacing': p['min_spacing'], 'order': kind.order}
        result = select(
            uncertainty, energy, p_uncertainty, p_energy, seed.value, runs=run_index, frame_numbers=frame, **order
        )
        reasons = [kind.reason] * len(result.indices)
    threshold = kind.threshold(stats, p)
    ended = ended_normally.get_dict() if ended_normally is not None else {}
    tails = run_records(runs, run_index, result, ended, given.get('runs', {}))
    probabilities = probabilities_node(runs, pooled, result)
    chosen = [[runs[run_index[k]], int(frame[k])] for k in result.indices]
    return {
        'selection': orm.Dict(
            {
                'frames': chosen,
                'reasons': reasons,
                'accepted_before_thinning': result.accepted_before_thinning,
                'n_candidates': len(uncertainty),
                'threshold': threshold,
                'runs': tails,
                'tail_bound': None if threshold is None else tail_bound(p['s'], p['g']),
                'energy_statistics': energy_record,
                'uncertainty_statistics': uncertainty_record,
                'seed': seed.value,
                **p,
            }
        ),
        'probabilities': probabilities,
    }


@calcfunction
def selected_structures(selection: orm.Dict, iteration: orm.Int | None = None, **trajectories):
    """The structures of the selected frames as an (unlabelled) TrainingSet, best first.

    ``trajectories``: the TrajectoryData of each run, named as in the selection. Every frame's
    origin records the run, the frame, the MD step, the trajectory's uuid, the selection's uuid
    and (given ``iteration``) the AL iteration, so "why is this structure in my training set"
    leads back to the selection and the exploration.
    """
    atoms_list, origins = [], []
    reasons = selection.get_dict().get('reasons') or [None] * len(selection['frames'])
    for (run, k), reason in zip(selection['frames'], reasons):
        trajectory = trajectories[run]
        atoms_list.extend(trajectory_atoms(trajectory, [k]))
        origins.append(
            {
                'kind': 'exploration',
                'run': run,
                'frame': int(k),
                'step': int(trajectory.get_stepids()[k]),
                'trajectory_uuid': trajectory.uuid,
                'selection_uuid': selection.uuid,
                **({'reason': reason} if reason else {}),
                **({'iteration': iteration.value} if iteration is not None else {}),
            }
        )
    if not atoms_list:
        raise ValueError('the selection is empty')
    return TrainingSet.from_ase(atoms_list, origins=origins)


@calcfunction
def resolve_trigger(trigger: orm.Dict, statistics: orm.Dict, test_temperature: orm.Float | None = None) -> orm.Dict:
    """The exploration's stop trigger with what it takes from the current test-set ``statistics`` (and the test
    set's temperature) filled in: the ``uncertainty`` trigger's ``threshold = mu + s sigma`` and, with an
    ``exponent``, its ``reference_temperature``; so the graph shows where a run's threshold came from."""
    settings = trigger.get_dict()
    kind = settings.pop('kind')
    temperature = None if test_temperature is None else test_temperature.value
    return orm.Dict({'kind': kind, **TRIGGERS.get(kind).resolve(settings, statistics.get_dict(), temperature)})
