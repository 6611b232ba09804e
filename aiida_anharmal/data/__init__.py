"""AiiDA data plugins."""

from .bayesian_fc import BayesianFCModel
from .ensemble import Ensemble
from .force_constants import ForceConstants
from .mlip_model import MLIPModel
from .training_set import TrainingSet

__all__ = ('BayesianFCModel', 'Ensemble', 'ForceConstants', 'MLIPModel', 'TrainingSet')
