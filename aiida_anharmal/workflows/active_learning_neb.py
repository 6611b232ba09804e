"""The NEB validation of the AL loop: the path from the crystal to a defect with every iteration's ensemble.

``ActiveLearningWorkChain`` inherits these steps. When the ``neb`` namespace holds end points
(``initial``, ``final``; the builder takes them from the ``neb`` override), the labelling engine's own
NEB starts with the loop (``start_reference_neb``: it needs nothing the loop learns, and costs one
engine call per image and optimizer step; with a test MD, once the test set is made), and every new ensemble of the loop (the initial one
included) gets a :class:`~aiida_anharmal.workflows.neb.NEBWorkChain` with the loop's labelling engine,
which also labels the images of the ensemble's path. The NEBs run alongside the loop; at the end the
loop waits for them and outputs each comparison as ``iterations.iter_NN.neb`` and the engine's own path
as ``neb_reference``.

The NEB is validation only: it feeds nothing to the loop, unless ``neb.acquire`` is true. Then each
iteration waits for its ensemble's NEB before the acquisition, and the uncertain images of that path
(drawn with the acquisition's P(UCE), already labelled by the engine for the comparison) join the
training set with the reason ``neb_image``: a priori knowledge of the event, recorded as such
(:func:`~aiida_anharmal.functions.neb.uncertain_images`).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from ..calculations.neb import NEBCalculation
from .common import describe, engine_reference
from .label import LabelWorkChain
from .neb import NEBWorkChain

#: Ports of the NEB that the loop fills itself.
NEB_LOOP_SETS = ('ensemble', 'label', 'harmonic', 'reference_neb')


def check_neb_inputs(value) -> str | None:
    """Refuse an NEB validation the loop cannot run (before any job)."""
    neb = value.get('neb', {})
    if not neb or (set(neb) == {'acquire'} and not neb['acquire'].value):
        return None
    missing = sorted({'initial', 'final', 'code', 'parameters'} - set(neb))
    if missing:
        return f'the NEB validation needs {missing} in the `neb` namespace'
    from ..calculations.neb import validate_inputs as validate_neb

    inputs = {k: neb[k] for k in ('initial', 'final', 'parameters', 'settings') if k in neb}
    if 'initial_ensemble' in value:
        inputs['ensemble'] = value['initial_ensemble']
    else:  # the ensemble does not exist yet: check the end points with the labelling engine as the driver
        inputs['reference'] = engine_reference(value['label'])
        known = set(value['structure'].get_symbols_set()) if 'structure' in value else None
        unknown = sorted(set(neb['initial'].get_symbols_set()) - known) if known is not None else []
        if unknown:
            return f"NEB validation: elements {unknown} of the end points are not in the loop's structure"
    message = validate_neb(inputs)
    return f'NEB validation: {message}' if message else None


class NEBSteps:
    """The steps of the loop that run the NEB validation (mixed into ``ActiveLearningWorkChain``)."""

    @classmethod
    def define_neb(cls, spec):
        spec.expose_inputs(
            NEBWorkChain,
            namespace='neb',
            exclude=NEB_LOOP_SETS,
            namespace_options={
                'required': False,
                'populate_defaults': False,
                'help': 'NEB validation with every ensemble of the loop: give `initial` and `final` (e.g. the '
                'crystal and a defect) to run it.',
            },
        )
        spec.input(
            'neb.acquire',
            valid_type=orm.Bool,
            required=False,
            help="Off by default. True: the uncertain images of each iteration's path join the training set "
            '(reason `neb_image`: a priori knowledge of the event).',
        )
        spec.inputs['neb'].validator = None  # checked with the loop's own inputs
        spec.output_namespace('neb_reference', required=False, help="The labelling engine's own NEB.")
        spec.output('neb_reference.path', valid_type=orm.TrajectoryData, required=False)
        spec.output('neb_reference.images_data', valid_type=orm.ArrayData, required=False)
        spec.output('neb_reference.summary', valid_type=orm.Dict, required=False)

    def should_run_neb(self):
        return 'initial' in self.inputs.get('neb', {})

    def acquires_neb(self) -> bool:
        return self.should_run_neb() and bool(self.inputs.neb.get('acquire', False))

    def _neb_calculation_inputs(self, driver: dict, label: str) -> dict:
        neb = self.inputs.neb
        inputs = {
            'code': neb.code,
            'initial': neb.initial,
            'final': neb.final,
            'parameters': neb.parameters,
            'metadata': {'options': dict(neb.options), 'call_link_label': label},
            **driver,
        }
        if 'settings' in neb:
            inputs['settings'] = neb.settings
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        return inputs

    def start_reference_neb(self):
        """Submit the labelling engine's own NEB now, without waiting: it needs nothing the loop learns."""
        driver = {'reference': engine_reference(self.inputs.label)}
        node = self.submit(NEBCalculation, **self._neb_calculation_inputs(driver, 'neb_reference'))
        self.ctx.neb_reference_pk = node.pk
        self.report(f"the labelling engine's own NEB runs alongside the loop: NEBCalculation<{node.pk}>")

    def start_neb(self):
        """Submit the NEB of the current ensemble without waiting (once per ensemble)."""
        done = self.ctx.setdefault('neb_pks', {})
        if any(uuid == self.ctx.ensemble.uuid for uuid, _ in done.values()):
            return
        inputs = self.exposed_inputs(NEBWorkChain, 'neb')
        inputs.update(
            ensemble=self.ctx.ensemble,
            label=self.exposed_inputs(LabelWorkChain, 'label'),
            reference_neb=orm.Bool(False),
            metadata={'call_link_label': f'neb_{self.ctx.iteration:02d}'},
        )
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        node = self.submit(NEBWorkChain, **inputs)
        done[f'iter_{self.ctx.iteration:02d}'] = (self.ctx.ensemble.uuid, node.pk)
        self.report(f'iteration {self.ctx.iteration}: NEB of its ensemble runs alongside: NEBWorkChain<{node.pk}>')

    def await_iteration_neb(self):
        """``neb.acquire``: wait for the NEB of this iteration's ensemble before the acquisition."""
        uuid = self.ctx.ensemble.uuid
        pk = next(pk for ensemble, pk in self.ctx.neb_pks.values() if ensemble == uuid)
        return ToContext(iteration_neb=orm.load_node(pk))

    def await_nebs(self):
        running = {f'neb_{name}': orm.load_node(pk) for name, (_, pk) in self.ctx.neb_pks.items()}
        if 'neb_reference_pk' in self.ctx:
            running['neb_reference'] = orm.load_node(self.ctx.neb_reference_pk)
        return ToContext(**running)

    def inspect_nebs(self):
        for name in sorted(self.ctx.neb_pks):
            node = self.ctx[f'neb_{name}']
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_NEB_FAILED.format(message=f'{name}: {describe(node)}')
            self.out(f'iterations.{name}.neb', node.outputs.comparison)
        reference = self.ctx.get('neb_reference')
        if reference is not None:
            if 'images_data' not in reference.outputs:
                return self.exit_codes.ERROR_NEB_FAILED.format(message=f"the engine's own NEB: {describe(reference)}")
            if not reference.is_finished_ok:
                self.report(f"the engine's own NEB: {describe(reference)}; its last band is reported anyway")
            for port in ('path', 'images_data', 'summary'):
                self.out(f'neb_reference.{port}', reference.outputs[port])
        return None
