"""The production stack: a PostgreSQL + RabbitMQ profile and a SLURM computer (``anharmal setup --production``).

The services themselves come from ``scripts/services.sh`` (Debian's postgresql 15, rabbitmq-server
3.10, slurm-wlm 22.05 with munge) or from the cluster's administrators. This module only talks to
them: it creates a database user and database with an administrator role
(:class:`PostgresAdmin`, from the ``ANHARMAL_PG_*`` environment variables), a ``core.psql_dos``
profile with the ``core.rabbitmq`` broker, and a ``core.slurm`` computer. The test suite uses the
same functions for its temporary profile (``pytest --aiida-services=production``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: RabbitMQ as scripts/services.sh starts it (aiida-core's defaults).
RABBITMQ = {
    'broker_protocol': 'amqp',
    'broker_username': 'guest',
    'broker_password': 'guest',
    'broker_host': '127.0.0.1',
    'broker_port': 5672,
    'broker_virtual_host': '',
}

SLURM_COMPUTER = 'slurm'


class ServiceError(RuntimeError):
    """A service of the production stack is not there or refused us; the message says what to do."""


@dataclass(frozen=True)
class PostgresAdmin:
    """A PostgreSQL role that may create roles and databases (``ANHARMAL_PG_HOST/PORT/ADMIN/PASSWORD``)."""

    host: str = '127.0.0.1'
    port: int = 5432
    user: str = 'anharmal_admin'
    password: str = 'anharmal_admin'

    @classmethod
    def from_environment(cls) -> PostgresAdmin:
        env = os.environ
        return cls(
            host=env.get('ANHARMAL_PG_HOST', cls.host),
            port=int(env.get('ANHARMAL_PG_PORT', cls.port)),
            user=env.get('ANHARMAL_PG_ADMIN', cls.user),
            password=env.get('ANHARMAL_PG_PASSWORD', cls.password),
        )

    def connect(self):
        """An autocommit connection to the ``postgres`` database as the administrator role."""
        import psycopg

        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname='postgres',
                autocommit=True,
                connect_timeout=10,
            )
        except psycopg.OperationalError as exc:
            raise ServiceError(
                f'cannot connect to PostgreSQL as `{self.user}` at {self.host}:{self.port} ({" ".join(str(exc).split())}): '
                'start it with `bash scripts/services.sh start`, or set ANHARMAL_PG_HOST/PORT/ADMIN/PASSWORD'
            ) from exc

    def create_database(self, name: str, user: str | None = None, password: str | None = None) -> dict:
        """Create a new database ``name`` owned by a new ``user``; the ``core.psql_dos`` storage config.

        An existing database or role is refused, never altered: it may belong to another profile.
        """
        from psycopg import sql

        user = user or name
        password = password or secrets.token_hex(12)
        for what, value in (('database', name), ('user', user)):
            if len(value.encode()) > 63:
                raise ServiceError(
                    f'the PostgreSQL {what} name `{value}` is longer than 63 bytes: choose a shorter one'
                )
        with self.connect() as connection:
            if connection.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,)).fetchone():
                raise ServiceError(f'the PostgreSQL database `{name}` exists already: choose another name')
            if connection.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (user,)).fetchone():
                raise ServiceError(f'the PostgreSQL role `{user}` exists already: choose another name')
            connection.execute(
                sql.SQL('CREATE ROLE {} WITH LOGIN PASSWORD {}').format(sql.Identifier(user), sql.Literal(password))
            )
            # the administrator must be a member of the owner to hand it a database (PostgreSQL >= 15 without
            # superuser)
            connection.execute(sql.SQL('GRANT {} TO CURRENT_USER').format(sql.Identifier(user)))
            connection.execute(
                sql.SQL('CREATE DATABASE {} OWNER {} ENCODING {}').format(
                    sql.Identifier(name), sql.Identifier(user), sql.Literal('UTF8')
                )
            )
        return {
            'database_engine': 'postgresql_psycopg',
            'database_hostname': self.host,
            'database_port': self.port,
            'database_name': name,
            'database_username': user,
            'database_password': password,
        }

    def drop_database(self, name: str, user: str | None = None) -> None:
        """Drop database ``name`` (closing what still connects to it, e.g. a stopped daemon's workers) and ``user``."""
        from psycopg import sql

        with self.connect() as connection:
            # FORCE: ends what still connects (a stopped daemon's workers) in the same statement (PostgreSQL >= 13)
            connection.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(sql.Identifier(name)))
            if user:
                connection.execute(sql.SQL('DROP ROLE IF EXISTS {}').format(sql.Identifier(user)))


