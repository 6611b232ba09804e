"""``ActiveLearningWorkChain``: train, evaluate the test set, explore, acquire, label, merge; repeat.

Start (once): either a labelled ``training_set`` and ``test_set``, or ``initial`` data made by
:class:`~aiida_anharmal.workflows.initial.InitialDataWorkChain` (harmonic sampling, random
displacements or a given trajectory, labelled by the loop's labeller); optionally an
``initial_ensemble`` (pretrained members) that the first iteration uses instead of training.

One iteration (Kang et al.; SCIENCE.md sections 1-2):

1. ``EnsembleWorkChain`` on the current training set (fine-tuned from the previous ensemble
   when the ensemble parameters say ``retrain: finetune``); skipped when the training set did
   not change (nothing was selected in the previous iteration);
2. ``EvaluateCalculation`` of the ensemble on the fixed test set -> test-set statistics;
3. ``ExplorationWorkChain``: MD on the ensemble mean from the start structure (later
   iterations continue from the last frame of the previous iteration's first run);
4. calcfunction ``acquire``: P(UCE) P(U) against the statistics, seeded by the iteration;
5. calcfunction ``selected_structures`` -> ``LabelWorkChain`` with the labelling engine;
6. calcfunction ``calibrate``: true force error of the labelled frames against their UCE_F;
7. calcfunction ``merge_training_sets``: the enlarged training set of the next iteration;
8. calcfunction ``check_convergence``: stop (converged, or the iteration cap) or go on, and the
   per-iteration summary table.

Every step is a process in the graph; the per-iteration nodes are also outputs
(``iterations.iter_NN.*``), and why the loop stopped is the ``convergence`` output.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from ..calculations.evaluate import EvaluateCalculation
from ..calculations.label import check_label_request
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..functions.acquisition import acquire, check_acquisition_parameters, selected_structures
from ..functions.convergence import calibrate, check_convergence, check_convergence_parameters
from ..functions.datasets import merge_training_sets
from ..protocols import ProtocolMixin, recursive_merge
from .ensemble import EnsembleWorkChain
from .initial import InitialDataWorkChain, check_initial_inputs
from .label import LabelWorkChain
from .md import ExplorationWorkChain


def frame_keys(training_set: TrainingSet, decimals: int = 6) -> set[bytes]:
    """One key per frame (numbers, positions and cell rounded to ``decimals`` A): equal frames, equal keys."""
    frames = training_set.frames
    keys = set()
    for k in range(len(frames)):
        sl = frames.atom_slice(k)
        keys.add(
            frames.numbers[sl].tobytes()
            + frames.positions[sl].round(decimals).tobytes()
            + frames.cells[k].round(decimals).tobytes()
        )
    return keys


def _labeller_message(value, to_label) -> str | None:
    """The labelling request refused for the structures the loop will label, in the label jobs' own words."""
    label = value.get('label', {})
    if 'engine' not in label:
        return None
    return check_label_request(
        to_label,
        label['engine'].value,
        label['parameters'].get_dict() if 'parameters' in label else {},
        label['settings'].get_dict() if 'settings' in label else {},
        label.get('model'),
    )


