"""AiiDA calculation-job plugins, one module per program."""

from .evaluate import EvaluateCalculation
from .label import LabelCalculation
from .train import TrainCalculation

__all__ = ('EvaluateCalculation', 'LabelCalculation', 'TrainCalculation')
