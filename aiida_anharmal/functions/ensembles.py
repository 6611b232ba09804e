"""Calcfunctions on ensembles."""

from __future__ import annotations

from aiida.engine import calcfunction

from ..data.ensemble import Ensemble


@calcfunction
def assemble_ensemble(**members):
    """Gather trained members (``sub{k}_seed{s}`` -> MLIPModel) into one :class:`Ensemble` node."""
    return Ensemble(members=dict(members))
