"""AiiDA data plugins."""

from .ensemble import Ensemble
from .force_constants import ForceConstants
from .mlip_model import MLIPModel
from .training_set import TrainingSet

__all__ = ('Ensemble', 'ForceConstants', 'MLIPModel', 'TrainingSet')
