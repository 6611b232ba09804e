"""AiiDA data plugins."""

from .ensemble import Ensemble
from .mlip_model import MLIPModel
from .training_set import TrainingSet

__all__ = ('Ensemble', 'MLIPModel', 'TrainingSet')
