"""The validation step of the AL loop: MD of its initial and final ensembles next to the labelling engine's own.

``ActiveLearningWorkChain`` inherits these steps. When the ``validation`` namespace holds MD
``parameters`` (the builder fills it from the ``validation`` override), the loop ends with a
:class:`~aiida_anharmal.workflows.validation.ValidationMDWorkChain`: the ensemble of iteration 1 (the
potential before learning) and the last ensemble, against the labelling engine, from the start
structure. Its table is the output ``validation``.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from .common import describe
from .validation import ValidationMDWorkChain

#: Ports of the validation that the loop fills itself.
LOOP_SETS = ('ensembles', 'structure', 'harmonic', 'reference', 'md_code', 'evaluate_code')


def check_validation_inputs(value) -> str | None:
    """Refuse a validation the loop cannot run (before any job)."""
    if 'parameters' not in value.get('validation', {}):
        return None
    if 'harmonic' not in value:
        return 'the validation MD needs the `harmonic` input (the reference of A)'
    return None


class ValidationSteps:
    """The steps of the loop that run the validation MD (mixed into ``ActiveLearningWorkChain``)."""

    @classmethod
    def define_validation(cls, spec):
        spec.expose_inputs(
            ValidationMDWorkChain,
            namespace='validation',
            exclude=LOOP_SETS,
            namespace_options={
                'required': False,
                'populate_defaults': False,
                'help': 'Validation MD after the loop (initial and final ensemble against the labelling engine): '
                'give its `parameters` to run it.',
            },
        )
        spec.inputs['validation'].validator = None  # checked with the loop's own inputs
        spec.output('validation', valid_type=orm.Dict, required=False, help='The validation table (`rows`).')

    def should_validate(self):
        return 'parameters' in self.inputs.get('validation', {})

    def validate(self):
        inputs = self.exposed_inputs(ValidationMDWorkChain, 'validation')
        ensembles = {'final': self.ctx.ensemble}
        if self.ctx.first_ensemble.uuid != self.ctx.ensemble.uuid:
            ensembles['initial'] = self.ctx.first_ensemble
        label = self.inputs.label
        reference = {'engine': label.engine}
        for name in ('parameters', 'model'):
            if name in label:
                reference[name] = label[name]
        inputs.update(
            ensembles=ensembles,
            structure=self.inputs.structure,
            harmonic=self.inputs.harmonic,
            reference=reference,
            md_code=self.inputs.explore.code,
            evaluate_code=self.inputs.evaluate_code,
            metadata={'call_link_label': 'validation'},
        )
        self.report(
            f'validation MD of the {" and ".join(sorted(ensembles))} ensemble(s) against `{label.engine.value}`'
        )
        return ToContext(validation=self.submit(ValidationMDWorkChain, **inputs))

    def inspect_validation(self):
        node = self.ctx.validation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(message=describe(node))
        self.out('validation', node.outputs.comparison)
        return None
