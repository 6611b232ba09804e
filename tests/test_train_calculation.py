"""The ``anharmal.train`` CalcJob: a real nequip-train run, its outputs, and bad input refused."""

import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_anharmal.calculations.train import TrainCalculation, check_train_request
from aiida_anharmal.core.models.nequip_config import check_hyperparameters, training_config
from aiida_anharmal.data import TrainingSet

from .conftest import emt_cu_frames

TINY = {
    'r_max': 4.0,
    'l_max': 1,
    'num_layers': 2,
    'num_features': 8,
    'radial_mlp_depth': 1,
    'radial_mlp_width': 8,
    'max_epochs': 3,
}


def test_config_uses_recorded_split_and_member_seed():
    config = training_config(TINY, ['Cu'], '/x/train.extxyz', '/x/val.extxyz', seed=7)
    assert config['training_module']['model']['seed'] == 7
    assert config['data']['train_file_path'] == '/x/train.extxyz'
    assert config['data']['val_file_path'] == '/x/val.extxyz'
    assert 'split_dataset' not in config['data']
    assert config['data']['test_file_path'] == ['/x/train.extxyz', '/x/val.extxyz']
    callbacks = config['trainer']['callbacks']
    assert callbacks[0]['_target_'].endswith('ModelCheckpoint') and callbacks[0]['filename'] == 'best'
    finetune = training_config(TINY, ['Cu'], 'a', 'b', seed=7, parent_package='/p/parent.nequip.zip')
    assert finetune['training_module']['model'] == {
        '_target_': 'nequip.model.ModelFromPackage',
        'package_path': '/p/parent.nequip.zip',
    }
    assert finetune['training_module']['optimizer']['lr'] == check_hyperparameters({})['finetune_learning_rate']
    assert finetune['trainer']['max_epochs'] == config['trainer']['max_epochs'] == TINY['max_epochs']


def test_finetuning_has_its_own_epoch_cap():
    capped = {**TINY, 'max_epochs': 400, 'finetune_max_epochs': 150}
    assert training_config(capped, ['Cu'], 'a', 'b', seed=0)['trainer']['max_epochs'] == 400  # from scratch
    tuned = training_config(capped, ['Cu'], 'a', 'b', seed=0, parent_package='/p/parent.nequip.zip')
    assert tuned['trainer']['max_epochs'] == 150
    with pytest.raises(ValueError, match='finetune_max_epochs'):
        check_hyperparameters({'finetune_max_epochs': 0})


def test_early_stopping_watches_the_validation_loss():
    assert len(training_config(TINY, ['Cu'], 'a', 'b', seed=0)['trainer']['callbacks']) == 1  # off by default
    callbacks = training_config({**TINY, 'early_stopping_patience': 25}, ['Cu'], 'a', 'b', seed=0)['trainer'][
        'callbacks'
    ]
    assert callbacks[1] == {
        '_target_': 'lightning.pytorch.callbacks.EarlyStopping',
        'monitor': 'val0_epoch/weighted_sum',
        'mode': 'min',
        'patience': 25,
    }
    assert callbacks[1]['monitor'] == callbacks[0]['monitor']  # the checkpoint keeps the best of the same loss


@pytest.mark.parametrize(
    'bad, match',
    [
        ({'r_max': 0}, 'r_max must be a positive number'),
        ({'r_max': -1.0}, 'r_max must be a positive number'),
        ({'num_layers': 0}, 'num_layers must be a positive integer'),
        ({'l_max': 1.5}, 'l_max must be a non-negative integer'),
        ({'model_dtype': 'float16'}, 'model_dtype'),
        ({'colour': 'red'}, 'unknown hyperparameter'),
        ({'early_stopping_patience': 0}, 'early_stopping_patience must be a positive integer or null'),
    ],
)
def test_bad_hyperparameters(bad, match):
    with pytest.raises(ValueError, match=match):
        check_hyperparameters(bad)


def failure_report(node):
    """Exit message plus the tail of what the job wrote, for a readable assertion."""
    text = [str(node.exit_message)]
    if 'retrieved' in node.outputs:
        repo = node.outputs.retrieved.base.repository
        for name in ('_scheduler-stderr.txt', 'aiida.out', 'train.log'):
            if name in repo.list_object_names():
                text.append(f'--- {name}\n' + repo.get_object_content(name)[-1500:])
    return '\n'.join(text)


def cu_set(n=12):
    return TrainingSet.from_ase(emt_cu_frames(n))


