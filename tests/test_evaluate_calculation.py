"""Bad input of ``anharmal.evaluate`` is refused before a job starts (the real run is in the ensemble test)."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_anharmal.calculations.evaluate import EvaluateCalculation
from aiida_anharmal.data import Ensemble, MLIPModel, TrainingSet

from .conftest import emt_cu_frames, placeholder_ensemble, placeholder_model_bytes


def harmonic_for(atoms, n_atoms=None):
    n = n_atoms or len(atoms)
    harmonic = orm.ArrayData()
    harmonic.set_array('positions', atoms.positions[:n])
    harmonic.set_array('cell', atoms.cell[:])
    harmonic.set_array('force_constants', np.eye(3 * n))
    harmonic.set_array('numbers', atoms.numbers[:n])
    return harmonic


def test_ensemble_needs_two_members_with_the_same_species():
    import io

    a = MLIPModel(
        io.BytesIO(placeholder_model_bytes()),
        filename='a.nequip.zip',
        architecture='NequIP',
        model_format='nequip-package',
        species=['Cu'],
        r_max=4.0,
    )
    b = MLIPModel(
        io.BytesIO(placeholder_model_bytes()),
        filename='b.nequip.zip',
        architecture='NequIP',
        model_format='nequip-package',
        species=['Ag'],
        r_max=4.0,
    )
    with pytest.raises(ValueError, match='at least two members'):
        Ensemble(members={'a': a})
    with pytest.raises(ValueError, match='members must share both'):
        Ensemble(members={'a': a, 'b': b})


def test_bad_evaluate_inputs(evaluate_code, options):
    frames = emt_cu_frames(2)
    structures = TrainingSet.from_ase(frames)
    cases = [
        ({'structures': TrainingSet.from_ase([bulk('Ag', 'fcc', a=4.1)])}, r"elements \['Ag'\] of the structures"),
        ({'harmonic': harmonic_for(frames[0], 8)}, 'does not match the harmonic reference supercell'),
        ({'settings': orm.Dict({'colour': 1})}, 'unknown `settings`'),
    ]
    for extra, match in cases:
        inputs = {
            'ensemble': placeholder_ensemble(),
            'structures': structures,
            'code': evaluate_code,
            'metadata': {'options': options},
            **extra,
        }
        with pytest.raises(ValueError, match=match):
            run_get_node(EvaluateCalculation, **inputs)
