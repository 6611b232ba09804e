"""A third-party package in miniature: a guard, a bias and a labelling engine for aiida-anharmal.

It edits nothing of aiida-anharmal: its strategies reach the plugin through the entry points of its own
metadata (``anharmal_probe-0.1.dist-info/entry_points.txt``), as an installed package's would. The test
``tests/test_third_party_strategies.py`` puts this folder on the path of the tests and of the daemon.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from aiida_anharmal.core.labelling.labellers import Labeller
from aiida_anharmal.core.md.biases import Bias
from aiida_anharmal.core.md.stop_rules import Guard


class DisplacementGuard(Guard):
    """Stop when an atom moved farther than the threshold from where the run started."""

    key = 'max_displacement'
    label = 'displacement from the start'
    reason = 'displaced_too_far'
    exit_status = 327
    exit_label = 'ERROR_DISPLACED_TOO_FAR'
    message = 'Stopped by the probe guard: {message}.'
    default = None
    unit = 'A'

    def check(self, atoms, prediction):
        if not hasattr(self, 'start'):
            self.start = atoms.positions.copy()
        moved = float(np.linalg.norm(atoms.positions - self.start, axis=1).max())
        return f'an atom moved {moved:.3f} A' if moved > self.threshold else None


class SpringBias(Bias):
    """Every atom on a spring to its start position: E + k/2 |r - r0|^2."""

    key = 'spring'
    label = 'spring to the start'
    defaults: ClassVar[dict] = {'k': 1.0}

    def __init__(self, parameters: dict):
        self.k = float(self.validate(parameters)['k'])
        self.start = None
        self.force = np.nan

    def __call__(self, atoms, prediction):
        if self.start is None:
            self.start = atoms.positions.copy()
        shift = atoms.positions - self.start
        spring = -self.k * shift
        self.force = float(np.linalg.norm(spring, axis=1).mean())
        return float(prediction.energy) + 0.5 * self.k * float((shift**2).sum()), np.asarray(prediction.forces) + spring

    def record(self) -> dict:
        return {'bias_force': self.force}


class LennardJonesLabeller(Labeller):
    """ASE's Lennard-Jones potential (a toy ground truth of any element)."""

    key = 'lennard_jones'
    ground_truth = 'toy'
    description = "ASE's Lennard-Jones potential (toy)"
    parameter_names = ('sigma', 'epsilon', 'rc')

    def make_calculator(self, parameters: dict, model_path=None, directory='.', member_paths=None):
        from ase.calculators.lj import LennardJones

        return LennardJones(**parameters)
