"""Labelling workchains: a restart wrapper around one batch, and a fan-out over many batches."""

from __future__ import annotations

import math

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, WorkChain, process_handler, while_

from .. import exit_codes
from ..calculations.label import LabelCalculation
from ..calculations.label import validate_inputs as validate_label_inputs
from ..core.labelling.labellers import get_labeller
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..functions.datasets import collect_labels
from ..ports import dict_input
from ..protocols import ProtocolMixin, recursive_merge
from .codes import code_or_setup
from .common import add_options_input, options_message

NOTHING_LABELLED = 'no structure could be labelled; see the `excluded` output for the reasons'

#: Failure reasons a new attempt can fix; any other reason excludes the structure at once.
RETRYABLE = ('scf_not_converged', 'not_attempted')


class LabelBaseWorkChain(BaseRestartWorkChain):
    """Label one batch with :class:`LabelCalculation`, restarting what can be fixed.

    After each calculation the structures that succeeded are kept; only those still to do are
    sent again. Handlers: ``handle_scf_not_converged`` retries with more SCF iterations (then a
    gentler mixer); ``handle_interrupted`` resubmits what a killed, timed-out or budget-limited
    job did not reach. A structure that still fails after ``max_iterations`` attempts, or fails
    with an error no handler fixes, is listed in ``excluded`` with its reason.
    """

    _process_class = LabelCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(LabelCalculation, namespace='label')
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.output('labelled', valid_type=TrainingSet, required=False, help='Every structure that was labelled.')
        spec.output('excluded', valid_type=orm.Dict, help='Structures not labelled: index -> reason, attempts.')
        exit_codes.declare(spec, 'ERROR_LABELLING_FAILED', workchain=True)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LabelCalculation, 'label'))
        structures = self.ctx.inputs.structures
        indices = self.ctx.inputs.indices.get_list() if 'indices' in self.ctx.inputs else range(len(structures))
        self.ctx.remaining = list(indices)
        self.ctx.scf_retries = 0

    def should_run_process(self):
        return super().should_run_process() and bool(self.ctx.remaining)

    def run_process(self):
        self.ctx.inputs.indices = orm.List(list=self.ctx.remaining)
        return super().run_process()

    def inspect_process(self):
        node = self.ctx.children[self.ctx.iteration - 1]
        if 'failures' in node.outputs:
            failures = node.outputs.failures.get_dict()
            self.ctx.remaining = [int(i) for i, f in failures.items() if f['reason'] in RETRYABLE]
        elif node.is_finished_ok:
            self.ctx.remaining = []
        if node.is_finished and not self.ctx.remaining:
            # Everything labelled, or what is left cannot be fixed (engine error, setup failure).
            self.ctx.is_finished = True
            return None
        if self.ctx.iteration >= self.inputs.max_iterations.value and node.is_finished:
            self.report(
                f'{len(self.ctx.remaining)} structure(s) still unlabelled after {self.ctx.iteration} attempts: '
                'excluding them'
            )
            self.ctx.is_finished = True
            return None
        return super().inspect_process()

    @process_handler(
        priority=500,
        exit_codes=[LabelCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED, LabelCalculation.exit_codes.ERROR_INTERRUPTED],
    )
    def handle_scf_not_converged(self, node):
        """Retry the unconverged structures with the engine's SCF fix (more iterations, gentler mixing)."""
        failures = dict_input(node.outputs, 'failures')
        n_scf = sum(f['reason'] == 'scf_not_converged' for f in failures.values())
        if not n_scf:
            return None
        self.ctx.scf_retries += 1
        labeller = get_labeller(self.ctx.inputs.engine.value)
        old = dict_input(self.ctx.inputs, 'parameters')
        new = labeller.scf_retry_parameters(old, self.ctx.scf_retries)
        if new is None:
            return None
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        self.ctx.inputs.parameters = orm.Dict(new)
        self.report(f'SCF not converged for {n_scf} structure(s): retrying them with {changed}')
        return ProcessHandlerReport(do_break=True)

    @process_handler(
        priority=400,
        exit_codes=[
            LabelCalculation.exit_codes.ERROR_INTERRUPTED,
            LabelCalculation.exit_codes.ERROR_NO_OUTPUT,
            LabelCalculation.exit_codes.ERROR_PROGRAM_FAILED,
        ],
    )
    def handle_interrupted(self, node):
        """Resubmit the structures a killed, timed-out, budget-limited or broken-off job did not reach."""
        self.report(
            f'{node.process_label}<{node.pk}> stopped early: resubmitting {len(self.ctx.remaining)} structure(s)'
        )
        return ProcessHandlerReport(do_break=True)

    def results(self):
        parts = {}
        for k, child in enumerate(self.ctx.children):
            for name in ('labelled', 'failures'):
                if name in child.outputs:
                    parts[f'{name}_{k:03d}'] = child.outputs[name]
        collected = collect_labels(source=self.ctx.inputs.structures, **parts)
        self.out('excluded', collected['excluded'])
        n_excluded = len(collected['excluded'].get_dict())
        if 'labelled' not in collected:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(message=NOTHING_LABELLED)
        self.out('labelled', collected['labelled'])
        self.report(
            f'labelled {len(collected["labelled"])} structure(s), excluded {n_excluded}, '
            f'in {self.ctx.iteration} calculation(s)'
        )
        return None