def validate_active_learning_inputs(value, ctx=None):
    """Refuse what cannot run before any job starts (SCIENCE.md, issue 5 item 7)."""
    if 'structure' not in value:
        return None
    initial = value.get('initial') or {}
    given = 'training_set' in value
    if given == ('mode' in initial):
        return 'give either `training_set` and `test_set`, or `initial.mode` (and its data), not both and not neither'
    if given and 'test_set' not in value:
        return '`test_set` is needed with `training_set` (frames never trained on, for the statistics)'
    if not given and 'test_set' in value:
        return '`test_set` comes from the initial data when `initial.mode` is given; do not give both'
    try:
        acquisition = check_acquisition_parameters(value['acquisition'].get_dict() if 'acquisition' in value else {})
        check_convergence_parameters(value['convergence'].get_dict() if 'convergence' in value else {})
    except ValueError as exc:
        return str(exc)
    if acquisition['kind'] == 'anharmonicity' and 'harmonic' not in value:
        return 'acquisition kind `anharmonicity` needs the `harmonic` input (the reference of A and UCE_A)'
    if 'max_iterations' in value and value['max_iterations'].value < 1:
        return f'`max_iterations` must be at least 1, not {value["max_iterations"].value}'
    species = set(value['structure'].get_ase().get_chemical_symbols())
    if given:
        training_set, test_set = value['training_set'], value['test_set']
        if len(test_set) < 2:
            return 'the test set needs at least two frames (its statistics need a standard deviation)'
        species |= set(training_set.species)
        engine = value.get('label', {}).get('engine')
        for name, node in (('training set', training_set), ('test set', test_set)):
            made_by = node.base.attributes.get('label_engine', None)
            if engine is not None and made_by is not None and made_by != engine.value:
                return (
                    f'the {name} was labelled by `{made_by}` but the loop labels with `{engine.value}`: new frames '
                    'could not be merged with it (relabel it first, or start from initial data)'
                )
        shared = frame_keys(training_set) & frame_keys(test_set)
        if shared:
            return (
                f'{len(shared)} frame(s) of the test set are also in the training set: the test set must be '
                'frames never trained on'
            )
    else:
        mode = initial['mode'].value
        request = {**initial, 'mode': initial['mode']}
        if mode == 'harmonic' and 'harmonic' in value:
            request['force_constants'] = value['harmonic']
        if mode == 'random':
            request['structure'] = value['structure']
        message = check_initial_inputs(request)
        if message:
            return message.replace('input `force_constants`', 'input `harmonic`')
        if mode == 'trajectory':
            species |= set(initial['frames'].species)
    # the loop labels frames of the start structure (and, for mode `trajectory`, the given frames)
    message = _labeller_message(value, TrainingSet.from_ase([value['structure'].get_ase()]))
    if not message and not given and initial['mode'].value == 'trajectory':
        message = _labeller_message(value, initial['frames'])
    if message:
        return message
    if 'initial_ensemble' in value and set(value['initial_ensemble'].species) != species:
        return (
            f'the initial ensemble knows {sorted(value["initial_ensemble"].species)} but the structures hold '
            f'{sorted(species)}'
        )
    return None


