"""The NEB validation of the AL loop: the path from the crystal to a defect with every iteration's ensemble.

``ActiveLearningWorkChain`` inherits these steps. When the ``neb`` namespace holds end points
(``initial``, ``final``; the builder takes them from the ``neb`` override), every new ensemble of
the loop (the initial one included) gets a :class:`~aiida_anharmal.workflows.neb.NEBWorkChain`
with the loop's labelling engine; the first also runs the engine's own NEB (once per loop: it
costs one engine call per image and optimizer step). The NEBs run alongside the loop; at the end
the loop waits for them and outputs each comparison as ``iterations.iter_NN.neb``.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from .common import describe
from .label import LabelWorkChain
from .neb import NEBWorkChain

#: Ports of the NEB that the loop fills itself.
NEB_LOOP_SETS = ('ensemble', 'label', 'harmonic', 'reference_neb')


def check_neb_inputs(value) -> str | None:
    """Refuse an NEB validation the loop cannot run (before any job)."""
    neb = value.get('neb', {})
    if not neb:
        return None
    missing = sorted({'initial', 'final', 'code', 'parameters'} - set(neb))
    if missing:
        return f'the NEB validation needs {missing} in the `neb` namespace'
    from ..calculations.neb import validate_inputs as validate_neb

    inputs = {k: neb[k] for k in ('initial', 'final', 'parameters', 'settings') if k in neb}
    if 'initial_ensemble' in value:
        inputs['ensemble'] = value['initial_ensemble']
    else:  # the ensemble does not exist yet: check the end points with the labelling engine as the driver
        inputs['reference'] = {'engine': value['label']['engine']}
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
        spec.inputs['neb'].validator = None  # checked with the loop's own inputs

    def should_run_neb(self):
        return 'initial' in self.inputs.get('neb', {})

    def start_neb(self):
        """Submit the NEB of the current ensemble without waiting (once per ensemble)."""
        if not self.should_run_neb():
            return
        done = self.ctx.setdefault('neb_pks', {})
        if any(uuid == self.ctx.ensemble.uuid for uuid, _ in done.values()):
            return
        inputs = self.exposed_inputs(NEBWorkChain, 'neb')
        inputs.update(
            ensemble=self.ctx.ensemble,
            label=self.exposed_inputs(LabelWorkChain, 'label'),
            reference_neb=orm.Bool(not done),
            metadata={'call_link_label': f'neb_{self.ctx.iteration:02d}'},
        )
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        node = self.submit(NEBWorkChain, **inputs)
        done[f'iter_{self.ctx.iteration:02d}'] = (self.ctx.ensemble.uuid, node.pk)
        self.report(f'iteration {self.ctx.iteration}: NEB of its ensemble runs alongside: NEBWorkChain<{node.pk}>')

    def await_nebs(self):
        return ToContext(**{f'neb_{name}': orm.load_node(pk) for name, (_, pk) in self.ctx.neb_pks.items()})

    def inspect_nebs(self):
        for name in sorted(self.ctx.neb_pks):
            node = self.ctx[f'neb_{name}']
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_NEB_FAILED.format(message=f'{name}: {describe(node)}')
            self.out(f'iterations.{name}.neb', node.outputs.comparison)
        return None
