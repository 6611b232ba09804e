"""MD workchains: a restart wrapper around one run, and an exploration of several runs in parallel."""

from __future__ import annotations

import itertools

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, WorkChain, process_handler, while_

from .. import exit_codes
from ..calculations.md import MDCalculation
from ..calculations.md import validate_inputs as validate_md_inputs
from ..core.md.loop import check_bias_settings
from ..core.md.stop_rules import check_guard_settings, check_trigger_settings, stop_rules
from ..data.ensemble import Ensemble
from ..ports import dict_input
from ..protocols import ProtocolMixin, recursive_merge
from .codes import code_or_setup
from .common import add_options_input, describe, options_message


def stopped_by_rule(node) -> bool:
    """Whether an MDCalculation was ended by a registered guard or stop trigger (read at call time)."""
    return node.exit_status in {rule.exit_status for rule in stop_rules()}


def run_order(trajectory: orm.TrajectoryData) -> tuple[float, int]:
    """(temperature, seed) of the MD run that made ``trajectory``: runs sort by these, not by their labels."""
    parameters = trajectory.creator.inputs.parameters.get_dict()
    return float(parameters['temperature']), int(parameters['seed'])


def ended_normally(trajectory: orm.TrajectoryData) -> bool:
    """Whether the run of ``trajectory`` reached its last step (its last frame did not trip a stop rule)."""
    return stop_reason(trajectory) == 'finished'


def stop_reason(trajectory: orm.TrajectoryData) -> str:
    """How the run of ``trajectory`` ended: ``finished``, or the reason of the guard or stop trigger that ended it."""
    node = trajectory.creator
    if node is not None and node.is_finished_ok:
        return 'finished'
    status = None if node is None else node.exit_status
    return next((rule.reason for rule in stop_rules() if rule.exit_status == status), f'exit {status}')


def run_ends(trajectories: dict, frames: dict) -> list[dict]:
    """What the start policies (:mod:`aiida_anharmal.core.learning.exploration_start`) know of each run: label, whether
    it ended normally (a guard-tripped run ends on the frame that tripped it), A of its last frame, T, seed."""
    ends = []
    for label, trajectory in trajectories.items():
        temperature, seed = run_order(trajectory)
        arrays = frames[label]
        a = arrays.get_array('anharmonicity') if 'anharmonicity' in arrays.get_arraynames() else [float('nan')]
        ends.append(
            {
                'label': label,
                'ended_normally': ended_normally(trajectory),
                'anharmonicity': float(a[-1]),
                'temperature': temperature,
                'seed': seed,
            }
        )
    return ends


class MDBaseWorkChain(BaseRestartWorkChain):
    """One MD run under :class:`MDCalculation`, continued after interruptions.

    ``handle_interrupted``: a run stopped by the walltime, a kill or its time budget is continued
    from its checkpoint (``parent_folder``), so the output trajectory is the whole run.
    ``handle_guard_stop``: a run stopped by a guard ends here with every frame so far as outputs
    (the reason is the exit status of the last MDCalculation); it is not retried (the same dynamics would meet the same wall).
    """

    _process_class = MDCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(MDCalculation, namespace='md')
        spec.expose_outputs(MDCalculation)
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)
        exit_codes.declare(spec, 'ERROR_EXPLORATION_FAILED', workchain=True)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(MDCalculation, 'md'))

    @process_handler(priority=500, exit_codes=[MDCalculation.exit_codes.ERROR_INTERRUPTED])
    def handle_interrupted(self, node):
        """Continue the trajectory from the checkpoint of the interrupted run."""
        self.ctx.inputs.parent_folder = node.outputs.remote_folder
        steps = node.outputs.frames.get_array('step')
        self.report(f'{node.process_label}<{node.pk}> stopped at step {int(steps[-1])}: continuing from its checkpoint')
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=400)
    def handle_guard_stop(self, node):
        """A guard or stop trigger ended the run: keep its frames as the result."""
        if not stopped_by_rule(node):
            return None
        self.report(f'{node.process_label}<{node.pk}> stopped by a stop rule: {node.exit_message}')
        self.ctx.is_finished = True
        return ProcessHandlerReport(do_break=True)

    def results(self):
        node = self.ctx.children[self.ctx.iteration - 1]
        if 'frames' not in node.outputs:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=f'{describe(node)} produced no frame')
        return super().results()


