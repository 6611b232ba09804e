"""Subsampled train/validation splits for ensemble members (no AiiDA import).

Kang et al. build an ensemble of n_sub subsampled training sets x n_seed initialisations. Each
subsample here draws ``fraction`` of the candidate frames at random and splits them into
training and validation frames with ``validation_ratio``; subsample ``k`` uses the generator
seeded with ``(seed, k)``, so the same inputs always give the same index sets.
"""

from __future__ import annotations

import numpy as np


def subsample_splits(
    candidates,
    n_sub: int,
    validation_ratio: float,
    seed: int,
    fraction: float = 1.0,
) -> list[tuple[list[int], list[int]]]:
    """Return ``n_sub`` pairs ``(train, validation)`` of sorted frame indices drawn from ``candidates``.

    :param candidates: indices of the frames that may be used (e.g. the labelled ones).
    :param validation_ratio: fraction of each subsample held out for validation, in (0, 1).
    :param fraction: fraction of the candidates drawn into each subsample, in (0, 1].
    :raises ValueError: for parameters out of range or too few frames for a split.
    """
    candidates = np.asarray(sorted(int(i) for i in candidates), dtype=int)
    if int(n_sub) < 1:
        raise ValueError(f'n_sub must be at least 1, not {n_sub}')
    if not 0 < validation_ratio < 1:
        raise ValueError(f'validation_ratio must lie in (0, 1), not {validation_ratio}')
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must lie in (0, 1], not {fraction}')
    n_draw = round(fraction * len(candidates))
    n_val = round(validation_ratio * n_draw)
    if n_val < 1 or n_draw - n_val < 1:
        raise ValueError(
            f'{len(candidates)} frame(s) are too few for a split with fraction {fraction} and validation ratio '
            f'{validation_ratio}: each subsample needs at least one training and one validation frame'
        )
    splits = []
    for k in range(int(n_sub)):
        rng = np.random.default_rng([int(seed), k])
        drawn = rng.permutation(candidates)[:n_draw]
        splits.append((sorted(drawn[n_val:].tolist()), sorted(drawn[:n_val].tolist())))
    return splits
