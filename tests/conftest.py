"""Test fixtures: a real temporary AiiDA profile, on the embedded stack or on the production one.

``--aiida-services=embedded`` (the default): SQLite storage and the built-in ZeroMQ broker, nothing to
install. ``--aiida-services=production`` (``scripts/test.sh``, after ``scripts/services.sh start``): a
fresh PostgreSQL database and user for the session (dropped after it), the RabbitMQ broker, and the
one-node SLURM cluster as the computer ``slurm`` (fixture ``slurm_computer``). Every daemon test runs
on the profile that the option selects.
"""

import contextlib
import os
import secrets
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

pytest_plugins = ['aiida.tools.pytest_fixtures']

REFERENCE_MODEL = (
    Path(__file__).parents[1] / 'aiida_anharmal' / 'resources' / 'cui_reference' / 'deployed-model_0_0.pth'
)

#: Seconds the daemon client waits for the daemon (circus) to answer: AiiDA's default of 2 s is missed
#: on two busy cores (a session's last stop once timed out that way).
DAEMON_TIMEOUT = 30


def pytest_addoption(parser):
    parser.addoption(
        '--aiida-services',
        choices=('embedded', 'production'),
        default=os.environ.get('ANHARMAL_TEST_SERVICES', 'embedded'),
        help='embedded: SQLite + ZeroMQ (default); production: PostgreSQL + RabbitMQ + SLURM '
        '(start them with `bash scripts/services.sh start`)',
    )


def production(config) -> bool:
    return config.getoption('--aiida-services') == 'production'


def set_profile_options(config, profile, options: dict) -> None:
    for name, value in options.items():
        config.set_option(name, value, scope=profile.name)
    config.store()


@pytest.fixture(scope='session', autouse=True)
def aiida_profile(request, aiida_config, aiida_profile_factory, tmp_path_factory):
    """Override the plugin's profile: the stack that ``--aiida-services`` selects, with a patient daemon client."""
    if not production(request.config):
        with aiida_profile_factory(aiida_config, broker_backend='core.zeromq') as profile:
            set_profile_options(aiida_config, profile, {'daemon.timeout': DAEMON_TIMEOUT})
            yield profile
        return

    from aiida_anharmal.cli.production import PostgresAdmin, check_rabbitmq

    admin = PostgresAdmin.from_environment()
    name = f'anharmal_test_{secrets.token_hex(4)}'
    storage = admin.create_database(name, user=name)
    storage['repository_uri'] = tmp_path_factory.mktemp('repository').as_uri()
    try:
        with aiida_profile_factory(
            aiida_config,
            storage_backend='core.psql_dos',
            storage_config=storage,
            broker_backend='core.rabbitmq',
            broker_config=check_rabbitmq(),
        ) as profile:
            # A production profile, not a test profile: AiiDA makes a test profile's RabbitMQ task queue
            # non-durable and deletes it 10 s after its last consumer left, so a daemon restarted more slowly
            # would find its processes gone. The runner polls as a production daemon does, every second.
            profile.is_test_profile = False
            aiida_config.update_profile(profile)
            set_profile_options(aiida_config, profile, {'daemon.timeout': DAEMON_TIMEOUT, 'runner.poll.interval': 1})
            yield profile
    finally:
        from aiida.manage import get_manager

        get_manager().reset_profile()  # close this process's connections before the drop
        admin.drop_database(name, user=name)


def stop_daemon(client, timeout: float = 60) -> None:
    """Stop the daemon; if circus does not answer, end circus and its workers by their pids and clear its files."""
    import psutil
    from aiida.engine.daemon.client import DaemonException, DaemonNotRunningException

    try:
        client.stop_daemon(wait=True, timeout=timeout)
    except DaemonNotRunningException:
        return
    except DaemonException:
        pid = client.get_daemon_pid()
        if pid is not None:
            try:
                circus = psutil.Process(pid)
                processes = [circus, *circus.children(recursive=True)]  # workers: their own sessions (setsid)
            except psutil.NoSuchProcess:
                processes = []
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.terminate()
            _, alive = psutil.wait_procs(processes, timeout=timeout / 2)
            for process in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            psutil.wait_procs(alive, timeout=timeout / 2)
        with contextlib.suppress(FileNotFoundError):
            os.remove(client.circus_pid_file)
        client.delete_circus_socket_directory()
    deadline = time.monotonic() + timeout
    while client.is_daemon_running and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope='session')
