"""``EnsembleWorkChain``: n_sub subsamples x n_seed seeds, one TrainCalculation per member, in parallel."""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain

from .. import exit_codes
from ..calculations.train import check_train_request
from ..core.structures.checks import check_seed
from ..core.structures.splits import subsample_splits
from ..data.ensemble import Ensemble
from ..data.training_set import TrainingSet
from ..functions.datasets import subsample
from ..functions.ensembles import assemble_ensemble
from ..ports import dict_input, input_value
from ..protocols import ProtocolMixin, recursive_merge
from .codes import code_or_setup
from .common import add_options_input, describe, options_message
from .train import TrainBaseWorkChain

RETRAIN_MODES = ('scratch', 'finetune')


def member_label(k: int, seed: int) -> str:
    return f'sub{k}_seed{seed}'


def validate_ensemble_inputs(value, ctx=None):
    """Refuse bad input before any job starts: ensemble size, seeds, split, labels, species, parent."""
    if 'training_set' not in value:
        return None
    n_sub = input_value(value, 'n_sub', EnsembleWorkChain)
    seeds = input_value(value, 'seeds', EnsembleWorkChain)
    if any(not isinstance(s, int) or s < 0 for s in seeds):
        return f'seeds must be non-negative integers, not {seeds}'
    if len(set(seeds)) != len(seeds):
        return f'duplicate seeds {seeds}: members with the same subsample and seed would be identical'
    try:
        check_seed('subsample_seed', input_value(value, 'subsample_seed', EnsembleWorkChain))
    except ValueError as exc:
        return str(exc)
    if n_sub < 1 or n_sub * len(seeds) < 2:
        return f'an ensemble needs at least 2 members; n_sub={n_sub} x {len(seeds)} seed(s) gives {n_sub * len(seeds)}'
    training_set = value['training_set']
    frames = training_set.frames
    unlabelled = [int(i) for i in (~(frames.has_energy & frames.has_forces)).nonzero()[0]]
    if unlabelled:
        return f'the training set has {len(unlabelled)} frame(s) without energy or forces (first: {unlabelled[:5]})'
    ratio = input_value(value, 'validation_ratio', EnsembleWorkChain)
    fraction = input_value(value, 'fraction', EnsembleWorkChain)
    try:
        splits = subsample_splits(range(len(training_set)), n_sub, ratio, 0, fraction)
    except ValueError as exc:
        return str(exc)
    retrain = input_value(value, 'retrain', EnsembleWorkChain)
    if retrain not in RETRAIN_MODES:
        return f'`retrain` must be one of {RETRAIN_MODES}, not {retrain!r}'
    parent = value.get('parent_ensemble')
    if retrain == 'finetune' and parent is None:
        return '`retrain` is `finetune` but no `parent_ensemble` was given'
    parent_members = parent.members if parent is not None and retrain == 'finetune' else {}
    for k, (train, validation) in enumerate(splits):
        for seed in seeds:
            message = check_train_request(
                training_set,
                {'train': train, 'validation': validation},
                dict_input(value, 'hyperparameters'),
                seed,
                value['species'].get_list() if 'species' in value else None,
                parent_members.get(member_label(k, seed)),
                dict_input(value, 'settings'),
            )
            if message:
                return message
    if parent_members:
        missing = sorted({member_label(k, s) for k in range(n_sub) for s in seeds} - set(parent_members))
        if missing:
            return f'the parent ensemble has no member(s) {missing} to fine-tune from (it has {sorted(parent_members)})'
    return options_message(value)


