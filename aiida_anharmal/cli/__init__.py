"""The ``anharmal`` command: set up the embedded default, run the demo, inspect and move datasets."""

from __future__ import annotations

import time

import click

from .. import __version__
from .common import reference_model
from .setup import DEFAULT_PROFILE

PROFILE_OPTION = click.option(
    '-p', '--profile', default=None, help=f'AiiDA profile (default: the default profile, else `{DEFAULT_PROFILE}`).'
)


def _load(profile: str | None):
    from .common import load_profile

    return load_profile(profile)


def _training_set(profile, identifier):
    from ..data.training_set import TrainingSet
    from .common import load_node

    return load_node(profile, identifier, (TrainingSet,), 'a TrainingSet')


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(__version__, '-V', '--version', message='aiida-anharmal %(version)s')
def cli():
    """aiida-anharmal: active learning of MLIPs for anharmonic materials, on AiiDA."""


@cli.command('setup')
@click.option('-p', '--profile', default=DEFAULT_PROFILE, show_default=True, help='Profile to create or use.')
@click.option('--daemon/--no-daemon', default=True, show_default=True, help='Start the daemon.')
@click.option('--workers', default=1, show_default=True, help='Number of daemon workers.')
@click.option(
    '--production',
    is_flag=True,
    help='A new profile on PostgreSQL + RabbitMQ, and the SLURM computer `slurm` with the codes on it '
    '(services from `bash scripts/services.sh start`; PostgreSQL admin from ANHARMAL_PG_*).',
)
def setup_command(profile, daemon, workers, production):
    """Create (or reuse) a profile, the localhost computer, the codes of this package; start the daemon.

    A new profile is made with `verdi presto` (SQLite storage, built-in ZeroMQ broker: no service
    to install), or with `--production` on PostgreSQL + RabbitMQ with a SLURM computer. An existing
    profile is used as it is.
    """
    from .production import ServiceError
    from .setup import setup

    try:
        codes = setup(profile=profile, daemon=daemon, workers=workers, production=production, echo=click.echo)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'ready: profile `{profile}`, codes {", ".join(c.full_label for c in codes.values())}')


# ---------------------------------------------------------------------------------------------- demo
@cli.group('demo')
def demo():
    """Small end-to-end runs on this machine."""


def demo_structures(n: int, seed: int = 0):
    """``n`` rattled and strained zincblende CuI primitive cells (2 atoms)."""
    import numpy as np
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(n):
        atoms = bulk('CuI', 'zincblende', a=6.05)
        strain = np.eye(3) + rng.normal(0, 0.01, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0, 0.08, atoms.positions.shape)
        structures.append(atoms)
    return structures


#: GPAW settings of the demo: small but real PBE plane-wave DFT (4-5 s per 2-atom cell on one core here).
DEMO_GPAW = {'mode': {'name': 'pw', 'ecut': 300}, 'kpts': {'size': [2, 2, 2], 'gamma': True}}


