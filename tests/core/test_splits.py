"""Subsampled train/validation splits of ensemble members."""

import pytest

from aiida_anharmal.core.structures.splits import subsample_splits


def test_splits_are_disjoint_deterministic_and_differ():
    splits = subsample_splits(range(30), n_sub=3, validation_ratio=1 / 6, seed=7)
    assert splits == subsample_splits(range(30), n_sub=3, validation_ratio=1 / 6, seed=7)
    for train, validation in splits:
        assert len(train) == 25 and len(validation) == 5
        assert not set(train) & set(validation)
        assert set(train) | set(validation) == set(range(30))
    assert len({tuple(v) for _, v in splits}) == 3


def test_fraction_draws_fewer_frames():
    train, validation = subsample_splits(range(20), 1, 0.25, 0, fraction=0.5)[0]
    assert (len(train), len(validation)) == (8, 2)  # 10 drawn, round(2.5) = 2 held out


@pytest.mark.parametrize(
    'kwargs, match',
    [
        ({'n_sub': 0}, 'n_sub'),
        ({'validation_ratio': 0.0}, 'validation_ratio'),
        ({'fraction': 1.5}, 'fraction'),
    ],
)
def test_bad_parameters(kwargs, match):
    args = {'n_sub': 2, 'validation_ratio': 0.2, 'seed': 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        subsample_splits(range(10), **args)


def test_too_few_frames():
    with pytest.raises(ValueError, match='too few'):
        subsample_splits(range(1), 1, 0.2, 0)
