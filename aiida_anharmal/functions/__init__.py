"""Calcfunctions: dataset operations, acquisition, statistics, convergence."""

from .anharmonicity import anharmonicity
from .datasets import collect_labels, subsample
from .ensembles import assemble_ensemble
from .harmonic import build_force_constants, make_displacements

__all__ = (
    'anharmonicity',
    'assemble_ensemble',
    'build_force_constants',
    'collect_labels',
    'make_displacements',
    'subsample',
)
