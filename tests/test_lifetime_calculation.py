"""``LifetimeCalculation``: lifetimes through the program equal the core's; bad trajectories are refused before any job."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node

from aiida_anharmal.calculations import LifetimeCalculation
from aiida_anharmal.core.phonons.lifetimes import lifetime_table
from aiida_anharmal.core.phonons.normal_modes import commensurate_modes, project
from aiida_anharmal.data.force_constants import ForceConstants

from .core.test_lifetimes import cu_phonon, synthetic_trajectory  # noqa: F401 (a fixture)

DT = 0.02  # ps between frames
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


def trajectory_node(modes, positions, velocities, cells=None):
    trajectory = orm.TrajectoryData()
    n = len(positions)
    trajectory.set_trajectory(
        symbols=['Cu'] * positions.shape[1],
        positions=positions,
        cells=np.repeat(modes.cell[None], n, axis=0) if cells is None else cells,
        times=1000 * DT * np.arange(n),
        velocities=velocities,
        pbc=[True, True, True],
    )
    return trajectory


@pytest.fixture
def synthetic(cu_phonon):  # noqa: F811
    modes = commensurate_modes(cu_phonon)
    tau = np.full(24, 0.6)  # ps
    positions, velocities = synthetic_trajectory(modes, tau, 20_000, DT, seed=3)
    return modes, positions, velocities


def test_the_calculation_gives_the_core_table(lifetimes_code, cu_phonon, synthetic):  # noqa: F811
    modes, positions, velocities = synthetic
    harmonic = ForceConstants.from_phonopy(cu_phonon)
    _, node = run_get_node(
        LifetimeCalculation,
        code=lifetimes_code,
        trajectory=trajectory_node(modes, positions, velocities),
        harmonic=harmonic,
        parameters=orm.Dict({'dho': True}),
        metadata={'options': OPTIONS},
    )
    assert node.is_finished_ok, node.exit_message
    # the core on the node's own phonopy.yaml (the program's input): degenerate bands then have the same basis
    same = commensurate_modes(harmonic.get_phonopy())
    table = lifetime_table(same, project(same, positions, velocities), DT, dho=True)
    out = node.outputs.modes
    for name in ('frequency', 'tau', 'tau_fit', 'window', 'tau_shell', 'tau_dho'):
        np.testing.assert_allclose(out.get_array(name), table[name], rtol=1e-9, atol=1e-9, err_msg=name)
    assert list(out.get_array('flag')) == list(table['flag'])
    summary = node.outputs.summary.get_dict()
    assert summary['flags'] == {'no_mode': 3, 'ok': 21} and summary['frames'] == 20_000
    assert summary['t_max'] == pytest.approx(400.0) and summary['frame_interval'] == pytest.approx(DT)
    assert summary['median_tau'] == pytest.approx(0.6, rel=0.1)  # 670 lifetimes long: a few % per mode
    assert summary['ioffe_regel_fraction'] == 0.0  # 0.6 ps against periods of 0.14-0.29 ps


def test_bad_trajectories_are_refused_before_any_job(lifetimes_code, cu_phonon, synthetic):  # noqa: F811
    modes, positions, velocities = synthetic
    harmonic = ForceConstants.from_phonopy(cu_phonon)

    def refused(match, trajectory, **extra):
        with pytest.raises(ValueError, match=match):
            run_get_node(
                LifetimeCalculation,
                code=lifetimes_code,
                trajectory=trajectory,
                harmonic=harmonic,
                metadata={'options': OPTIONS},
                **extra,
            )

    no_velocities = orm.TrajectoryData()
    no_velocities.set_trajectory(
        symbols=['Cu'] * 8,
        positions=positions[:200],
        cells=np.repeat(modes.cell[None], 200, axis=0),
        times=np.arange(200.0),
    )
    refused('no velocities', no_velocities)
    refused('too few', trajectory_node(modes, positions[:50], velocities[:50]))
    refused('7 atoms', trajectory_node(modes, positions[:200, :7], velocities[:200, :7]))
    cells = np.repeat(modes.cell[None], 200, axis=0)
    cells[100:] *= 1.01
    refused('fixed cell', trajectory_node(modes, positions[:200], velocities[:200], cells))
    refused('unknown', trajectory_node(modes, positions[:200], velocities[:200]), parameters=orm.Dict({'window': 3}))
    swapped = positions[:200, [1, 0, *range(2, 8)]]
    refused('another order', trajectory_node(modes, swapped, velocities[:200]))
    # a thermostatted run given as NVE: its creator says `langevin`
    thermostatted = trajectory_node(modes, positions[:200], velocities[:200])
    md = orm.CalcJobNode(process_type='aiida.calculations:anharmal.md')
    md.computer = lifetimes_code.computer
    md.base.links.add_incoming(orm.Dict({'dynamics': 'langevin'}).store(), LinkType.INPUT_CALC, 'parameters')
    md.store()
    thermostatted.base.links.add_incoming(md, LinkType.CREATE, 'trajectory')
    thermostatted.store()
    refused('NVE run', thermostatted)
