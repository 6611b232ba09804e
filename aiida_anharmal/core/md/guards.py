"""The built-in MD guards: end a run that left trustworthy ground (no AiiDA import).

Each is a :class:`~aiida_anharmal.core.md.stop_rules.Guard`, registered through the entry-point group
``anharmal.md.stop_rules`` under its key; :mod:`aiida_anharmal.core.md.stop_rules` says what a guard is and how
runs use them.
"""

from __future__ import annotations

import numpy as np

from .stop_rules import Guard


class FiniteGuard(Guard):
    """Stop on NaN or infinite energy, forces or positions (always on)."""

    key = 'not_finite'
    label = 'not finite'
    reason = 'not_finite'
    exit_status = 324
    exit_label = 'ERROR_NOT_FINITE'
    message = 'Stopped: {message}.'
    always = True

    def check(self, atoms, prediction) -> str | None:
        finite = np.isfinite(prediction.energy) and np.isfinite(prediction.forces).all()
        if not (finite and np.isfinite(atoms.positions).all()):
            return 'energy, forces or positions are not finite'
        return None


class MinDistanceGuard(Guard):
    """Stop when two atoms (periodic images included) come closer than the threshold."""

    key = 'min_distance'
    label = 'atoms too close'
    reason = 'atoms_too_close'
    exit_status = 320
    exit_label = 'ERROR_ATOMS_TOO_CLOSE'
    message = 'Stopped by the distance guard: {message}.'
    default = 0.5
    unit = 'A'

    def check(self, atoms, prediction) -> str | None:
        try:  # matscipy (a nequip dependency) is ~50x faster than ASE's Python neighbour list
            from matscipy.neighbours import neighbour_list
        except ImportError:  # pragma: no cover
            from ase.neighborlist import neighbor_list as neighbour_list
        i, j, d = neighbour_list('ijd', atoms, self.threshold)
        if len(d):
            k = int(np.argmin(d))
            return f'atoms {i[k]} and {j[k]} are {d[k]:.3f} A apart (threshold {self.threshold} A)'
        return None


class ForceCapGuard(Guard):
    """Stop when a mean force exceeds the threshold."""

    key = 'max_force'
    label = 'force too large'
    reason = 'force_too_large'
    exit_status = 321
    exit_label = 'ERROR_FORCE_TOO_LARGE'
    message = 'Stopped by the force guard: {message}.'
    default = 20.0
    unit = 'eV/A'

    def check(self, atoms, prediction) -> str | None:
        f = float(np.linalg.norm(prediction.forces, axis=1).max())
        if f > self.threshold:
            return f'|F| = {f:.2f} eV/A exceeds {self.threshold} eV/A'
        return None


class UncertaintyCapGuard(Guard):
    """Stop when UCE_F^max exceeds the threshold (the ensemble no longer knows where it is)."""

    key = 'max_uncertainty'
    label = 'uncertainty too large'
    reason = 'uncertainty_too_large'
    exit_status = 322
    exit_label = 'ERROR_UNCERTAINTY_TOO_LARGE'
    message = 'Stopped by the uncertainty guard: {message}.'
    default = 2.0
    unit = 'eV/A (UCE_F^max)'

    def check(self, atoms, prediction) -> str | None:
        u = prediction.uce_force_max
        if u > self.threshold:
            return f'UCE_F^max = {u:.3f} eV/A exceeds {self.threshold} eV/A'
        return None


class TemperatureGuard(Guard):
    """Stop when the instantaneous temperature exceeds the threshold times the target temperature."""

    key = 'temperature_factor'
    label = 'temperature runaway'
    reason = 'temperature_runaway'
    exit_status = 323
    exit_label = 'ERROR_TEMPERATURE_RUNAWAY'
    message = 'Stopped by the temperature guard: {message}.'
    default = 3.0
    unit = 'x the target temperature'

    def check(self, atoms, prediction) -> str | None:
        t = atoms.get_temperature()
        if t > self.threshold * self.target_temperature:
            return f'temperature {t:.0f} K exceeds {self.threshold} x {self.target_temperature} K'
        return None


class AnharmonicityGuard(Guard):
    """Stop when the degree of anharmonicity A of the frame (ensemble-mean forces against the harmonic
    reference) exceeds the threshold: the crystal has left the region the harmonic reference describes.

    For scale (docs/source/science.rst, section 3): A is ~0.4 for CuI at 300 K, and a jump from 0.5 to
    1.2 marks a defect (Kang et al., Fig. 6); a broken crystal reaches 2-5.
    """

    key = 'max_anharmonicity'
    label = 'anharmonicity too large'
    reason = 'anharmonicity_too_large'
    exit_status = 325
    exit_label = 'ERROR_ANHARMONICITY_TOO_LARGE'
    message = 'Stopped by the anharmonicity guard: {message}.'
    default = None  # off unless asked for: it needs the harmonic reference
    unit = 'A, dimensionless'
    needs_harmonic = True

    def check(self, atoms, prediction) -> str | None:
        a = float(self.harmonic.a_per_frame(atoms.positions[None], np.asarray(prediction.forces)[None])[0])
        if a > self.threshold:
            return f'A = {a:.2f} exceeds {self.threshold}'
        return None
