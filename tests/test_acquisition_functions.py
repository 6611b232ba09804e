"""The acquire and selected_structures calcfunctions on stored exploration-like outputs."""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_anharmal.core.learning.acquisition import EnergyProbability, UncertaintyProbability, select
from aiida_anharmal.functions import acquire, selected_structures

STATS = {
    'uce_force_max': {'mean': 0.05, 'std': 0.01, 'n': 10},
    'uce_energy': {'mean': 0.01, 'std': 0.002, 'n': 10},
    'energy': {'mean': -3.0, 'std': 0.1, 'n': 10},
}


def run_outputs(n, seed):
    rng = np.random.default_rng(seed)
    frames = orm.ArrayData()
    frames.set_array('uce_force_max', rng.gamma(3.0, 0.025, n))
    frames.set_array('uce_energy', rng.gamma(3.0, 0.005, n))
    frames.set_array('energy', rng.normal(-3.0, 0.15, n))
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    positions = atoms.positions[None] + rng.normal(0, 0.05, (n, 4, 3))
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(
        symbols=atoms.get_chemical_symbols(),
        positions=positions,
        stepids=np.arange(n) * 10,
        cells=np.repeat(atoms.cell[:][None], n, axis=0),
        pbc=[True, True, True],
    )
    return frames.store(), trajectory.store()


def test_acquire_then_build_the_structures_to_label():
    (f1, t1), (f2, t2) = run_outputs(40, 1), run_outputs(40, 2)
    parameters = orm.Dict({'kind': 'force_max', 'n_max': 10, 'min_spacing': 2})
    result = acquire(orm.Dict(STATS), parameters, orm.Int(3), T300_seed0=f1, T600_seed0=f2)
    chosen = result['selection']['frames']
    assert 0 < len(chosen) <= 10
    # same numbers as the pure core on the pooled frames
    u = np.concatenate([f1.get_array('uce_force_max'), f2.get_array('uce_force_max')])
    e = np.concatenate([f1.get_array('energy'), f2.get_array('energy')])
    runs = np.repeat([0, 1], 40)
    core = select(
        u,
        e,
        UncertaintyProbability(0.05, 0.01),
        EnergyProbability(-3.0, 0.1),
        seed=3,
        n_max=10,
        min_spacing=2,
        runs=runs,
        frame_numbers=np.tile(np.arange(40), 2),
    )
    names = ['T300_seed0', 'T600_seed0']
    assert chosen == [[names[runs[k]], int(k % 40)] for k in core.indices]
    np.testing.assert_allclose(result['probabilities'].get_array('p'), core.probability)
    # again with the same inputs: the same selection
    again = acquire(orm.Dict(STATS), parameters, orm.Int(3), T300_seed0=f1, T600_seed0=f2)
    assert again['selection']['frames'] == chosen
    # per run, what the stopping rule reads: the mean P(UCE) of its frames, accepted, ended normally
    selection = result['selection']
    assert selection['threshold'] == pytest.approx(0.05 + 2 * 0.01)
    assert selection['tail_bound'] == pytest.approx(1 / (1 + 4 / 1.1))
    for r, tail in enumerate(selection['runs']):
        assert tail['run'] == names[r] and tail['frames'] == 40 and tail['ended_normally']
        assert tail['p_uncertainty_mean'] == pytest.approx(np.mean(core.p_uncertainty[runs == r]))
        assert tail['accepted'] == int(np.sum(np.isin(core.accepted, np.flatnonzero(runs == r))))
    assert sum(tail['accepted'] for tail in selection['runs']) == selection['accepted_before_thinning']
    guarded = acquire(
        orm.Dict(STATS),
        parameters,
        orm.Int(3),
        ended_normally=orm.Dict({'T600_seed0': False}),
        T300_seed0=f1,
        T600_seed0=f2,
    )
    assert [tail['ended_normally'] for tail in guarded['selection']['runs']] == [True, False]
    with pytest.raises(ValueError, match='names runs without frames'):
        acquire(orm.Dict(STATS), parameters, orm.Int(3), ended_normally=orm.Dict({'T900': False}), T300_seed0=f1)

    structures = selected_structures(result['selection'], T300_seed0=t1, T600_seed0=t2)
    assert len(structures) == len(chosen)
    first_run, first_frame = chosen[0]
    trajectory = {'T300_seed0': t1, 'T600_seed0': t2}[first_run]
    np.testing.assert_allclose(structures.frames.get_atoms(0).positions, trajectory.get_positions()[first_frame])
    origin = structures.origins[0]
    assert origin['run'] == first_run and origin['step'] == 10 * first_frame
    assert origin['trajectory_uuid'] == trajectory.uuid and origin['selection_uuid'] == result['selection'].uuid


