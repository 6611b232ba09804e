"""Climbing-image NEB on any ASE calculator (the ensemble mean, or the labelling engine itself). No AiiDA.

Kang et al. judge an active-learning run by the potential-energy surface of the rare event: the
minimum-energy path from the pristine crystal to a defect, computed with the MLIP of every
iteration next to the ground truth, with the ensemble uncertainty of every image. This module:

* :func:`check_end_points`, :func:`check_images`: refuse a path that cannot be one (different atom
  counts, species order or cell; fewer than 3 images; an atom jumping more than ``max_image_step``
  between neighbouring images, minimum-image convention);
* :func:`interpolate`: ``idpp`` (default) or ``linear`` interpolation with the minimum-image convention;
* :func:`run_neb`: ASE's ``NEB`` with ``method='improvedtangent'`` and ``climb=True`` by default
  (the ``aseneb`` tangent is known to be wrong), one calculator per image or one explicitly
  shared, an optimizer with ``fmax`` and a step cap, guards on every image;
* :func:`path_profile`: per image the energy relative to the initial state, UCE_U, UCE_F^max,
  per-atom UCE_F and A (with a harmonic reference); barrier, reaction energy, the index of the
  highest image and the spline of ASE's ``NEBTools`` fit.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np
from ase.geometry import find_mic

from ..structures.checks import closest_pair

#: Tangents ASE offers; 'aseneb' is accepted only when asked for explicitly (known wrong tangent).
METHODS = ('improvedtangent', 'eb', 'spline', 'string', 'aseneb')
INTERPOLATIONS = ('idpp', 'linear')
OPTIMIZERS = ('FIRE', 'BFGS', 'MDMin', 'LBFGS')


@dataclass(frozen=True)
class NEBSettings:
    """How the band is built and relaxed (every field a parameter of the ``anharmal-neb`` program)."""

    n_images: int = 5  # intermediate images between the end points (when interpolating)
    interpolation: str = 'idpp'
    method: str = 'improvedtangent'
    climb: bool = True
    spring: float = 0.1  # eV/A^2
    fmax: float = 0.05  # eV/A, on the NEB forces of every image
    steps: int = 300
    optimizer: str = 'FIRE'
    max_image_step: float = 4.0  # A: largest displacement of an atom between neighbouring images
    min_distance: float = 0.5  # A: an image with two atoms closer than this trips the guard
    relax_end_points: bool = False  # relax both end points (fixed cell, same fmax and step cap) first

    def __post_init__(self):
        checks = {
            'interpolation': (self.interpolation, INTERPOLATIONS),
            'method': (self.method, METHODS),
            'optimizer': (self.optimizer, OPTIMIZERS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f'{name} must be one of {list(allowed)}, not {value!r}')
        for name in ('spring', 'fmax', 'max_image_step', 'min_distance'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
                raise ValueError(f'{name} must be a positive number, not {value!r}')
        for name, minimum in (('n_images', 1), ('steps', 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f'{name} must be an integer >= {minimum}, not {value!r}')
        for name in ('climb', 'relax_end_points'):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f'{name} must be true or false, not {getattr(self, name)!r}')  # noqa: TRY004

    @classmethod
    def from_dict(cls, parameters: dict) -> NEBSettings:
        unknown = sorted(set(parameters) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f'unknown NEB parameter(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}')
        return cls(**parameters)

    def as_dict(self) -> dict:
        return asdict(self)


class GuardTripped(RuntimeError):
    """An image became unphysical (atoms too close, non-finite energy or forces): the band is kept."""

    def __init__(self, reason: str, message: str, step: int):
        super().__init__(message)
        self.reason, self.step = reason, step


def check_end_points(initial, final) -> None:
    """``ValueError`` unless both end points hold the same atoms in the same order in the same cell."""
    if len(initial) != len(final):
        raise ValueError(f'the end points have {len(initial)} and {len(final)} atoms')
    if initial.get_chemical_symbols() != final.get_chemical_symbols():
        raise ValueError('the end points list their species in a different order')
    if not np.allclose(initial.cell.array, final.cell.array, atol=1e-6):
        raise ValueError('the end points have different cells')
    if list(initial.pbc) != list(final.pbc):
        raise ValueError('the end points have different periodic boundary conditions')


def image_steps(images) -> np.ndarray:
    """Largest minimum-image displacement of any atom between each pair of neighbouring images (A)."""
    steps = []
    for a, b in itertools.pairwise(images):
        _, lengths = find_mic(b.positions - a.positions, a.cell, a.pbc)
        steps.append(float(np.max(lengths)) if len(lengths) else 0.0)
    return np.array(steps)


def check_images(images, max_image_step: float) -> None:
    """``ValueError`` for a band that cannot be a path (see the module docstring)."""
    if len(images) < 3:
        raise ValueError(f'a band needs at least 3 images (2 end points and one between), not {len(images)}')
    for image in images[1:]:
        check_end_points(images[0], image)
    steps = image_steps(images)
    worst = int(np.argmax(steps))
    if steps[worst] > max_image_step:
        raise ValueError(
            f'an atom moves {steps[worst]:.2f} A between images {worst} and {worst + 1} (limit {max_image_step:g} A): '
            'add images or check the end points'
        )


def interpolate(initial, final, settings: NEBSettings) -> list:
    """``settings.n_images`` images between the end points (``idpp`` or ``linear``, minimum image)."""
    from ase.mep import NEB

    check_end_points(initial, final)
    images = [initial.copy()] + [initial.copy() for _ in range(settings.n_images)] + [final.copy()]
    for image in images:
        image.calc = None
    NEB(images, method=settings.method).interpolate(method=settings.interpolation, mic=True)
    return images


@dataclass
class NEBRun:
    """A relaxed (or interrupted) band: its images with their calculators, and how the relaxation went."""

    images: list
    converged: bool
    steps: int
    fmax_history: list = field(default_factory=list)


def _optimizer(name: str):
    from ase import optimize

    return getattr(optimize, name)


def _attach_calculators(images, calculator, calculators) -> bool:
    """Set the images' calculators; ``True`` when one calculator is shared (ASE must be told)."""
    if (calculator is None) == (calculators is None):
        raise ValueError('give either one shared `calculator` or a list of `calculators`, one per image')
    if calculators is not None:
        if len(calculators) != len(images):
            raise ValueError(f'{len(calculators)} calculators for {len(images)} images')
        for image, calc in zip(images, calculators, strict=True):
            image.calc = calc
        return False
    for image in images:
        image.calc = calculator
    return True


