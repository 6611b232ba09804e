"""Parsers, one per calculation job."""

from .label import LabelParser

__all__ = ('LabelParser',)
