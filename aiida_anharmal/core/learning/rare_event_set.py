"""A rare-event test set and the errors of a potential on each of its parts; numpy and ASE only.

Kang et al. (Fig. 8) judge a CuI potential on a test set that holds defect configurations. Here such a
set has three parts, each made by the labelling engine (the ground truth) and told apart by the
``kind`` of every frame's origin:

``thermal``
    frames of the engine's own Langevin MD of the crystal (what every loop sees);
``defect``
    frames of the engine's MD started in the defect's basin (a Frenkel pair lives a while at 300 K);
    a ``keep`` filter drops the frames after the defect recombined;
``path``
    the images of the engine's own NEB path from the crystal to the defect (the barrier region).

:func:`md_part` and :func:`path_part` make the parts (an MD frame's labels are those of the engine call
that drove its step: no extra label; a path image is labelled once), :func:`check_independent` refuses a
test set that shares a frame with training data, and :func:`part_errors` / :func:`defect_energy_error` are the metrics per part.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..structures.frames import Frames

__all__ = [
    'CURVE_KEYS',
    'PARTS',
    'check_independent',
    'curve_point',
    'defect_energy_error',
    'labelled_copy',
    'md_frames',
    'md_part',
    'part_errors',
    'parts_of',
    'path_part',
]

#: The parts of a rare-event test set, in the order the set holds them.
PARTS = ('thermal', 'defect', 'path')


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f'unknown part {part!r} of a rare-event test set: one of {list(PARTS)}')


def md_part(start: Atoms, calculator, part: str, **settings) -> Frames:
    """The ``part`` (``thermal`` or ``defect``) of a rare-event test set: :func:`md_frames` of that kind."""
    _check_part(part)
    return md_frames(start, calculator, part, **settings)


def md_frames(
    start: Atoms,
    calculator,
    kind: str,
    *,
    temperature: float,
    steps: int,
    save_stride: int = 5,
    equilibration: float = 50.0,
    seed: int = 0,
    timestep: float = 5.0,
    friction: float = 0.00295,
    keep: Callable[[Atoms], bool] | None = None,
) -> Frames:
    """Frames of a Langevin MD on ``calculator`` (an ASE calculator: the engine) from ``start``.

    The MD loop of :func:`~aiida_anharmal.core.md.loop.run_md` drives a committee of one, so each saved frame
    carries the engine's energy and forces of its own step. Frames before ``equilibration`` fs are left
    out, and with ``keep`` every frame for which it is false (e.g. after a defect recombined). Origins:
    ``kind``, ``step``, ``time`` (fs), ``temperature``, ``seed``.
    """
    from ..md.files import read_frames
    from ..md.loop import MDSettings, run_md
    from ..md.stop_rules import build_stop_rules
    from ..models.uncertainty import CalculatorCommittee

    if equilibration < 0 or equilibration >= steps * timestep:
        raise ValueError(f'equilibration {equilibration} fs must lie in [0, {steps * timestep}) fs (the run)')
    settings = MDSettings(temperature, timestep, steps, save_stride, friction, 'langevin', seed, False)
    with tempfile.TemporaryDirectory() as directory:
        result = run_md(
            start.copy(), CalculatorCommittee([calculator], 'engine'), settings, directory,
            guards=build_stop_rules({}, temperature),
        )  # fmt: skip
        if result.state != 'finished':
            raise RuntimeError(f'the {kind} MD stopped at step {result.last_step}: {result.message}')
        arrays = read_frames(directory)
    frames, origins = [], []
    for k, step in enumerate(arrays['step']):
        atoms = Atoms(start.numbers, positions=arrays['positions'][k], cell=start.cell, pbc=start.pbc)
        if step * timestep < equilibration or (keep is not None and not keep(atoms)):
            continue
        atoms.calc = SinglePointCalculator(atoms, energy=float(arrays['energy'][k]), forces=arrays['forces'][k])
        frames.append(atoms)
        origins.append(
            {
                'kind': kind,
                'step': int(step),
                'time': float(arrays['time'][k]),
                'temperature': temperature,
                'seed': seed,
            }
        )
    if not frames:
        accepted = ' that `keep` accepted' if keep is not None else ''
        raise ValueError(f'the {kind} MD kept no frame: none saved after {equilibration} fs{accepted}')
    return Frames.from_atoms(frames, origins)


def labelled_copy(atoms: Atoms, calculator) -> Atoms:
    """A copy of ``atoms`` holding ``calculator``'s energy and forces of exactly these positions (a shared
    calculator keeps only the results of the last structure it saw)."""
    copy = atoms.copy()
    copy.calc = calculator
    energy, forces = float(copy.get_potential_energy()), copy.get_forces().copy()
    copy.calc = SinglePointCalculator(copy, energy=energy, forces=forces)
    return copy


def path_part(images: Sequence[Atoms], calculator) -> Frames:
    """The images of a path (end points included), each labelled by ``calculator``; origin ``image``."""
    frames = [labelled_copy(atoms, calculator) for atoms in images]
    return Frames.from_atoms(frames, [{'kind': 'path', 'image': i} for i in range(len(frames))])


def parts_of(test_set: Frames) -> dict[str, list[int]]:
    """The frame indices of each part (every frame's origin must name one)."""
    parts: dict[str, list[int]] = {part: [] for part in PARTS}
    for index, origin in enumerate(test_set.origins):
        kind = origin.get('kind')
        if kind not in parts:
            raise ValueError(f'frame {index} of the test set has origin kind {kind!r}, not one of {list(PARTS)}')
        parts[kind].append(index)
    return parts


def _positions_differ(a: np.ndarray, b: np.ndarray, inverse_cell: np.ndarray, cell: np.ndarray, tolerance: float):
    """Whether any atom of ``a`` lies further than ``tolerance`` (A) from its partner in ``b`` (minimum image)."""
    fractional = (a - b) @ inverse_cell
    delta = (fractional - np.round(fractional)) @ cell
    return bool(np.linalg.norm(delta, axis=1).max() > tolerance)


def check_independent(test_set: Frames, other: Frames, tolerance: float = 1e-3, name: str = 'the training data'):
    """Refuse a test set that shares a frame with ``other``: the same atoms in the same order, the same cell and
    positions (every atom within ``tolerance`` A of its partner, minimum image). Frames of other sizes, species
    or cells are independent by construction; a reordered copy of a frame is not recognised."""
    others = [other.get_atoms(j, with_labels=False) for j in range(len(other))]
    shared = []
    for i in range(len(test_set)):
        a = test_set.get_atoms(i, with_labels=False)
        if abs(np.linalg.det(a.cell.array)) < 1e-9:
            raise ValueError(f'test frame {i} has no periodic cell of finite volume: cannot compare by minimum image')
        inverse = np.linalg.inv(a.cell.array)
        for j, b in enumerate(others):
            if len(a) != len(b) or (a.numbers != b.numbers).any() or not np.allclose(a.cell.array, b.cell.array):
                continue
            if not _positions_differ(a.positions, b.positions, inverse, a.cell.array, tolerance):
                shared.append((i, j))
    if shared:
        listed = ', '.join(f'test frame {i} = frame {j}' for i, j in shared[:5])
        raise ValueError(f'the test set shares {len(shared)} frame(s) with {name} ({listed}): not a test set')


def part_errors(test_set: Frames, predict: Callable[[Atoms], tuple[float, np.ndarray]]) -> dict[str, dict]:
    """Per part: ``frames``, ``energy_mae`` (meV/atom) and ``force_mae`` (meV/A, over force components) of
    ``predict(atoms) -> (energy eV, forces eV/A)`` against the labels; a part without frames has ``None``.
    Every frame needs its energy and forces."""
    unlabelled = np.flatnonzero(~(test_set.has_energy & test_set.has_forces))
    if len(unlabelled):
        raise ValueError(f'test frame(s) {unlabelled[:5].tolist()} lack an energy or forces: label them first')
    errors = {}
    for part, indices in parts_of(test_set).items():
        energy, force = [], []
        for index in indices:
            atoms = test_set.get_atoms(index, with_labels=False)
            predicted_energy, predicted_forces = predict(atoms)
            energy.append(abs(predicted_energy - test_set.energy[index]) / len(atoms))
            force.append(np.abs(np.asarray(predicted_forces) - test_set.forces[test_set.atom_slice(index)]).ravel())
        errors[part] = {
            'frames': len(indices),
            'energy_mae': 1000 * float(np.mean(energy)) if indices else None,
            'force_mae': 1000 * float(np.mean(np.concatenate(force))) if indices else None,
        }
    return errors


def defect_energy_error(
    predict: Callable[[Atoms], tuple[float, np.ndarray]], crystal: Atoms, defect: Atoms, reference: float
) -> float:
    """The potential's defect energy E(defect) - E(crystal) at fixed geometries minus the ``reference`` one (eV)."""
    if len(crystal) != len(defect) or (crystal.numbers != defect.numbers).any():
        raise ValueError('the crystal and the defect must hold the same atoms in the same order')
    return float(predict(defect)[0] - predict(crystal)[0] - reference)


#: The keys of one point of a learning curve on the rare-event test set (the results format of benchmarks/methods_head_to_head.py).
CURVE_KEYS = (
    'labels',
    'energy_mae_thermal',
    'energy_mae_defect',
    'energy_mae_path',
    'force_mae_thermal',
    'force_mae_defect',
    'defect_energy_error',
    'minutes',
)


def curve_point(
    predict: Callable[[Atoms], tuple[float, np.ndarray]],
    test_set: Frames,
    ends: tuple[Atoms, Atoms, float],
    labels: int,
    minutes: float,
) -> dict:
    """One point of a learning curve: the potential ``predict`` trained on ``labels`` labelled frames in
    ``minutes``, scored by its energy MAE on every part of ``test_set`` (meV/atom), its force MAE on the thermal and
    defect parts (meV/A; the results format of the comparison has none on the path) and its defect-energy error (eV) at ``ends`` = (crystal, defect, the reference defect energy).
    Keys: :data:`CURVE_KEYS`."""
    errors = part_errors(test_set, predict)
    crystal, defect, reference = ends
    return {
        'labels': int(labels),
        **{f'energy_mae_{part}': errors[part]['energy_mae'] for part in PARTS},
        **{f'force_mae_{part}': errors[part]['force_mae'] for part in ('thermal', 'defect')},
        'defect_energy_error': defect_energy_error(predict, crystal, defect, reference),
        'minutes': round(float(minutes), 2),
    }
