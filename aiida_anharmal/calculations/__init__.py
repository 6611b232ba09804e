"""AiiDA calculation-job plugins, one module per program."""

from .evaluate import EvaluateCalculation
from .label import LabelCalculation
from .lifetimes import LifetimeCalculation
from .md import MDCalculation
from .neb import NEBCalculation
from .perturbative import PerturbativeCalculation
from .train import TrainCalculation

__all__ = (
    'EvaluateCalculation',
    'LabelCalculation',
    'LifetimeCalculation',
    'MDCalculation',
    'NEBCalculation',
    'PerturbativeCalculation',
    'TrainCalculation',
)
