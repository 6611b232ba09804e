"""The ``nequip-train`` (nequip 0.19, Hydra) configuration of one ensemble member; no AiiDA import.

:func:`training_config` turns a flat dict of hyperparameters into the nested configuration that
``nequip-train`` reads. Choices that matter and are easy to get wrong:

- Training and validation frames come as two explicit files (``train_file_path`` /
  ``val_file_path``), so the split is the one recorded in the provenance graph, not one nequip
  draws; the top-level ``seed`` then has no effect on the data. The member's random
  initialisation is ``training_module.model.seed``.
- After training, the ``test`` stage evaluates the best checkpoint on the training frames
  (``test0``) and on the validation frames (``test1``): these are the final metrics.
- Fine-tuning starts from the parent's *package* (``nequip.model.ModelFromPackage``), so the
  new model never depends on a checkpoint chain; the result is packaged again.
- The checkpoint callback is written into the configuration (a command-line
  ``+trainer.callbacks=`` override would replace it and lose ``best.ckpt``).
"""

from __future__ import annotations

import math

#: Hyperparameters and their defaults (the ``fast`` protocol overrides some of them).
DEFAULTS = {
    'r_max': 5.0,
    'l_max': 3,
    'num_layers': 4,
    'num_features': 32,
    'num_bessels': 8,
    'radial_mlp_depth': 2,
    'radial_mlp_width': 64,
    'parity': True,
    'model_dtype': 'float64',
    'max_epochs': 100,
    'batch_size': 4,
    'learning_rate': 0.01,
    'finetune_learning_rate': 0.002,
    'finetune_max_epochs': None,  # epoch cap when fine-tuning from a parent (null: max_epochs)
    'lr_factor': 0.5,
    'lr_patience': 5,
    'early_stopping_patience': None,  # epochs without a better validation loss before training stops
    'ema_decay': 0.99,
    'energy_weight': 1.0,
    'forces_weight': 1.0,
    'stress_weight': 0.0,
    'max_seconds': None,
}

INTEGER_KEYS = (
    'l_max',
    'num_layers',
    'num_features',
    'num_bessels',
    'radial_mlp_depth',
    'radial_mlp_width',
    'max_epochs',
    'batch_size',
    'lr_patience',
)
OPTIONAL_INTEGER_KEYS = ('early_stopping_patience', 'finetune_max_epochs')
POSITIVE_KEYS = ('r_max', 'learning_rate', 'finetune_learning_rate', 'lr_factor')


