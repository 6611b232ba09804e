"""``anharmal demo al``: the main job: active learning of CuI with the reference model standing in for DFT.

1. ``HarmonicWorkChain``: phonopy force constants of the 64-atom zincblende supercell, labels by
   the labelling engine (the reference model of Kang et al. by default);
2. ``ActiveLearningWorkChain`` (protocol ``fast`` by default, the settings of ``demo_settings``):
   initial data by harmonic sampling at the temperature; the test set from a short ground-truth MD
   (``--test-set md``); then train -> test-set statistics -> explore (``--exploration ladder``: a
   temperature ladder, every run judged at its own temperature) -> acquire -> label -> merge, until
   converged or the iteration cap; alongside, the Frenkel-pair NEB of every ensemble and the
   reference model's own (``--neb``); then the validation MD: 1 ps of NVT MD of the initial and the
   final ensemble next to the labelling engine's own, same start and seed (skipped with
   ``--engine gpaw``: one SCF per step);
3. the iterations, validation, timing and NEB tables, the plots and ``cui_rare_event.json``.

Everything runs through the daemon; the command only submits, waits and prints.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from .demo_settings import CUI_LATTICE_CONSTANT, EXPLORATIONS, LIFETIME_CHOICES, demo_overrides


class ReportFollower:
    """The new REPORT lines of a process and of every process it called, as ``hh:mm:ss Process<pk>: message`` in
    the order they were written. Each call asks only the processes still running for new children and the log
    for new lines (re-reading the whole report every few seconds cost the waiting command 40 % of a core)."""

    PREFIX = re.compile(r'^\[\d+\|[^\]]*\]:\s*')

    def __init__(self, node):
        self.labels = {node.pk: node.process_label}
        self.running = [node]
        self.last = 0

    def _discover(self) -> None:
        running = []
        while self.running:
            process = self.running.pop()
            for child in process.called:
                if child.pk not in self.labels:
                    self.labels[child.pk] = child.process_label
                    self.running.append(child)
            if not process.is_terminated:
                running.append(process)
        self.running = running

    def new_lines(self) -> list[str]:
        from aiida import orm

        self._discover()
        logs = orm.Log.collection.find(
            filters={'dbnode_id': {'in': list(self.labels)}, 'id': {'>': self.last}, 'levelname': 'REPORT'},
            order_by={'id': 'asc'},
        )
        self.last = max([self.last, *(log.pk for log in logs)])
        lines = []
        for log in logs:
            message = self.PREFIX.sub('', log.message)
            if not message.startswith('remote folders will not be cleaned'):
                lines.append(
                    f'{log.time.astimezone():%H:%M:%S} {self.labels[log.dbnode_id]}<{log.dbnode_id}>: {message}'
                )
        return lines


def wait(node, what: str, timeout: float, echo=click.echo):
    """Wait for ``node``, printing each new report line; ClickException if it fails or times out."""
    start, follower = time.monotonic(), ReportFollower(node)
    while True:
        done = node.is_terminated
        lines = follower.new_lines()
        for line in lines:
            echo(f'  {line}')
        if done:
            break
        if time.monotonic() - start > timeout:
            raise click.ClickException(
                f'{what} not finished after {timeout:.0f} s; follow it with `verdi process report {node.pk}`'
            )
        time.sleep(10)
    if not node.is_finished_ok:
        raise click.ClickException(
            f'{what} {node.process_label}<{node.pk}> failed: exit {node.exit_status} '
            f'{node.exit_message}\nsee `verdi process report {node.pk}`'
        )
    return time.monotonic() - start


@click.command('al')
@click.option('-p', '--profile', default=None, help='AiiDA profile (default: the one `anharmal setup` made).')
@click.option(
    '--engine',
    type=click.Choice(['nequip-reference', 'gpaw']),
    default='nequip-reference',
    show_default=True,
    help='Labelling engine: the CuI reference model (stand-in for DFT) or GPAW.',
)
@click.option('--protocol', default='fast', show_default=True, help='Protocol of every workchain.')
@click.option('--temperature', default=300.0, show_default=True, help='Temperature (K) of sampling and MD.')
@click.option('--iterations', default=None, type=int, help='Iteration cap (default: the demo setting).')
@click.option(
    '-o',
    '--output',
    default='anharmal-demo',
    show_default=True,
    type=click.Path(file_okay=False),
    help='Folder of the plots and the exported training set.',
)
@click.option(
    '--lifetimes',
    type=click.Choice(list(LIFETIME_CHOICES)),
    default='none',
    show_default=True,
    help='Phonon lifetimes of the reference model, the initial and the final ensemble: the perturbative route '
    '(~6 min per source), the fully anharmonic one (4 ps of MD; the reference model alone ~15 min), or both.',
)
@click.option(
    '--exploration',
    type=click.Choice(list(EXPLORATIONS)),
    default='ladder',
    show_default=True,
    help='ladder: full-length MD on the ensemble mean at 1, 2 and 3 times the temperature, each run judged at its '
    'own temperature by the soft acquisition (Kang et al.), stopped when every rung is quiet; md: at the '
    'temperature only, with an anharmonicity guard; hal: hyperactive learning (MD biased by E - tau sigma, each run ended by '
    'its trigger, its frame labelled).',
)
@click.option(
    '--ladder',
    default=None,
    help='Exploration temperatures as multiples of --temperature, comma-separated (default: 1,2,3 for the ladder, '
    '1 otherwise).',
)
@click.option(
    '--trigger/--no-trigger',
    default=None,
    help="Stop every exploration run where UCE_F^max stays above the acquisition threshold, scaled to the run's "
    'temperature (default: off; docs/source/rare_events.rst has what it did in the loop).',
)
@click.option(
    '--test-set',
    type=click.Choice(['md', 'harmonic']),
    default='md',
    show_default=True,
    help='The yardstick of the acquisition and the stopping rule: frames of a ground-truth MD at the temperature, '
    'or harmonic samples.',
)
@click.option(
    '--neb/--no-neb',
    default=True,
    show_default=True,
    help="The Frenkel-pair NEB of every ensemble next to the reference model's own (validation only).",
)
@click.option(
    '--neb-acquire',
    is_flag=True,
    help="Feed the uncertain images of each iteration's NEB path to the training set (a priori knowledge).",
)
@click.option('--timeout', default=3600, show_default=True, help='Seconds to wait for each workchain.')
def demo_al(
    profile,
    engine,
    protocol,
    temperature,
    iterations,
    output,
    timeout,
    lifetimes,
    exploration,
    ladder,
    trigger,
    test_set,
    neb,
    neb_acquire,
):
    """Active learning of CuI at 300 K (Kang et al.), the reference model standing in for DFT."""
    from aiida import load_profile, orm
    from aiida.engine import submit
    from aiida.engine.daemon.client import get_daemon_client

    from ..core.structures.defects import cui_frenkel_pair
    from ..workflows.active_learning import ActiveLearningWorkChain
    from .common import reference_model
    from .setup import DEFAULT_PROFILE

    if engine == 'gpaw' and lifetimes != 'none':
        raise click.ClickException('--lifetimes needs the reference model (a DFT call per MD step or fc3 label)')
    loaded = load_profile(profile or DEFAULT_PROFILE, allow_switch=True)
    if not get_daemon_client(loaded.name).is_daemon_running:
        raise click.ClickException('the daemon is not running: run `anharmal setup` first')
    if neb_acquire and not neb:
        raise click.ClickException('--neb-acquire feeds the NEB path to the loop: it needs --neb')
    factors = parse_ladder(ladder)
    programs = ('train', 'evaluate', 'md', 'label', *(('lifetimes', 'perturbative') if lifetimes != 'none' else ()))
    programs += ('neb',) if neb else ()
    codes = {name: orm.load_code(f'anharmal-{name}@localhost') for name in programs}
    model = reference_model() if engine == 'nequip-reference' else None
    started = time.monotonic()
    force_constants = harmonic_reference(codes['label'], engine, protocol, model, timeout)
    supercell = force_constants.get_supercell()
    ends = None
    if neb:  # the loop's own supercell (phonopy's atom order): the Cu at the origin to (1/2, 0, 0) a
        pristine, defect = cui_frenkel_pair(CUI_LATTICE_CONSTANT, pristine=supercell)
        ends = {'initial': pristine, 'final': defect, **({'acquire': True} if neb_acquire else {})}
    routes = LIFETIME_CHOICES[lifetimes]
    overrides = demo_overrides(
        protocol, temperature, iterations, engine, routes, exploration, ends, test_set, factors, trigger
    )
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        orm.StructureData(ase=supercell),
        engine=engine,
        protocol=protocol,
        overrides=overrides,
        harmonic=force_constants,
        model=model,
        exploration='hal' if exploration == 'hal' else 'md',
    )
    click.echo(
        f'[2/2] active learning ({exploration}) at {temperature:.0f} K, protocol `{protocol}`: initial data by harmonic '
        f'sampling, then up to {builder.max_iterations.value} iteration(s)'
    )
    node = submit(builder)
    click.echo(f'  submitted ActiveLearningWorkChain<{node.pk}>')
    wait(node, 'active learning', timeout)
    elapsed = time.monotonic() - started

    click.echo(f'\nfinished in {elapsed / 60:.1f} min\n')
    print_results(node, Path(output), elapsed / 60)


def parse_ladder(text: str | None) -> tuple | None:
    """``--ladder`` as a tuple of positive factors (``None``: the exploration's own)."""
    if text is None:
        return None
    try:
        factors = tuple(float(part) for part in text.split(','))
    except ValueError:
        raise click.ClickException(f'--ladder takes comma-separated numbers, not {text!r}') from None
    if not factors or not all(0 < f < 100 for f in factors) or len(set(factors)) != len(factors):
        raise click.ClickException(f'--ladder takes distinct positive factors of the temperature, not {text!r}')
    return factors


def harmonic_reference(code, engine: str, protocol: str, model, timeout: float):
    """Step 1 of the main job: the force constants of the 2x2x2 CuI supercell, through the daemon."""
    from aiida.engine import submit
    from ase.build import bulk

    from ..workflows.harmonic import HarmonicWorkChain

    unit_cell = bulk('CuI', 'zincblende', a=CUI_LATTICE_CONSTANT, cubic=True)
    label_overrides = {}  # the labelling protocol's parameters (GPAW: LCAO dzp in `fast`, PW 400 eV in `moderate`)
    click.echo(f'[1/2] force constants of the 2x2x2 CuI supercell (64 atoms), labels by `{engine}`')
    builder = HarmonicWorkChain.get_builder_from_protocol(
        code,
        unit_cell,
        engine=engine,
        protocol=protocol,
        model=model,
        overrides={'supercell_matrix': [2, 2, 2], 'label': label_overrides},
    )
    harmonic = submit(builder)
    click.echo(f'  submitted HarmonicWorkChain<{harmonic.pk}>')
    wait(harmonic, 'the harmonic reference', timeout)
    return harmonic.outputs.force_constants


def print_results(node, output: Path, minutes: float | None = None) -> None:
    """The tables of a finished demo run, its plots and training set in ``output``, and what to type next."""
    from ..analysis.al import status_lines, write_plots
    from ..analysis.timing import timing_lines

    for line in status_lines(node):
        click.echo(line)
    click.echo('where the time went (s; `other`: the workchain steps, calcfunctions and daemon gaps)')
    for line in timing_lines(node):
        click.echo(line)
    from ..analysis.lifetimes import lifetime_lines, lifetime_table

    rows = lifetime_table(node)
    if rows:
        click.echo('phonon lifetimes at the temperature (`anharmal al lifetimes`)')
        for line in lifetime_lines(rows):
            click.echo(line)
    from ..analysis.neb import neb_lines, rare_event_record

    lines = neb_lines(node)
    if lines:
        click.echo(
            'the Frenkel-pair path of every ensemble, each on its own relaxed end points (eV; `anharmal al neb`)'
        )
        for line in lines:
            click.echo(line)
    for path in write_plots(node, output):
        click.echo(f'wrote {path}')
    if lines and minutes is not None:
        import json

        record = output / 'cui_rare_event.json'
        record.write_text(json.dumps(rare_event_record(node, minutes), indent=1))
        click.echo(f'wrote {record}')
    training_set = node.outputs.training_set
    training_set.write_extxyz(output / 'training_set.extxyz')
    click.echo(f'wrote {output / "training_set.extxyz"} ({len(training_set)} frames with origin columns)')
    click.echo('\nInspect it:')
    click.echo(f'  anharmal al status {node.pk}')
    click.echo(f'  anharmal al validate {node.pk}')
    click.echo(f'  anharmal al neb {node.pk}')
    click.echo(f'  anharmal al timing {node.pk}')
    click.echo(f'  anharmal al provenance {node.pk} {len(training_set) - 1}')
    click.echo(f'  verdi process report {node.pk}')
    click.echo(f'  verdi archive create --nodes {node.pk} -- cui_al.aiida')
