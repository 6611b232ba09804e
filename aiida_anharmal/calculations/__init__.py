"""AiiDA calculation-job plugins, one module per program."""

from .label import LabelCalculation

__all__ = ('LabelCalculation',)
