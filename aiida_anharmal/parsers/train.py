"""Parser of ``anharmal.train``: the packaged model with its metadata, the metrics and the learning curve."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from aiida import orm

from ..data.mlip_model import MLIPModel
from ..engines import train as program
from ..ports import dict_input
from .base import AnharmalParser

#: Final metrics copied onto the model node (train / validation), eV/atom and eV/A.
MODEL_METRICS = (
    'per_atom_energy_mae',
    'per_atom_energy_rmse',
    'forces_mae',
    'forces_rmse',
    'stress_mae',
    'stress_rmse',
)


class TrainParser(AnharmalParser):
    """Turn the training folder into ``model`` (MLIPModel), ``metrics`` (Dict) and ``learning_curve``."""

    def parse_outputs(self, status):
        metrics = {}
        if self.has(program.METRICS_FILE):
            metrics = self.read_json(program.METRICS_FILE)
            self.out('metrics', orm.Dict(metrics))
        if self.has(program.CURVE_FILE):
            self.out('learning_curve', self._learning_curve(self.read_text(program.CURVE_FILE)))
        package = self.temporary_file(program.MODEL_FILE)
        if package is not None:
            self.out('model', self._model(package, 'nequip-package', metrics))
            compiled = self.temporary_file(program.COMPILED_FILE)
            if compiled is not None:
                self.out('compiled_model', self._model(compiled, 'nequip-aotinductor', metrics))
        if status and status['state'] == 'finished' and package is None:
            return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message=f'finished without {program.MODEL_FILE}')
        return None

    @staticmethod
    def _learning_curve(text: str) -> orm.ArrayData:
        rows = list(csv.DictReader(io.StringIO(text)))
        curve = orm.ArrayData()
        for column in rows[0] if rows else []:
            curve.set_array(column, np.array([float(row[column]) if row[column] else np.nan for row in rows]))
        return curve

    def _model(self, path: Path, model_format: str, metrics: dict) -> MLIPModel:
        inputs = self.node.inputs
        subsample = inputs.subsample.get_dict()
        hyperparameters = dict_input(inputs, 'hyperparameters')
        from ..core.models.nequip_config import check_hyperparameters

        hp = check_hyperparameters(hyperparameters)
        parent = inputs.parent_model if 'parent_model' in inputs else None
        species = (
            inputs.species.get_list()
            if 'species' in inputs
            else sorted(set(inputs.training_set.frames.subset(subsample['train'] + subsample['validation']).species))
        )
        final = {
            f'{part}_{name}': metrics[part][name]
            for part in ('train', 'validation')
            for name in MODEL_METRICS
            if name in metrics.get(part, {})
        }
        with path.open('rb') as handle:
            return MLIPModel(
                handle,
                filename=path.name,
                architecture='NequIP',
                model_format=model_format,
                species=species,
                r_max=parent.r_max if parent is not None else hp['r_max'],
                seed=inputs.seed.value,
                hyperparameters={k: v for k, v in hp.items() if v is not None},
                training_set_uuid=inputs.training_set.uuid,
                train_indices=subsample['train'],
                validation_indices=subsample['validation'],
                metrics={**final, 'epochs': metrics.get('epochs'), 'seconds': metrics.get('seconds')},
                role='member',
                source=f'fine-tuned from {parent.uuid}' if parent is not None else 'trained from scratch',
            )