@pytest.mark.parametrize(
    'subsample, extra, match',
    [
        ({'train': [], 'validation': [1]}, {}, 'at least one `train`'),
        ({'train': [0, 1], 'validation': [1]}, {}, 'both in `train` and `validation`'),
        ({'train': [0, 99], 'validation': [1]}, {}, 'out of range'),
        (
            {'train': [0], 'validation': [1]},
            {'species': ['Ag']},
            r"elements \['Cu'\] of the training frames are missing",
        ),
        ({'train': [0], 'validation': [1]}, {'hyperparameters': {'r_max': 0.0}}, 'r_max must be a positive'),
        ({'train': [0], 'validation': [1]}, {'seed': -1}, 'non-negative integer'),
    ],
)
def test_bad_requests_are_refused(subsample, extra, match):
    args = {'hyperparameters': {}, 'seed': 0, **extra}
    message = check_train_request(cu_set(3), subsample, args['hyperparameters'], args['seed'], args.get('species'))
    assert message is not None and __import__('re').search(match, message), message


def test_unlabelled_frames_refused_at_submission(train_code, options):
    frames = emt_cu_frames(3)
    frames[2].calc = None
    with pytest.raises(ValueError, match=r'the training set: frame\(s\) \[2\] have no energy or forces'):
        run_get_node(
            TrainCalculation,
            training_set=TrainingSet.from_ase(frames),
            code=train_code,
            subsample=orm.Dict({'train': [0, 2], 'validation': [1]}),
            metadata={'options': options},
        )


@pytest.mark.parametrize('recipe, walltime, expected', [(90, 600, 90), (900, 600, 480), (None, 600, 480)])
def test_the_training_budget_is_the_recipes_within_the_jobs(
    train_code, recipe, walltime, expected, tmp_path, monkeypatch
):
    import json

    monkeypatch.chdir(tmp_path)  # a dry run writes its folder under the working directory

    builder = TrainCalculation.get_builder()
    builder.training_set = cu_set(3)
    builder.code = train_code
    builder.subsample = orm.Dict({'train': [0, 1], 'validation': [2]})
    builder.hyperparameters = orm.Dict(
        {'max_epochs': 3} if recipe is None else {'max_epochs': 3, 'max_seconds': recipe}
    )
    builder.metadata = {
        'dry_run': True,
        'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': walltime},
    }
    _, node = run_get_node(builder)
    folder = node.dry_run_info['folder']
    config = json.loads((__import__('pathlib').Path(folder) / 'aiida.json').read_text())
    assert config['hyperparameters']['max_seconds'] == expected  # 80 % of the walltime is the job's own limit


def test_train_one_member(train_code, options):
    training_set = cu_set(12)
    subsample = orm.Dict({'train': list(range(9)), 'validation': [9, 10, 11]})
    _, node = run_get_node(
        TrainCalculation,
        training_set=training_set,
        subsample=subsample,
        seed=orm.Int(5),
        hyperparameters=orm.Dict(TINY),
        code=train_code,
        metadata={'options': options},
    )
    assert node.is_finished_ok, failure_report(node)
    model = node.outputs.model
    attrs = model.base.attributes
    assert model.model_format == 'nequip-package' and model.species == ['Cu'] and model.r_max == 4.0
    assert attrs.get('seed') == 5 and attrs.get('train_indices') == list(range(9))
    assert attrs.get('training_set_uuid') == training_set.uuid
    metrics = node.outputs.metrics.get_dict()
    assert metrics['epochs'] == 3 and set(metrics['validation']) >= {'forces_mae', 'per_atom_energy_rmse'}
    assert attrs.get('metrics')['validation_forces_mae'] == metrics['validation']['forces_mae']
    assert len(node.outputs.learning_curve.get_array('forces_mae')) == 3
    assert 'run' in node.outputs.retrieved.base.repository.list_object_names()
    # the model file is stored once: not in the retrieved folder
    assert 'model.nequip.zip' not in node.outputs.retrieved.base.repository.list_object_names()
    # the packaged model predicts what the calculation reported: its own validation error, recomputed
    from aiida_anharmal.core.models.ensemble import EnsembleCalculator, load_member

    with model.as_path() as path:
        calc = EnsembleCalculator([load_member(path)] * 2, workers=1)
    errors = []
    for k in (9, 10, 11):
        atoms = training_set.frames.get_atoms(k)
        errors.append(np.abs(calc.predict(atoms).forces - atoms.get_forces()).ravel())
    assert np.mean(errors) == pytest.approx(metrics['validation']['forces_mae'], rel=1e-6)
    config = json.loads(node.base.repository.get_object_content('aiida.json'))
    assert config['train_indices'] == list(range(9)) and config['seed'] == 5
