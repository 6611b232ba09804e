"""``NEBWorkChain``: the MLIP's minimum-energy path, the ground truth's energies on the same images, and its own path.

1. ``NEBCalculation`` with the ensemble (end points relaxed with the same potential when the
   protocol says so), and, with ``reference_neb``, the labelling engine's own NEB from the same
   end points at the same time;
2. ``LabelWorkChain``: the engine labels every image of the MLIP's path;
3. ``compare_paths``: per image the MLIP's energy and the engine's on the same image, the force
   errors and UCE_F^max; the barriers of the MLIP path, of the engine on that path and of the
   engine's own path.

A path that did not converge within the step cap (exit 315) is still labelled and compared (the
report says so); a NEB without a profile fails the workchain.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from .. import exit_codes
from ..calculations.neb import NEBCalculation
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..functions.neb import compare_paths, path_structures
from ..protocols import ProtocolMixin, namespace_inputs, recursive_merge
from .codes import resolve_codes
from .common import add_options_input, describe, engine_reference, options_message
from .label import LabelWorkChain

#: Ports of the labelling that this workchain fills itself.
LABEL_SETS = ('structures',)


def validate_neb_workchain_inputs(value, ctx=None):
    if 'ensemble' not in value or 'initial' not in value:
        return None
    from ..calculations.neb import validate_inputs as validate_neb

    inputs = {k: value[k] for k in ('ensemble', 'initial', 'final', 'parameters', 'harmonic', 'settings') if k in value}
    message = validate_neb(inputs)
    if message:
        return message
    return options_message(value)


class NEBWorkChain(ProtocolMixin, WorkChain):
    """The MLIP's NEB next to the labelling engine: the same images labelled, and the engine's own path."""

    _protocol_file = 'neb.yaml'
    _namespaces = ('label',)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('code', valid_type=orm.AbstractCode, help='Code of the `anharmal-neb` program.')
        spec.input('ensemble', valid_type=Ensemble, help='The ensemble whose mean drives the band.')
        spec.input('initial', valid_type=orm.StructureData, help='Initial state (e.g. the pristine crystal).')
        spec.input('final', valid_type=orm.StructureData, help='Final state (e.g. the defect).')
        spec.input('parameters', valid_type=orm.Dict, help='NEBCalculation parameters of both NEBs.')
        spec.input('harmonic', valid_type=orm.ArrayData, required=False, help='Harmonic reference for A per image.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='NEBCalculation settings.')
        spec.input(
            'reference_neb',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Also run the labelling engine's own NEB (one engine call per image and step).",
        )
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=LABEL_SETS)
        add_options_input(spec, 'NEBCalculation')
        spec.inputs.validator = validate_neb_workchain_inputs
        spec.outline(cls.run_nebs, cls.inspect_nebs, cls.label_images, cls.inspect_labels, cls.compare)
        spec.output('path', valid_type=orm.TrajectoryData, help="The MLIP's relaxed band.")
        spec.output('images_data', valid_type=orm.ArrayData, help='Per image of the MLIP band (see NEBCalculation).')
        spec.output('summary', valid_type=orm.Dict, help="The MLIP band's barrier, reaction energy, convergence.")
        spec.output('labelled', valid_type=orm.Data, help="The MLIP band's images labelled by the engine.")
        spec.output('comparison', valid_type=orm.Dict, help='Per image and per path, MLIP against the engine.')
        spec.output_namespace('reference', required=False, help="The engine's own NEB: path, images_data, summary.")
        spec.output('reference.path', valid_type=orm.TrajectoryData, required=False)
        spec.output('reference.images_data', valid_type=orm.ArrayData, required=False)
        spec.output('reference.summary', valid_type=orm.Dict, required=False)
        exit_codes.declare(spec, 'ERROR_NEB_FAILED', 'ERROR_LABELLING_FAILED', workchain=True)

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        ensemble: Ensemble | None,
        initial,
        final,
        engine: str = 'nequip-reference',
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        harmonic=None,
        options: dict | None = None,
    ):
        """A builder from a protocol (``fast``, ``moderate``, ``precise``).

        :param codes: ``{'neb', 'label'}`` -> codes. :param initial, final: StructureData or ASE Atoms.
        :param overrides: protocol values to replace (``parameters``, ``reference_neb``, ``label``, ...).
        """
        codes = resolve_codes(codes, required=('neb', 'label'))
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.code = codes['neb']
        if ensemble is not None:  # None: an enclosing loop sets it
            builder.ensemble = ensemble
        for port, structure in (('initial', initial), ('final', final)):
            builder[port] = structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
        builder.parameters = orm.Dict(inputs['parameters'])
        if inputs.get('settings'):
            builder.settings = orm.Dict(inputs['settings'])
        builder.reference_neb = orm.Bool(inputs['reference_neb'])
        if harmonic is not None:
            builder.harmonic = harmonic
        label = LabelWorkChain.get_builder_from_protocol(
            codes['label'], None, engine, protocol, inputs.get('label'), model=model, options=options
        )
        builder.label = namespace_inputs(label, exclude=LABEL_SETS)
        builder.options = recursive_merge(inputs['options'], options or {})
        return builder

    def _neb_inputs(self, driver: dict, label: str) -> dict:
        inputs = {
            'code': self.inputs.code,
            'initial': self.inputs.initial,
            'final': self.inputs.final,
            'parameters': self.inputs.parameters,
            'metadata': {'options': dict(self.inputs.options), 'call_link_label': label},
            **driver,
        }
        for name in ('harmonic', 'settings'):
            if name in self.inputs:
                inputs[name] = self.inputs[name]
        return inputs

    def run_nebs(self):
        running = {'neb': self.submit(NEBCalculation, **self._neb_inputs({'ensemble': self.inputs.ensemble}, 'neb'))}
        if self.inputs.reference_neb.value:
            reference = engine_reference(self.inputs.label)
            running['reference_neb'] = self.submit(
                NEBCalculation, **self._neb_inputs({'reference': reference}, 'reference_neb')
            )
        self.report(f'NEB of the ensemble{" and of the labelling engine" if len(running) > 1 else ""}')
        return ToContext(**running)

    def inspect_nebs(self):
        for name in ('neb', 'reference_neb'):
            node = self.ctx.get(name)
            if node is None:
                continue
            if 'images_data' not in node.outputs:
                return self.exit_codes.ERROR_NEB_FAILED.format(message=f'{name}: {describe(node)}')
            if not node.is_finished_ok:
                self.report(f'{name}: {describe(node)}; its last band is compared anyway')
            outputs = {
                'path': node.outputs.path,
                'images_data': node.outputs.images_data,
                'summary': node.outputs.summary,
            }
            for port, value in outputs.items():
                self.out(port if name == 'neb' else f'reference.{port}', value)
        return None

    def label_images(self):
        inputs = self.exposed_inputs(LabelWorkChain, 'label')
        inputs['structures'] = path_structures(self.ctx.neb.outputs.path)
        inputs['metadata'] = {'call_link_label': 'label_images'}
        return ToContext(labelling=self.submit(LabelWorkChain, **inputs))

    def inspect_labels(self):
        node = self.ctx.labelling
        if 'labelled' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(message=describe(node))
        self.out('labelled', node.outputs.labelled)
        return None

    def compare(self):
        reference = {}
        if 'reference_neb' in self.ctx:
            outputs = self.ctx.reference_neb.outputs
            reference = {'reference_summary': outputs.summary, 'reference_images_data': outputs.images_data}
        comparison = compare_paths(self.ctx.neb.outputs.images_data, self.ctx.labelling.outputs.labelled, **reference)
        self.out('comparison', comparison)
        mlip, engine = comparison['mlip'], comparison.get('engine_on_mlip_path', {})
        line = f'barrier: MLIP {mlip["barrier"]:.3f} eV'
        if engine:
            line += f', engine on the MLIP path {engine["barrier"]:.3f} eV'
        if 'engine_path' in comparison:
            line += f", engine's own path {comparison['engine_path']['barrier']:.3f} eV"
        self.report(f'{line}; max UCE_F^max along the path {1000 * comparison["max_uce_force_max"]:.0f} meV/A')