def validate_label_workchain_inputs(value, ctx=None):
    """Refuse bad input before any job starts: engine, species, geometry, batch size, resources."""
    if 'structures' not in value or 'engine' not in value:
        return None
    message = validate_label_inputs(value)
    if message:
        return message
    if 'batch_size' in value and value['batch_size'].value < 1:
        return f'`batch_size` must be at least 1, not {value["batch_size"].value}'
    if 'max_restarts' in value and value['max_restarts'].value < 1:
        return f'`max_restarts` must be at least 1, not {value["max_restarts"].value}'
    return options_message(value)


class LabelWorkChain(ProtocolMixin, WorkChain):
    """Label a TrainingSet: batches run in parallel, each under :class:`LabelBaseWorkChain`.

    Outputs one labelled TrainingSet (in the order of the input, without the structures that
    could not be labelled) and ``excluded``: every structure left out, with its reason.
    """

    _protocol_file = 'label.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structures', valid_type=TrainingSet, help='Structures to label.')
        spec.input(
            'engine',
            valid_type=orm.Str,
            help='Labelling engine: `gpaw`, `emt`, `tersoff`, `nequip-reference` or `ensemble`.',
        )
        spec.input('parameters', valid_type=orm.Dict, required=False, help='Engine parameters.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='See `LabelCalculation.settings`.')
        spec.input('model', valid_type=MLIPModel, required=False, help='Reference model of `nequip-reference`.')
        spec.input('ensemble', valid_type=Ensemble, required=False, help='The ensemble of engine `ensemble`.')
        spec.input('code', valid_type=orm.AbstractCode, help='Code of the `anharmal-label` program.')
        spec.input('batch_size', valid_type=orm.Int, default=lambda: orm.Int(10), help='Structures per job.')
        spec.input(
            'max_restarts',
            valid_type=orm.Int,
            default=lambda: orm.Int(4),
            help='Maximum number of calculations per batch (first attempt included).',
        )
        add_options_input(spec, 'LabelCalculation')
        spec.inputs.validator = validate_label_workchain_inputs
        spec.outline(cls.run_batches, cls.collect)
        spec.output('labelled', valid_type=TrainingSet, required=False, help='All labelled structures.')
        spec.output('excluded', valid_type=orm.Dict, help='Structures not labelled: index -> reason, attempts.')
        exit_codes.declare(spec, 'ERROR_LABELLING_FAILED', workchain=True)

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        structures: TrainingSet | None = None,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        options: dict | None = None,
        ensemble: Ensemble | None = None,
    ):
        """Return a builder filled from a protocol (``fast``, ``moderate``, ``precise``).

        :param structures: the structures to label (``None`` when an enclosing workchain supplies them).
        :param overrides: nested dict of protocol values to replace (e.g.
            ``{'engines': {'gpaw': {'kpts': {'size': [4, 4, 4]}}}, 'batch_size': 5}``); unknown keys are refused.
        :param options: scheduler options merged (recursively) into the protocol's ``options``.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if engine not in inputs['engines']:
            raise ValueError(f'no protocol parameters for engine {engine!r}; known: {", ".join(inputs["engines"])}')
        builder = cls.get_builder()
        if structures is not None:
            builder.structures = structures
        builder.engine = orm.Str(engine)
        builder.parameters = orm.Dict(inputs['engines'][engine])
        builder.settings = orm.Dict(inputs.get('settings', {}))
        builder.code = code_or_setup(code, 'label')
        builder.batch_size = orm.Int(inputs['batch_size'])
        builder.max_restarts = orm.Int(inputs['max_restarts'])
        builder.options = recursive_merge(inputs['options'], options or {})
        if model is not None:
            builder.model = model
        if ensemble is not None:
            builder.ensemble = ensemble
        return builder

    def run_batches(self):
        n = len(self.inputs.structures)
        size = self.inputs.batch_size.value
        n_batches = math.ceil(n / size)
        for b in range(n_batches):
            inputs = {
                'label': {
                    'structures': self.inputs.structures,
                    'indices': orm.List(list=list(range(b * size, min(n, (b + 1) * size)))),
                    'engine': self.inputs.engine,
                    'code': self.inputs.code,
                    'metadata': {'options': dict(self.inputs.options)},
                },
                'max_iterations': self.inputs.max_restarts,
                'metadata': {'call_link_label': f'batch_{b:03d}'},
            }
            for name in ('parameters', 'settings', 'model', 'ensemble'):
                if name in self.inputs:
                    inputs['label'][name] = self.inputs[name]
            node = self.submit(LabelBaseWorkChain, **inputs)
            self.to_context(**{f'batch_{b:03d}': node})
        self.ctx.n_batches = n_batches
        self.report(f'labelling {n} structure(s) with `{self.inputs.engine.value}` in {n_batches} batch(es)')

    def collect(self):
        batches = [self.ctx[f'batch_{b:03d}'] for b in range(self.ctx.n_batches)]
        broken = [b.pk for b in batches if 'excluded' not in b.outputs]
        if broken:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(
                message=f'batch workchain(s) {broken} failed without output'
            )
        parts = {}
        for k, batch in enumerate(batches):
            parts[f'excluded_{k:03d}'] = batch.outputs.excluded
            if 'labelled' in batch.outputs:
                parts[f'labelled_{k:03d}'] = batch.outputs.labelled
        collected = collect_labels(source=self.inputs.structures, **parts)
        self.out('excluded', collected['excluded'])
        excluded = collected['excluded'].get_dict()
        for index, why in excluded.items():
            self.report(f'structure {index} excluded: {why["reason"]} ({why.get("message", "")})')
        if 'labelled' not in collected:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(message=NOTHING_LABELLED)
        self.out('labelled', collected['labelled'])
        self.report(f'labelled {len(collected["labelled"])} structure(s); excluded {len(excluded)}')
        return None