class EnsembleWorkChain(ProtocolMixin, WorkChain):
    """Train an ensemble: ``n_sub`` subsampled training sets x ``seeds``, all members in parallel.

    The subsamples are recorded by the :func:`~aiida_anharmal.functions.subsample` calcfunction;
    member ``sub{k}_seed{s}`` is a :class:`TrainCalculation` on subsample ``k`` with seed ``s``.
    With ``retrain='finetune'`` and a ``parent_ensemble``, each member is fine-tuned from the
    parent member with the same label; otherwise it is trained from scratch.
    """

    _protocol_file = 'ensemble.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSet, help='Labelled frames.')
        spec.input('code', valid_type=orm.AbstractCode, help='Code of the `anharmal-train` program.')
        spec.input('n_sub', valid_type=orm.Int, default=lambda: orm.Int(3), help='Number of subsampled sets.')
        spec.input('seeds', valid_type=orm.List, default=lambda: orm.List([0, 1]), help='Initialisation seeds.')
        spec.input(
            'validation_ratio',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.2),
            help='Fraction of each subsample held out for validation.',
        )
        spec.input(
            'fraction',
            valid_type=orm.Float,
            default=lambda: orm.Float(1.0),
            help='Fraction of the frames drawn into each subsample.',
        )
        spec.input('subsample_seed', valid_type=orm.Int, default=lambda: orm.Int(0), help='Seed of the subsampling.')
        spec.input('hyperparameters', valid_type=orm.Dict, required=False, help='See `TrainCalculation`.')
        spec.input('species', valid_type=orm.List, required=False, help='Model species in type order.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='See `TrainCalculation.settings`.')
        spec.input('parent_ensemble', valid_type=Ensemble, required=False, help='Previous ensemble (fine-tuning).')
        spec.input(
            'retrain',
            valid_type=orm.Str,
            default=lambda: orm.Str('scratch'),
            help='`scratch`: new models; `finetune`: start each member from its parent member.',
        )
        add_options_input(spec, 'TrainCalculation')
        spec.inputs.validator = validate_ensemble_inputs
        spec.outline(cls.make_subsamples, cls.train_members, cls.assemble)
        spec.output('ensemble', valid_type=Ensemble, help='The trained ensemble.')
        spec.output_namespace('members', dynamic=True, help='Member models by label `sub{k}_seed{s}`.')
        spec.output_namespace('subsamples', valid_type=orm.Dict, dynamic=True, help='Recorded index sets.')
        exit_codes.declare(spec, 'ERROR_ENSEMBLE_FAILED', workchain=True)

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        training_set: TrainingSet | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
        parent_ensemble: Ensemble | None = None,
        options: dict | None = None,
    ):
        """Return a builder filled from a protocol (``fast``, ``moderate``, ``precise``).

        :param training_set: the labelled frames; ``None`` when an enclosing loop supplies them (and the
            parent ensemble): then the protocol's ``retrain`` is kept for the loop to apply.
        :param overrides: nested dict of protocol values to replace, e.g.
            ``{'n_sub': 2, 'seeds': [0, 1], 'hyperparameters': {'max_epochs': 50}}``; unknown keys are refused.
        :param parent_ensemble: previous ensemble; used when the protocol's ``retrain`` is ``finetune``.
        :param options: scheduler options merged (recursively) into the protocol's ``options``.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.code = code_or_setup(code, 'train')
        builder.n_sub = orm.Int(inputs['n_sub'])
        builder.seeds = orm.List(list(inputs['seeds']))
        builder.validation_ratio = orm.Float(inputs['validation_ratio'])
        builder.fraction = orm.Float(inputs['fraction'])
        builder.subsample_seed = orm.Int(inputs['subsample_seed'])
        builder.hyperparameters = orm.Dict(inputs['hyperparameters'])
        if inputs.get('species'):
            builder.species = orm.List(list(inputs['species']))
        if inputs.get('settings'):
            builder.settings = orm.Dict(inputs['settings'])
        if training_set is not None:
            builder.training_set = training_set
        if parent_ensemble is not None:
            builder.parent_ensemble = parent_ensemble
        if parent_ensemble is not None or training_set is None:
            builder.retrain = orm.Str(inputs['retrain'])
        builder.options = recursive_merge(inputs['options'], options or {})
        return builder

    def make_subsamples(self):
        parameters = orm.Dict(
            {
                'n_sub': self.inputs.n_sub.value,
                'validation_ratio': self.inputs.validation_ratio.value,
                'seed': self.inputs.subsample_seed.value,
                'fraction': self.inputs.fraction.value,
            }
        )
        self.ctx.subsamples = subsample(self.inputs.training_set, parameters)
        for name, node in self.ctx.subsamples.items():
            self.out(f'subsamples.{name}', node)

    def train_members(self):
        finetune = self.inputs.retrain.value == 'finetune' and 'parent_ensemble' in self.inputs
        parents = self.inputs.parent_ensemble.members if finetune else {}
        self.ctx.labels = []
        for name, node in sorted(self.ctx.subsamples.items()):
            k = node['index']
            for seed in self.inputs.seeds.get_list():
                label = member_label(k, seed)
                inputs = {
                    'training_set': self.inputs.training_set,
                    'subsample': node,
                    'seed': orm.Int(seed),
                    'code': self.inputs.code,
                    'metadata': {'options': dict(self.inputs.options)},
                }
                for key in ('hyperparameters', 'species', 'settings'):
                    if key in self.inputs:
                        inputs[key] = self.inputs[key]
                if label in parents:
                    inputs['parent_model'] = parents[label]
                # a restart wrapper: a killed job is trained again (TrainBaseWorkChain.handle_killed)
                running = self.submit(TrainBaseWorkChain, train=inputs, metadata={'call_link_label': label})
                self.to_context(**{label: running})
                self.ctx.labels.append(label)
        how = 'fine-tuned from the parent ensemble' if finetune else 'from scratch'
        self.report(f'training {len(self.ctx.labels)} member(s) {how}: {", ".join(self.ctx.labels)}')

    def assemble(self):
        failed = {label: self.ctx[label] for label in self.ctx.labels if 'model' not in self.ctx[label].outputs}
        if failed:
            why = '; '.join(describe(node) for node in failed.values())
            return self.exit_codes.ERROR_ENSEMBLE_FAILED.format(message=f'member(s) {", ".join(failed)}: {why}')
        members = {label: self.ctx[label].outputs.model for label in self.ctx.labels}
        for label, model in members.items():
            self.out(f'members.{label}', model)
            metrics = model.base.attributes.get('metrics', {})
            self.report(
                f'{label}: validation force MAE {1000 * metrics.get("validation_forces_mae", float("nan")):.1f} meV/A, '
                f'{metrics.get("epochs")} epochs'
            )
        self.out('ensemble', assemble_ensemble(**members))
        return None