def check_hyperparameters(hyperparameters: dict) -> dict:
    """Return the hyperparameters merged with :data:`DEFAULTS`; ``ValueError`` for unknown or bad values."""
    unknown = sorted(set(hyperparameters) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'unknown hyperparameter(s) {unknown}; known: {sorted(DEFAULTS)}')
    hp = {**DEFAULTS, **hyperparameters}
    for key in POSITIVE_KEYS:
        value = hp[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise ValueError(f'{key} must be a positive number, not {value!r}')
    for key in INTEGER_KEYS:
        value = hp[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == 'l_max' else 1):
            raise ValueError(
                f'{key} must be a {"non-negative" if key == "l_max" else "positive"} integer, not {value!r}'
            )
    for key in OPTIONAL_INTEGER_KEYS:
        value = hp[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f'{key} must be a positive integer or null, not {value!r}')
    if hp['model_dtype'] not in ('float32', 'float64'):
        raise ValueError(f"model_dtype must be 'float32' or 'float64', not {hp['model_dtype']!r}")
    if not isinstance(hp['parity'], bool):
        raise ValueError(f'parity must be true or false, not {hp["parity"]!r}')  # noqa: TRY004 - validators catch ValueError
    for key in ('ema_decay', 'energy_weight', 'forces_weight', 'stress_weight'):
        if not _is_number(hp[key]):
            raise ValueError(f'{key} must be a number, not {hp[key]!r}')
    if hp['max_seconds'] is not None and not _is_number(hp['max_seconds']):
        raise ValueError(f'max_seconds must be a number of seconds or null, not {hp["max_seconds"]!r}')
    if not 0 <= hp['ema_decay'] < 1:
        raise ValueError(f'ema_decay must lie in [0, 1), not {hp["ema_decay"]}')
    weights = [hp['energy_weight'], hp['forces_weight'], hp['stress_weight']]
    if any(w < 0 for w in weights) or hp['energy_weight'] + hp['forces_weight'] <= 0:
        raise ValueError('loss weights must be non-negative, with energy or forces weighted')
    if hp['max_seconds'] is not None and hp['max_seconds'] <= 0:
        raise ValueError(f'max_seconds must be positive, not {hp["max_seconds"]}')
    return hp


def _is_number(value) -> bool:
    """A finite int or float, not a bool (``'1'`` and ``True`` are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _max_time(seconds) -> str | None:
    if seconds is None:
        return None
    seconds = max(1, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{days:02d}:{hours:02d}:{minutes:02d}:{secs:02d}'


def training_config(
    hyperparameters: dict,
    species: list[str],
    train_file: str,
    validation_file: str,
    seed: int,
    parent_package: str | None = None,
) -> dict:
    """The ``nequip-train`` configuration as a plain dict (dump it with ``yaml.safe_dump``).

    :param species: chemical symbols in the model's type order.
    :param train_file: extxyz with the training frames (absolute path).
    :param validation_file: extxyz with the validation frames (absolute path).
    :param seed: initialisation seed of the member (``training_module.model.seed``).
    :param parent_package: absolute path of a ``.nequip.zip`` to fine-tune from.
    """
    hp = check_hyperparameters(hyperparameters)
    if not species:
        raise ValueError('species must not be empty')
    return {
        'run': ['train', 'test'],
        'seed': int(seed),
        'data': _data_section(hp, species, train_file, validation_file, seed),
        'trainer': _trainer_section(hp, finetune=parent_package is not None),
        'training_module': _training_module_section(hp, species, seed, parent_package),
    }


def _data_section(hp: dict, species: list[str], train_file: str, validation_file: str, seed: int) -> dict:
    """``data``: the two explicit frame files (the test stage evaluates both), type mapping, neighbour lists."""
    transforms = [
        {
            '_target_': 'nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper',
            'model_type_names': list(species),
            'chemical_species_to_atom_type_map': {s: s for s in species},
        },
        {'_target_': 'nequip.data.transforms.NeighborListTransform', 'r_max': float(hp['r_max'])},
    ]
    return {
        '_target_': 'nequip.data.datamodule.ASEDataModule',
        'seed': int(seed),
        'train_file_path': str(train_file),
        'val_file_path': str(validation_file),
        'test_file_path': [str(train_file), str(validation_file)],
        'transforms': transforms,
        'train_dataloader': {
            '_target_': 'torch.utils.data.DataLoader',
            'batch_size': hp['batch_size'],
            'shuffle': True,
        },
        'val_dataloader': {'_target_': 'torch.utils.data.DataLoader', 'batch_size': 16},
        'test_dataloader': {'_target_': 'torch.utils.data.DataLoader', 'batch_size': 16},
        'stats_manager': {'_target_': 'nequip.data.CommonDataStatisticsManager', 'type_names': list(species)},
    }


def _trainer_section(hp: dict, finetune: bool = False) -> dict:
    """``trainer``: Lightning on one device, CSV log, the ``best`` / ``last`` checkpoints, optional time limit."""
    max_epochs = hp['finetune_max_epochs'] if finetune and hp['finetune_max_epochs'] is not None else hp['max_epochs']
    trainer = {
        '_target_': 'lightning.Trainer',
        'accelerator': 'auto',
        'devices': 1,
        'max_epochs': max_epochs,
        'check_val_every_n_epoch': 1,
        'log_every_n_steps': 1,
        'enable_progress_bar': False,
        'logger': {
            '_target_': 'lightning.pytorch.loggers.CSVLogger',
            'save_dir': '${hydra:runtime.output_dir}',
            'name': 'csvlog',
            'version': '',
        },
        'callbacks': [
            {
                '_target_': 'lightning.pytorch.callbacks.ModelCheckpoint',
                'monitor': 'val0_epoch/weighted_sum',
                'dirpath': '${hydra:runtime.output_dir}',
                'filename': 'best',
                'save_top_k': 1,
                'save_last': True,
            }
        ],
    }
    if hp['early_stopping_patience'] is not None:  # stop at the plateau of the validation loss
        trainer['callbacks'].append(
            {
                '_target_': 'lightning.pytorch.callbacks.EarlyStopping',
                'monitor': 'val0_epoch/weighted_sum',
                'mode': 'min',
                'patience': hp['early_stopping_patience'],
            }
        )
    max_time = _max_time(hp['max_seconds'])
    if max_time:
        trainer['max_time'] = max_time
    return trainer


def _training_module_section(hp: dict, species: list[str], seed: int, parent_package: str | None) -> dict:
    """``training_module``: EMA, the weighted loss and metrics (stress only if weighted), Adam, the model."""
    stress = hp['stress_weight'] > 0
    coeffs = {'total_energy': hp['energy_weight'], 'forces': hp['forces_weight']}
    if stress:
        coeffs['stress'] = hp['stress_weight']
    metric_coeffs = {'per_atom_energy_mae': hp['energy_weight'], 'forces_mae': hp['forces_weight']}
    if stress:
        metric_coeffs['stress_mae'] = hp['stress_weight']
    loss_kind = 'EnergyForceStress' if stress else 'EnergyForce'
    learning_rate = hp['learning_rate'] if parent_package is None else hp['finetune_learning_rate']
    return {
        '_target_': 'nequip.train.EMALightningModule',
        'ema_decay': hp['ema_decay'],
        'loss': {'_target_': f'nequip.train.{loss_kind}Loss', 'per_atom_energy': True, 'coeffs': coeffs},
        'val_metrics': {'_target_': f'nequip.train.{loss_kind}Metrics', 'coeffs': metric_coeffs},
        'test_metrics': {'_target_': f'nequip.train.{loss_kind}Metrics', 'coeffs': metric_coeffs},
        'optimizer': {'_target_': 'torch.optim.Adam', 'lr': learning_rate},
        'lr_scheduler': {
            'scheduler': {
                '_target_': 'torch.optim.lr_scheduler.ReduceLROnPlateau',
                'factor': hp['lr_factor'],
                'patience': hp['lr_patience'],
            },
            'monitor': 'val0_epoch/weighted_sum',
        },
        'model': _model_section(hp, species, seed, parent_package),
    }


def _model_section(hp: dict, species: list[str], seed: int, parent_package: str | None) -> dict:
    """``training_module.model``: a new NequIP model seeded with ``seed``, or the parent's package to fine-tune."""
    if parent_package is not None:
        return {'_target_': 'nequip.model.ModelFromPackage', 'package_path': str(parent_package)}
    return {
        '_target_': 'nequip.model.NequIPGNNModel',
        'seed': int(seed),
        'model_dtype': hp['model_dtype'],
        'type_names': list(species),
        'r_max': float(hp['r_max']),
        'l_max': hp['l_max'],
        'parity': bool(hp['parity']),
        'num_layers': hp['num_layers'],
        'num_features': hp['num_features'],
        'num_bessels': hp['num_bessels'],
        'radial_mlp_depth': hp['radial_mlp_depth'],
        'radial_mlp_width': hp['radial_mlp_width'],
        'avg_num_neighbors': '${training_data_stats:num_neighbors_mean}',
        'per_type_energy_shifts': '${training_data_stats:per_atom_energy_mean}',
        'per_type_energy_scales': '${training_data_stats:forces_rms}',
    }