def test_bad_acquisition_input():
    f1, _ = run_outputs(5, 1)
    with pytest.raises(ValueError, match='`kind` must be one of'):
        acquire(orm.Dict(STATS), orm.Dict({'kind': 'force'}), orm.Int(0), run=f1)
    with pytest.raises(ValueError, match='no `uce_anharmonicity`'):
        acquire(orm.Dict(STATS), orm.Dict({'kind': 'anharmonicity'}), orm.Int(0), run=f1)
    for bad, message in (
        ({'s': 0}, '`s` must be a positive'),
        ({'g': -1.0}, '`g` must be a positive'),
        ({'n_max': 0}, '`n_max` must be an integer'),
        ({'min_spacing': 1.5}, '`min_spacing`'),
        ({'typo': 1}, 'unknown acquisition parameter'),
    ):
        with pytest.raises(ValueError, match=message):
            acquire(orm.Dict(STATS), orm.Dict(bad), orm.Int(0), run=f1)


def test_random_baseline_through_the_same_calcfunction():
    (f1, t1) = run_outputs(60, 1)
    result = acquire(orm.Dict(STATS), orm.Dict({'kind': 'random', 'n_max': 8}), orm.Int(5), run=f1)
    chosen = result['selection']['frames']
    assert len(chosen) == 8 and result['selection']['kind'] == 'random'
    np.testing.assert_allclose(result['probabilities'].get_array('p'), 1.0)
    assert (
        acquire(orm.Dict(STATS), orm.Dict({'kind': 'random', 'n_max': 8}), orm.Int(5), run=f1)['selection']['frames']
        == chosen
    )
    structures = selected_structures(result['selection'], iteration=orm.Int(3), run=t1)
    assert all(o['iteration'] == 3 and o['selection_uuid'] == result['selection'].uuid for o in structures.origins)


def test_the_trigger_kind_takes_the_frames_where_triggers_fired():
    (f1, t1), (f2, t2), (f3, t3) = run_outputs(12, 1), run_outputs(9, 2), run_outputs(20, 3)
    runs = {'T300_seed0': f1, 'T300_seed1': f2, 'T300_seed2': f3}
    stops = {'T300_seed0': 'trigger_softmax', 'T300_seed1': 'atoms_too_close', 'T300_seed2': 'finished'}
    ended = {run: reason == 'finished' for run, reason in stops.items()}
    parameters = orm.Dict({'kind': 'trigger', 'frames_before': 2})
    result = acquire(
        orm.Dict(STATS), parameters, orm.Int(0), ended_normally=orm.Dict(ended), stop_reasons=orm.Dict(stops), **runs
    )
    selection = result['selection']
    # the last frame of the triggered run and the two before it; never the wreck a guard stopped at
    assert sorted(selection['frames']) == [['T300_seed0', 9], ['T300_seed0', 10], ['T300_seed0', 11]]
    reasons = dict(zip(map(tuple, selection['frames']), selection['reasons']))
    assert reasons == {
        ('T300_seed0', 11): 'trigger',
        ('T300_seed0', 10): 'before_trigger',
        ('T300_seed0', 9): 'before_trigger',
    }
    u = f1.get_array('uce_force_max')
    assert [u[k] for _, k in selection['frames']] == sorted(u[9:], reverse=True)  # largest uncertainty first
    assert np.isnan(result['probabilities'].get_array('drawn')).all()
    assert result['probabilities'].get_array('p').sum() == 3
    tails = {run['run']: run for run in selection['runs']}
    assert tails['T300_seed0']['accepted'] == 3 and not tails['T300_seed0']['ended_normally']
    assert selection['threshold'] == pytest.approx(0.05 + 2 * 0.01)
    structures = selected_structures(selection, orm.Int(4), T300_seed0=t1, T300_seed1=t2, T300_seed2=t3)
    assert [o['reason'] for o in structures.origins] == selection['reasons']
    with pytest.raises(ValueError, match='needs the `stop_reasons`'):
        acquire(orm.Dict(STATS), parameters, orm.Int(0), **runs)
    soft = acquire(orm.Dict(STATS), orm.Dict({'kind': 'force_max'}), orm.Int(0), **runs)['selection']
    assert set(soft['reasons']) <= {'drawn'} and len(soft['reasons']) == len(soft['frames'])


