"""The lifetimes validation of the AL loop: both routes, before and after learning, against the labelling engine.

``ActiveLearningWorkChain`` inherits these steps. ``validation.lifetimes.md`` (the inputs of
:class:`~aiida_anharmal.workflows.lifetimes.LifetimesWorkChain`) runs the fully anharmonic route,
``validation.lifetimes.perturbative`` (those of
:class:`~aiida_anharmal.workflows.perturbative.PerturbativeWorkChain`) the perturbative one; either
or both. Each route runs once with the labelling engine (it needs nothing the loop learns, so it
starts with the loop), and at the end with the ensemble of iteration 1 (``initial``, the potential
before learning) and the last one (``final``). A run that gives no lifetimes (the initial ensemble
may leave the crystal) does not fail the loop: the table (output ``lifetimes.table``) says how it
ended. Every run's ``summary`` and ``modes`` are outputs ``lifetimes.<route>_<source>.*``.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from ..functions.lifetimes import compare_lifetimes
from ..ports import dict_input
from .common import DEFAULT_RESOURCES, describe, engine_reference
from .label import LabelWorkChain
from .lifetimes import LifetimesWorkChain
from .perturbative import PerturbativeWorkChain

#: Route -> the workchain and the ports the loop fills itself.
ROUTE_WORKCHAINS = {
    'md': (LifetimesWorkChain, ('harmonic', 'structure', 'ensemble', 'reference', 'md_code')),
    'perturbative': (PerturbativeWorkChain, ('harmonic', 'label')),
}


def check_lifetime_inputs(value) -> str | None:
    """Refuse a lifetimes validation the loop cannot run (before any job)."""
    lifetimes = value.get('validation', {}).get('lifetimes', {})
    if not lifetimes:
        return None
    from ..data.force_constants import ForceConstants

    if not isinstance(value.get('harmonic'), ForceConstants):
        return 'the lifetimes validation needs the `harmonic` input as a ForceConstants node (its modes)'
    for route, (workchain, _) in ROUTE_WORKCHAINS.items():
        if route not in lifetimes:
            continue
        inputs = {'options': {'resources': dict(DEFAULT_RESOURCES)}, **lifetimes[route], 'harmonic': value['harmonic']}
        if route == 'md':
            inputs['reference'] = {'engine': value['label']['engine']}
        else:
            inputs['label'] = dict(value['label'])
        message = workchain.spec().inputs.validator(inputs, None)
        if message:
            return f'lifetimes validation ({route}): {message}'
    return None


class LifetimeSteps:
    """The steps of the loop that run the lifetimes validation (mixed into ``ActiveLearningWorkChain``)."""

    @classmethod
    def define_lifetimes(cls, spec):
        spec.input_namespace(
            'validation.lifetimes',
            required=False,
            populate_defaults=False,
            help='Phonon lifetimes of the labelling engine, the initial and the final ensemble: `md`, `perturbative`.',
        )
        for route, (workchain, exclude) in ROUTE_WORKCHAINS.items():
            spec.expose_inputs(
                workchain,
                namespace=f'validation.lifetimes.{route}',
                exclude=exclude,
                namespace_options={
                    'required': False,
                    'populate_defaults': False,
                    'help': f'Lifetimes of the labelling engine, the initial and the final ensemble ({workchain.__name__}).',
                },
            )
            spec.inputs['validation']['lifetimes'][route].validator = None  # checked with the loop's inputs
        spec.output_namespace('lifetimes', dynamic=True, help='Lifetimes validation: `table`, `<route>_<source>.*`.')

    def lifetime_routes(self) -> list[str]:
        given = self.inputs.get('validation', {}).get('lifetimes', {})
        return [route for route in ROUTE_WORKCHAINS if given.get(route)]

    def should_run_lifetimes(self):
        return bool(self.lifetime_routes())

    def _submit_lifetimes(self, route: str, source: str, ensemble=None):
        workchain, _ = ROUTE_WORKCHAINS[route]
        inputs = self.exposed_inputs(workchain, f'validation.lifetimes.{route}')
        inputs['harmonic'] = self.inputs.harmonic
        if route == 'md':
            inputs['md_code'] = self.inputs.explore.code
            if ensemble is None:
                inputs['reference'] = engine_reference(self.inputs.label)
            else:
                inputs['ensemble'] = ensemble
        else:
            label = self.exposed_inputs(LabelWorkChain, 'label')
            if ensemble is not None:
                label = ensemble_label(label, ensemble)
            inputs['label'] = label
        inputs['metadata'] = {'call_link_label': f'lifetimes_{route}_{source}'}
        try:
            node = self.submit(workchain, **inputs)
        except ValueError as exc:  # refused by the workchain's validation: recorded, the loop goes on
            self.ctx.setdefault('lifetime_refused', {})[f'{route}_{source}'] = f'refused: {exc}'
            self.report(f'lifetimes ({route}) of the {source}: refused ({exc})')
            return
        self.ctx.setdefault('lifetime_pks', {})[f'{route}_{source}'] = node.pk
        self.report(f'lifetimes ({route}) of the {source}: {workchain.__name__}<{node.pk}>')

    def start_reference_lifetimes(self):
        """The labelling engine's lifetimes need nothing the loop learns: they run alongside it."""
        for route in self.lifetime_routes():
            self._submit_lifetimes(route, 'reference')

    def run_ensemble_lifetimes(self):
        sources = {'final': self.ctx.ensemble}
        if self.ctx.first_ensemble.uuid != self.ctx.ensemble.uuid:
            sources['initial'] = self.ctx.first_ensemble
        for route in self.lifetime_routes():
            for source, ensemble in sources.items():
                self._submit_lifetimes(route, source, ensemble)
        pks = self.ctx.get('lifetime_pks', {})
        return ToContext(**{f'lifetimes_{key}': orm.load_node(pk) for key, pk in pks.items()})

    def inspect_lifetimes(self):
        summaries, ended = {}, dict(self.ctx.get('lifetime_refused', {}))
        for key in self.ctx.get('lifetime_pks', {}):
            node = self.ctx[f'lifetimes_{key}']
            route, source = key.split('_', 1)
            if node.is_finished_ok:
                ended[key] = 'finished'
                summaries[key] = node.outputs.summary
                for name in ('summary', 'modes'):
                    self.out(f'lifetimes.{route}_{source}.{name}', node.outputs[name])
            else:
                ended[key] = describe(node)
                self.report(f'lifetimes ({route}) of the {source}: none ({ended[key]})')
        table = compare_lifetimes(
            orm.Dict({'ended': ended}), **summaries, metadata={'call_link_label': 'compare_lifetimes'}
        )
        self.out('lifetimes.table', table)
        for row in table['rows']:
            if 'median_tau' in row:
                median = 'none resolved' if row['median_tau'] is None else f'{row["median_tau"]:.3f} ps'
                self.report(
                    f'lifetimes ({row["route"]}) of the {row["source"]}: median {median}, '
                    f'{100 * row["ioffe_regel_fraction"]:.0f} % below the Ioffe-Regel limit'
                )

    def on_terminated(self):
        """A loop that ends early (a failed step) does not leave its lifetime runs behind."""
        super().on_terminated()
        pks = self.ctx.get('lifetime_pks', {}) if hasattr(self, 'ctx') and self.ctx is not None else {}
        alive = [pk for pk in pks.values() if not orm.load_node(pk).is_terminated]
        if alive:
            from aiida.manage import get_manager

            controller = get_manager().get_process_controller()
            for pk in alive:
                controller.kill_process(pk, msg_text='the active-learning loop ended early')


def ensemble_label(label: dict, ensemble) -> dict:
    """The loop's labelling inputs with the engine ``ensemble`` of ``ensemble`` (energy and forces only)."""
    label = {**label, 'engine': orm.Str('ensemble'), 'ensemble': ensemble, 'parameters': orm.Dict()}
    label.pop('model', None)
    settings = dict_input(label, 'settings')
    settings['properties'] = ['energy', 'forces']
    label['settings'] = orm.Dict(settings)
    return label