def rabbitmq_reachable(host: str = RABBITMQ['broker_host'], port: int = RABBITMQ['broker_port']) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_rabbitmq() -> dict:
    if not rabbitmq_reachable():
        raise ServiceError(
            f'RabbitMQ does not answer at {RABBITMQ["broker_host"]}:{RABBITMQ["broker_port"]}: start it with '
            '`bash scripts/services.sh start`'
        )
    return dict(RABBITMQ)


def slurm_running() -> bool:
    """Whether ``sinfo`` reports a node that can take jobs."""
    if shutil.which('sinfo') is None:
        return False
    try:
        result = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True, check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    # `idle*` (not responding) and `idle~` (powered down) cannot take jobs
    return result.returncode == 0 and bool({'idle', 'mixed', 'allocated'} & set(result.stdout.split()))


def ensure_slurm_computer(label: str = SLURM_COMPUTER, workdir: str | None = None, echo=print):
    """A ``core.slurm`` computer on this machine (``core.local`` transport), created once.

    For a remote cluster the same computer is set up with ``verdi computer setup`` and the
    ``core.ssh`` transport (``docs/source/production.rst``).
    """
    from .computers import ensure_computer

    check_slurm()
    return ensure_computer(
        label, 'core.slurm', 'the one-node SLURM cluster of scripts/services.sh', workdir=workdir, echo=echo
    )


def check_slurm() -> None:
    if not slurm_running():
        raise ServiceError('SLURM does not answer (`sinfo`): start it with `bash scripts/services.sh start`')


def create_production_profile(name: str, email: str = 'anharmal@localhost', echo=print):
    """A ``core.psql_dos`` + ``core.rabbitmq`` profile named ``name`` (its database and user named after it).

    Every service is checked before anything is made; on a failure nothing is left half made.
    """
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    if name in config.profile_names:
        raise ServiceError(f'a profile `{name}` exists already')
    broker = check_rabbitmq()
    check_slurm()
    admin = PostgresAdmin.from_environment()
    database, user = f'anharmal_{name}'.lower(), f'aiida_{name}'.lower()
    storage = admin.create_database(database, user=user)
    storage['repository_uri'] = (Path(config.dirpath) / 'repository' / name).as_uri()
    try:
        profile = create_profile(
            config,
            name=name,
            email=email,
            storage_backend='core.psql_dos',
            storage_config=storage,
            broker_backend='core.rabbitmq',
            broker_config=broker,
        )
    except Exception:
        if name in config.profile_names:
            config.remove_profile(name).store()
        admin.drop_database(database, user=user)
        raise
    config.set_default_profile(profile.name, overwrite=False)
    config.store()
    echo(f'created profile `{name}`: PostgreSQL database `{storage["database_name"]}`, RabbitMQ broker')
    return profile


def check_production_profile(profile) -> None:
    """Refuse ``--production`` on an existing profile that is not on PostgreSQL + RabbitMQ."""
    if profile.storage_backend != 'core.psql_dos' or profile.process_control_backend != 'core.rabbitmq':
        raise ServiceError(
            f'the existing profile `{profile.name}` is on {profile.storage_backend} + '
            f'{profile.process_control_backend}, not PostgreSQL + RabbitMQ: give --production a new profile name'
        )
