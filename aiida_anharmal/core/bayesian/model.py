"""A Bayesian linear force-constant model (Callsen et al.): a lattice-dynamics expansion fitted by Bayesian ridge.

The model is linear in the symmetry-reduced force constants ``c`` of a hiphive ``ClusterSpace`` (orders 2 up
to ``n_max``, one cut-off per order): the forces of a supercell with displacements ``u`` from the ideal
positions are ``F = A(u) c``, with ``A`` hiphive's sensing (fit) matrix, one row per force component.
Bayesian ridge regression (scikit-learn's ``BayesianRidge``, no intercept, called directly so that the
posterior is kept) gives

* ``c``: the posterior mean (``coef_``),
* ``beta``: the noise precision (sklearn's ``alpha_``; ``beta^-1/2`` in eV/A is the model's estimate of its
  force error on the training data),
* ``lambda``: the prior precision of the coefficients (sklearn's ``lambda_``),
* ``Sigma``: the posterior covariance of ``c``, ``(beta A^T A + lambda I)^-1`` (computed here: sklearn's
  ``sigma_`` loses the prior in the directions the data do not reach when there are fewer rows than parameters).

The **Bayesian error** of a frame is the part of the predictive variance that comes from the coefficients,
``diag(A Sigma A^T)`` per force component (sklearn's ``return_std`` adds ``1/beta`` to it; that is the noise, not
the model's uncertainty). :meth:`BayesianForceConstantModel.bayesian_error` reports it per atom,
``sqrt(mean over x, y, z)``, and per frame, ``eps_B = sqrt(mean over atoms and components)``: the root mean
square over force components, as the force RMSE with which the paper compares it (meV/A).

Posterior samples ``c_k ~ N(c, Sigma)`` make a committee (:meth:`committee_forces`), e.g. for the
hyperactive-learning bias. hiphive wants the ideal positions of a structure with its displacements and forces
as separate arrays: :func:`fit_structure` builds that. No AiiDA import.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms


def check_cutoffs(cutoffs, max_cutoff: float | None = None) -> list[float]:
    """The cut-offs of orders 2, 3, ... (A): at least one, positive, not increasing with the order, and (given
    ``max_cutoff``, e.g. half the shortest supercell height) no longer than the supercell allows."""
    cutoffs = [float(c) for c in cutoffs]
    if not cutoffs:
        raise ValueError('give at least the cut-off of order 2 (n_max >= 2)')
    if any(not np.isfinite(c) or c <= 0 for c in cutoffs):
        raise ValueError(f'the cut-offs must be positive (A), not {cutoffs}')
    if any(b > a for a, b in itertools.pairwise(cutoffs)):
        raise ValueError(f'the cut-offs must not increase with the order: {cutoffs} (orders 2, 3, ...)')
    if max_cutoff is not None and cutoffs[0] > max_cutoff:
        raise ValueError(
            f'the order-2 cut-off {cutoffs[0]} A is longer than the supercell allows ({max_cutoff:.3f} A: half its '
            'shortest height): a cluster would meet its own image'
        )
    return cutoffs


def max_cutoff(supercell: Atoms) -> float:
    """Half the shortest height of the supercell (A): the longest cut-off without self-interaction."""
    cell = np.asarray(supercell.cell[:])
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return 0.5 * min(heights)


def check_supercell(primitive: Atoms, ideal: Atoms, tolerance: float = 1e-3) -> np.ndarray:
    """The integer matrix P with ideal.cell = P primitive.cell; ``ValueError`` unless ``ideal`` is a supercell of
    ``primitive`` with every atom on a site of the primitive cell of the same element (within ``tolerance`` A)."""
    P = np.linalg.solve(np.asarray(primitive.cell[:]).T, np.asarray(ideal.cell[:]).T).T
    if not np.allclose(P, np.round(P), atol=1e-4) or round(abs(np.linalg.det(P))) < 1:
        raise ValueError(
            f'the supercell is not an integer multiple of the primitive cell: P = {np.round(P, 4).tolist()}'
        )
    if len(ideal) != round(abs(np.linalg.det(P))) * len(primitive):
        raise ValueError(f'the supercell has {len(ideal)} atoms, not det(P) x {len(primitive)} of the primitive cell')
    inverse = np.linalg.inv(np.asarray(primitive.cell[:]))
    for index, (number, position) in enumerate(zip(ideal.numbers, ideal.positions, strict=True)):
        shift = (position - primitive.positions) @ inverse
        distance = np.linalg.norm((shift - np.round(shift)) @ np.asarray(primitive.cell[:]), axis=1)
        site = int(np.argmin(distance))
        if distance[site] > tolerance or primitive.numbers[site] != number:
            raise ValueError(
                f'atom {index} of the supercell ({ideal.get_chemical_symbols()[index]}) is not on a site of the '
                f'primitive cell of its element (nearest: {distance[site]:.4f} A)'
            )
    return np.round(P).astype(int)


def check_frame(ideal: Atoms, numbers, cell, index: int = 0) -> None:
    """``ValueError`` unless a frame has the ideal supercell's atoms (count and order) and cell."""
    if len(numbers) != len(ideal) or list(numbers) != list(ideal.numbers):
        raise ValueError(f"frame {index}: not the model's supercell (its atoms, in the supercell's order)")
    if not np.allclose(np.asarray(cell), ideal.cell[:], atol=1e-6):
        raise ValueError(f"frame {index}: its cell is not the model's supercell cell")


