"""The exploration and acquisition steps of the AL loop: MD on the ensemble mean, then which frames to label.

``ActiveLearningWorkChain`` inherits these steps. ``explore`` runs an
:class:`~aiida_anharmal.workflows.md.ExplorationWorkChain` (every temperature x seed) from the start that
the start policy chooses, with the stop trigger resolved against the current test-set statistics
(``resolve_trigger``: the ``uncertainty`` trigger's threshold mu + s sigma); ``acquire`` draws frames
with P(UCE) P(U) (``acquire``), each run's P(U) against the test set's energy statistics carried to the
run's temperature, and makes their structures (``selected_structures``).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from ..core.learning.exploration_start import RunEnd, make_policy
from ..core.md.stop_rules import TRIGGERS
from ..functions.acquisition import acquire, resolve_trigger, selected_structures
from ..functions.datasets import frame_structure
from ..functions.neb import uncertain_images
from .common import describe
from .md import ExplorationWorkChain, run_ends, stop_reason

#: The MD seeds of iteration n are the protocol's plus SEED_SHIFT * (n - 1): fresh velocities every iteration.
SEED_SHIFT = 1000


class ExplorationSteps:
    """Explore, inspect the runs, acquire (mixed into ``ActiveLearningWorkChain``)."""

    def explore(self):
        for name, node in (('ensemble', self.ctx.ensemble), ('statistics', self.ctx.statistics)):
            self._out(name, node)
            self._record(name, node)
        self._record('training_set', self.ctx.training_set if self.ctx.trained_on is None else self.ctx.trained_on)
        inputs = self.exposed_inputs(ExplorationWorkChain, 'explore')
        seeds = [int(s) + SEED_SHIFT * (self.ctx.iteration - 1) for s in inputs['seeds'].get_list()]
        inputs.update(ensemble=self.ctx.ensemble, structure=self._exploration_start(), seeds=orm.List(seeds))
        if 'trigger' in inputs and TRIGGERS.get(inputs['trigger']['kind']).unresolved(inputs['trigger'].get_dict()):
            inputs['trigger'] = resolve_trigger(
                inputs['trigger'],
                self.ctx.statistics,
                orm.Float(self.test_temperature()),
                metadata={'call_link_label': f'trigger_{self.ctx.iteration:02d}'},
            )
            trigger = inputs['trigger'].get_dict()
            where = f'UCE_F^max > {1000 * trigger["threshold"]:.1f} meV/A'
            if trigger.get('exponent'):
                where += (
                    f' at {trigger["reference_temperature"]:g} K, times (T / {trigger["reference_temperature"]:g} K)'
                )
                where += f'^{trigger["exponent"]:g} at T'
            self.report(f'iteration {self.ctx.iteration}: each run stops where {where}')
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        inputs['metadata'] = {'call_link_label': f'explore_{self.ctx.iteration:02d}'}
        if 'bias' in inputs or 'trigger' in inputs:
            bias, trigger = (inputs[k]['kind'] if k in inputs else 'none' for k in ('bias', 'trigger'))
            self.report(f'iteration {self.ctx.iteration}: biased exploration (bias {bias}, trigger {trigger})')
        return ToContext(exploration=self.submit(ExplorationWorkChain, **inputs))

    def inspect_exploration(self):
        node = self.ctx.exploration
        if not node.is_finished_ok:
            return self._failed('ERROR_EXPLORATION_FAILED', node)
        self.ctx.runs = {'frames': dict(node.outputs.frames), 'trajectories': dict(node.outputs.trajectories)}
        self.ctx.run_ends = run_ends(self.ctx.runs['trajectories'], self.ctx.runs['frames'])
        self.ctx.stop_reasons = {run: stop_reason(t) for run, t in self.ctx.runs['trajectories'].items()}
        return None

    def _exploration_start(self) -> orm.StructureData:
        """The start structure of this iteration's runs, as the start policy chooses (velocities are drawn fresh)."""
        policy = make_policy(self.inputs.start.get_dict())
        runs = [RunEnd(**end) for end in self.ctx.run_ends]
        start = policy.choose(runs, len(self.ctx.test_set), self.inputs.seed.value * 1000 + self.ctx.iteration)
        self.report(f'iteration {self.ctx.iteration}: the exploration starts from {start.why}')
        link = {'metadata': {'call_link_label': f'start_{self.ctx.iteration:02d}'}}
        if start.source == 'test_set':
            return frame_structure(self.ctx.test_set, orm.Int(start.index), **link)
        if start.source == 'run':
            return frame_structure(self.ctx.runs['trajectories'][start.run], orm.Int(-1), **link)
        return self.inputs.structure

    def acquire(self):
        seed = orm.Int(self.inputs.seed.value * 1000 + self.ctx.iteration)
        ended = orm.Dict({end['label']: end['ended_normally'] for end in self.ctx.run_ends})
        stops = orm.Dict(self.ctx.stop_reasons)
        frames = self.ctx.runs['frames']
        temperatures = orm.Dict(
            {
                'test_set': self.test_temperature(),
                'n_atoms': len(self.inputs.structure.sites),
                'runs': {end['label']: end['temperature'] for end in self.ctx.run_ends},
            }
        )
        result = acquire(
            self.ctx.statistics,
            self.inputs.acquisition,
            seed,
            ended_normally=ended,
            stop_reasons=stops,
            temperatures=temperatures,
            **frames,
        )
        selection = result['selection']
        self._out('selection', selection)
        self._record('selection', selection)
        chosen = selection['frames']
        self.report(f'acquisition: {len(chosen)} of {selection["n_candidates"]} frames selected')
        if chosen:
            self.ctx.selected = True
            trajectories = self.ctx.runs['trajectories']
            self.ctx.to_label = selected_structures(selection, orm.Int(self.ctx.iteration), **trajectories)
        if self.acquires_neb():
            return self._acquire_neb_images(seed)
        return None

    def _acquire_neb_images(self, seed: orm.Int):
        """``neb.acquire``: the uncertain images of this iteration's NEB path join the new frames (a priori)."""
        node = self.ctx.iteration_neb
        used = self.ctx.setdefault('neb_used', [])
        if node.pk in used:  # the ensemble was not retrained: its path gave its images already
            return None
        used.append(node.pk)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_NEB_FAILED.format(message=f'iteration {self.ctx.iteration}: {describe(node)}')
        result = uncertain_images(
            node.outputs.images_data,
            node.outputs.labelled,
            self.ctx.statistics,
            self.inputs.acquisition,
            seed,
            orm.Int(self.ctx.iteration),
            metadata={'call_link_label': f'neb_images_{self.ctx.iteration:02d}'},
        )
        self._out('neb_selection', result['selection'])
        self._record('neb_selection', result['selection'])
        added, unlabelled = result['selection']['added'], result['selection']['unlabelled']
        self.report(
            f'neb.acquire: {len(added)} uncertain image(s) of the path join the training set: {added}'
            + (f' (drawn but not labelled by the engine: {unlabelled})' if unlabelled else '')
        )
        if 'frames' in result:
            self.ctx.neb_frames = result['frames']
        return None

    def has_selection(self):
        return self.ctx.selected
