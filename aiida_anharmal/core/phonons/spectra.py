"""Phonon spectra of a :class:`Phonopy` object with force constants: frequencies, band structure, DOS; no AiiDA import.

Build the object with :func:`~aiida_anharmal.core.phonons.harmonic.phonopy_object` (or read it with
:func:`~aiida_anharmal.core.phonons.phonopy_io.load_phonopy_yaml`), then::

    gamma_frequencies(phonon), frequencies_at(phonon, qpoints)
    band_structure(phonon)          # along ASE's high-symmetry path of the primitive cell
    density_of_states(phonon)       # total DOS on a Gamma-centred mesh

Everything refers to phonopy's primitive cell: q-points in reduced coordinates of its reciprocal
cell, reciprocal-space distances in 1/Angstrom without the factor 2 pi, frequencies in THz
(imaginary ones as negative numbers), the DOS per primitive cell.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from ase.cell import Cell
from ase.dft.kpoints import parse_path_string
from phonopy import Phonopy

from .phonopy_io import _require_force_constants


def frequencies_at(phonon: Phonopy, qpoints) -> np.ndarray:
    """Frequencies (THz, ascending) at q-points in reduced coordinates of the primitive reciprocal cell.

    Returns shape ``(n_q, 3 * n_primitive)``.
    """
    _require_force_constants(phonon)
    qpoints = np.asarray(qpoints, dtype=float).reshape(-1, 3)
    phonon.run_qpoints(qpoints)
    return np.sort(np.array(phonon.qpoints.frequencies, dtype=float), axis=1)


def gamma_frequencies(phonon: Phonopy) -> np.ndarray:
    """Frequencies at Gamma in THz, ascending, shape ``(3 * n_primitive,)``."""
    return frequencies_at(phonon, [[0.0, 0.0, 0.0]])[0]


def band_structure(phonon: Phonopy, npoints: int = 51, path: str | None = None) -> dict[str, Any]:
    """Frequencies along a high-symmetry path of the primitive cell's Brillouin zone.

    The path and its special points are ASE's for the primitive cell's Bravais lattice
    (``Cell.bandpath``; seekpath is not needed); ``path`` overrides it with ASE's notation,
    e.g. ``'GXWKGLUWLK,UX'`` (a comma marks a jump). Each segment has ``npoints`` q-points
    including both ends.

    :returns: ``qpoints`` (M, 3) reduced, ``distances`` (M,) in 1/Angstrom (no 2 pi),
        ``frequencies`` (M, 3 n_primitive) in THz, ``segment`` (M,) the segment of each point,
        ``labels`` and ``label_distances`` of the special points (``'K|U'`` at a jump), ``path``.
    """
    _require_force_constants(phonon)
    if npoints < 2:
        raise ValueError(f'npoints must be at least 2, got {npoints}')
    default = Cell(phonon.primitive.cell).bandpath(npoints=0)
    special = default.special_points
    path = default.path if path is None else path
    subpaths = parse_path_string(path)
    unknown = {name for sub in subpaths for name in sub} - set(special)
    if unknown:
        raise ValueError(f'unknown special points {sorted(unknown)} in {path!r}; known: {sorted(special)}')
    if any(len(sub) < 2 for sub in subpaths):
        raise ValueError(f'band path {path!r} has a part with fewer than two points')

    segments, connections, labels = [], [], []
    for sub in subpaths:
        labels[-1:] = [f'{labels[-1]}|{sub[0]}'] if labels else [sub[0]]
        for start, end in pairwise(sub):
            segments.append(np.linspace(special[start], special[end], npoints))
            connections.append(True)
            labels.append(end)
        connections[-1] = False
    phonon.run_band_structure(segments, path_connections=connections, labels=labels)
    result = phonon.band_structure
    distances = [np.asarray(d, dtype=float) for d in result.distances]
    # phonopy's distance does not advance over a jump: 'K|U' sits where both segments meet
    label_distances = [distances[0][0]] + [d[-1] for d in distances]
    return {
        'qpoints': np.concatenate(result.qpoints),
        'distances': np.concatenate(distances),
        'frequencies': np.concatenate(result.frequencies),
        'segment': np.repeat(np.arange(len(segments)), [len(d) for d in distances]),
        'labels': labels,
        'label_distances': np.array(label_distances),
        'path': path,
    }


def density_of_states(
    phonon: Phonopy, mesh=(8, 8, 8), sigma: float | None = None, freq_pitch: float | None = None
) -> dict[str, np.ndarray]:
    """Total phonon DOS on a Gamma-centred q-point mesh of the primitive cell (tetrahedra unless ``sigma``).

    Phonopy normalises the DOS per primitive cell: it integrates to ``3 * n_primitive`` over
    frequency (THz).

    :param sigma: Gaussian smearing width in THz (default: the tetrahedron method).
    :param freq_pitch: spacing of the frequency points in THz (default: phonopy's, 1/200 of the range).
    :returns: ``frequency_points`` (THz) and ``dos`` (states/THz per primitive cell).
    """
    _require_force_constants(phonon)
    mesh = np.asarray(mesh, dtype=np.int64)
    if mesh.shape != (3,) or np.any(mesh < 1):
        raise ValueError(f'mesh {mesh.tolist()} must be three positive integers')
    phonon.run_mesh(mesh, is_gamma_center=True)  # a shifted even mesh breaks the fcc point group
    phonon.run_total_dos(sigma=sigma, freq_pitch=freq_pitch)
    return {
        'frequency_points': np.array(phonon.total_dos.frequency_points, dtype=float),
        'dos': np.array(phonon.total_dos.dos, dtype=float),
    }