def displacements_from(ideal: Atoms, positions) -> np.ndarray:
    """positions - ideal positions, minimum image, ``(N, 3)`` A."""
    delta = np.asarray(positions, dtype=float) - ideal.positions
    fractional = np.linalg.solve(np.asarray(ideal.cell[:]).T, delta.T).T
    return (fractional - np.round(fractional)) @ np.asarray(ideal.cell[:])


def fit_structure(ideal: Atoms, positions, forces=None) -> Atoms:
    """The ideal supercell with ``displacements`` (positions - ideal, minimum image) and ``forces`` arrays."""
    structure = ideal.copy()
    displacements = displacements_from(ideal, positions)
    structure.new_array('displacements', displacements)
    structure.new_array('forces', np.zeros_like(displacements) if forces is None else np.asarray(forces, dtype=float))
    return structure


def posterior_covariance(A: np.ndarray, beta: float, lam: float) -> np.ndarray:
    """Sigma = (beta A^T A + lambda I)^-1, the full posterior covariance of the coefficients.

    Not sklearn's ``sigma_``: that is built from a thin SVD of A and, with fewer force rows than parameters
    (early in a dynamic training), drops the prior variance 1/lambda of the directions no data have seen.
    """
    precision = beta * (A.T @ A) + lam * np.eye(A.shape[1])
    return np.linalg.inv(precision)


@dataclass
class BayesianFit:
    """The posterior of one fit: mean ``coefficients``, covariance ``sigma``, ``beta``, ``lam``, and the data size."""

    coefficients: np.ndarray
    sigma: np.ndarray
    beta: float
    lam: float
    n_structures: int
    n_rows: int
    history: dict = field(default_factory=dict)

    @property
    def noise(self) -> float:
        """beta^-1/2 (eV/A): the fit's own estimate of its force error."""
        return float(self.beta**-0.5)


