"""Calcfunctions: dataset operations, acquisition, statistics, convergence."""

from .acquisition import acquire, selected_structures
from .anharmonicity import anharmonicity
from .datasets import collect_labels, merge_training_sets, subsample
from .ensembles import assemble_ensemble
from .harmonic import build_force_constants, make_displacements

__all__ = (
    'acquire',
    'anharmonicity',
    'assemble_ensemble',
    'build_force_constants',
    'collect_labels',
    'make_displacements',
    'merge_training_sets',
    'selected_structures',
    'subsample',
)
