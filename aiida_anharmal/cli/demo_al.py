"""``anharmal demo al``: the main job: active learning of CuI with the reference model standing in for DFT.

1. ``HarmonicWorkChain``: phonopy force constants of the 64-atom zincblende supercell, labels by
   the labelling engine (the reference model of Kang et al. by default);
2. ``ActiveLearningWorkChain`` (protocol ``fast`` by default): initial data by harmonic sampling
   at the temperature, then train -> test-set statistics -> explore at the temperature ->
   acquire -> label -> merge, until converged or the iteration cap; then the validation MD: 1 ps of
   NVT MD of the initial and the final ensemble next to the labelling engine's own, same start and
   seed (skipped with ``--engine gpaw``: one SCF per step);
3. the iterations table, the validation table and the plots.

Everything runs through the daemon; the command only submits, waits and prints.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

#: Lattice constant (A) at the minimum of the reference model's energy (scan 5.95-6.20 A, parabola fit).
CUI_LATTICE_CONSTANT = 6.06

#: Settings of the demo on top of the `fast` protocols (3 x 2 tiny members trained towards the validation
#: plateau, at most 400 epochs from scratch, later iterations fine-tuned for at most 150), sized to finish in ~20 min on 2 CPU cores;
#: the measured times are in the tutorial (docs/source/tutorial_cui.rst). Each exploration is two runs of the
#: validation's dynamics and length (Langevin, 5 fs, friction 0.00295/fs, 1 ps), stopped by an anharmonicity
#: guard (A > 1.5: the crystal broke; the reference model keeps A at 0.2-0.6 at 300 K); converged after two
#: quiet exploration runs in a row (the rule's default). The validation MD after the loop: 1 ps at the
#: temperature, ground truth = the labelling engine, started with the loop.
DEMO_OVERRIDES = {
    'fast': {
        'max_iterations': 3,
        'acquisition': {'n_max': 8},
        'explore': {
            'seeds': [0, 1],
            'parameters': {'steps': 200, 'save_stride': 5, 'timestep': 5.0, 'friction': 0.00295},
            'guards': {'max_anharmonicity': 1.5},
        },
        'label': {'batch_size': 8},
        'validation': {},
        # measured on CuI (docs/source/ensembles.rst): fine-tuned for 150 epochs 1.2-1.8 meV/A worse than
        # from scratch (400), in 40 % of the time; the demo takes that trade to fit in ~20 min
        'ensemble': {'retrain': 'finetune'},
    },
    'moderate': {'explore': {'guards': {'max_anharmonicity': 1.5}}, 'validation': {}},
}

#: ``--exploration hal`` (hyperactive learning): four biased runs per iteration (adaptive tau, tau_r 0.25, no bias
#: in the first 10 steps: measured 1.5 times faster to the first uncertain frame than plain MD on the main job's
#: last ensemble, where the protocol's tau_r 0.1 after 20 steps gave 1.1), each ended by its trigger; the trigger frame and the saved frame before it are
#: labelled, so an iteration labels at most 8 frames, as the soft acquisition of the `md` demo does. The
#: trigger is the max relative force uncertainty at 0.065: measured (benchmarks/hal_vs_md.py on the main
#: job's last ensemble), max_i f_i reaches 0.066-0.069 where UCE_F^max passes the acquisition threshold,
#: while the published softmax score stays near 1/64 (s_tol 0.5 would ask for one atom 4.1 above the rest).
HAL_OVERRIDES = {
    'fast': {
        'acquisition': {'kind': 'trigger', 'frames_before': 1},
        'explore': {
            'seeds': [0, 1, 2, 3],
            'hal': {'bias': {'tau_r': 0.25, 'tau_hist': 10}},
            'trigger': {'kind': 'max_relative', 'tol': 0.065},
        },
    },
}

#: ``--lifetimes``: the routes of the lifetimes validation, as in docs/source/lifetimes.rst (CuI, 300 K):
#: MD 0.5 ps Langevin then 4 ps NVE at 5 fs, a frame every 10 fs (the reference model: ~1 s per step);
#: perturbative: every pair of the 222 fc3 supercells, an 11x11x11 mesh.
LIFETIME_OVERRIDES = {
    'md': {
        'equilibration': {'steps': 100, 'timestep': 5.0, 'save_stride': 10, 'friction': 0.00295},
        'production': {'steps': 800, 'timestep': 5.0, 'save_stride': 2},
    },
    'perturbative': {'analysis': {'mesh': [11, 11, 11]}},  # labelled like the loop's frames (its label inputs)
}
LIFETIME_CHOICES = {'none': (), 'perturbative': ('perturbative',), 'md': ('md',), 'both': ('md', 'perturbative')}


def report_lines(node) -> list[str]:
    """The report of ``node`` and its descendants as ``[minute:second] Process<pk>: message`` lines."""
    import re

    from aiida.cmdline.utils.common import get_workchain_report

    pattern = re.compile(r'^\S+ (\d\d:\d\d:\d\d) \[\d+\s*\|\s*REPORT\]:\s*\[(\d+)\|([^|]+)\|[^\]]*\]: (.*)$')
    lines = []
    for line in get_workchain_report(node, 'REPORT').splitlines():
        match = pattern.match(line.strip())
        if match:
            clock, pk, label, message = match.groups()
            if message.startswith('remote folders will not be cleaned'):
                continue
            lines.append(f'{clock} {label}<{pk}>: {message}')
    return lines


def wait(node, what: str, timeout: float, echo=click.echo):
    """Wait for ``node``, printing each new report line; ClickException if it fails or times out."""
    start, shown = time.monotonic(), 0
    while True:
        done = node.is_terminated
        lines = report_lines(node)
        for line in lines[shown:]:
            echo(f'  {line}')
        shown = len(lines)
        if done:
            break
        if time.monotonic() - start > timeout:
            raise click.ClickException(
                f'{what} not finished after {timeout:.0f} s; follow it with `verdi process report {node.pk}`'
            )
        time.sleep(5)
    if not node.is_finished_ok:
        raise click.ClickException(
            f'{what} {node.process_label}<{node.pk}> failed: exit {node.exit_status} '
            f'{node.exit_message}\nsee `verdi process report {node.pk}`'
        )
    return time.monotonic() - start


def demo_overrides(
    protocol: str, temperature: float, iterations: int | None, engine: str, routes, exploration: str = 'md'
) -> dict:
    """The overrides of the AL protocol for the demo: its settings, the temperature, the lifetimes routes."""
    from ..protocols import recursive_merge

    base = DEMO_OVERRIDES.get(protocol, {})
    if exploration == 'hal':
        base = recursive_merge(base, HAL_OVERRIDES.get(protocol, {}))
    overrides = recursive_merge(
        base,
        {
            'initial': {'parameters': {'harmonic': {'temperature': temperature}}},
            'explore': {'temperatures': [temperature]},
            'validation': {'parameters': {'temperature': temperature}},
        },
    )
    if iterations is not None:
        overrides['max_iterations'] = iterations
    if routes:
        lifetime_overrides = {route: LIFETIME_OVERRIDES[route] for route in routes}
        if 'md' in lifetime_overrides:
            lifetime_overrides['md'] = recursive_merge(
                lifetime_overrides['md'],
                {key: {'temperature': temperature} for key in ('equilibration', 'production')},
            )
        overrides.setdefault('validation', {})['lifetimes'] = lifetime_overrides
    if engine == 'gpaw':  # a DFT calculation per MD step: hours; run ValidationMDWorkChain apart
        overrides.pop('validation', None)
    return overrides


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
    type=click.Choice(['md', 'hal']),
    default='md',
    show_default=True,
    help='MD on the ensemble mean with the soft acquisition (Kang et al.), or hyperactive learning (MD biased by '
    'E - tau sigma, each run ended by the softmax trigger, its frame labelled).',
)
@click.option('--timeout', default=3600, show_default=True, help='Seconds to wait for each workchain.')
def demo_al(profile, engine, protocol, temperature, iterations, output, timeout, lifetimes, exploration):
    """Active learning of CuI at 300 K (Kang et al.), the reference model standing in for DFT."""
    from aiida import load_profile, orm
    from aiida.engine import submit
    from aiida.engine.daemon.client import get_daemon_client
    from ase.build import bulk

    from ..workflows.active_learning import ActiveLearningWorkChain
    from ..workflows.harmonic import HarmonicWorkChain
    from . import reference_model
    from .setup import DEFAULT_PROFILE

    if engine == 'gpaw' and lifetimes != 'none':
        raise click.ClickException('--lifetimes needs the reference model (a DFT call per MD step or fc3 label)')
    loaded = load_profile(profile or DEFAULT_PROFILE, allow_switch=True)
    if not get_daemon_client(loaded.name).is_daemon_running:
        raise click.ClickException('the daemon is not running: run `anharmal setup` first')
    programs = ('train', 'evaluate', 'md', 'label', *(('lifetimes', 'perturbative') if lifetimes != 'none' else ()))
    codes = {name: orm.load_code(f'anharmal-{name}@localhost') for name in programs}
    model = reference_model() if engine == 'nequip-reference' else None
    unit_cell = bulk('CuI', 'zincblende', a=CUI_LATTICE_CONSTANT, cubic=True)
    label_overrides = {}  # the labelling protocol's parameters (GPAW: LCAO dzp in `fast`, PW 400 eV in `moderate`)
    started = time.monotonic()

    click.echo(f'[1/2] force constants of the 2x2x2 CuI supercell (64 atoms), labels by `{engine}`')
    harmonic_builder = HarmonicWorkChain.get_builder_from_protocol(
        codes['label'],
        unit_cell,
        engine=engine,
        protocol=protocol,
        model=model,
        overrides={'supercell_matrix': [2, 2, 2], 'label': label_overrides},
    )
    harmonic = submit(harmonic_builder)
    click.echo(f'  submitted HarmonicWorkChain<{harmonic.pk}>')
    wait(harmonic, 'the harmonic reference', timeout)
    force_constants = harmonic.outputs.force_constants

    overrides = demo_overrides(protocol, temperature, iterations, engine, LIFETIME_CHOICES[lifetimes], exploration)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        orm.StructureData(ase=force_constants.get_supercell()),
        engine=engine,
        protocol=protocol,
        overrides=overrides,
        harmonic=force_constants,
        model=model,
        exploration=exploration,
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
    print_results(node, Path(output))


def print_results(node, output: Path) -> None:
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
    for path in write_plots(node, output):
        click.echo(f'wrote {path}')
    training_set = node.outputs.training_set
    training_set.write_extxyz(output / 'training_set.extxyz')
    click.echo(f'wrote {output / "training_set.extxyz"} ({len(training_set)} frames with origin columns)')
    click.echo('\nInspect it:')
    click.echo(f'  anharmal al status {node.pk}')
    click.echo(f'  anharmal al validate {node.pk}')
    click.echo(f'  anharmal al timing {node.pk}')
    click.echo(f'  anharmal al provenance {node.pk} {len(training_set) - 1}')
    click.echo(f'  verdi process report {node.pk}')
    click.echo(f'  verdi archive create --nodes {node.pk} -- cui_al.aiida')
