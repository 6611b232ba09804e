"""The validation step of the AL loop: MD of its initial and final ensembles next to the labelling engine's own.

``ActiveLearningWorkChain`` inherits these steps. When the ``validation`` namespace holds MD
``parameters`` (the builder fills it from the ``validation`` override), the loop ends with a
:class:`~aiida_anharmal.workflows.validation.ValidationMDWorkChain`: the ensemble of iteration 1 (the
potential before learning) and the last ensemble, against the labelling engine, from the start
structure. Its table is the output ``validation``.

The ground-truth run depends on nothing the loop learns, so it starts with the loop
(``start_ground_truth``, right after ``setup``; with a test MD, once the test set is made, so that the run
the loop waits for gets the cores first) and runs while the loop trains and explores; the
validation at the end waits for it and passes it on (``ground_truth``). On two CPU cores this
hides most of its cost (the CuI reference model: 1-2.5 s per MD step) in the loop's idle core time.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from .common import describe, engine_reference
from .md import MDBaseWorkChain
from .validation import REFERENCE, ValidationMDWorkChain, md_inputs, run_ended

#: Ports of the validation that the loop fills itself.
LOOP_SETS = ('ensembles', 'structure', 'harmonic', 'reference', 'md_code', 'evaluate_code', 'ground_truth')


def check_validation_inputs(value) -> str | None:
    """Refuse a validation the loop cannot run (before any job)."""
    validation = {key: item for key, item in value.get('validation', {}).items() if key != 'lifetimes'}
    if 'parameters' not in validation:
        defaults = {name for name, port in ValidationMDWorkChain.spec().inputs.items() if port.has_default()}
        given = sorted(key for key in validation if key not in defaults and key != 'metadata')
        return f'the validation MD needs its `parameters` (given only {given})' if given else None
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
        for port in spec.inputs['validation'].values():  # `validation.lifetimes` alone runs no validation MD
            port.required = False
        spec.output('validation', valid_type=orm.Dict, required=False, help='The validation table (`rows`).')

    def should_validate(self):
        return 'parameters' in self.inputs.get('validation', {})

    def _validation_inputs(self) -> dict:
        """The exposed validation inputs with those the loop sets (all but ``ensembles`` and ``ground_truth``)."""
        inputs = self.exposed_inputs(ValidationMDWorkChain, 'validation')
        inputs.update(
            structure=self.inputs.structure,
            harmonic=self.inputs.harmonic,
            reference=engine_reference(self.inputs.label),
            md_code=self.inputs.explore.code,
            evaluate_code=self.inputs.evaluate_code,
        )
        return inputs

    def start_ground_truth(self):
        """Submit the labelling engine's own MD now, without waiting: it needs nothing the loop learns."""
        inputs = self._validation_inputs()
        node = self.submit(
            MDBaseWorkChain,
            md=md_inputs(inputs, REFERENCE),
            max_iterations=inputs['max_restarts'],
            metadata={'call_link_label': 'validation_ground_truth'},
        )
        self.ctx.ground_truth_pk = node.pk
        self.report(f'the ground-truth MD of the validation runs alongside the loop: MDBaseWorkChain<{node.pk}>')

    def await_ground_truth(self):
        return ToContext(ground_truth=orm.load_node(self.ctx.ground_truth_pk))

    def validate(self):
        node = self.ctx.ground_truth
        if 'trajectory' not in node.outputs:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(message=f'the ground-truth run: {describe(node)}')
        inputs = self._validation_inputs()
        ensembles = {'final': self.ctx.ensemble}
        if self.ctx.first_ensemble.uuid != self.ctx.ensemble.uuid:
            ensembles['initial'] = self.ctx.first_ensemble
        inputs.update(
            ensembles=ensembles,
            ground_truth={
                'trajectory': node.outputs.trajectory,
                'frames': node.outputs.frames,
                'ended': orm.Str(run_ended(node)),
            },
            metadata={'call_link_label': 'validation'},
        )
        engine = self.inputs.label.engine.value
        self.report(f'validation MD of the {" and ".join(sorted(ensembles))} ensemble(s) against `{engine}`')
        return ToContext(validation=self.submit(ValidationMDWorkChain, **inputs))

    def inspect_validation(self):
        node = self.ctx.validation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(message=describe(node))
        self.out('validation', node.outputs.comparison)
        return None

    def on_terminated(self):
        """A loop that ends early (a failed step) leaves none of the ground-truth runs it started alongside behind
        (the validation MD, the test-set MD, the engine's own NEB)."""
        super().on_terminated()
        ctx = self.ctx if hasattr(self, 'ctx') and self.ctx is not None else {}
        for key in ('ground_truth_pk', 'test_md_pk', 'neb_reference_pk'):
            pk = ctx.get(key)
            if pk is None or orm.load_node(pk).is_terminated:
                continue
            from aiida.manage import get_manager

            get_manager().get_process_controller().kill_process(pk, msg_text='the active-learning loop ended early')