def daemon_client(aiida_profile):
    """The plugin's session daemon client, stopped at the end by :func:`stop_daemon` (no timeout at teardown)."""
    from aiida.engine.daemon import get_daemon_client

    client = get_daemon_client(aiida_profile.name)
    try:
        yield client
    finally:
        stop_daemon(client)


@pytest.fixture
def slurm_computer(request, aiida_profile, tmp_path_factory):
    """The one-node SLURM cluster as an AiiDA computer (``core.slurm``, ``core.local``); production stack only."""
    if not production(request.config):
        pytest.skip('needs --aiida-services=production (SLURM): `bash scripts/services.sh start`')
    from aiida_anharmal.cli.production import ensure_slurm_computer

    return ensure_slurm_computer(workdir=str(tmp_path_factory.getbasetemp() / 'slurm-scratch'), echo=lambda *_: None)


def installed_code(computer, program):
    """The console script ``program`` of this package as an InstalledCode on ``computer``."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_anharmal.cli.setup import PREPEND_TEXT, PROGRAMS, program_path

    try:
        return orm.load_code(f'{program}@{computer.label}')
    except NotExistent:
        return orm.InstalledCode(
            label=program,
            computer=computer,
            filepath_executable=str(program_path(program)),
            default_calc_job_plugin=PROGRAMS[program],
            prepend_text=PREPEND_TEXT,
        ).store()


@pytest.fixture
def label_code(aiida_localhost):
    """The `anharmal-label` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-label')


@pytest.fixture
def train_code(aiida_localhost):
    """The `anharmal-train` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-train')


@pytest.fixture
def evaluate_code(aiida_localhost):
    """The `anharmal-evaluate` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-evaluate')


@pytest.fixture
def md_code(aiida_localhost):
    """The `anharmal-md` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-md')


@pytest.fixture
def neb_code(aiida_localhost):
    """The `anharmal-neb` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-neb')


@pytest.fixture
def perturbative_code(aiida_localhost):
    """The `anharmal-perturbative` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-perturbative')


@pytest.fixture
def lifetimes_code(aiida_localhost):
    """The `anharmal-lifetimes` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-lifetimes')


def emt_cu_frames(n, seed=0, repeat=(2, 2, 1)):
    """``n`` rattled fcc Cu supercells (16 atoms by default) with EMT energy, forces and stress."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(repeat)
        atoms.rattle(0.05 + 0.05 * (k % 2), seed=seed + k)
        atoms.calc = EMT()
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces(), 'stress': atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def placeholder_model_bytes() -> bytes:
    """A zip archive (what every model format is) that is never loaded as a model."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        archive.writestr('placeholder', 'never loaded')
    return buffer.getvalue()


def placeholder_ensemble(species=('Cu',)):
    """Members whose files are never loaded: input validation reads attributes only."""
    import io

    from aiida_anharmal.data import Ensemble, MLIPModel

    members = {
        f'sub0_seed{s}': MLIPModel(
            io.BytesIO(placeholder_model_bytes()),
            filename='m.nequip.zip',
            architecture='NequIP',
            model_format='nequip-package',
            species=list(species),
            r_max=4.0,
            seed=s,
        ).store()
        for s in (0, 1)
    }
    return Ensemble(members=members).store()


def cu_structures(n, seed=0):
    """``n`` rattled fcc Cu cells of 4 atoms."""
    structures = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True)
        atoms.rattle(0.05, seed=seed + k)
        structures.append(atoms)
    return structures


def cui_cell(displacement=0.0):
    atoms = bulk('CuI', 'zincblende', a=6.05)
    atoms.positions[0] += np.array([1.0, -0.5, 0.3]) * displacement
    return atoms


def cui_reference_labelling(label_code, reference_model, n, batch_size, options=None):
    """A LabelWorkChain builder: ``n`` displaced 16-atom CuI cells (~1 s each) labelled by the reference model."""
    from aiida_anharmal.data import TrainingSet
    from aiida_anharmal.workflows import LabelWorkChain

    structures = TrainingSet.from_ase([cui_cell(0.02 * k).repeat(2) for k in range(n)])
    return LabelWorkChain.get_builder_from_protocol(
        label_code,
        structures,
        engine='nequip-reference',
        protocol='fast',
        model=reference_model,
        overrides={'batch_size': batch_size},
        options=options,
    )


@pytest.fixture
def options():
    return {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


@pytest.fixture
def reference_model():
    from aiida_anharmal.data import MLIPModel

    return MLIPModel.from_legacy_nequip(REFERENCE_MODEL, source='test').store()
