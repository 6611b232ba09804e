"""Faults, counted: a label, an MD and a training job killed with ``kill -9`` while they run are each recovered
by their restart handler with what they produced kept; a killed training job's nequip child dies with it."""

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


def running_program(process_class, program: str):
    """``(calculation, pid)`` of the first running ``process_class`` job whose ``program`` process is up."""
    for calc in orm.QueryBuilder().append(process_class).all(flat=True):
        if calc.is_terminated or calc.get_remote_workdir() is None:
            continue
        pids = [pid for pid, cmd in processes_in(calc.get_remote_workdir()).items() if program in cmd]
        if pids:
            return calc, pids[0]
    return None


def lines_in(calc, name: str) -> int:
    path = Path(calc.get_remote_workdir()) / name
    return len(path.read_text().splitlines()) if path.exists() else 0


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


@pytest.mark.slow
def test_a_killed_label_job_keeps_its_labels_and_the_rest_is_labelled_once(
    started_daemon_client, label_code, reference_model
):
    from aiida.engine import submit

    from aiida_anharmal.calculations.label import LabelCalculation

    from .conftest import cui_reference_labelling

    builder = cui_reference_labelling(label_code, reference_model, 10, batch_size=10)
    node = submit(builder)
    calc, pid = wait_for(lambda: running_program(LabelCalculation, 'anharmal-label'), 300, 'the label job')
    wait_for(lambda: lines_in(calc, 'labels.jsonl') >= 2, 120, 'two labels written')
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: node.is_terminated, 600, 'the labelling')
    assert node.is_finished_ok, node.exit_message
    calcs = sorted((n for n in node.called_descendants if n.process_label == 'LabelCalculation'), key=lambda n: n.ctime)
    assert len(calcs) == 2 and calcs[0].uuid == calc.uuid and calcs[0].exit_status == 330  # killed: interrupted
    kept = [o['source_index'] for o in calcs[0].outputs.labelled.origins]
    redone = [o['source_index'] for o in calcs[1].outputs.labelled.origins]
    assert len(kept) >= 2 and not set(kept) & set(redone)  # no frame labelled twice
    assert sorted(kept + redone) == list(range(10))
    assert [o['source_index'] for o in node.outputs.labelled.origins] == list(range(10))


@pytest.mark.slow
def test_a_killed_md_job_continues_from_its_checkpoint_with_its_frames_kept(started_daemon_client, md_code):
    from aiida.engine import submit
    from ase.build import bulk

    from aiida_anharmal.calculations.md import MDCalculation
    from aiida_anharmal.workflows import MDBaseWorkChain

    builder = MDBaseWorkChain.get_builder()
    builder.md.code = md_code
    builder.md.reference.engine = orm.Str('emt')
    builder.md.structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(3))  # 108 atoms
    builder.md.parameters = orm.Dict({'steps': 2500, 'save_stride': 20, 'temperature': 300.0, 'seed': 3})
    builder.md.metadata.options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}
    node = submit(builder)
    calc, pid = wait_for(lambda: running_program(MDCalculation, 'anharmal-md'), 300, 'the MD job')
    wait_for(lambda: (Path(calc.get_remote_workdir()) / 'checkpoint.json').exists(), 120, 'a checkpoint')
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: node.is_terminated, 600, 'the MD')
    assert node.is_finished_ok, node.exit_message
    calcs = sorted((n for n in node.called if n.process_label == 'MDCalculation'), key=lambda n: n.ctime)
    assert len(calcs) == 2 and calcs[0].exit_status == 330  # killed: continued by handle_interrupted
    assert calcs[1].inputs.parent_folder.uuid == calcs[0].outputs.remote_folder.uuid
    steps = node.outputs.frames.get_array('step')
    assert steps.tolist() == list(range(0, 2501, 20))  # every frame once: the killed job's kept, none twice
