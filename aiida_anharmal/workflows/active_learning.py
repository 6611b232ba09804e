"""``ActiveLearningWorkChain``: train, evaluate the test set, explore, acquire, label, merge; repeat.

Start (once): either a labelled ``training_set`` and ``test_set``, or ``initial`` data made by
:class:`~aiida_anharmal.workflows.initial.InitialDataWorkChain` (harmonic sampling, random
displacements or a given trajectory, labelled by the loop's labeller); optionally an
``initial_ensemble`` (pretrained members) that the first iteration uses instead of training.

One iteration (Kang et al.; docs/source/science.rst, sections 1-2), one step per process:

1. ``EnsembleWorkChain`` on the current training set (fine-tuned from the previous ensemble
   when the ensemble parameters say ``retrain: finetune``); skipped when the training set did
   not change (nothing was selected in the previous iteration);
2. ``EvaluateCalculation`` of the ensemble on the fixed test set -> test-set statistics;
3. ``ExplorationWorkChain``: MD on the ensemble mean from the start structure; the next
   iteration continues from the last frame of the first run that ended normally (never from a
   frame that tripped a guard);
4. calcfunctions ``acquire`` (P(UCE) P(U) against the statistics, seeded by the iteration) and
   ``selected_structures``;
5. ``LabelWorkChain`` with the labelling engine;
6. calcfunctions ``calibrate`` (true force error of the labelled frames against their UCE_F)
   and ``merge_training_sets`` (the enlarged training set of the next iteration);
7. calcfunction ``check_convergence``: stop (converged, or the iteration cap) or go on, and the
   per-iteration summary table.

Every step is a process in the graph; the per-iteration nodes are also outputs
(``iterations.iter_NN.*``), and why the loop stopped is the ``convergence`` output.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from .. import exit_codes
from ..calculations.evaluate import EvaluateCalculation
from ..core.learning.acquisition import ACQUISITIONS
from ..core.learning.convergence import CONVERGENCE_RULES
from ..core.learning.exploration_start import START_POLICIES
from ..data.ensemble import Ensemble
from ..data.training_set import TrainingSet
from ..functions.convergence import calibrate, check_convergence
from ..functions.datasets import merge_training_sets
from .active_learning_checks import validate_active_learning_inputs
from .active_learning_explore import ExplorationSteps
from .active_learning_lifetimes import LifetimeSteps
from .active_learning_neb import NEBSteps
from .active_learning_setup import ActiveLearningProtocol
from .active_learning_test_set import TestSetSteps
from .active_learning_validation import ValidationSteps
from .common import describe
from .ensemble import EnsembleWorkChain
from .initial import InitialDataWorkChain
from .label import LabelWorkChain
from .md import ExplorationWorkChain


class ActiveLearningWorkChain(
    ActiveLearningProtocol, ExplorationSteps, TestSetSteps, ValidationSteps, LifetimeSteps, NEBSteps, WorkChain
):
    """Ensemble active learning with a soft acquisition (Kang et al.), every decision a node."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        cls._define_inputs(spec)
        spec.outline(
            cls.setup,
            if_(cls.has_test_md)(cls.start_test_md),
            if_(cls.starts_ground_truth_now)(cls.start_ground_truth_runs),
            if_(cls.should_run_lifetimes)(cls.start_reference_lifetimes),
            if_(cls.needs_initial_data)(cls.make_initial_data, cls.inspect_initial_data),
            while_(cls.should_continue)(
                cls.start_iteration,
                if_(cls.needs_training)(cls.train, cls.inspect_training),
                if_(cls.awaits_test_md)(cls.await_test_md, cls.make_test_set, cls.start_ground_truth_runs),
                if_(cls.needs_statistics)(cls.evaluate, cls.inspect_evaluation),
                if_(cls.should_run_neb)(cls.start_neb),
                cls.explore,
                cls.inspect_exploration,
                if_(cls.acquires_neb)(cls.await_iteration_neb),
                cls.acquire,
                if_(cls.has_selection)(cls.label, cls.inspect_labelling),
                if_(cls.has_new_frames)(cls.merge),
                cls.decide,
            ),
            cls.results,
            if_(cls.should_validate)(cls.await_ground_truth, cls.validate, cls.inspect_validation),
            if_(cls.should_run_lifetimes)(cls.run_ensemble_lifetimes, cls.inspect_lifetimes),
            if_(cls.should_run_neb)(cls.await_nebs, cls.inspect_nebs),
        )
        spec.output('ensemble', valid_type=Ensemble, help='The last ensemble.')
        spec.output('training_set', valid_type=TrainingSet, help='The final training set.')
        spec.output('test_set', valid_type=TrainingSet, help='The fixed test set.')
        spec.output('convergence', valid_type=orm.Dict, help='Why the loop stopped: stop, converged, reason, message.')
        spec.output('summary', valid_type=orm.Dict, help='Per-iteration table (`rows`), built by `check_convergence`.')
        spec.output_namespace('iterations', dynamic=True, help='Per-iteration nodes: iter_NN.<name>.')
        exit_codes.declare(
            spec,
            'ERROR_INITIAL_DATA_FAILED',
            'ERROR_TEST_SET_FAILED',
            'ERROR_ENSEMBLE_FAILED',
            'ERROR_EVALUATION_FAILED',
            'ERROR_EXPLORATION_FAILED',
            'ERROR_LABELLING_FAILED',
            'ERROR_VALIDATION_FAILED',
            'ERROR_NEB_FAILED',
            workchain=True,
        )

    @classmethod
    def _define_inputs(cls, spec):
        spec.input('training_set', valid_type=TrainingSet, required=False, help='Initial labelled frames.')
        spec.input(
            'test_set',
            valid_type=TrainingSet,
            required=False,
            help='Fixed labelled frames never trained on (statistics); with `training_set`.',
        )
        spec.expose_inputs(
            InitialDataWorkChain,
            namespace='initial',
            exclude=('label', 'force_constants', 'structure'),
            namespace_options={
                'required': False,
                'populate_defaults': False,
                'help': 'Make the initial training and test set (instead of giving them).',
            },
        )
        spec.inputs['initial'].validator = None  # checked with the loop's own inputs (structure, harmonic, label)
        spec.input(
            'initial_ensemble',
            valid_type=Ensemble,
            required=False,
            help='Pretrained ensemble used by the first iteration instead of training one.',
        )
        spec.input('structure', valid_type=orm.StructureData, help='Start structure of the exploration.')
        spec.input(
            'harmonic',
            valid_type=orm.ArrayData,
            required=False,
            help='Harmonic reference (ForceConstants): A and UCE_A; the sampling of `initial.mode: harmonic`.',
        )
        spec.input('max_iterations', valid_type=orm.Int, default=lambda: orm.Int(5))
        spec.input(
            'acquisition',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help=f'kind ({" | ".join(ACQUISITIONS.keys())}), s, g, n_max, min_spacing (defaults: the kind class).',
        )
        spec.input(
            'convergence',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help=f'rule ({" | ".join(CONVERGENCE_RULES.keys())}) and its parameters (mae_and_selection: '
            'tolerance in eV/A of the test-set force MAE change, patience in iterations).',
        )
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(0), help='Seed of the acquisition draws.')
        spec.input(
            'start',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help=f'Where each exploration starts: policy ({" | ".join(START_POLICIES.keys())}; default structure) '
            'and its parameters (continue: max_anharmonicity, default 1.5).',
        )
        spec.expose_inputs(EnsembleWorkChain, namespace='ensemble', exclude=('training_set', 'parent_ensemble'))
        spec.expose_inputs(ExplorationWorkChain, namespace='explore', exclude=('ensemble', 'structure', 'harmonic'))
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures',))
        spec.input('evaluate_code', valid_type=orm.AbstractCode, help='Code of `anharmal-evaluate`.')
        cls.define_test_md(spec)
        cls.define_validation(spec)
        cls.define_lifetimes(spec)
        cls.define_neb(spec)
        spec.inputs.validator = validate_active_learning_inputs

    # ------------------------------------------------------------------------------------- start
    def setup(self):
        self.ctx.iteration = 0
        self.ctx.training_set = self.inputs.get('training_set')
        self.ctx.test_set = self.inputs.get('test_set')
        self.ctx.ensemble = self.inputs.get('initial_ensemble')
        self.ctx.first_ensemble = self.ctx.ensemble  # the potential before learning (iteration 1's)
        self.ctx.trained_on = None  # the training set of the current ensemble (None: pretrained or none)
        self.ctx.evaluated = None  # uuid of the ensemble the current statistics belong to
        self.ctx.run_ends = []  # of the previous exploration, for the start policy
        self.ctx.stop = False
        self.ctx.records = {}

    def starts_ground_truth_now(self):
        """The ground-truth runs needed only at the end (validation MD, the engine's own NEB) start with the loop,
        or, with a test MD, once its test set is made: on few cores the test set is what the loop waits for."""
        return not self.has_test_md()

    def start_ground_truth_runs(self):
        if self.should_validate():
            self.start_ground_truth()
        if self.should_run_neb():
            self.start_reference_neb()

    def needs_initial_data(self):
        return self.ctx.training_set is None

    def make_initial_data(self):
        inputs = self.exposed_inputs(InitialDataWorkChain, 'initial')
        inputs['label'] = self.exposed_inputs(LabelWorkChain, 'label')
        if inputs['mode'].value == 'harmonic':
            inputs['force_constants'] = self.inputs.harmonic
        elif inputs['mode'].value == 'random':
            inputs['structure'] = self.inputs.structure
        inputs['metadata'] = {'call_link_label': 'initial_data'}
        self.report(f'making the initial data: mode `{inputs["mode"].value}`')
        return ToContext(initial_data=self.submit(InitialDataWorkChain, **inputs))

    def inspect_initial_data(self):
        node = self.ctx.initial_data
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_INITIAL_DATA_FAILED.format(message=describe(node))
        self.ctx.training_set = node.outputs.training_set
        self.ctx.test_set = node.outputs.test_set if 'test_set' in node.outputs else None
        return None

    def should_continue(self):
        return not self.ctx.stop

    def _out(self, name, node):
        self.out(f'iterations.iter_{self.ctx.iteration:02d}.{name}', node)

    def _record(self, name, node):
        self.ctx.records[f'{name}_{self.ctx.iteration:02d}'] = node

    def _failed(self, label: str, node):
        return self.exit_codes[label].format(message=f'iteration {self.ctx.iteration}: {describe(node)}')

    # ------------------------------------------------------------------------------------- iteration
    def start_iteration(self):
        self.ctx.iteration += 1
        self.ctx.selected = False
        self.ctx.labelled = self.ctx.neb_frames = None

    def needs_training(self):
        if self.ctx.ensemble is not None and self.ctx.trained_on is None and self.ctx.iteration == 1:
            self.report('iteration 1: using the given initial ensemble')
            return False
        return self.ctx.trained_on is None or self.ctx.trained_on.uuid != self.ctx.training_set.uuid

    def train(self):
        inputs = self.exposed_inputs(EnsembleWorkChain, 'ensemble')
        inputs['training_set'] = self.ctx.training_set
        if self.ctx.ensemble is not None:
            inputs['parent_ensemble'] = self.ctx.ensemble
        else:
            inputs['retrain'] = orm.Str('scratch')  # nothing to fine-tune from in the first iteration
        inputs['metadata'] = {'call_link_label': f'ensemble_{self.ctx.iteration:02d}'}
        self.report(f'iteration {self.ctx.iteration}: training on {len(self.ctx.training_set)} frames')
        return ToContext(ensemble_wc=self.submit(EnsembleWorkChain, **inputs))

    def inspect_training(self):
        node = self.ctx.ensemble_wc
        if not node.is_finished_ok:
            return self._failed('ERROR_ENSEMBLE_FAILED', node)
        self.ctx.ensemble = node.outputs.ensemble
        self.ctx.trained_on = self.ctx.training_set
        self.ctx.first_ensemble = self.ctx.get('first_ensemble') or self.ctx.ensemble
        return None

    def needs_statistics(self):
        return self.ctx.evaluated != self.ctx.ensemble.uuid

    def evaluate(self):
        inputs = {
            'ensemble': self.ctx.ensemble,
            'structures': self.ctx.test_set,
            'code': self.inputs.evaluate_code,
            'metadata': {
                'options': dict(self.inputs.explore.options),
                'call_link_label': f'test_set_{self.ctx.iteration:02d}',
            },
        }
        if 'harmonic' in self.inputs:
            inputs['harmonic'] = self.inputs.harmonic
        return ToContext(evaluation=self.submit(EvaluateCalculation, **inputs))

    def inspect_evaluation(self):
        node = self.ctx.evaluation
        if not node.is_finished_ok:
            return self._failed('ERROR_EVALUATION_FAILED', node)
        self.ctx.statistics = node.outputs.statistics
        self.ctx.evaluated = self.ctx.ensemble.uuid
        stats = self.ctx.statistics.get_dict()
        self.report(
            f'test set: UCE_F^max {1000 * stats["uce_force_max"]["mean"]:.1f} +- '
            f'{1000 * stats["uce_force_max"]["std"]:.1f} meV/A, force MAE '
            f'{1000 * stats["errors"].get("forces_mae", float("nan")):.1f} meV/A'
        )
        return None

    def label(self):
        inputs = self.exposed_inputs(LabelWorkChain, 'label')
        inputs['structures'] = self.ctx.to_label
        inputs['metadata'] = {'call_link_label': f'label_{self.ctx.iteration:02d}'}
        return ToContext(labelling=self.submit(LabelWorkChain, **inputs))

    def inspect_labelling(self):
        node = self.ctx.labelling
        if 'labelled' not in node.outputs:
            return self._failed('ERROR_LABELLING_FAILED', node)
        self.ctx.labelled = node.outputs.labelled
        self._out('labelled', self.ctx.labelled)
        return None

    def has_new_frames(self):
        return self.ctx.labelled is not None or self.ctx.neb_frames is not None

    def merge(self):
        """Calibrate the uncertainty on the labelled exploration frames; add them (and NEB images) to the training set."""
        parts = {'a': self.ctx.training_set}
        if self.ctx.labelled is not None:
            self._calibrate(self.ctx.labelled)
            parts['b'] = self.ctx.labelled
        if self.ctx.neb_frames is not None:
            parts['c'] = self.ctx.neb_frames
        self.ctx.training_set = merge_training_sets(**parts)
        self._out('training_set', self.ctx.training_set)

    def _calibrate(self, labelled):
        used = {origin['run'] for origin in labelled.origins}
        runs = {f'frames_{run}': arrays for run, arrays in self.ctx.runs['frames'].items() if run in used}
        runs.update({f'trajectory_{run}': t for run, t in self.ctx.runs['trajectories'].items() if run in used})
        calibration = calibrate(labelled, **runs)
        self._out('calibration', calibration)
        self._record('calibration', calibration)
        frames = calibration['frames']

        def fmt(value):
            return 'n/a' if value is None else f'{value:.2f}'

        self.report(
            f'calibration on {frames["n"]} labelled frames: Spearman(UCE_F^max, error) '
            f'{fmt(frames["spearman"])}, mean error / mean UCE_F^max {fmt(frames["error_over_uncertainty"])}'
        )

    def decide(self):
        result = check_convergence(self.inputs.convergence, self.inputs.max_iterations, **self.ctx.records)
        decision = result['decision']
        self._out('convergence', decision)
        self._out('summary', result['summary'])
        self.ctx.decision, self.ctx.summary = decision, result['summary']
        self.ctx.stop = decision['stop']
        self.report(f'iteration {self.ctx.iteration}: {decision["reason"]}: {decision["message"]}')

    def results(self):
        self.out('ensemble', self.ctx.ensemble)
        self.out('training_set', self.ctx.training_set)
        self.out('test_set', self.ctx.test_set)
        self.out('convergence', self.ctx.decision)
        self.out('summary', self.ctx.summary)
        self.report(
            f'finished after {self.ctx.iteration} iteration(s): {self.ctx.decision["reason"]}; '
            f'{len(self.ctx.training_set)} training frames'
        )