def test_each_run_is_judged_at_its_own_temperature():
    """With the loop's temperatures: P(U) of the 600 K run against the test set's energy statistics carried to
    600 K, P(UCE) against its uncertainty statistics times sqrt(2) (uncertainty_exponent 1/2); the selection records
    both per run, and each run's temperature for the stopping rule."""
    from aiida_anharmal.core.learning.acquisition import PerRunProbability, energy_statistics_at

    (f1, _), (f2, _) = run_outputs(40, 1), run_outputs(40, 2)
    temperatures = orm.Dict({'test_set': 300.0, 'n_atoms': 4, 'runs': {'T300_seed0': 300.0, 'T600_seed0': 600.0}})
    parameters = orm.Dict({'kind': 'force_max', 'n_max': 10, 'uncertainty_exponent': 0.5})
    result = acquire(orm.Dict(STATS), parameters, orm.Int(3), temperatures=temperatures, T300_seed0=f1, T600_seed0=f2)
    selection = result['selection'].get_dict()
    hot_mu, hot_sigma = energy_statistics_at(-3.0, 0.1, 300.0, 600.0, 4)
    assert selection['energy_statistics']['T600_seed0'] == {
        'temperature': 600.0,
        'mu': pytest.approx(hot_mu),
        'sigma': pytest.approx(hot_sigma),
    }
    assert selection['energy_statistics']['T300_seed0'] == {'temperature': 300.0, 'mu': -3.0, 'sigma': 0.1}
    hot = selection['uncertainty_statistics']['T600_seed0']
    assert hot['mu'] == pytest.approx(0.05 * 2**0.5) and hot['sigma'] == pytest.approx(0.01 * 2**0.5)
    assert [run['temperature'] for run in selection['runs']] == [300.0, 600.0]
    u = np.concatenate([f1.get_array('uce_force_max'), f2.get_array('uce_force_max')])
    e = np.concatenate([f1.get_array('energy'), f2.get_array('energy')])
    runs = np.repeat([0, 1], 40)
    p_uce = PerRunProbability(
        (UncertaintyProbability(0.05, 0.01), UncertaintyProbability(hot['mu'], hot['sigma'])), runs
    )
    p_u = PerRunProbability((EnergyProbability(-3.0, 0.1), EnergyProbability(hot_mu, hot_sigma)), runs)
    core = select(u, e, p_uce, p_u, seed=3, n_max=10, runs=runs, frame_numbers=np.tile(np.arange(40), 2))
    np.testing.assert_allclose(result['probabilities'].get_array('p'), core.probability)
    with pytest.raises(ValueError, match='missing runs'):
        acquire(orm.Dict(STATS), parameters, orm.Int(3), temperatures=temperatures, T300_seed0=f1, T900_seed0=f2)
