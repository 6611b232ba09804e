"""Calcfunctions: dataset operations, acquisition, statistics, convergence."""

from .acquisition import acquire, selected_structures
from .anharmonicity import anharmonicity
from .convergence import calibrate, check_convergence
from .datasets import collect_labels, frame_structure, merge_training_sets, subsample
from .ensembles import assemble_ensemble
from .harmonic import build_force_constants, make_displacements
from .initial import harmonic_sampling, random_sampling, split_initial
from .perturbative import fc3_displacements
from .validation import compare_validation, reference_frames

__all__ = (
    'acquire',
    'anharmonicity',
    'assemble_ensemble',
    'build_force_constants',
    'calibrate',
    'check_convergence',
    'collect_labels',
    'compare_validation',
    'fc3_displacements',
    'frame_structure',
    'harmonic_sampling',
    'make_displacements',
    'merge_training_sets',
    'random_sampling',
    'reference_frames',
    'selected_structures',
    'split_initial',
    'subsample',
)