class BayesianForceConstantModel:
    """Force constants up to order ``len(cutoffs) + 1`` on ``primitive``, fitted by Bayesian ridge.

    :param primitive: the primitive cell of the cluster space.
    :param cutoffs: cut-offs (A) of orders 2, 3, ... (not increasing).
    :param ideal: the ideal supercell that every structure displaces (its atoms in this order).
    """

    def __init__(self, primitive: Atoms, cutoffs, ideal: Atoms):
        from hiphive import ClusterSpace

        self.cutoffs = check_cutoffs(cutoffs, max_cutoff(ideal))
        self.supercell_matrix = check_supercell(primitive, ideal)
        self.primitive = primitive.copy()
        self.ideal = ideal.copy()
        self.cluster_space = ClusterSpace(self.primitive, self.cutoffs)
        self.fit_result: BayesianFit | None = None
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._fcm = None

    @property
    def n_max(self) -> int:
        return len(self.cutoffs) + 1

    @property
    def n_parameters(self) -> int:
        return int(self.cluster_space.n_dofs)

    @property
    def force_constant_model(self):
        """hiphive's ``ForceConstantModel`` of the ideal supercell (its orbits mapped once; the costly part)."""
        if self._fcm is None:
            import contextlib
            import io

            from hiphive.force_constant_model import ForceConstantModel

            with contextlib.redirect_stdout(io.StringIO()):
                self._fcm = ForceConstantModel(self.ideal, self.cluster_space)
        return self._fcm

    def sensing_matrix(self, positions, displacements: np.ndarray | None = None) -> np.ndarray:
        """A of one frame: ``(3 N, n_parameters)``, F = A c (rows atom by atom, x, y, z); hiphive's fit matrix of
        the displacements from the ideal supercell (what its ``StructureContainer`` computes, tested).
        ``displacements``: those of ``positions`` when the caller has them already."""
        u = displacements_from(self.ideal, positions) if displacements is None else displacements
        return self.force_constant_model.get_fit_matrix(u)

    def energy_row(self, positions, sensing: np.ndarray, displacements: np.ndarray | None = None) -> np.ndarray:
        """e with E = e . c (eV, the ideal lattice at 0): each order's term is -u . F_n / n."""
        u = displacements_from(self.ideal, positions) if displacements is None else displacements
        return self.force_constant_model.get_energy_fit_vector(sensing, u)

    def add(self, positions, forces) -> None:
        """A labelled structure of the training set (positions of the ideal supercell's atoms, forces in eV/A)."""
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(self.ideal), 3) or not np.isfinite(forces).all():
            raise ValueError(f'forces must be finite with shape {(len(self.ideal), 3)}, not {forces.shape}')
        self._rows.append((self.sensing_matrix(positions), forces.ravel()))

    @property
    def n_structures(self) -> int:
        return len(self._rows)

    def fit_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The stacked sensing matrices and forces of the structures added so far."""
        if not self._rows:
            raise ValueError('no training structures: add() some first')
        return np.vstack([a for a, _ in self._rows]), np.concatenate([f for _, f in self._rows])

    def fit(self, max_iter: int = 300, tol: float = 1e-6) -> BayesianFit:
        """Bayesian ridge on every structure added so far (sklearn's evidence maximisation for beta and lambda and
        its posterior mean; the covariance of :func:`posterior_covariance`), kept in :attr:`fit_result`."""
        from sklearn.linear_model import BayesianRidge

        A, y = self.fit_data()
        ridge = BayesianRidge(fit_intercept=False, max_iter=max_iter, tol=tol, copy_X=True)
        ridge.fit(A, y)
        self.fit_result = BayesianFit(
            np.asarray(ridge.coef_, dtype=float),
            posterior_covariance(A, float(ridge.alpha_), float(ridge.lambda_)),
            float(ridge.alpha_),
            float(ridge.lambda_),
            self.n_structures,
            len(y),
        )
        return self.fit_result

    def _posterior(self) -> BayesianFit:
        if self.fit_result is None:
            raise ValueError('the model is not fitted yet: call fit()')
        return self.fit_result

    def forces(self, positions, sensing: np.ndarray | None = None) -> np.ndarray:
        """Posterior-mean forces of a frame, ``(N, 3)`` eV/A."""
        A = self.sensing_matrix(positions) if sensing is None else sensing
        return (A @ self._posterior().coefficients).reshape(-1, 3)

    def bayesian_error(self, positions, sensing: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """``(eps_B, per_atom)``: sqrt of diag(A Sigma A^T) averaged over all components, and per atom over x, y, z."""
        A = self.sensing_matrix(positions) if sensing is None else sensing
        variance = np.einsum('ij,jk,ik->i', A, self._posterior().sigma, A).reshape(-1, 3)
        variance = np.maximum(variance, 0.0)  # round-off of a positive semi-definite form
        return float(np.sqrt(variance.mean())), np.sqrt(variance.mean(axis=1))

    def sample_coefficients(self, n: int, seed: int) -> np.ndarray:
        """``n`` posterior samples c_k ~ N(c, Sigma), ``(n, n_parameters)``."""
        posterior = self._posterior()
        rng = np.random.default_rng(seed)
        return rng.multivariate_normal(posterior.coefficients, posterior.sigma, size=n, method='cholesky')

    def committee_forces(self, positions, samples: np.ndarray) -> np.ndarray:
        """Forces of each posterior sample, ``(n, N, 3)``."""
        A = self.sensing_matrix(positions)
        return np.einsum('ij,kj->ki', A, samples).reshape(len(samples), -1, 3)

    def calculator(self, coefficients: np.ndarray | None = None):
        """An ASE calculator (energies and forces of the expansion) of the posterior mean or of ``coefficients``."""
        from hiphive import ForceConstantPotential
        from hiphive.calculators import ForceConstantCalculator

        parameters = self._posterior().coefficients if coefficients is None else np.asarray(coefficients)
        potential = ForceConstantPotential(self.cluster_space, parameters)
        return ForceConstantCalculator(potential.get_force_constants(self.ideal))


# ------------------------------------------------------------------------------------- persistence
def _atoms_arrays(prefix: str, atoms: Atoms) -> dict:
    return {
        f'{prefix}_numbers': np.asarray(atoms.numbers, dtype=np.int64),
        f'{prefix}_positions': np.asarray(atoms.positions, dtype=float),
        f'{prefix}_cell': np.asarray(atoms.cell[:], dtype=float),
    }


def arrays_atoms(prefix: str, arrays: dict) -> Atoms:
    return Atoms(
        numbers=arrays[f'{prefix}_numbers'],
        positions=arrays[f'{prefix}_positions'],
        cell=arrays[f'{prefix}_cell'],
        pbc=True,
    )


def model_arrays(model: BayesianForceConstantModel) -> dict:
    """Everything that rebuilds the fitted model (:func:`model_from_arrays`): cells, cut-offs, the posterior."""
    fit = model._posterior()
    return {
        **_atoms_arrays('primitive', model.primitive),
        **_atoms_arrays('ideal', model.ideal),
        'cutoffs': np.asarray(model.cutoffs, dtype=float),
        'coefficients': fit.coefficients,
        'sigma': fit.sigma,
        'beta': np.asarray(fit.beta),
        'lam': np.asarray(fit.lam),
        'n_structures': np.asarray(fit.n_structures),
        'n_rows': np.asarray(fit.n_rows),
    }


def model_from_arrays(arrays: dict) -> BayesianForceConstantModel:
    """The fitted model of :func:`model_arrays` (the cluster space built again from the primitive cell and the
    cut-offs; refused if its parameter count differs from the stored coefficients')."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # hiphive prints its cluster space
        model = BayesianForceConstantModel(
            arrays_atoms('primitive', arrays), list(arrays['cutoffs']), arrays_atoms('ideal', arrays)
        )
    coefficients = np.asarray(arrays['coefficients'], dtype=float)
    if coefficients.shape != (model.n_parameters,):
        raise ValueError(
            f'{coefficients.size} stored coefficients, but the cluster space has {model.n_parameters} parameters'
        )
    model.fit_result = BayesianFit(
        coefficients,
        np.asarray(arrays['sigma'], dtype=float),
        float(arrays['beta']),
        float(arrays['lam']),
        int(arrays['n_structures']),
        int(arrays['n_rows']),
    )
    return model
