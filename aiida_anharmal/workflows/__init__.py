"""WorkChains."""

from .ensemble import EnsembleWorkChain
from .harmonic import HarmonicWorkChain
from .label import LabelBaseWorkChain, LabelWorkChain
from .md import ExplorationWorkChain, MDBaseWorkChain

__all__ = (
    'EnsembleWorkChain',
    'ExplorationWorkChain',
    'HarmonicWorkChain',
    'LabelBaseWorkChain',
    'LabelWorkChain',
    'MDBaseWorkChain',
)
