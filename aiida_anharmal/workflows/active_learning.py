"""``ActiveLearningWorkChain``: train, evaluate the test set, explore, acquire, label, merge; repeat.

One iteration (Kang et al.; SCIENCE.md sections 1-2):

1. ``EnsembleWorkChain`` on the current training set (fine-tuned from the previous ensemble
   when the ensemble parameters say ``retrain: finetune``);
2. ``EvaluateCalculation`` of the ensemble on the fixed test set -> test-set statistics;
3. ``ExplorationWorkChain``: MD on the ensemble mean from the start structure (later
   iterations start from the last frame of the previous iteration's first run);
4. calcfunction ``acquire``: P(UCE) P(U) against the statistics, seeded by the iteration;
5. calcfunction ``selected_structures`` -> ``LabelWorkChain`` with the labelling engine;
6. calcfunction ``merge_training_sets``: the enlarged training set of the next iteration.

It stops when an iteration accepts no frame (converged: the ensemble is as sure of the
explored frames as of the test set) or after ``max_iterations``. Every step is a process in
the graph; the per-iteration nodes are also outputs (``iterations.iter_NN.*``), and why the loop
stopped is a query: the last ``selection`` (an ``acquire`` output) is empty when it converged.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from ..calculations.evaluate import EvaluateCalculation
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..functions.acquisition import acquire, check_acquisition_parameters, selected_structures
from ..functions.datasets import merge_training_sets
from ..protocols import ProtocolMixin, recursive_merge
from .ensemble import EnsembleWorkChain
from .label import LabelWorkChain
from .md import ExplorationWorkChain


def validate_active_learning_inputs(value, ctx=None):
    if 'training_set' not in value:
        return None
    try:
        check_acquisition_parameters(value['acquisition'].get_dict() if 'acquisition' in value else {})
    except ValueError as exc:
        return str(exc)
    if 'max_iterations' in value and value['max_iterations'].value < 1:
        return f'`max_iterations` must be at least 1, not {value["max_iterations"].value}'
    test_set = value.get('test_set')
    if test_set is not None and len(test_set) < 2:
        return 'the test set needs at least two frames (its statistics need a standard deviation)'
    species = set(value['training_set'].frames.species)
    start = set(value['structure'].get_ase().get_chemical_symbols()) if 'structure' in value else set()
    if start - species:
        return f'elements {sorted(start - species)} of the start structure are not in the training set'
    return None


class ActiveLearningWorkChain(ProtocolMixin, WorkChain):
    """Ensemble active learning with a soft acquisition (Kang et al.), every decision a node."""

    _protocol_file = 'active_learning.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSet, help='Initial labelled frames.')
        spec.input('test_set', valid_type=TrainingSet, help='Fixed frames never trained on (statistics).')
        spec.input('structure', valid_type=orm.StructureData, help='Start structure of the exploration.')
        spec.input('harmonic', valid_type=orm.ArrayData, required=False, help='Harmonic reference (A, UCE_A).')
        spec.input('max_iterations', valid_type=orm.Int, default=lambda: orm.Int(5))
        spec.input('acquisition', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   help='kind (force_max | energy | anharmonicity), s, g, n_max, min_spacing.')
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(0), help='Seed of the acquisition draws.')
        spec.expose_inputs(EnsembleWorkChain, namespace='ensemble', exclude=('training_set', 'parent_ensemble'))
        spec.expose_inputs(ExplorationWorkChain, namespace='explore', exclude=('ensemble', 'structure', 'harmonic'))
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures',))
        spec.input('evaluate_code', valid_type=orm.AbstractCode, help='Code of `anharmal-evaluate`.')
        spec.inputs.validator = validate_active_learning_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_continue)(
                cls.train,
                cls.evaluate,
                cls.explore,
                cls.select,
                if_(cls.has_selection)(cls.label, cls.merge),
            ),
            cls.results,
        )
        spec.output('ensemble', valid_type=Ensemble, help='The last ensemble.')
        spec.output('training_set', valid_type=TrainingSet, help='The final training set.')
        spec.output_namespace('iterations', dynamic=True, help='Per-iteration nodes: iter_NN.<name>.')
        spec.exit_code(410, 'ERROR_ENSEMBLE_FAILED', message='Ensemble training failed in iteration {iteration}.')
        spec.exit_code(420, 'ERROR_EVALUATION_FAILED', message='Test-set evaluation failed in iteration {iteration}.')
        spec.exit_code(430, 'ERROR_EXPLORATION_FAILED', message='Exploration failed in iteration {iteration}.')
        spec.exit_code(440, 'ERROR_LABELLING_FAILED', message='Labelling failed in iteration {iteration}.')

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        training_set: TrainingSet,
        test_set: TrainingSet,
        structure,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        harmonic: orm.ArrayData | None = None,
        options: dict | None = None,
    ):
        """A builder from one protocol name for the loop and its three sub-workchains.

        :param codes: ``{'train', 'evaluate', 'md', 'label'}`` -> codes of the four programs.
        :param structure: start of the exploration, StructureData or ASE Atoms.
        :param overrides: nested dict; ``ensemble``, ``explore`` and ``label`` override those
            workchains' protocol inputs, every other key this workchain's.
        :param model: the reference model of the ``nequip-reference`` engine.
        :param options: scheduler options for every job.
        """
        overrides = dict(overrides or {})
        sub = {name: overrides.pop(name, {}) for name in ('ensemble', 'explore', 'label')}
        inputs = cls.get_protocol_inputs(protocol, overrides)
        missing = sorted({'train', 'evaluate', 'md', 'label'} - set(codes))
        if missing:
            raise ValueError(f'codes missing for {missing}')
        ensemble = EnsembleWorkChain.get_protocol_inputs(protocol, sub['ensemble'])
        explore = ExplorationWorkChain.get_protocol_inputs(protocol, sub['explore'])
        label = LabelWorkChain.get_protocol_inputs(protocol, sub['label'])
        if engine not in label['engines']:
            raise ValueError(f'no protocol parameters for engine {engine!r}; known: {", ".join(label["engines"])}')
        builder = cls.get_builder()
        builder.training_set = training_set
        builder.test_set = test_set
        builder.structure = structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.seed = orm.Int(inputs['seed'])
        builder.acquisition = orm.Dict(inputs['acquisition'])
        builder.evaluate_code = codes['evaluate']
        if harmonic is not None:
            builder.harmonic = harmonic
        builder.ensemble = {
            'code': codes['train'],
            'n_sub': orm.Int(ensemble['n_sub']),
            'seeds': orm.List(list(ensemble['seeds'])),
            'validation_ratio': orm.Float(ensemble['validation_ratio']),
            'fraction': orm.Float(ensemble['fraction']),
            'subsample_seed': orm.Int(ensemble['subsample_seed']),
            'hyperparameters': orm.Dict(ensemble['hyperparameters']),
            'retrain': orm.Str(ensemble['retrain']),
            'options': recursive_merge(ensemble['options'], options or {}),
        }
        builder.explore = {
            'code': codes['md'],
            'temperatures': orm.List(list(explore['temperatures'])),
            'seeds': orm.List(list(explore['seeds'])),
            'parameters': orm.Dict(explore['parameters']),
            'guards': orm.Dict(explore['guards']),
            'max_restarts': orm.Int(explore['max_restarts']),
            'options': recursive_merge(explore['options'], options or {}),
        }
        builder.label = {
            'code': codes['label'],
            'engine': orm.Str(engine),
            'parameters': orm.Dict(label['engines'][engine]),
            'settings': orm.Dict(label.get('settings', {})),
            'batch_size': orm.Int(label['batch_size']),
            'max_restarts': orm.Int(label['max_restarts']),
            'options': recursive_merge(label['options'], options or {}),
        }
        if model is not None:
            builder.label.model = model
        return builder

    def setup(self):
        self.ctx.iteration = 0
        self.ctx.training_set = self.inputs.training_set
        self.ctx.ensemble = None
        self.ctx.structure = self.inputs.structure
        self.ctx.converged = False

    def should_continue(self):
        return not self.ctx.converged and self.ctx.iteration < self.inputs.max_iterations.value

    def _out(self, name, node):
        self.out(f'iterations.iter_{self.ctx.iteration:02d}.{name}', node)

    def train(self):
        self.ctx.iteration += 1
        inputs = self.exposed_inputs(EnsembleWorkChain, 'ensemble')
        inputs['training_set'] = self.ctx.training_set
        if self.ctx.ensemble is not None:
            inputs['parent_ensemble'] = self.ctx.ensemble
        else:
            inputs['retrain'] = orm.Str('scratch')  # nothing to fine-tune from in the first iteration
        inputs['metadata'] = {'call_link_label': f'ensemble_{self.ctx.iteration:02d}'}
        self.report(f'iteration {self.ctx.iteration}: training on {len(self.ctx.training_set)} frames')
        return ToContext(ensemble_wc=self.submit(EnsembleWorkChain, **inputs))

    def evaluate(self):
        node = self.ctx.ensemble_wc
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_ENSEMBLE_FAILED.format(iteration=self.ctx.iteration)
        self.ctx.ensemble = node.outputs.ensemble
        self._out('ensemble', self.ctx.ensemble)
        inputs = {
            'ensemble': self.ctx.ensemble,
            'structures': self.inputs.test_set,
            'code': self.inputs.evaluate_code,
            'metadata': {'options': dict(self.inputs.explore.options), 'call_link_label': f'test_set_{self.ctx.iteration:02d}'},
        }
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        return ToContext(evaluation=self.submit(EvaluateCalculation, **inputs))

    def explore(self):
        node = self.ctx.evaluation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(iteration=self.ctx.iteration)
        self.ctx.statistics = node.outputs.statistics
        self._out('statistics', self.ctx.statistics)
        stats = self.ctx.statistics.get_dict()
        self.report(f'test set: UCE_F^max {1000 * stats["uce_force_max"]["mean"]:.1f} +- '
                    f'{1000 * stats["uce_force_max"]["std"]:.1f} meV/A, force MAE '
                    f'{1000 * stats["errors"].get("forces_mae", float("nan")):.1f} meV/A')
        inputs = self.exposed_inputs(ExplorationWorkChain, 'explore')
        inputs.update(ensemble=self.ctx.ensemble, structure=self.ctx.structure)
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        inputs['metadata'] = {'call_link_label': f'explore_{self.ctx.iteration:02d}'}
        return ToContext(exploration=self.submit(ExplorationWorkChain, **inputs))

    def select(self):
        node = self.ctx.exploration
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(iteration=self.ctx.iteration)
        frames = dict(node.outputs.frames)
        seed = orm.Int(self.inputs.seed.value * 1000 + self.ctx.iteration)
        result = acquire(self.ctx.statistics, self.inputs.acquisition, seed, **frames)
        self.ctx.selection = result['selection']
        self._out('selection', self.ctx.selection)
        chosen = self.ctx.selection['frames']
        self.report(f'acquisition: {len(chosen)} of {self.ctx.selection["n_candidates"]} frames selected')
        if not chosen:
            self.ctx.converged = True
            self.report('no frame selected: converged')
            return None
        trajectories = dict(node.outputs.trajectories)
        self.ctx.to_label = selected_structures(self.ctx.selection, **trajectories)
        # the next exploration continues from the end of the first run of this one
        first = sorted(trajectories)[0]
        trajectory = trajectories[first]
        self.ctx.structure = trajectory.get_step_structure(trajectory.numsteps - 1)
        return None

    def has_selection(self):
        return not self.ctx.converged

    def label(self):
        inputs = self.exposed_inputs(LabelWorkChain, 'label')
        inputs['structures'] = self.ctx.to_label
        inputs['metadata'] = {'call_link_label': f'label_{self.ctx.iteration:02d}'}
        return ToContext(labelling=self.submit(LabelWorkChain, **inputs))

    def merge(self):
        node = self.ctx.labelling
        if 'labelled' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(iteration=self.ctx.iteration)
        self._out('labelled', node.outputs.labelled)
        self.ctx.training_set = merge_training_sets(a=self.ctx.training_set, b=node.outputs.labelled)
        self._out('training_set', self.ctx.training_set)
        return None

    def results(self):
        self.out('ensemble', self.ctx.ensemble)
        self.out('training_set', self.ctx.training_set)
        self.report(f'finished after {self.ctx.iteration} iteration(s); converged: {self.ctx.converged}; '
                    f'{len(self.ctx.training_set)} training frames')
