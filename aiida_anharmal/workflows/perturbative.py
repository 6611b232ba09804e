"""``PerturbativeWorkChain``: fc3 displacements -> labelled forces -> phono3py RTA linewidths, lifetimes and kappa.

The perturbative counterpart of :class:`~aiida_anharmal.workflows.lifetimes.LifetimesWorkChain`, on
the same harmonic reference: :func:`~aiida_anharmal.functions.perturbative.fc3_displacements`
makes phono3py's displaced supercells of the reference's crystal; a :class:`LabelWorkChain`
labels them with any engine (the ground truth, or engine ``ensemble`` for an ensemble's own
third-order force constants); a :class:`~aiida_anharmal.calculations.PerturbativeCalculation`
builds fc3, takes fc2 from the reference and computes the linewidths on a mesh.
"""

from __future__ import annotations

from types import SimpleNamespace

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain

from .. import exit_codes
from ..calculations.label import check_label_inputs
from ..calculations.perturbative import PARAMETER_DEFAULTS, PerturbativeCalculation, parameters_problem
from ..data.ensemble import Ensemble
from ..data.force_constants import ForceConstants
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..functions.perturbative import fc3_displacements, fc3_parameters_problem
from ..ports import dict_input
from ..protocols import ProtocolMixin, namespace_inputs, recursive_merge
from .codes import resolve_codes
from .common import add_options_input, describe, options_message
from .label import LabelWorkChain


def validate_inputs(value, ctx=None):
    """Refuse bad input before anything runs: displacement and analysis keys, the labelling request, options."""
    if 'displacements' in value:
        message = fc3_parameters_problem(value['displacements'].get_dict())
        if message:
            return f'`displacements`: {message}'
    analysis = dict_input(value, 'analysis')
    unknown = sorted(set(analysis) - set(PARAMETER_DEFAULTS))
    if unknown:
        return f'unknown `analysis` key(s) {unknown}; allowed: {sorted(PARAMETER_DEFAULTS)}'
    displacements = dict_input(value, 'displacements')
    if 'harmonic' in value:  # the calculation's own check, on what the displacements will be
        from ..core.phonons.harmonic import supercell_matrix_3x3

        harmonic_matrix = value['harmonic'].supercell_matrix
        matrix = displacements.get('supercell_matrix')
        planned = SimpleNamespace(
            n_random=displacements.get('n_random'),
            supercell_matrix=harmonic_matrix if matrix is None else supercell_matrix_3x3(matrix),
            phonon_supercell_matrix=harmonic_matrix,
        )
        message = parameters_problem(analysis, planned)
        if message:
            return f'`analysis`: {message}'
    label = value.get('label') or {}
    if 'harmonic' in value and 'engine' in label:
        message = check_label_inputs(label, [value['harmonic'].get_supercell()])
        if message:
            return f'labelling: {message}'
        return options_message(label, 'label.options') or options_message(value)
    return None


