"""``anharmal.train``: train one NequIP ensemble member (nequip 0.19) on recorded frames of a TrainingSet."""

from __future__ import annotations

import io
from typing import ClassVar

from aiida import orm

from ..core.models.nequip_config import check_hyperparameters
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..engines import train as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys

#: Keys accepted in the ``settings`` input.
SETTINGS_KEYS = {'compile', 'max_seconds'}


def check_parent_model(parent: MLIPModel, hyperparameters: dict, species: list[str]) -> str | None:
    """An error message if a member with ``hyperparameters`` and ``species`` cannot be fine-tuned from ``parent``."""
    if parent.model_format != 'nequip-package':
        return f'a parent model must be a `nequip-package` model, not `{parent.model_format}`'
    if parent.species != list(species):
        return f'the parent model has species {parent.species}, this member {list(species)}: they must be equal'
    try:
        r_max = float(check_hyperparameters(hyperparameters)['r_max'])
    except ValueError as exc:
        return str(exc)
    if abs(parent.r_max - r_max) > 1e-9:
        return (
            f'the parent model has r_max {parent.r_max:g} A but the hyperparameters say {r_max:g} A: '
            f"fine-tuning keeps the parent's cutoff, so set `r_max` to {parent.r_max:g}"
        )
    return None


def check_train_request(
    training_set: TrainingSet,
    subsample: dict,
    hyperparameters: dict,
    seed: int,
    species: list[str] | None = None,
    parent: MLIPModel | None = None,
    settings: dict | None = None,
) -> str | None:
    """Return an error message if this member cannot be trained, else ``None`` (shared with the workchain)."""
    settings = settings or {}
    message = unknown_keys(settings, SETTINGS_KEYS)
    if message:
        return message
    try:
        hp = check_hyperparameters(hyperparameters)
    except ValueError as exc:
        return f'bad `hyperparameters`: {exc}'
    if not isinstance(seed, int) or seed < 0:
        return f'the seed must be a non-negative integer, not {seed!r}'
    train = [int(i) for i in subsample.get('train', [])]
    validation = [int(i) for i in subsample.get('validation', [])]
    if not train or not validation:
        return 'the subsample needs at least one `train` and one `validation` frame'
    overlap = sorted(set(train) & set(validation))
    if overlap:
        return f'frames {overlap[:5]} are both in `train` and `validation`'
    n_frames = len(training_set)
    bad = [i for i in train + validation if not 0 <= i < n_frames]
    if bad:
        return f'frame indices {bad[:5]} are out of range for a training set of {n_frames} frames'
    frames = training_set.frames
    used = train + validation
    from ..core.structures.checks import label_problem

    problem = label_problem(frames, used)
    if problem:
        return f'the training set: {problem}'
    if hp['stress_weight'] > 0 and not frames.has_stress[used].all():
        return 'stress is in the loss (`stress_weight` > 0) but some frames have no stress label'
    data_species = set(frames.subset(used).species)
    model_species = list(species) if species else sorted(data_species)
    missing = sorted(data_species - set(model_species))
    if missing:
        return f'elements {missing} of the training frames are missing from the model species {model_species}'
    message = check_parent_model(parent, hp, model_species) if parent is not None else None
    if message:
        return message
    if 'max_seconds' in settings and not float(settings['max_seconds']) > 0:
        return f'`settings.max_seconds` must be positive, not {settings["max_seconds"]}'
    return None


def validate_inputs(value, ctx=None):
    """Validate the whole input namespace of :class:`TrainCalculation`."""
    if 'training_set' not in value or 'subsample' not in value:
        return None  # exposed in a workchain that sets them later
    return check_train_request(
        value['training_set'],
        value['subsample'].get_dict(),
        dict_input(value, 'hyperparameters'),
        value['seed'].value if 'seed' in value else 0,
        value['species'].get_list() if 'species' in value else None,
        value.get('parent_model'),
        dict_input(value, 'settings'),
    )


