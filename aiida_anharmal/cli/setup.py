"""Set up the embedded default: profile, localhost computer, one code per program, daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..workflows.codes import PROGRAMS as CODE_ROLES
from .computers import ensure_computer

#: The programs of this package that calculation jobs run: code label -> calculation plugin (the roles of
#: :data:`aiida_anharmal.workflows.codes.PROGRAMS`).
PROGRAMS = {program: f'anharmal.{role}' for role, program in CODE_ROLES.items()}

#: Prepended to every job script: one thread per process (threaded BLAS slowed GPAW 2-10x on 2 cores).
PREPEND_TEXT = 'export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1'

DEFAULT_PROFILE = 'anharmal'


def program_path(name: str) -> Path:
    """Absolute path of a console script of this package, next to the running interpreter first."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f'the program `{name}` is not installed: run `pip install -e .` in the repository')
    return Path(found)


def ensure_profile(name: str, production: bool = False, echo=print) -> None:
    """Create profile ``name`` unless it exists (``verdi presto``, or PostgreSQL + RabbitMQ); load it."""
    from aiida import load_profile
    from aiida.manage.configuration import get_config

    exists = name in get_config(create=True).profile_names
    if production and not exists:
        from .production import create_production_profile

        create_production_profile(name, echo=echo)
    elif not exists:
        echo(f'creating profile `{name}` with verdi presto (SQLite storage, built-in ZeroMQ broker)')
        verdi = Path(sys.executable).parent / 'verdi'
        subprocess.run(
            [
                str(verdi if verdi.exists() else 'verdi'),
                'presto',
                '--profile-name',
                name,
                '--use-zeromq',
                '--non-interactive',
            ],
            check=True,
        )
        from aiida.manage.configuration import reset_config

        reset_config()
    else:
        echo(f'using the existing profile `{name}`')
    config = get_config()
    if config.default_profile_name is None:
        config.set_default_profile(name)
        config.store()
    profile = load_profile(name, allow_switch=True)
    if production:
        from .production import check_production_profile

        check_production_profile(profile)


def ensure_codes(computer, echo=print) -> dict:
    """Create (or update) one ``InstalledCode`` per program of this package; return label -> code."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    codes = {}
    for name, plugin in PROGRAMS.items():
        executable = str(program_path(name))
        try:
            code = orm.load_code(f'{name}@{computer.label}')
        except (NotExistent, MultipleObjectsError):
            code = None
        if code is not None and str(code.filepath_executable) != executable:
            # A code is immutable once stored: retire the stale one, keep it for provenance.
            code.label = f'{name}-retired-{code.pk}'
            code.is_hidden = True
            echo(f'retired code <{code.pk}> that pointed to {code.filepath_executable}')
            code = None
        if code is None:
            code = orm.InstalledCode(
                label=name,
                computer=computer,
                filepath_executable=executable,
                default_calc_job_plugin=plugin,
                prepend_text=PREPEND_TEXT,
                description=f'the `{name}` program of aiida-anharmal',
            ).store()
            echo(f'created code `{name}@{computer.label}` -> {executable}')
        codes[name] = code
    return codes


def ensure_daemon(profile_name: str, workers: int = 1, echo=print) -> None:
    """Start the daemon of the profile if it is not running."""
    from aiida.engine.daemon.client import DaemonException, get_daemon_client

    client = get_daemon_client(profile_name)
    if client.is_daemon_running:
        try:
            client.get_status(timeout=10)
            echo('the daemon is running')
            return
        except DaemonException as error:  # a PID file of a daemon that died (a reboot, a killed session)
            echo(f'the daemon does not answer ({type(error).__name__}): starting it again')
            client.stop_daemon(wait=True)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    client.start_daemon(number_workers=workers)
    echo(f'started the daemon with {workers} worker(s)')


def setup(
    profile: str = DEFAULT_PROFILE, daemon: bool = True, workers: int = 1, production: bool = False, echo=print
) -> dict:
    """Everything the embedded default (or, with ``production``, the production stack) needs; idempotent.

    Returns the codes on localhost by program name; with ``production`` also those on the SLURM computer,
    by ``name@slurm``.
    """
    ensure_profile(profile, production=production, echo=echo)
    computer = ensure_computer(echo=echo)
    codes = ensure_codes(computer, echo=echo)
    if production:
        from .production import ensure_slurm_computer

        slurm = ensure_slurm_computer(echo=echo)
        codes.update({f'{name}@{slurm.label}': code for name, code in ensure_codes(slurm, echo=echo).items()})
    if daemon:
        ensure_daemon(profile, workers=workers, echo=echo)
    return codes