def _guard(images, neb, settings: NEBSettings, step: int) -> None:
    """Trip on an image with atoms too close or non-finite results, from what the NEB last computed (no new call)."""
    for k, image in enumerate(images):
        if closest_pair(image, settings.min_distance) is not None:
            raise GuardTripped(
                'min_distance',
                f'image {k}: two atoms closer than {settings.min_distance:g} A at step {step}',
                step,
            )
    energies, forces = np.asarray(neb.energies), np.asarray(neb.real_forces)
    bad = [k for k in range(len(images)) if not (np.isfinite(energies[k]) and np.all(np.isfinite(forces[k])))]
    if bad:
        raise GuardTripped('non_finite', f'image {bad[0]}: non-finite energy or forces at step {step}', step)


def _fix_end_points(images) -> None:
    """Give the fixed end points their results once: with a shared calculator ASE would recompute them every step."""
    from ase.calculators.singlepoint import SinglePointCalculator

    for image in (images[0], images[-1]):
        energy, forces = image.get_potential_energy(), image.get_forces()
        image.calc = SinglePointCalculator(image, energy=energy, forces=forces)


def _recording_neb(images, settings: NEBSettings, shared: bool):
    """ASE's NEB that evaluates a band once per set of positions (ASE's optimizers ask up to three times per
    step, and a shared calculator caches only its last image) and keeps the result (``last_forces``)."""
    from ase.mep import NEB

    class RecordingNEB(NEB):
        last_forces = None
        _at = None

        def get_forces(self):
            positions = self.get_positions()
            if self._at is None or not np.array_equal(positions, self._at):
                self.last_forces = super().get_forces()
                self._at = positions.copy()
            return self.last_forces.copy()

    return RecordingNEB(
        images, k=settings.spring, climb=settings.climb, method=settings.method, allow_shared_calculator=shared
    )


