"""WorkChains."""

from .label import LabelBaseWorkChain, LabelWorkChain

__all__ = ('LabelBaseWorkChain', 'LabelWorkChain')
