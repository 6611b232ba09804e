"""``LifetimesWorkChain`` through the daemon: EMT Cu equilibrated (NVT), run NVE, every mode's lifetime."""

import numpy as np
import pytest
from aiida import orm

from aiida_anharmal.core.phonons.normal_modes import ENERGY_UNIT
from aiida_anharmal.data.force_constants import ForceConstants
from aiida_anharmal.workflows.lifetimes import LifetimesWorkChain

from .core.test_lifetimes import cu_phonon  # noqa: F401 (a fixture)


@pytest.fixture
def harmonic(cu_phonon):  # noqa: F811
    return ForceConstants.from_phonopy(cu_phonon).store()


def builder_for(md_code, lifetimes_code, harmonic, **overrides):
    return LifetimesWorkChain.get_builder_from_protocol(
        {'md': md_code, 'lifetimes': lifetimes_code}, harmonic, engine='emt', protocol='fast', overrides=overrides
    )


@pytest.mark.slow
def test_emt_cu_lifetimes_from_nve_after_nvt(submit_and_await, md_code, lifetimes_code, harmonic):
    builder = builder_for(md_code, lifetimes_code, harmonic)
    assert builder.production['dynamics'] == 'nve' and builder.equilibration['dynamics'] == 'langevin'
    node = submit_and_await(builder, timeout=900)
    assert node.is_finished_ok, node.exit_message
    nvt, nve = node.outputs.equilibration, node.outputs.trajectory
    # the production starts where the equilibration ended, with its velocities
    np.testing.assert_allclose(nve.get_positions()[0], nvt.get_positions()[-1], atol=1e-8)
    assert nve.numsteps == 501 and nve.creator.inputs.parameters['dynamics'] == 'nve'
    # NVE: the total energy is conserved (EMT, 4 fs)
    frames = nve.creator.outputs.frames
    masses = harmonic.get_array('masses')
    kinetic = 0.5 * np.einsum('i,fij->f', masses, nve.get_array('velocities') ** 2) * ENERGY_UNIT
    total = frames.get_array('energy') + kinetic
    assert np.ptp(total) < 5e-3 * len(masses)
    summary = node.outputs.summary.get_dict()
    assert summary['modes'] == 24 and summary['flags'].get('no_mode') == 3 and summary['frames'] == 501
    # 10 ps are 5-10 lifetimes: every mode resolved, if roughly (the Langevin equilibration let the crystal drift
    # by ~1e-3 A/fs; the analysis takes the drift of the centre of mass out)
    assert summary['flags'].get('ok', 0) == 21 and 0.5 < summary['median_tau'] < 5
    assert summary['ioffe_regel_fraction'] == 0.0  # a weakly anharmonic crystal at 300 K
    assert node.outputs.modes.get_array('tau').shape == (24,)


def test_bad_input_is_refused_before_any_job(md_code, lifetimes_code, harmonic):
    from aiida.engine import run_get_node

    cases = [
        ({'production': {'dynamics': 'langevin'}}, 'must be nve dynamics'),
        ({'equilibration': {'dynamics': 'nve'}}, 'must be langevin dynamics'),
        ({'production': {'steps': 200}}, 'too few for a lifetime fit'),
        ({'analysis': {'window': 3}}, 'unknown `analysis` key'),
    ]
    for overrides, match in cases:
        with pytest.raises(ValueError, match=match):
            run_get_node(builder_for(md_code, lifetimes_code, harmonic, **overrides))
    wrong = builder_for(md_code, lifetimes_code, harmonic)
    from ase.build import bulk

    wrong.structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True))
    with pytest.raises(ValueError, match='4 atoms, the supercell'):
        run_get_node(wrong)
    neither = builder_for(md_code, lifetimes_code, harmonic)
    del neither.reference
    with pytest.raises(ValueError, match='either an `ensemble` or a `reference`'):
        run_get_node(neither)


def test_a_run_that_a_guard_ends_early_says_so(submit_and_await, md_code, lifetimes_code, harmonic):
    # a force guard that every frame of EMT Cu at 300 K trips: both runs end at once, and the workchain says why
    builder = builder_for(md_code, lifetimes_code, harmonic)
    builder.guards = orm.Dict({'max_force': 0.01})
    node = submit_and_await(builder, timeout=600)
    assert node.exit_status == 490 and 'too few for a lifetime fit' in node.exit_message
    assert 'stopped: ' in node.exit_message and 'trajectory' in node.outputs  # what it ran is kept
