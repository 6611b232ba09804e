"""The workchains on a real scheduler: the one-node SLURM cluster of ``scripts/services.sh`` (production stack only).

Label batches and ensemble members go to SLURM as separate jobs that run at the same time (``squeue``
is watched while they run); an MD job that SLURM kills at its walltime is continued from its
checkpoint by ``MDBaseWorkChain`` with every frame kept exactly once.
"""

import itertools
import subprocess
import time

import pytest
from aiida import orm

from aiida_anharmal.data import TrainingSet

from .conftest import cui_reference_labelling, emt_cu_frames, installed_code

RESOURCES = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}


def running_slurm_jobs() -> set[str]:
    result = subprocess.run(['squeue', '-h', '-t', 'R', '-o', '%i'], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def own_job_ids(node) -> set[str]:
    return {str(j.get_job_id()) for j in node.called_descendants if j.process_type.startswith('aiida.calculations')}


def watch(node, timeout: float) -> int:
    """Wait for ``node`` to terminate; return the largest number of its own SLURM jobs seen running at once."""
    most, start = 0, time.monotonic()
    while not node.is_terminated:
        most = max(most, len(running_slurm_jobs() & own_job_ids(node)))
        if time.monotonic() - start > timeout:
            raise AssertionError(f'{node.process_label}<{node.pk}> did not finish within {timeout} s')
        time.sleep(0.2)
    return most


def calculations(node, label):
    return sorted((n for n in node.called_descendants if n.process_label == label), key=lambda n: n.ctime)


@pytest.mark.slow
def test_label_batches_and_ensemble_members_run_as_parallel_slurm_jobs(
    slurm_computer, started_daemon_client, reference_model
):
    from aiida.engine import submit

    from aiida_anharmal.workflows import EnsembleWorkChain

    label_code = installed_code(slurm_computer, 'anharmal-label')
    options = {'resources': RESOURCES, 'max_wallclock_seconds': 600}
    builder = cui_reference_labelling(label_code, reference_model, 8, batch_size=4, options=options)
    node = submit(builder)
    at_once = watch(node, timeout=600)
    assert node.is_finished_ok, node.exit_message
    jobs = calculations(node, 'LabelCalculation')
    assert len(jobs) == 2 and all(j.computer.uuid == slurm_computer.uuid and j.is_finished_ok for j in jobs)
    assert len({j.get_job_id() for j in jobs}) == 2  # two SLURM jobs
    assert at_once == 2  # both batches ran at the same time on the node's two cores
    assert [o['source_index'] for o in node.outputs.labelled.origins] == list(range(8))

    train_code = installed_code(slurm_computer, 'anharmal-train')
    overrides = {'n_sub': 1, 'seeds': [0, 1], 'hyperparameters': {'max_epochs': 3}}
    builder = EnsembleWorkChain.get_builder_from_protocol(
        train_code,
        TrainingSet.from_ase(emt_cu_frames(10)),
        protocol='fast',
        overrides=overrides,
        options={'resources': RESOURCES, 'max_wallclock_seconds': 600},
    )
    node = submit(builder)
    at_once = watch(node, timeout=600)
    assert node.is_finished_ok, node.exit_message
    jobs = calculations(node, 'TrainCalculation')
    assert len(jobs) == 2 and all(j.computer.uuid == slurm_computer.uuid for j in jobs)
    assert at_once == 2  # the two members trained at the same time
    assert sorted(node.outputs.ensemble.members) == ['sub0_seed0', 'sub0_seed1']


def force_call_seconds(atoms) -> float:
    """Seconds of one EMT force call on ``atoms`` (an MD step costs at least that): the fastest of three rounds."""
    from ase.calculators.emt import EMT

    atoms = atoms.copy()
    atoms.calc = EMT()
    atoms.get_forces()
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        for k in range(20):
            atoms.positions[0, 0] += 1e-4 * (-1) ** k
            atoms.get_forces()
        rounds.append((time.perf_counter() - start) / 20)
    return min(rounds)


@pytest.mark.slow
def test_an_md_job_killed_by_slurm_at_its_walltime_is_continued(slurm_computer, started_daemon_client):
    from aiida.engine import submit
    from ase.build import bulk

    from aiida_anharmal.workflows import MDBaseWorkChain

    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(3)  # 108 atoms
    # At least 120 s of work (measured: an MD step costs 1.2-1.3 force calls): SLURM ends a job of one minute
    # 60-95 s after it started (it checks time limits every 30 s, then KillWait 5 s); the program's own time
    # budget is set beyond the walltime.
    stride = 20
    steps = stride * int(120.0 / force_call_seconds(atoms) / stride + 1)
    builder = MDBaseWorkChain.get_builder()
    builder.md.code = installed_code(slurm_computer, 'anharmal-md')
    builder.md.reference.engine = orm.Str('emt')
    builder.md.structure = orm.StructureData(ase=atoms)
    builder.md.parameters = orm.Dict({'steps': steps, 'save_stride': stride, 'temperature': 300.0, 'seed': 5})
    builder.md.settings = orm.Dict({'max_seconds': 3600})
    builder.md.metadata.options = {'resources': RESOURCES, 'max_wallclock_seconds': 60}
    node = submit(builder)
    watch(node, timeout=900)
    assert node.is_finished_ok, node.exit_message
    jobs = calculations(node, 'MDCalculation')
    assert len(jobs) >= 2
    killed = jobs[0]
    assert killed.exit_status == 330, killed.exit_message  # interrupted: the handler continues it
    assert 'the scheduler ended the job, out of walltime' in killed.exit_message
    assert 'DUE TO TIME LIMIT' in killed.outputs.retrieved.base.repository.get_object_content('_scheduler-stderr.txt')
    for before, after in itertools.pairwise(jobs):
        assert after.inputs.parent_folder.uuid == before.outputs.remote_folder.uuid
    assert node.outputs.frames.get_array('step').tolist() == list(range(0, steps + 1, stride))  # each frame once