#: Inputs of an exploration handed to every one of its MD runs as they are.
EXPLORATION_MD_KEYS = ('guards', 'harmonic', 'settings', 'bias', 'trigger')
#: What ``exploration`` of :meth:`ExplorationWorkChain.get_builder_from_protocol` can be.
EXPLORATION_KINDS = ('md', 'hal')


def runs_message(temperatures, seeds, where: str = '') -> str | None:
    """Why the runs of ``temperatures`` x ``seeds`` cannot run (none, a temperature below 1 K, a seed that is not a
    non-negative integer, a repeated seed), else ``None``."""
    from ..core.structures.checks import check_seed, check_temperature

    if not temperatures or not seeds:
        return f'`{where}temperatures` and `{where}seeds` must each hold at least one value'
    try:
        for t in temperatures:
            check_temperature(f'{where}temperatures', t)
        for s in seeds:
            check_seed(f'{where}seeds', s)
    except ValueError as exc:
        return str(exc)
    if len(set(seeds)) != len(seeds):
        return f'duplicate seeds {seeds}: those runs would be identical'
    return None


def temperature_label(temperature: float) -> str:
    """A link-label-safe name of a temperature: ``300``, ``300p5`` (never an exponent)."""
    value = float(temperature)
    if value == round(value):
        return str(round(value))
    return f'{value:.6f}'.rstrip('0').replace('.', 'p')


def validate_exploration_inputs(value, ctx=None):
    if 'ensemble' not in value or 'structure' not in value:
        return None
    temperatures = value['temperatures'].get_list() if 'temperatures' in value else []
    seeds = value['seeds'].get_list() if 'seeds' in value else []
    message = runs_message(temperatures, seeds)
    if message:
        return message
    parameters = dict_input(value, 'parameters')
    md = {
        'ensemble': value['ensemble'],
        'structure': value['structure'],
        'code': value.get('code'),
        'parameters': orm.Dict({**parameters, 'temperature': float(temperatures[0]), 'seed': int(seeds[0])}),
    }
    for key in EXPLORATION_MD_KEYS:
        if key in value:
            md[key] = value[key]
    message = validate_md_inputs(md)
    if message:
        return message
    return options_message(value)


