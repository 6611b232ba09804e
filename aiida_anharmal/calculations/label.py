"""``anharmal.label``: label a batch of structures (energy, forces, stress) with a named engine."""

from __future__ import annotations

import io
from pathlib import PurePath
from typing import ClassVar

from aiida import orm

from ..core.labelling.labellers import EngineError, check_request
from ..core.structures.checks import DEFAULT_MIN_DISTANCE, StructureError, check_frames, check_species
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..engines import label as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys

#: Keys accepted in the ``settings`` input.
SETTINGS_KEYS = {'properties', 'max_seconds', 'min_distance'}


def check_label_request(
    structures: TrainingSet,
    engine: str,
    parameters: dict | None = None,
    settings: dict | None = None,
    model: MLIPModel | None = None,
    indices=None,
    ensemble: Ensemble | None = None,
) -> str | None:
    """Return an error message if this labelling request cannot run, else ``None``.

    Shared by the calculation and the workchains, so that bad input is refused in the same words
    wherever it enters, before any job is submitted.
    """
    parameters = parameters or {}
    settings = settings or {}
    message = unknown_keys(settings, SETTINGS_KEYS)
    if message:
        return message
    try:
        labeller, _ = check_request(engine, parameters, settings.get('properties'))
    except EngineError as exc:
        return str(exc)
    if labeller.needs_model and model is None:
        return f'engine `{engine}` needs a `model` input (the reference model used in place of DFT)'
    if not labeller.needs_model and model is not None:
        return f'engine `{engine}` takes no `model` input'
    if labeller.needs_ensemble and ensemble is None:
        return f'engine `{engine}` needs an `ensemble` input (the ensemble whose mean labels the structures)'
    if not labeller.needs_ensemble and ensemble is not None:
        return f'engine `{engine}` takes no `ensemble` input'
    max_seconds = settings.get('max_seconds')
    if max_seconds is not None and not float(max_seconds) > 0:
        return f'`settings.max_seconds` must be positive, not {max_seconds}'
    min_distance = settings.get('min_distance', DEFAULT_MIN_DISTANCE)
    if isinstance(min_distance, bool) or not isinstance(min_distance, (int, float)) or not min_distance > 0:
        return f'`settings.min_distance` must be a positive distance (A), not {min_distance!r}'
    try:
        check_frames(structures.frames, min_distance=min_distance, indices=indices)
        subset = structures.frames if indices is None else structures.frames.subset(indices)
        source = model if model is not None else ensemble
        what = f'engine `{engine}`' if source is None else f'the model <{source.pk or "unstored"}> of engine `{engine}`'
        species = source.species if source is not None else None
        check_species(subset.species, labeller.supported_elements(parameters, species), what)
    except StructureError as exc:
        return str(exc)
    return None


def check_label_inputs(label, structures, indices=None) -> str | None:
    """:func:`check_label_request` of a namespace of labelling inputs (``engine``, ``parameters``, ``settings``,
    ``model``, ``ensemble``: those of ``LabelCalculation`` or of an exposed ``label`` namespace) on ``structures``,
    a TrainingSet or a list of ASE Atoms."""
    if not hasattr(structures, 'frames'):
        from types import SimpleNamespace

        from ..core.structures.frames import Frames

        structures = SimpleNamespace(frames=Frames.from_atoms(list(structures)))
    return check_label_request(
        structures,
        label['engine'].value,
        dict_input(label, 'parameters'),
        dict_input(label, 'settings'),
        label.get('model'),
        indices,
        label.get('ensemble'),
    )


def validate_inputs(value, ctx=None):
    """Validate the whole input namespace of :class:`LabelCalculation`."""
    if 'structures' not in value or 'engine' not in value:
        return None  # exposed in a workchain that sets them later
    indices = value['indices'].get_list() if 'indices' in value else None
    return check_label_inputs(value, value['structures'], indices)


class LabelCalculation(AnharmalCalcJob):
    """Compute energy, forces (and stress) of structures with GPAW, EMT, a reference NequIP model or an ensemble.

    Runs the ``anharmal-label`` program of this package. Every finished label is written to disk
    at once, so a killed or failed job keeps what it produced: the ``labelled`` output holds every
    structure that succeeded, ``failures`` says why the others did not, and the exit code names
    the failure that a restart can fix (SCF not converged, interrupted).
    """

    _parser = 'anharmal.label'
    _states: ClassVar[dict[str, str]] = {'time_budget_spent': 'ERROR_INTERRUPTED'}
    _exit_codes = ('ERROR_SCF_NOT_CONVERGED', 'ERROR_STRUCTURES_FAILED', 'ERROR_INTERRUPTED')

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structures', valid_type=TrainingSet, help='Structures to label (existing labels are ignored).')
        spec.input(
            'indices',
            valid_type=orm.List,
            required=False,
            help='Indices of the structures to label (default: all). Labels keep these indices as `source_index`.',
        )
        spec.input(
            'engine',
            valid_type=orm.Str,
            help='Labelling engine: `gpaw`, `emt`, `tersoff`, `nequip-reference` or `ensemble`.',
        )
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='Parameters passed to the engine (for GPAW: the keyword arguments of `gpaw.GPAW`).',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help='`properties` (subset of energy, forces, stress), `max_seconds` (time budget; default 80% of '
            'the walltime), `min_distance` (Angstrom, refuse closer atoms; default 0.5).',
        )
        spec.input('model', valid_type=MLIPModel, required=False, help='Model file for `nequip-reference`.')
        spec.input('ensemble', valid_type=Ensemble, required=False, help='The ensemble of engine `ensemble`.')
        spec.inputs.validator = validate_inputs

        spec.output('labelled', valid_type=TrainingSet, required=False, help='The structures that were labelled.')
        spec.output(
            'failures',
            valid_type=orm.Dict,
            required=False,
            help='Structures not labelled: source index -> {reason, message}.',
        )

    def prepare_for_submission(self, folder):
        structures = self.inputs.structures
        indices = self.inputs.indices.get_list() if 'indices' in self.inputs else list(range(len(structures)))
        settings = dict_input(self.inputs, 'settings')
        parameters = dict_input(self.inputs, 'parameters')
        engine = self.inputs.engine.value
        _, properties = check_request(engine, parameters, settings.get('properties'))

        max_seconds = self.time_budget(settings.get('max_seconds'))

        config = {
            'engine': engine,
            'parameters': parameters,
            'properties': list(properties),
            'indices': indices,
            'max_seconds': max_seconds,
            'structures_file': program.STRUCTURES_FILE,
            'model_file': None,
        }
        local_copy_list = []
        if 'model' in self.inputs:
            model = self.inputs.model
            suffix = ''.join(PurePath(model.filename).suffixes)
            config['model_file'] = f'model{suffix}'
            local_copy_list.append((model.uuid, model.filename, config['model_file']))
        if 'ensemble' in self.inputs:
            config['member_files'], copies = self.member_files(folder, self.inputs.ensemble)
            local_copy_list.extend(copies)

        self.write_config(folder, config)
        data = structures.frames.subset(indices).to_npz_bytes()
        folder.create_file_from_filelike(io.BytesIO(data), program.STRUCTURES_FILE, mode='wb')

        return self.calcinfo(
            local_copy_list,
            retrieve_list=[program.LABELS_FILE, STATUS_FILE, program.LOG_FILE, 'gpaw.txt'],
        )
