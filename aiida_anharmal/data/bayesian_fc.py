"""``BayesianFCModel``: a Bayesian force-constant fit (cluster space, posterior, the data it was fitted on)."""

from __future__ import annotations

import numpy as np
from aiida import orm

from .common import HasSpecies


class BayesianFCModel(HasSpecies, orm.ArrayData):
    """A force-constant expansion fitted by Bayesian ridge (:mod:`aiida_anharmal.core.bayesian.model`).

    Arrays: the primitive cell and the ideal supercell (``primitive_*``, ``ideal_*``: numbers, positions,
    cell), ``cutoffs`` (A, orders 2, 3, ...), the posterior mean ``coefficients`` and covariance ``sigma``,
    ``beta`` (noise precision), ``lam`` (prior precision), ``n_structures`` and ``n_rows`` of the fit. The
    cluster space is built again from the primitive cell and the cut-offs when the model is loaded
    (:meth:`get_model`), and checked against the number of stored coefficients.

    Attributes for queries: ``species``, ``n_atoms`` (supercell), ``cutoffs``, ``n_max``, ``n_parameters``,
    ``n_structures`` (N_data), ``noise`` (beta^-1/2, eV/A), ``beta``, ``lam``, and the ``training_set``
    (uuid) and its ``label_engine`` when known. The fitting calcfunction links the training set as its input.
    """

    @classmethod
    def from_model(cls, model, training_set=None, **kwargs) -> BayesianFCModel:
        """A node of a fitted :class:`~aiida_anharmal.core.bayesian.model.BayesianForceConstantModel`."""
        from ..core.bayesian.model import model_arrays

        node = cls(**kwargs)
        for name, array in model_arrays(model).items():
            node.set_array(name, np.asarray(array))
        fit = model.fit_result
        attrs = node.base.attributes
        attrs.set('species', sorted(set(model.ideal.get_chemical_symbols())))
        attrs.set('n_atoms', len(model.ideal))
        attrs.set('cutoffs', list(model.cutoffs))
        attrs.set('n_max', model.n_max)
        attrs.set('n_parameters', model.n_parameters)
        attrs.set('n_structures', fit.n_structures)
        attrs.set('noise', fit.noise)
        attrs.set('beta', fit.beta)
        attrs.set('lam', fit.lam)
        if training_set is not None:
            attrs.set('training_set', training_set.uuid)
            engine = training_set.base.attributes.get('label_engine', None)
            if engine:
                attrs.set('label_engine', engine)
        return node

    def get_model(self):
        """The fitted :class:`~aiida_anharmal.core.bayesian.model.BayesianForceConstantModel`."""
        from ..core.bayesian.model import model_from_arrays

        return model_from_arrays({name: self.get_array(name) for name in self.get_arraynames()})

    def arrays(self) -> dict:
        """Every array by name (what the MD program reads back)."""
        return {name: self.get_array(name) for name in self.get_arraynames()}

    def get_supercell(self):
        """The ideal supercell as ASE Atoms."""
        from ..core.bayesian.model import arrays_atoms

        return arrays_atoms('ideal', self.arrays())

    @property
    def noise(self) -> float:
        return float(self.base.attributes.get('noise'))

    @property
    def n_structures(self) -> int:
        return int(self.base.attributes.get('n_structures'))

    def get_description(self) -> str:
        return (
            f'orders 2-{self.base.attributes.get("n_max")} on {self.base.attributes.get("n_atoms")} atoms '
            f'({", ".join(self.species)}), N_data {self.n_structures}, beta^-1/2 {1000 * self.noise:.2f} meV/A'
        )
