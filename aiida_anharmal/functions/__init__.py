"""Calcfunctions: dataset operations, acquisition, statistics, convergence."""

from .datasets import collect_labels, subsample

__all__ = ('collect_labels', 'subsample')
