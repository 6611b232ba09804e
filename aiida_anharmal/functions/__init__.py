"""Calcfunctions: dataset operations, acquisition, statistics, convergence."""

from .datasets import collect_labels

__all__ = ('collect_labels',)
