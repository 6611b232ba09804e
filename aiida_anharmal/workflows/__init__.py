"""WorkChains."""

from .active_learning import ActiveLearningWorkChain
from .dynamic_training import DynamicTrainingWorkChain
from .ensemble import EnsembleWorkChain
from .harmonic import HarmonicWorkChain
from .initial import InitialDataWorkChain
from .label import LabelBaseWorkChain, LabelWorkChain
from .lifetimes import LifetimesWorkChain
from .md import ExplorationWorkChain, MDBaseWorkChain
from .neb import NEBWorkChain
from .perturbative import PerturbativeWorkChain
from .train import TrainBaseWorkChain
from .validation import ValidationMDWorkChain

__all__ = (
    'ActiveLearningWorkChain',
    'DynamicTrainingWorkChain',
    'EnsembleWorkChain',
    'ExplorationWorkChain',
    'HarmonicWorkChain',
    'InitialDataWorkChain',
    'LabelBaseWorkChain',
    'LabelWorkChain',
    'LifetimesWorkChain',
    'MDBaseWorkChain',
    'NEBWorkChain',
    'PerturbativeWorkChain',
    'TrainBaseWorkChain',
    'ValidationMDWorkChain',
)
