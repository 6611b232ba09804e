"""The production stack: the suite's profile is the one ``--aiida-services`` selects, and ``anharmal setup
--production`` makes a PostgreSQL + RabbitMQ profile with the SLURM computer and its codes, or says in one line
which service is missing."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import production

ANHARMAL = str(Path(sys.executable).parent / 'anharmal')


def setup_in(config_dir, profile, *flags, **env):
    """``anharmal setup -p profile --no-daemon *flags`` with its own AiiDA configuration folder; the result."""
    return subprocess.run(
        [ANHARMAL, 'setup', *flags, '-p', profile, '--no-daemon'],
        env={**os.environ, 'AIIDA_PATH': str(config_dir), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_session_profile_is_on_the_selected_stack(request, aiida_profile):
    if production(request.config):
        assert aiida_profile.storage_backend == 'core.psql_dos'
        assert aiida_profile.process_control_backend == 'core.rabbitmq'
    else:
        assert aiida_profile.storage_backend == 'core.sqlite_dos'
        assert aiida_profile.process_control_backend == 'core.zeromq'


def test_setup_production_names_the_missing_service_in_one_line(tmp_path):
    result = setup_in(tmp_path, 'nowhere', '--production', ANHARMAL_PG_PORT='1')
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if not line.lstrip().startswith('warnings.warn')]) <= 2, result.stderr
    assert 'Traceback' not in result.stderr
    assert 'bash scripts/services.sh start' in lines[-1]
    from aiida_anharmal.cli.production import PostgresAdmin

    admin = PostgresAdmin.from_environment()
    assert 'RabbitMQ' in lines[-1] or f'cannot connect to PostgreSQL as `{admin.user}` at {admin.host}:1' in lines[-1]


def test_setup_production_refuses_an_existing_profile_of_another_stack(tmp_path):
    made = setup_in(tmp_path, 'embedded')
    assert made.returncode == 0, made.stderr
    result = setup_in(tmp_path, 'embedded', '--production')
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'the existing profile `embedded` is on core.sqlite_dos + core.zeromq' in result.stderr


def test_setup_production_makes_the_profile_the_slurm_computer_and_the_codes(request, tmp_path):
    if not production(request.config):
        pytest.skip('needs --aiida-services=production')
    from aiida_anharmal.cli.production import PostgresAdmin

    name = f'probe{secrets.token_hex(4)}'
    try:
        result = setup_in(tmp_path, name, '--production')
        assert result.returncode == 0, result.stderr
        assert f'created profile `{name}`: PostgreSQL database `anharmal_{name}`, RabbitMQ broker' in result.stdout
        assert 'anharmal-train@slurm' in result.stdout and 'anharmal-label@localhost' in result.stdout
        verdi = str(Path(sys.executable).parent / 'verdi')
        shown = subprocess.run(
            [verdi, '-p', name, 'computer', 'show', 'slurm'],
            env={**os.environ, 'AIIDA_PATH': str(tmp_path)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert 'core.slurm' in shown.stdout and 'core.local' in shown.stdout
        again = setup_in(tmp_path, name, '--production')
        assert again.returncode == 0 and 'using the existing profile' in again.stdout  # idempotent
    finally:
        PostgresAdmin.from_environment().drop_database(f'anharmal_{name}', user=f'aiida_{name}')
