"""Faults, counted: a training job killed with ``kill -9`` is trained again by its restart handler, and its
nequip child dies with it (no orphaned training goes on in the job folder)."""

import os
import signal
import time
from pathlib import Path

import pytest
from aiida import orm

from aiida_anharmal.calculations.train import TrainCalculation
from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows.ensemble import EnsembleWorkChain

from .conftest import emt_cu_frames


def processes_in(folder: str) -> dict[int, str]:
    """pid -> command line of the processes whose working directory is ``folder``."""
    found = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / 'cwd') == folder:
                found[int(entry.name)] = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except OSError:
            continue
    return found


def wait_for(condition, timeout: float, what: str):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


def training_processes():
    """(calculation, its anharmal-train pid, its nequip child pid) once a member's nequip training runs."""
    for calc in orm.QueryBuilder().append(TrainCalculation).all(flat=True):
        if calc.is_terminated or calc.get_remote_workdir() is None:
            continue
        running = processes_in(calc.get_remote_workdir())
        parent = [pid for pid, cmd in running.items() if 'anharmal-train' in cmd]
        child = [pid for pid, cmd in running.items() if 'nequip_stages' in cmd]
        if parent and child:
            return calc, parent[0], child[0]
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path('/proc/self/cwd').exists(), reason='reads /proc (Linux)')
def test_a_killed_training_job_is_trained_again_and_takes_its_child_with_it(started_daemon_client, train_code):
    from aiida.engine import submit

    training_set = TrainingSet.from_ase(emt_cu_frames(12))
    overrides = {'n_sub': 1, 'seeds': [0, 1], 'hyperparameters': {'max_epochs': 40, 'early_stopping_patience': None}}
    builder = EnsembleWorkChain.get_builder_from_protocol(
        train_code, training_set, protocol='fast', overrides=overrides
    )
    node = submit(builder)
    killed, parent, child = wait_for(training_processes, 300, "a member's nequip training")
    os.kill(parent, signal.SIGKILL)
    wait_for(lambda: not Path(f'/proc/{child}').exists(), 5, 'the nequip child to die with its job')
    wait_for(lambda: node.is_terminated, 600, 'the ensemble')
    assert node.is_finished_ok, node.exit_message
    calcs = [n for n in node.called_descendants if n.process_label == 'TrainCalculation']
    assert killed.exit_status == 300  # no status file: the job was killed
    assert len(calcs) == 3 and sum(c.is_finished_ok for c in calcs) == 2  # the killed member trained once more
    wrapper = killed.caller
    retried = [c for c in wrapper.called if c.process_label == 'TrainCalculation']
    assert len(retried) == 2 and retried[-1].is_finished_ok
    assert retried[-1].inputs.seed.value == killed.inputs.seed.value
    from aiida.cmdline.utils.common import get_workchain_report

    assert 'was killed before it could finish' in get_workchain_report(wrapper, 'REPORT')
    assert node.outputs.ensemble.n_members == 2