class ExplorationWorkChain(ProtocolMixin, WorkChain):
    """Explore with several independent MD runs in parallel: every temperature x every seed.

    Each run is an :class:`MDBaseWorkChain` named ``T{temperature}_seed{seed}``; its trajectory
    and per-frame arrays are outputs under that name. A run stopped by a guard still counts: its
    frames up to the stop are the most informative ones.
    """

    _protocol_file = 'explore.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('ensemble', valid_type=Ensemble, help='Ensemble whose mean forces drive the MD.')
        spec.input('structure', valid_type=orm.StructureData, help='Start structure of every run.')
        spec.input('temperatures', valid_type=orm.List, help='Temperatures (K).')
        spec.input('seeds', valid_type=orm.List, default=lambda: orm.List([0]), help='Random seeds.')
        spec.input('parameters', valid_type=orm.Dict, required=False, help='MD settings shared by the runs.')
        spec.input('guards', valid_type=orm.Dict, required=False, help='See `MDCalculation.guards`.')
        spec.input('harmonic', valid_type=orm.ArrayData, required=False, help='Harmonic reference for A, UCE_A.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='See `MDCalculation.settings`.')
        spec.input('bias', valid_type=orm.Dict, required=False, help='See `MDCalculation.bias` (hyperactive learning).')
        spec.input('trigger', valid_type=orm.Dict, required=False, help='See `MDCalculation.trigger`.')
        spec.input('code', valid_type=orm.AbstractCode, help='Code of the `anharmal-md` program.')
        spec.input('max_restarts', valid_type=orm.Int, default=lambda: orm.Int(3), help='Calculations per run.')
        add_options_input(spec, 'MDCalculation')
        spec.inputs.validator = validate_exploration_inputs
        spec.outline(cls.run_md, cls.collect)
        spec.output_namespace('trajectories', valid_type=orm.TrajectoryData, dynamic=True)
        spec.output_namespace('frames', valid_type=orm.ArrayData, dynamic=True)
        exit_codes.declare(spec, 'ERROR_EXPLORATION_FAILED', workchain=True)

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        ensemble=None,
        structure=None,
        protocol=None,
        overrides=None,
        harmonic=None,
        options=None,
        exploration: str = 'md',
    ):
        """A builder from a protocol (``fast``, ``moderate``, ``precise``); ``structure`` may be ASE Atoms.

        ``exploration``: ``md`` (plain MD on the ensemble mean) or ``hal`` (hyperactive learning: the
        protocol's ``hal.bias`` and ``hal.trigger`` become the ``bias`` and ``trigger`` of every run). A
        ``bias`` or ``trigger`` override is used as it is, with either.

        ``ensemble`` and ``structure`` may be ``None`` when an enclosing loop supplies them. The guards
        are the protocol's thresholds over the defaults of the guard classes; unknown override keys
        are refused; ``options`` are merged (recursively) into the protocol's.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        if ensemble is not None:
            builder.ensemble = ensemble
        if structure is not None:
            builder.structure = (
                structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
            )
        builder.temperatures = orm.List(list(inputs['temperatures']))
        builder.seeds = orm.List(list(inputs['seeds']))
        builder.parameters = orm.Dict(inputs['parameters'])
        builder.guards = orm.Dict(check_guard_settings(inputs['guards'] or {}))
        if inputs.get('settings'):
            builder.settings = orm.Dict(inputs['settings'])
        if exploration not in EXPLORATION_KINDS:
            raise ValueError(f'`exploration` must be one of {EXPLORATION_KINDS}, not {exploration!r}')
        for name, check in (('bias', check_bias_settings), ('trigger', check_trigger_settings)):
            if inputs.get(name):  # as given: checked when submitted
                builder[name] = orm.Dict(inputs[name])
            elif exploration == 'hal':
                builder[name] = orm.Dict(check(inputs['hal'][name]))
        builder.code = code_or_setup(code, 'md')
        builder.max_restarts = orm.Int(inputs['max_restarts'])
        builder.options = recursive_merge(inputs['options'], options or {})
        if harmonic is not None:
            builder.harmonic = harmonic
        return builder

    @staticmethod
    def run_label(temperature, seed) -> str:
        return f'T{temperature_label(temperature)}_seed{seed}'

    def run_md(self):
        parameters = dict_input(self.inputs, 'parameters')
        self.ctx.runs = []
        for temperature, seed in itertools.product(self.inputs.temperatures.get_list(), self.inputs.seeds.get_list()):
            label = self.run_label(temperature, seed)
            md = {
                'ensemble': self.inputs.ensemble,
                'structure': self.inputs.structure,
                'code': self.inputs.code,
                'parameters': orm.Dict({**parameters, 'temperature': float(temperature), 'seed': int(seed)}),
                'metadata': {'options': dict(self.inputs.options)},
            }
            for key in EXPLORATION_MD_KEYS:
                if key in self.inputs:
                    md[key] = self.inputs[key]
            node = self.submit(
                MDBaseWorkChain, md=md, max_iterations=self.inputs.max_restarts, metadata={'call_link_label': label}
            )
            self.to_context(**{label: node})
            self.ctx.runs.append(label)
        self.report(f'{len(self.ctx.runs)} MD run(s): {", ".join(self.ctx.runs)}')

    def collect(self):
        failed = []
        for label in self.ctx.runs:
            node = self.ctx[label]
            if 'trajectory' not in node.outputs:
                failed.append(f'{label} <{node.pk}> ({node.exit_status})')
                continue
            self.out(f'trajectories.{label}', node.outputs.trajectory)
            self.out(f'frames.{label}', node.outputs.frames)
            calcs = sorted((c for c in node.called if c.process_class is MDCalculation), key=lambda c: c.ctime)
            last = calcs[-1] if calcs else None
            why = 'finished' if last is None or last.is_finished_ok else f'stopped: {last.exit_message}'
            self.report(f'{label}: {node.outputs.trajectory.numsteps} frame(s), {why}')
        if len(failed) == len(self.ctx.runs):
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(
                message=f'no MD run produced frames: {", ".join(failed)}'
            )
        for run in failed:
            self.report(f'run {run} produced no frames')
        return None
