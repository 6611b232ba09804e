"""A guard, a bias and a labelling engine of *another* package reach an MD job through the daemon.

``tests/plugin_probe`` is a package in miniature (``anharmal_probe``) with its own metadata: its strategies are
declared in its ``entry_points.txt`` only, nothing of aiida-anharmal names them. With its folder on the path
(of these tests, the daemon's workers and the jobs they start), the MD calculation takes the probe's guard as a
``guards`` key, its bias as ``bias`` and its engine as ``reference.engine``; without it, the same keys are refused.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_anharmal.calculations.md import MDCalculation
from aiida_anharmal.core.labelling.labellers import get_labeller
from aiida_anharmal.core.md.biases import BIASES
from aiida_anharmal.core.md.stop_rules import GUARDS
from aiida_anharmal.core.registry import Registry

from .conftest import stop_daemon
from .test_guard_registry import reset_specs

PROBE = Path(__file__).parent / 'plugin_probe'
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 300}
LJ = {'sigma': 2.27, 'epsilon': 0.4, 'rc': 5.0}


def forget_strategies():
    """Registries and the MD calculation's spec built again."""
    Registry.reload_all()
    reset_specs()


@pytest.fixture
def probe_on_the_path(daemon_client, monkeypatch):
    """The probe package on the path of this process and of a daemon started for it (stopped at the end)."""
    stop_daemon(daemon_client)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [str(PROBE), os.environ.get('PYTHONPATH')])))
    monkeypatch.syspath_prepend(str(PROBE))
    forget_strategies()
    try:
        yield
    finally:
        stop_daemon(daemon_client)
        monkeypatch.undo()
        forget_strategies()


def md_inputs(md_code, guards, bias):
    return {
        'code': md_code,
        'reference': {'engine': orm.Str('lennard_jones'), 'parameters': orm.Dict(LJ)},
        'structure': orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2)),
        'parameters': orm.Dict({'temperature': 600.0, 'timestep': 2.0, 'steps': 200, 'save_stride': 1, 'seed': 3}),
        'guards': orm.Dict(guards),
        'bias': orm.Dict(bias),
        'metadata': {'options': OPTIONS},
    }


def test_without_the_package_its_keys_are_refused(md_code):
    refused = MDCalculation.spec().inputs.validate(md_inputs(md_code, {'max_displacement': 0.1}, {'kind': 'spring'}))
    assert "unknown `guards` key(s) ['max_displacement']" in str(refused)
    assert 'spring' not in BIASES and 'lennard_jones' not in GUARDS


@pytest.mark.usefixtures('probe_on_the_path')
def test_the_strategies_of_another_package_run_an_md_job_through_the_daemon(submit_and_await, md_code):
    assert get_labeller('lennard_jones').ground_truth == 'toy'
    assert 'spring' in BIASES and 'max_displacement' in GUARDS
    assert MDCalculation.exit_codes.ERROR_DISPLACED_TOO_FAR.status == 327
    node = submit_and_await(
        MDCalculation, timeout=300, **md_inputs(md_code, {'max_displacement': 0.15}, {'kind': 'spring', 'k': 0.5})
    )
    assert node.exit_status == 327, node.exit_message  # the probe's guard stopped it, its message says why
    assert node.exit_message.startswith('Stopped by the probe guard: an atom moved')
    frames = node.outputs.frames
    steps = frames.get_array('step')
    assert 1 < len(steps) and steps[-1] < 200  # stopped early, every frame so far kept
    assert np.all(frames.get_array('bias_force')[1:] > 0)  # the probe's spring drove the dynamics
    assert np.isfinite(frames.get_array('energy')).all() and np.all(frames.get_array('uce_force_max') == 0)
