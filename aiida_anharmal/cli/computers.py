"""The computers of this machine that ``anharmal setup`` makes: ``localhost`` (direct) and ``slurm`` (SLURM)."""

from __future__ import annotations

from pathlib import Path

COMPUTER_LABEL = 'localhost'


def ensure_computer(
    label: str = COMPUTER_LABEL,
    scheduler: str = 'core.direct',
    description: str = 'this machine',
    workdir: str | None = None,
    echo=print,
):
    """Return the computer ``label`` on this machine (``core.local`` transport), creating it if needed."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(label)
        echo(f'using computer `{label}` ({computer.transport_type}, {computer.scheduler_type})')
    except NotExistent:
        computer = orm.Computer(
            label=label,
            hostname='localhost',
            description=description,
            transport_type='core.local',
            scheduler_type=scheduler,
            workdir=workdir or str(Path.home() / '.aiida' / 'scratch' / label),
        ).store()
        computer.set_minimum_job_poll_interval(1.0)
        computer.set_default_mpiprocs_per_machine(1)
        echo(f'created computer `{label}` ({scheduler})')
    if not computer.is_configured:
        computer.configure(safe_interval=0.1)
    return computer
