"""WorkChains."""

from .harmonic import HarmonicWorkChain
from .label import LabelBaseWorkChain, LabelWorkChain

__all__ = ('HarmonicWorkChain', 'LabelBaseWorkChain', 'LabelWorkChain')
