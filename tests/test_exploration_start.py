"""Where the next exploration starts: the last frame of the first run that ended normally, never a guard-tripped one."""

import numpy as np
from aiida import orm
from aiida.common.links import LinkType
from ase.build import bulk

from aiida_anharmal.core.learning.exploration_start import ContinueRun, RunEnd
from aiida_anharmal.workflows.md import ended_normally, run_ends, run_order


def md_run(computer, temperature, seed, exit_status, shift):
    """A stored MDCalculation node (as the engine leaves it) with its trajectory; its last frame is shifted."""
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    node = orm.CalcJobNode(computer=computer, process_type='aiida.calculations:anharmal.md')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    parameters = orm.Dict({'temperature': temperature, 'seed': seed}).store()
    node.base.links.add_incoming(parameters, link_type=LinkType.INPUT_CALC, link_label='parameters')
    node.set_process_state('finished')
    node.set_exit_status(exit_status)
    node.store()
    positions = np.stack([atoms.positions, atoms.positions + shift])
    trajectory = orm.TrajectoryData()
    trajectory.set_trajectory(
        symbols=atoms.get_chemical_symbols(), positions=positions, cells=np.stack([atoms.cell[:]] * 2)
    )
    trajectory.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='trajectory')
    return trajectory.store()


def frames_with_a(values):
    arrays = orm.ArrayData()
    arrays.set_array('anharmonicity', np.asarray(values, dtype=float))
    return arrays.store()


def test_a_guard_tripped_first_run_is_skipped(aiida_localhost):
    tripped = md_run(aiida_localhost, 300.0, 0, 320, 0.5)  # the first run: stopped by the distance guard
    finished = md_run(aiida_localhost, 300.0, 1, 0, 0.1)
    hotter = md_run(aiida_localhost, 1000.0, 0, 0, 0.2)
    assert not ended_normally(tripped) and ended_normally(finished)
    # runs sort by temperature and seed (the label T1000p0_seed0 would sort before T300p0_seed0)
    assert sorted([hotter, finished, tripped], key=run_order) == [tripped, finished, hotter]
    trajectories = {'T1000p0_seed0': hotter, 'T300p0_seed0': tripped, 'T300p0_seed1': finished}
    frames = {name: frames_with_a([0.3, 0.4]) for name in trajectories}
    ends = [RunEnd(**end) for end in run_ends(trajectories, frames)]
    start = ContinueRun().choose(ends, n_test=5, seed=0)
    assert start.source == 'run' and start.run == 'T300p0_seed1'
    # the chosen run's last frame becomes the start, through a calcfunction
    from aiida_anharmal.functions import frame_structure

    structure = frame_structure(trajectories[start.run], orm.Int(-1))
    assert np.allclose(structure.get_ase().positions, bulk('Cu', 'fcc', a=3.6, cubic=True).positions + 0.1)
    assert structure.creator.process_label == 'frame_structure'


def test_a_run_beyond_the_anharmonicity_cap_is_not_continued(aiida_localhost):
    broken = md_run(aiida_localhost, 300.0, 0, 0, 0.1)
    trajectories = {'T300p0_seed0': broken}
    ends = [RunEnd(**end) for end in run_ends(trajectories, {'T300p0_seed0': frames_with_a([0.4, 2.7])})]
    start = ContinueRun(max_anharmonicity=1.5).choose(ends, n_test=5, seed=0)
    assert start.source == 'structure' and 'no run ended normally with A <= 1.5' in start.why