class ActiveLearningWorkChain(ProtocolMixin, WorkChain):
    """Ensemble active learning with a soft acquisition (Kang et al.), every decision a node."""

    _protocol_file = 'active_learning.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
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
            help='kind (force_max | energy | anharmonicity | random), s, g, n_max, min_spacing.',
        )
        spec.input(
            'convergence',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='tolerance (eV/A) of the test-set force MAE change and patience (iterations).',
        )
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(0), help='Seed of the acquisition draws.')
        spec.expose_inputs(EnsembleWorkChain, namespace='ensemble', exclude=('training_set', 'parent_ensemble'))
        spec.expose_inputs(ExplorationWorkChain, namespace='explore', exclude=('ensemble', 'structure', 'harmonic'))
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures',))
        spec.input('evaluate_code', valid_type=orm.AbstractCode, help='Code of `anharmal-evaluate`.')
        spec.inputs.validator = validate_active_learning_inputs
        spec.outline(
            cls.setup,
            if_(cls.needs_initial_data)(cls.make_initial_data, cls.inspect_initial_data),
            while_(cls.should_continue)(
                cls.start_iteration,
                if_(cls.needs_training)(cls.train, cls.inspect_training),
                if_(cls.needs_statistics)(cls.evaluate, cls.inspect_evaluation),
                cls.explore,
                cls.select,
                if_(cls.has_selection)(cls.label, cls.merge),
                cls.decide,
            ),
            cls.results,
        )
        spec.output('ensemble', valid_type=Ensemble, help='The last ensemble.')
        spec.output('training_set', valid_type=TrainingSet, help='The final training set.')
        spec.output('test_set', valid_type=TrainingSet, help='The fixed test set.')
        spec.output('convergence', valid_type=orm.Dict, help='Why the loop stopped: stop, converged, reason, message.')
        spec.output('summary', valid_type=orm.Dict, help='Per-iteration table (`rows`).')
        spec.output_namespace('iterations', dynamic=True, help='Per-iteration nodes: iter_NN.<name>.')
        spec.exit_code(400, 'ERROR_INITIAL_DATA_FAILED', message='The initial data could not be made: {message}')
        spec.exit_code(410, 'ERROR_ENSEMBLE_FAILED', message='Ensemble training failed in iteration {iteration}.')
        spec.exit_code(420, 'ERROR_EVALUATION_FAILED', message='Test-set evaluation failed in iteration {iteration}.')
        spec.exit_code(430, 'ERROR_EXPLORATION_FAILED', message='Exploration failed in iteration {iteration}.')
        spec.exit_code(440, 'ERROR_LABELLING_FAILED', message='Labelling failed in iteration {iteration}.')

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        structure,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        training_set: TrainingSet | None = None,
        test_set: TrainingSet | None = None,
        harmonic: orm.ArrayData | None = None,
        model: MLIPModel | None = None,
        initial_ensemble: Ensemble | None = None,
        options: dict | None = None,
    ):
        """A builder from one protocol name for the loop, its initial data and its three sub-workchains.

        :param codes: ``{'train', 'evaluate', 'md', 'label'}`` -> codes of the four programs.
        :param structure: start of the exploration, StructureData or ASE Atoms.
        :param engine: labelling engine (``gpaw``, ``emt``, ``nequip-reference`` with ``model``).
        :param overrides: nested dict; ``ensemble``, ``explore`` and ``label`` override those
            workchains' protocol inputs, every other key this workchain's (e.g. ``initial``).
        :param training_set: labelled start frames (with ``test_set``); without them the protocol's
            ``initial`` data are made: harmonic sampling when ``harmonic`` is given, else random
            displacements of ``structure``.
        :param harmonic: ForceConstants of ``structure``: A, UCE_A and the harmonic sampling.
        :param options: scheduler options for every job.
        """
        overrides = dict(overrides or {})
        sub = {name: overrides.pop(name, {}) for name in ('ensemble', 'explore', 'label')}
        inputs = cls.get_protocol_inputs(protocol, overrides)
        missing = sorted({'train', 'evaluate', 'md', 'label'} - set(codes))
        if missing:
            raise ValueError(f'codes missing for {missing}')
        if (training_set is None) != (test_set is None):
            raise ValueError('give both `training_set` and `test_set`, or neither (then the initial data are made)')
        ensemble = EnsembleWorkChain.get_protocol_inputs(protocol, sub['ensemble'])
        explore = ExplorationWorkChain.get_protocol_inputs(protocol, sub['explore'])
        label = LabelWorkChain.get_protocol_inputs(protocol, sub['label'])
        if engine not in label['engines']:
            raise ValueError(f'no protocol parameters for engine {engine!r}; known: {", ".join(label["engines"])}')
        builder = cls.get_builder()
        builder.structure = structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
        if training_set is not None:
            builder.training_set = training_set
            builder.test_set = test_set
        else:
            mode = inputs['initial'].get('mode') or ('harmonic' if harmonic is not None else 'random')
            builder.initial = {'mode': orm.Str(mode), 'parameters': orm.Dict(inputs['initial']['parameters'][mode])}
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.seed = orm.Int(inputs['seed'])
        builder.acquisition = orm.Dict(inputs['acquisition'])
        builder.convergence = orm.Dict(inputs['convergence'])
        builder.evaluate_code = codes['evaluate']
        if harmonic is not None:
            builder.harmonic = harmonic
        if initial_ensemble is not None:
            builder.initial_ensemble = initial_ensemble
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

    # ------------------------------------------------------------------------------------- start
    def setup(self):
        self.ctx.iteration = 0
        self.ctx.training_set = self.inputs.get('training_set')
        self.ctx.test_set = self.inputs.get('test_set')
        self.ctx.ensemble = self.inputs.get('initial_ensemble')
        self.ctx.trained_on = None  # the training set of the current ensemble (None: pretrained or none)
        self.ctx.evaluated = None  # uuid of the ensemble the current statistics belong to
        self.ctx.structure = self.inputs.structure
        self.ctx.stop = False
        self.ctx.records = {}

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
            return self.exit_codes.ERROR_INITIAL_DATA_FAILED.format(
                message=f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}'
            )
        self.ctx.training_set = node.outputs.training_set
        self.ctx.test_set = node.outputs.test_set
        return None

    def should_continue(self):
        return not self.ctx.stop

    def _out(self, name, node):
        self.out(f'iterations.iter_{self.ctx.iteration:02d}.{name}', node)

    def _record(self, name, node):
        self.ctx.records[f'{name}_{self.ctx.iteration:02d}'] = node

    # ------------------------------------------------------------------------------------- iteration
    def start_iteration(self):
        self.ctx.iteration += 1
        self.ctx.selected = False

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
            return self.exit_codes.ERROR_ENSEMBLE_FAILED.format(iteration=self.ctx.iteration)
        self.ctx.ensemble = node.outputs.ensemble
        self.ctx.trained_on = self.ctx.training_set
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
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(iteration=self.ctx.iteration)
        self.ctx.statistics = node.outputs.statistics
        self.ctx.evaluated = self.ctx.ensemble.uuid
        stats = self.ctx.statistics.get_dict()
        self.report(
            f'test set: UCE_F^max {1000 * stats["uce_force_max"]["mean"]:.1f} +- '
            f'{1000 * stats["uce_force_max"]["std"]:.1f} meV/A, force MAE '
            f'{1000 * stats["errors"].get("forces_mae", float("nan")):.1f} meV/A'
        )
        return None

    def explore(self):
        self._out('ensemble', self.ctx.ensemble)
        self._out('statistics', self.ctx.statistics)
        self._record('statistics', self.ctx.statistics)
        self._record('training_set', self.ctx.training_set if self.ctx.trained_on is None else self.ctx.trained_on)
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
        trajectories = dict(node.outputs.trajectories)
        self.ctx.runs = {'frames': frames, 'trajectories': trajectories}
        seed = orm.Int(self.inputs.seed.value * 1000 + self.ctx.iteration)
        result = acquire(self.ctx.statistics, self.inputs.acquisition, seed, **frames)
        selection = result['selection']
        self._out('selection', selection)
        self._record('selection', selection)
        chosen = selection['frames']
        self.report(f'acquisition: {len(chosen)} of {selection["n_candidates"]} frames selected')
        # the next exploration continues from the end of the first run of this one
        first = trajectories[sorted(trajectories)[0]]
        self.ctx.structure = first.get_step_structure(first.numsteps - 1)
        if chosen:
            self.ctx.selected = True
            self.ctx.to_label = selected_structures(selection, orm.Int(self.ctx.iteration), **trajectories)
        return None

    def has_selection(self):
        return self.ctx.selected

    def label(self):
        inputs = self.exposed_inputs(LabelWorkChain, 'label')
        inputs['structures'] = self.ctx.to_label
        inputs['metadata'] = {'call_link_label': f'label_{self.ctx.iteration:02d}'}
        return ToContext(labelling=self.submit(LabelWorkChain, **inputs))

    def merge(self):
        node = self.ctx.labelling
        if 'labelled' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(iteration=self.ctx.iteration)
        labelled = node.outputs.labelled
        self._out('labelled', labelled)
        runs = {f'frames_{run}': arrays for run, arrays in self.ctx.runs['frames'].items()}
        runs.update({f'trajectory_{run}': t for run, t in self.ctx.runs['trajectories'].items()})
        used = {origin['run'] for origin in labelled.origins}
        calibration = calibrate(labelled, **{k: v for k, v in runs.items() if k.split('_', 1)[1] in used})
        self._out('calibration', calibration)
        self._record('calibration', calibration)
        frames = calibration['frames']

        def fmt(value):
            return 'n/a' if value is None else f'{value:.2f}'

        self.report(
            f'calibration on {frames["n"]} labelled frames: Spearman(UCE_F^max, error) '
            f'{fmt(frames["spearman"])}, mean error / mean UCE_F^max {fmt(frames["error_over_uncertainty"])}'
        )
        self.ctx.training_set = merge_training_sets(a=self.ctx.training_set, b=labelled)
        self._out('training_set', self.ctx.training_set)
        return None

    def decide(self):
        result = check_convergence(self.inputs.convergence, self.inputs.max_iterations, **self.ctx.records)
        decision = result['decision']
        self._out('convergence', decision)
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
