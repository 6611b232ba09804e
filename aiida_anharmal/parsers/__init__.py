"""Parsers, one per calculation job."""

from .evaluate import EvaluateParser
from .label import LabelParser
from .train import TrainParser

__all__ = ('EvaluateParser', 'LabelParser', 'TrainParser')
