"""Parsers, one per calculation job."""

from .evaluate import EvaluateParser
from .label import LabelParser
from .md import MDParser
from .neb import NEBParser
from .train import TrainParser

__all__ = ('EvaluateParser', 'LabelParser', 'MDParser', 'NEBParser', 'TrainParser')
