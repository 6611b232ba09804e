"""Ensemble uncertainties (Kang et al., Eq. 1); pure numpy, no AiiDA import.

For a property ``X`` predicted by the ``N`` members of an ensemble, the uncertainty is the
population standard deviation over the members::

    UCE_X = sqrt( (1/N) sum_I (X_I - mean_I X_I)^2 )

- ``UCE_U``: ``X`` = potential energy of the frame (eV).
- ``UCE_F`` per atom ``i``: ``sqrt( (1/N) sum_I |F_I^i - mean_I F_I^i|^2 )`` (vector norm of the
  deviation, eV/A); ``UCE_F^max`` is its maximum over the atoms of the frame.
- ``UCE_A``: ``X`` = degree of anharmonicity computed with each member's forces
  (:mod:`aiida_anharmal.core.phonons.anharmonicity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def population_std(values, axis: int = 0) -> np.ndarray:
    """Standard deviation over ``axis`` with the 1/N normalisation (``ddof=0``)."""
    return np.std(np.asarray(values, dtype=float), axis=axis, ddof=0)


def force_uncertainty(member_forces) -> np.ndarray:
    """Per-atom ``UCE_F`` from member forces of shape ``(N, n_atoms, 3)`` -> ``(n_atoms,)``."""
    forces = np.asarray(member_forces, dtype=float)
    if forces.ndim != 3 or forces.shape[-1] != 3:
        raise ValueError(f'member forces must have shape (n_members, n_atoms, 3), not {forces.shape}')
    deviation = forces - forces.mean(axis=0)
    return np.sqrt(np.mean(np.sum(deviation**2, axis=-1), axis=0))


@dataclass(frozen=True)
class EnsemblePrediction:
    """What an ensemble predicts for one frame: member values, their means and uncertainties."""

    member_energies: np.ndarray  # (N,)
    member_forces: np.ndarray  # (N, n_atoms, 3)
    member_stresses: np.ndarray | None = None  # (N, 6) Voigt, eV/A^3

    @property
    def n_members(self) -> int:
        return len(self.member_energies)

    @property
    def energy(self) -> float:
        return float(np.mean(self.member_energies))

    @property
    def forces(self) -> np.ndarray:
        return self.member_forces.mean(axis=0)

    @property
    def stress(self) -> np.ndarray | None:
        return None if self.member_stresses is None else self.member_stresses.mean(axis=0)

    @property
    def uce_energy(self) -> float:
        """``UCE_U`` in eV."""
        return float(population_std(self.member_energies))

    @property
    def uce_forces(self) -> np.ndarray:
        """Per-atom ``UCE_F`` in eV/A, shape ``(n_atoms,)``."""
        return force_uncertainty(self.member_forces)

    @property
    def uce_force_max(self) -> float:
        """``UCE_F^max`` in eV/A."""
        return float(self.uce_forces.max())


class CalculatorAsEnsemble:
    """Any ASE calculator as an ensemble of one member (every UCE is 0): the labelling engine itself.

    The MD loop, the evaluation and the stop rules read ``predict(atoms)``; with this wrapper they run on
    the ground truth (DFT, EMT, the reference model) exactly as on an ensemble, e.g. for the validation
    MD that the active-learning loop compares its ensembles with.
    """

    n_members = 1
    workers = 1

    def __init__(self, calculator, name: str = 'engine'):
        self.calculator = calculator
        self.name = name

    def check_atoms(self, atoms) -> None:
        """Nothing to check here: the labelling request was checked with the engine's own rules."""

    def predict(self, atoms) -> EnsemblePrediction:
        atoms = atoms.copy()
        atoms.calc = self.calculator
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), dtype=float)
        return EnsemblePrediction(np.array([energy]), forces[None])


class CalculatorCommittee:
    """A committee of ASE calculators (e.g. one potential with perturbed parameters) as an ensemble.

    ``predict(atoms)`` evaluates every member: the MD loop, its biases and its triggers run on it as on a
    NequIP ensemble. Energies and forces of each member come from its own calculator, so the committee's
    derivatives are exact (what the finite-difference checks of the HAL bias need).
    """

    workers = 1

    def __init__(self, calculators, name: str = 'committee'):
        self.calculators = list(calculators)
        if not self.calculators:
            raise ValueError('a committee needs at least one calculator')
        self.name = name

    @property
    def n_members(self) -> int:
        return len(self.calculators)

    def check_atoms(self, atoms) -> None:
        """Nothing to check: each calculator raises on atoms it cannot handle."""

    def predict(self, atoms) -> EnsemblePrediction:
        energies, forces = [], []
        for calculator in self.calculators:
            member = atoms.copy()
            member.calc = calculator
            energies.append(float(member.get_potential_energy()))
            forces.append(np.asarray(member.get_forces(), dtype=float))
        return EnsemblePrediction(np.array(energies), np.stack(forces))
