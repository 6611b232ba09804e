"""Dataset calcfunctions: membership of ensemble subsamples is recorded in the graph."""

import pytest
from aiida import orm
from ase.calculators.emt import EMT

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.functions import subsample

from .conftest import cu_structures


def labelled_set(n, label=True):
    atoms = cu_structures(n)
    if label:
        for a in atoms:
            a.calc = EMT()
            a.get_potential_energy(), a.get_forces()
    return TrainingSet.from_ase(atoms)


def test_subsample_outputs_are_queryable():
    training_set = labelled_set(12)
    outputs = subsample(training_set, orm.Dict({'n_sub': 3, 'validation_ratio': 0.25, 'seed': 1}))
    assert sorted(outputs) == ['subsample_00', 'subsample_01', 'subsample_02']
    qb = orm.QueryBuilder()
    qb.append(TrainingSet, filters={'uuid': training_set.uuid}, tag='set')
    qb.append(orm.CalcFunctionNode, with_incoming='set', tag='calc')
    qb.append(orm.Dict, with_incoming='calc', project=['attributes.train', 'attributes.validation'])
    rows = qb.all()
    assert len(rows) == 3 and all(len(t) == 9 and len(v) == 3 for t, v in rows)


def test_subsample_refuses_unlabelled_frames():
    with pytest.raises(ValueError, match='unlabelled'):
        subsample(labelled_set(4, label=False), orm.Dict({'n_sub': 1, 'validation_ratio': 0.25, 'seed': 0}))
