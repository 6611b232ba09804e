"""AiiDA data plugins."""

from .mlip_model import MLIPModel
from .training_set import TrainingSet

__all__ = ('MLIPModel', 'TrainingSet')