class PerturbativeWorkChain(ProtocolMixin, WorkChain):
    """Perturbative (RTA) phonon lifetimes and kappa from third-order force constants labelled by any engine."""

    _protocol_file = 'perturbative.yaml'
    _namespaces = ('label',)
    _open_keys = (*ProtocolMixin._open_keys, 'displacements', 'analysis')  # checked by the validators

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('harmonic', valid_type=ForceConstants, help='The harmonic reference: crystal, supercell, fc2.')
        spec.input(
            'displacements',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='fc3 displacements: `distance`, `cutoff_pair_distance`, `n_random`, `seed`, `supercell_matrix`.',
        )
        spec.input(
            'analysis',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='`PerturbativeCalculation` parameters: `mesh`, `temperatures`, `fc_calculator`, `fc2`.',
        )
        spec.input('code', valid_type=orm.AbstractCode, help='Code of `anharmal-perturbative`.')
        spec.expose_inputs(
            LabelWorkChain,
            namespace='label',
            exclude=('structures',),
            namespace_options={'help': 'Inputs of the LabelWorkChain that computes the forces.'},
        )
        add_options_input(spec, 'PerturbativeCalculation')
        spec.inputs.validator = validate_inputs
        spec.outline(cls.make_displacements, cls.run_labelling, cls.inspect_labelling, cls.analyse, cls.results)
        spec.output('supercells', valid_type=TrainingSet, help='The fc3 supercells, labelled.')
        spec.output('fc3_displacements', valid_type=orm.Dict, help='The fc3 displacement set.')
        spec.output(
            'modes', valid_type=orm.ArrayData, help='Per mode at the first temperature (`PerturbativeCalculation`).'
        )
        spec.output('rta', valid_type=orm.ArrayData, help="phono3py's RTA arrays for every temperature.")
        spec.output('summary', valid_type=orm.Dict, help='kappa, Ioffe-Regel fraction, median lifetimes.')
        exit_codes.declare(
            spec, 'ERROR_LABELLING_FAILED', 'ERROR_TOO_FEW_LABELLED', 'ERROR_LIFETIMES_FAILED', workchain=True
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        harmonic: ForceConstants,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        ensemble: Ensemble | None = None,
        options: dict | None = None,
    ):
        """A builder from a protocol (``fast``, ``moderate``, ``precise``).

        :param codes: ``{'label', 'perturbative'}`` -> codes.
        :param engine: labelling engine of the fc3 supercells (``ensemble`` with ``ensemble`` for a model's own).
        :param overrides: e.g. ``{'displacements': {'cutoff_pair_distance': 5.0}, 'analysis': {'mesh': [9, 9, 9]},
            'label': {'batch_size': 20}}``; ``label`` overrides the labelling protocol named by ``label_protocol``.
        """
        codes = resolve_codes(codes, required=('label', 'perturbative'))
        inputs = cls.get_protocol_inputs(protocol, overrides)
        label = LabelWorkChain.get_builder_from_protocol(
            codes['label'],
            None,
            engine,
            inputs['label_protocol'],
            inputs.get('label'),
            model=model,
            options=options,
            ensemble=ensemble,
        )
        builder = cls.get_builder()
        builder.harmonic = harmonic
        builder.code = codes['perturbative']
        builder.displacements = orm.Dict(inputs['displacements'])
        builder.analysis = orm.Dict(inputs['analysis'])
        builder.label = namespace_inputs(label, exclude=('structures',))
        builder.options = recursive_merge(inputs['options'], options or {})
        return builder

    def make_displacements(self):
        results = fc3_displacements(
            self.inputs.harmonic, self.inputs.displacements, metadata={'call_link_label': 'fc3_displacements'}
        )
        self.ctx.supercells = results['supercells']
        self.ctx.fc3_displacements = results['fc3_displacements']
        self.out('fc3_displacements', results['fc3_displacements'])
        self.report(f'{len(self.ctx.supercells)} fc3 supercell(s) of {self.inputs.harmonic.n_atoms} atoms to label')

    def run_labelling(self):
        inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, 'label'))
        inputs.structures = self.ctx.supercells
        inputs.metadata = {'call_link_label': 'label'}
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'labelling the fc3 supercells with `{inputs.engine.value}` in {node.process_label}<{node.pk}>')
        return ToContext(label=node)

    def inspect_labelling(self):
        node = self.ctx.label
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(message=describe(node))
        excluded = node.outputs.excluded.get_dict()
        if excluded:
            which = ', '.join(sorted(excluded, key=int))
            message = (
                f'{len(excluded)} of {len(self.ctx.supercells)} fc3 supercell(s) could not be labelled ({which}); '
                'fc3 needs every one of them'
            )
            return self.exit_codes.ERROR_TOO_FEW_LABELLED.format(message=message)
        self.out('supercells', node.outputs.labelled)
        return None

    def analyse(self):
        try:  # the calculation's validator checks the labels against the supercells they claim to be
            calculation = self.submit(
                PerturbativeCalculation,
                code=self.inputs.code,
                harmonic=self.inputs.harmonic,
                fc3_displacements=self.ctx.fc3_displacements,
                labelled=self.ctx.label.outputs.labelled,
                parameters=self.inputs.analysis,
                metadata={'options': dict(self.inputs.options), 'call_link_label': 'perturbative'},
            )
        except ValueError as exc:
            return self.exit_codes.ERROR_LIFETIMES_FAILED.format(message=str(exc))
        return ToContext(perturbative=calculation)

    def results(self):
        node = self.ctx.perturbative
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LIFETIMES_FAILED.format(message=describe(node))
        for name in ('modes', 'rta', 'summary'):
            self.out(name, node.outputs[name])
        summary = node.outputs.summary
        kappa = summary['kappa'][f'{summary["temperature"]:g}']
        median = summary['median_tau']
        self.report(
            f'{summary["modes"]} modes on a {"x".join(map(str, summary["mesh"]))} mesh at {summary["temperature"]:g} K: '
            f'median tau {"n/a" if median is None else f"{median:.2f} ps"}, below the Ioffe-Regel limit '
            f'{100 * summary["ioffe_regel_fraction"]:.0f} %, kappa_xx {kappa["xx"]:.3g} W/(m K)'
        )
        return None