class TrainCalculation(AnharmalCalcJob):
    """Train one NequIP model with ``nequip-train`` and package it with ``nequip-package``.

    The member's data are the ``train`` and ``validation`` frames named in the ``subsample``
    input (an output of :func:`aiida_anharmal.functions.subsample`), its initialisation the
    ``seed``: both are inputs, so the graph answers which frames and which seed made a model.
    With ``parent_model`` the member is fine-tuned from that packaged model. The output model is
    a self-contained package: it loads without any checkpoint or parent file.
    """

    _parser = 'anharmal.train'
    _states: ClassVar[dict[str, str]] = {
        'training_failed': 'ERROR_TRAINING_FAILED',
        'packaging_failed': 'ERROR_PACKAGING_FAILED',
        'compile_failed': 'ERROR_COMPILE_FAILED',
    }

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSet, help='The labelled frames.')
        spec.input(
            'subsample',
            valid_type=orm.Dict,
            help='`train` and `validation`: indices of the frames of `training_set` this member uses.',
        )
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(0), help='Initialisation seed of the model.')
        spec.input(
            'hyperparameters',
            valid_type=orm.Dict,
            required=False,
            help='Model and training hyperparameters (`aiida_anharmal.core.models.nequip_config.DEFAULTS`).',
        )
        spec.input(
            'species',
            valid_type=orm.List,
            required=False,
            help='Chemical symbols in the model type order (default: the elements of the frames, sorted).',
        )
        spec.input('parent_model', valid_type=MLIPModel, required=False, help='Packaged model to fine-tune from.')
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help='`compile` (also compile with AOT inductor; default False), `max_seconds` (training time budget; '
            'default 80% of the walltime).',
        )
        spec.inputs.validator = validate_inputs

        spec.output('model', valid_type=MLIPModel, required=False, help='The packaged model (`.nequip.zip`).')
        spec.output('compiled_model', valid_type=MLIPModel, required=False, help='AOT-inductor compiled model.')
        spec.output('metrics', valid_type=orm.Dict, required=False, help='Final errors on train and validation frames.')
        spec.output('learning_curve', valid_type=orm.ArrayData, required=False, help='Per-epoch validation errors.')

    def prepare_for_submission(self, folder):
        subsample = self.inputs.subsample.get_dict()
        train = [int(i) for i in subsample['train']]
        validation = [int(i) for i in subsample['validation']]
        frames = self.inputs.training_set.frames
        species = (
            self.inputs.species.get_list()
            if 'species' in self.inputs
            else sorted(set(frames.subset(train + validation).species))
        )
        settings = dict_input(self.inputs, 'settings')
        hyperparameters = dict_input(self.inputs, 'hyperparameters')
        # the training time: the recipe's own budget (hyperparameter), never beyond the job's (80 % of the walltime)
        budgets = [b for b in (hyperparameters.get('max_seconds'), self.time_budget(settings.get('max_seconds'))) if b]
        if budgets:
            hyperparameters = {**hyperparameters, 'max_seconds': min(budgets)}

        # only the frames this member uses travel to the job, renumbered train first
        config = {
            'species': species,
            'seed': self.inputs.seed.value,
            'hyperparameters': hyperparameters,
            'train_indices': list(range(len(train))),
            'validation_indices': list(range(len(train), len(train) + len(validation))),
            'compile': bool(settings.get('compile', False)),
            'parent_file': None,
        }
        local_copy_list = []
        if 'parent_model' in self.inputs:
            parent = self.inputs.parent_model
            config['parent_file'] = 'parent.nequip.zip'
            local_copy_list.append((parent.uuid, parent.filename, config['parent_file']))

        self.write_config(folder, config)
        data = frames.subset(train + validation).to_npz_bytes()
        folder.create_file_from_filelike(io.BytesIO(data), program.STRUCTURES_FILE, mode='wb')

        return self.calcinfo(
            local_copy_list,
            retrieve_list=[
                STATUS_FILE,
                program.METRICS_FILE,
                program.CURVE_FILE,
                program.LOG_FILE,
                'config.yaml',
                (f'{program.RUN_DIR}/train.log', '.', 2),  # nequip's own log, kept as run/train.log
            ],
            # the model files are stored once, in the MLIPModel outputs
            retrieve_temporary_list=[program.MODEL_FILE, program.COMPILED_FILE],
        )