@demo.command('label')
@PROFILE_OPTION
@click.option(
    '--engine',
    type=click.Choice(['gpaw', 'emt', 'nequip-reference']),
    default='gpaw',
    show_default=True,
    help='gpaw: real DFT; nequip-reference: the CuI reference model (stand-in for DFT).',
)
@click.option('-n', '--number', default=6, show_default=True, help='Number of structures.')
@click.option('--batch-size', default=2, show_default=True, help='Structures per job.')
@click.option('--protocol', default='moderate', show_default=True, help='Protocol of LabelWorkChain.')
@click.option('--timeout', default=1800, show_default=True, help='Seconds to wait for the result.')
def demo_label(profile, engine, number, batch_size, protocol, timeout):
    """Label rattled CuI cells through the daemon and print the labelled TrainingSet."""
    from aiida import orm
    from aiida.engine import submit
    from aiida.engine.daemon.client import get_daemon_client

    from ..data.training_set import TrainingSet
    from ..workflows.label import LabelWorkChain

    profile = _load(profile or DEFAULT_PROFILE)
    if not get_daemon_client(profile.name).is_daemon_running:
        raise click.ClickException('the daemon is not running: run `anharmal setup` first')

    if engine == 'emt':  # EMT knows Cu but not I: use fcc Cu
        from ase.build import bulk

        atoms = [bulk('Cu', 'fcc', a=3.6, cubic=True) for _ in range(number)]
        for k, a in enumerate(atoms):
            a.rattle(0.05, seed=k)
    else:
        atoms = demo_structures(number)
    structures = TrainingSet.from_ase(atoms, origins=[{'kind': 'demo', 'seed': 0, 'frame': k} for k in range(number)])
    builder = LabelWorkChain.get_builder_from_protocol(
        orm.load_code('anharmal-label@localhost'),
        structures,
        engine=engine,
        protocol=protocol,
        overrides={'batch_size': batch_size},
        model=reference_model() if engine == 'nequip-reference' else None,
    )
    if engine == 'gpaw':  # flat update: the demo's k-point grid replaces the protocol's density
        builder.parameters = orm.Dict({**builder.parameters.get_dict(), **DEMO_GPAW})
    node = submit(builder)
    click.echo(f'submitted LabelWorkChain<{node.pk}>: {number} structures, engine `{engine}`, batch size {batch_size}')
    start = time.monotonic()
    last = None
    while not node.is_terminated:
        line = f'  {node.process_state.value}: {len(node.called)} batch(es) running'
        if line != last:
            click.echo(line)
            last = line
        if time.monotonic() - start > timeout:
            raise click.ClickException(f'not finished after {timeout} s; follow it with `verdi process list`')
        time.sleep(2)
    elapsed = time.monotonic() - start
    if not node.is_finished_ok:
        raise click.ClickException(
            f'LabelWorkChain<{node.pk}> ended with exit status {node.exit_status}: {node.exit_message}\n'
            f'see `verdi process report {node.pk}`'
        )
    labelled = node.outputs.labelled
    click.echo(f'\nfinished in {elapsed:.0f} s: TrainingSet<{labelled.pk}> {labelled.get_description()}')
    click.echo(
        f'  label engine: {labelled.base.attributes.get("label_engine")} (ground truth: {labelled.ground_truth})'
    )
    energies = labelled.get_array('energy')
    click.echo(f'  energies (eV): {", ".join(f"{e:.4f}" for e in energies)}')
    excluded = node.outputs.excluded.get_dict()
    click.echo(f'  excluded: {len(excluded)}')
    click.echo('\nInspect it:')
    click.echo(f'  verdi process show {node.pk}')
    click.echo(f'  verdi process report {node.pk}')
    click.echo(f'  verdi node graph generate {node.pk}')
    click.echo(f'  anharmal dataset show {labelled.pk}')
    click.echo(f'  anharmal dataset export {labelled.pk} labelled.extxyz')


# ---------------------------------------------------------------------------------------------- datasets
@cli.group('dataset')
def dataset():
    """Inspect, export and import TrainingSet nodes."""


@dataset.command('show')
@PROFILE_OPTION
@click.argument('identifier')
def dataset_show(profile, identifier):
    """Summary of a TrainingSet: counts, species, labels, origin of each frame."""
    node = _training_set(profile, identifier)
    frames = node.frames
    click.echo(f'TrainingSet<{node.pk}> {node.uuid}')
    click.echo(f'  {node.get_description()}; ground truth: {node.ground_truth or "-"}')
    for k in range(len(frames)):
        energy = frames.energy[k]
        origin = ', '.join(f'{key}={value}' for key, value in frames.origins[k].items())
        click.echo(f'  {k:4d} {frames.get_atoms(k).get_chemical_formula():>10s} E={energy: .6f} eV  {origin}')


@dataset.command('export')
@PROFILE_OPTION
@click.argument('identifier')
@click.argument('path', type=click.Path(dir_okay=False))
def dataset_export(profile, identifier, path):
    """Write a TrainingSet to extended XYZ (labels and origin columns)."""
    from pathlib import Path

    node = _training_set(profile, identifier)
    if not Path(path).resolve().parent.is_dir():
        raise click.ClickException(f'the folder of {path} does not exist')
    node.write_extxyz(path)
    click.echo(f'wrote {len(node)} structures to {path}')


@dataset.command('import')
@PROFILE_OPTION
@click.argument('path', type=click.Path(exists=True, dir_okay=False))
@click.option('--label', default='', help='Label of the new node.')
def dataset_import(profile, path, label):
    """Store an extended XYZ (or any file ASE reads as extxyz) as a TrainingSet."""
    from ..data.training_set import TrainingSet
    from .common import first_line

    _load(profile)
    try:
        node = TrainingSet.from_extxyz(path, label=label)
    except Exception as exc:  # noqa: BLE001 - whatever ASE raises on a file it cannot read, said in one line
        raise click.ClickException(f'{path} is not an extended XYZ file ASE can read: {first_line(exc)}') from None
    if not len(node):
        raise click.ClickException(f'{path} holds no structure')
    node.store()
    click.echo(f'stored TrainingSet<{node.pk}>: {node.get_description()}')


from .al import al
from .dynamic import dynamic

cli.add_command(al)
cli.add_command(dynamic)

from .demo_al import demo_al

demo.add_command(demo_al)
