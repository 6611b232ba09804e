"""What the data classes share: the species they hold and, for models, their cutoff, read from the attributes."""

from __future__ import annotations


class HasSpecies:
    """``species``: the chemical symbols of the node (in the model type order for a model)."""

    @property
    def species(self) -> list[str]:
        return list(self.base.attributes.get('species'))


class SpeciesAndCutoff(HasSpecies):
    """``species`` and ``r_max`` (Angstrom) of a model node."""

    @property
    def r_max(self) -> float:
        return float(self.base.attributes.get('r_max'))
