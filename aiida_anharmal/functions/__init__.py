"""Calcfunctions: dataset operations, acquisition, statistics, convergence."""

from .datasets import collect_labels, subsample
from .ensembles import assemble_ensemble

__all__ = ('assemble_ensemble', 'collect_labels', 'subsample')