def run_neb(images, settings: NEBSettings, calculator=None, calculators=None, on_step=None) -> NEBRun:
    """Relax the band ``images`` (end points included, fixed) with ASE's NEB.

    One calculator call per moving image and step: the end points are evaluated once, and the
    guards and the step log read what the NEB computed.

    :param calculator: one ASE calculator shared by every image (e.g. an ``EnsembleCalculator``).
    :param calculators: or one per image (end points included).
    :param on_step: ``on_step(images, step, fmax)`` after every optimizer step (e.g. write the band).
    :raises GuardTripped: an image became unphysical (the caller keeps the band).
    """
    check_images(images, settings.max_image_step)
    shared = _attach_calculators(images, calculator, calculators)
    _fix_end_points(images)
    neb = _recording_neb(images, settings, shared)
    optimizer = _optimizer(settings.optimizer)(neb, logfile=None)
    history: list[float] = []  # the band's fmax before the first step and after each step

    def after_step():
        step = optimizer.nsteps
        _guard(images, neb, settings, step)
        fmax = float(np.sqrt((neb.last_forces**2).sum(axis=1).max()))
        history.append(fmax)
        if on_step is not None:
            on_step(images, step, fmax)

    optimizer.attach(after_step, interval=1)
    converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.steps))
    return NEBRun(images=images, converged=converged, steps=int(optimizer.nsteps), fmax_history=history)


@dataclass
class PathProfile:
    """Per-image numbers of a band, and its barrier (eV, A)."""

    energies: np.ndarray  # relative to the initial image
    uce_energy: np.ndarray
    uce_force_max: np.ndarray
    uce_forces: np.ndarray  # (images, atoms)
    forces: np.ndarray  # mean forces (images, atoms, 3)
    total_energies: np.ndarray
    anharmonicity: np.ndarray | None  # A per image (harmonic reference given)
    uce_anharmonicity: np.ndarray | None
    barrier: float  # max(E) - E(initial), from the images
    reaction_energy: float  # E(final) - E(initial)
    highest_image: int
    fit_barrier: float  # NEBTools' spline fit
    path: np.ndarray  # reaction coordinate of the images (A)
    fit_path: np.ndarray  # and of the spline
    fit_energies: np.ndarray

    def summary(self) -> dict:
        return {
            'barrier': float(self.barrier),
            'reaction_energy': float(self.reaction_energy),
            'highest_image': int(self.highest_image),
            'fit_barrier': float(self.fit_barrier),
            'max_uce_force_max': float(np.max(self.uce_force_max)),
            'max_uce_energy': float(np.max(self.uce_energy)),
            'n_images': len(self.energies),
        }


def path_profile(images, predictor, harmonic=None) -> PathProfile:
    """Evaluate every image with ``predictor.predict`` (an ensemble, or ``CalculatorAsEnsemble``).

    :param harmonic: a :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference` of the same
        supercell, for A and UCE_A per image.
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.mep import NEBTools
    from ase.utils.forcecurve import fit_images

    predictions = [predictor.predict(image) for image in images]
    total = np.array([p.energy for p in predictions])
    energies = total - total[0]
    a = ua = None
    if harmonic is not None:
        pairs = [
            harmonic.a_with_uncertainty(image.positions, p.forces, p.member_forces)
            for image, p in zip(images, predictions, strict=True)
        ]
        a, ua = np.array([x[0] for x in pairs]), np.array([x[1] for x in pairs])
    band = []
    for image, prediction in zip(images, predictions, strict=True):
        copy = image.copy()
        copy.calc = SinglePointCalculator(copy, energy=prediction.energy, forces=prediction.forces)
        band.append(copy)
    fit = fit_images(band)
    fit_barrier, _ = NEBTools(band).get_barrier(fit=True)
    highest = int(np.argmax(energies))
    return PathProfile(
        energies=energies,
        uce_energy=np.array([p.uce_energy for p in predictions]),
        uce_force_max=np.array([p.uce_force_max for p in predictions]),
        uce_forces=np.stack([p.uce_forces for p in predictions]),
        forces=np.stack([p.forces for p in predictions]),
        total_energies=total,
        anharmonicity=a,
        uce_anharmonicity=ua,
        barrier=float(energies[highest]),
        reaction_energy=float(energies[-1]),
        highest_image=highest,
        fit_barrier=float(fit_barrier),
        path=np.asarray(fit.path),
        fit_path=np.asarray(fit.fit_path),
        fit_energies=np.asarray(fit.fit_energies),
    )
