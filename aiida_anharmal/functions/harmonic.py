"""Calcfunctions of the harmonic reference: phonopy displacements in, force constants and spectra out."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.force_constants import ForceConstants
from ..data.training_set import TrainingSet

#: ``kind`` of the origin of a displaced supercell; its index is the origin's ``displacement``.
DISPLACEMENT_KIND = 'phonopy_displacement'

#: Keys of the ``parameters`` of :func:`make_displacements` (``supercell_matrix`` is required).
DISPLACEMENT_KEYS = {'supercell_matrix', 'distance', 'is_plusminus', 'primitive_matrix', 'symprec'}

#: Keys of the ``parameters`` of :func:`build_force_constants`.
SPECTRUM_KEYS = {'band_path', 'band_npoints', 'dos_mesh', 'dos_sigma', 'symmetrize'}

#: Defaults of :data:`SPECTRUM_KEYS`.
SPECTRUM_DEFAULTS = {
    'band_path': None,
    'band_npoints': 51,
    'dos_mesh': [16, 16, 16],
    'dos_sigma': None,
    'symmetrize': True,
}

#: Largest mismatch (Angstrom) tolerated between a labelled frame and the displaced supercell it stands for.
POSITION_TOLERANCE = 1e-6


def _check_keys(parameters: dict, allowed: set, what: str) -> None:
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise ValueError(f'unknown {what} key(s) {unknown}; allowed: {sorted(allowed)}')


@calcfunction
def make_displacements(structure: orm.StructureData, parameters: orm.Dict):
    """Phonopy's symmetry-reduced finite displacements of a supercell of ``structure``.

    ``parameters``: ``supercell_matrix`` (3 integers or 3x3), ``distance`` (Angstrom, default
    0.01), and optionally phonopy's ``is_plusminus`` (``'auto'``), ``primitive_matrix``
    (``'auto'``) and ``symprec`` (1e-5); see :func:`aiida_anharmal.core.phonons.harmonic.make_displacements`.

    Outputs ``displacements``, a TrainingSet of the displaced supercells (atoms in phonopy's
    order; origin ``{'kind': 'phonopy_displacement', 'displacement': k}``), and
    ``displacement_dataset``, a Dict of the :class:`~aiida_anharmal.core.phonons.harmonic.DisplacementSet`
    (unit cell, matrices, phonopy's dataset) from which the force constants are built.
    """
    from ..core.phonons.harmonic import make_displacements as core_make_displacements

    p = parameters.get_dict()
    _check_keys(p, DISPLACEMENT_KEYS, 'displacement parameter')
    if 'supercell_matrix' not in p:
        raise ValueError('the displacement parameters need a `supercell_matrix`')
    displacement_set = core_make_displacements(
        structure.get_ase(),
        p['supercell_matrix'],
        distance=p.get('distance', 0.01),
        is_plusminus=p.get('is_plusminus', 'auto'),
        primitive_matrix=p.get('primitive_matrix', 'auto'),
        symprec=p.get('symprec', 1e-5),
    )
    supercells = displacement_set.displaced_supercells()
    origins = [{'kind': DISPLACEMENT_KIND, 'displacement': k} for k in range(len(supercells))]
    return {
        'displacements': TrainingSet.from_ase(supercells, origins=origins),
        'displacement_dataset': orm.Dict(displacement_set.to_dict()),
    }


def ordered_displacement_forces(displacement_set, labelled: TrainingSet, kind: str = DISPLACEMENT_KIND) -> np.ndarray:
    """Forces of the labelled displaced supercells, shape ``(n_displacements, N, 3)``, in the set's order.

    ``displacement_set``: anything with ``n_displacements`` and ``displaced_supercells()`` (the harmonic
    :class:`~aiida_anharmal.core.phonons.harmonic.DisplacementSet`, the third-order
    :class:`~aiida_anharmal.core.phonons.perturbative.Fc3DisplacementSet`); ``kind``: the origins' kind.
    Frames are matched by the ``displacement`` index of their origin. Raises ``ValueError`` if a
    displacement has no labelled frame (force constants need every one), has two, has no forces,
    or if a frame is not the displaced supercell it claims to be.
    """
    frames = labelled.frames
    n = displacement_set.n_displacements
    by_index: dict[int, int] = {}
    for k, origin in enumerate(frames.origins):
        if origin.get('kind') != kind or 'displacement' not in origin:
            raise ValueError(f'labelled frame {k} is not a {kind.replace("_", " ")} (origin {origin})')
        index = int(origin['displacement'])
        if not 0 <= index < n:
            raise ValueError(f'labelled frame {k} claims displacement {index}, but the set has {n}')
        if index in by_index:
            raise ValueError(f'displacement {index} is labelled twice (frames {by_index[index]} and {k})')
        by_index[index] = k
    missing = sorted(set(range(n)) - set(by_index))
    if missing:
        raise ValueError(
            f'{len(missing)} of {n} displaced supercell(s) have no labels (displacement(s) {missing}): '
            'force constants need the forces of every displaced supercell'
        )
    supercells = displacement_set.displaced_supercells()
    forces = []
    for index in range(n):
        k = by_index[index]
        sl = frames.atom_slice(k)
        expected = supercells[index]
        if frames.n_atoms[k] != len(expected) or not np.array_equal(frames.numbers[sl], expected.numbers):
            raise ValueError(f'labelled frame {k} has other atoms than displaced supercell {index}')
        deviation = np.abs(frames.positions[sl] - expected.positions).max()
        if deviation > POSITION_TOLERANCE or np.abs(frames.cells[k] - expected.cell.array).max() > POSITION_TOLERANCE:
            raise ValueError(
                f'labelled frame {k} is not displaced supercell {index} (positions off by {deviation:.3g} A)'
            )
        if not frames.has_forces[k]:
            raise ValueError(f'labelled frame {k} (displacement {index}) has no forces')
        forces.append(frames.forces[sl])
    return np.array(forces)


@calcfunction
def build_force_constants(displacement_dataset: orm.Dict, labelled: TrainingSet, parameters: orm.Dict | None = None):
    """Force constants from the labelled displaced supercells, with Gamma frequencies, bands and DOS.

    ``displacement_dataset`` is the output of :func:`make_displacements`; ``labelled`` must hold
    every displaced supercell with forces (frames matched by their origin's ``displacement``).
    ``parameters`` (optional): ``band_path`` (ASE notation, default: ASE's path of the primitive
    cell's lattice), ``band_npoints`` (51 per segment), ``dos_mesh`` ([16, 16, 16], Gamma-centred),
    ``dos_sigma`` (THz; default: tetrahedra), ``symmetrize`` (True).

    Outputs: ``force_constants`` (:class:`ForceConstants`), ``gamma_frequencies`` (List, THz,
    ascending; imaginary as negative), ``band_structure`` (BandsData of the primitive cell in THz,
    special points labelled; phonopy's ``distances`` in 1/Angstrom and each point's ``segment``
    as extra arrays) and
    ``dos`` (XyData: frequency in THz, DOS in states/THz per primitive cell).
    """
    from ..core.phonons.harmonic import DisplacementSet, force_constants_from_forces, phonopy_object
    from ..core.phonons.spectra import band_structure, density_of_states, gamma_frequencies

    p = {} if parameters is None else parameters.get_dict()
    _check_keys(p, SPECTRUM_KEYS, 'spectrum parameter')
    p = {**SPECTRUM_DEFAULTS, **p}
    displacement_set = DisplacementSet.from_dict(displacement_dataset.get_dict())
    forces = ordered_displacement_forces(displacement_set, labelled)
    fc = force_constants_from_forces(displacement_set, forces, symmetrize=bool(p['symmetrize']))
    phonon = phonopy_object(displacement_set, fc)

    attrs = labelled.base.attributes
    node = ForceConstants.from_phonopy(
        phonon,
        source='phonopy finite displacements',
        label_engine=attrs.get('label_engine', None),
        ground_truth=attrs.get('ground_truth', None),
    )
    node.base.attributes.set('displacement_distance', _largest_displacement(displacement_set))
    node.base.attributes.set('n_displacements', displacement_set.n_displacements)

    bands = band_structure(phonon, npoints=int(p['band_npoints']), path=p['band_path'])
    dos = density_of_states(phonon, mesh=p['dos_mesh'], sigma=p['dos_sigma'])
    return {
        'force_constants': node,
        'gamma_frequencies': orm.List([float(f) for f in gamma_frequencies(phonon)]),
        'band_structure': _bands_data(phonon, bands),
        'dos': _dos_data(dos),
    }


def _largest_displacement(displacement_set) -> float:
    return float(np.linalg.norm(displacement_set.displacements, axis=2).max())


def _bands_data(phonon, bands: dict) -> orm.BandsData:
    """Phonopy's band structure as BandsData, in AiiDA's convention for paths.

    Phonopy repeats the q-point where two connected segments meet; here it is kept once, so that
    labelled points are the special points and two consecutive labelled points mark a jump
    (``K`` then ``U``), as in AiiDA's (seekpath's) explicit paths. Phonopy's ``distances``
    (1/Angstrom, no 2 pi) and each point's ``segment`` are kept as extra arrays.
    """
    segment = np.asarray(bands['segment'])
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], segment])))
    ends = np.concatenate([starts[1:] - 1, [len(segment) - 1]])
    # bands['labels']: the first start, then each segment's end; 'K|U' where the path jumps
    names = bands['labels']
    keep = np.ones(len(segment), dtype=bool)
    for s in range(1, len(starts)):
        if '|' not in names[s]:
            keep[starts[s]] = False  # the end of segment s - 1 again
    index = np.cumsum(keep) - 1
    labels = []
    for s, (start, end) in enumerate(zip(starts, ends)):
        if s == 0 or '|' in names[s]:
            labels.append((int(index[start]), names[s].split('|')[-1]))
        labels.append((int(index[end]), names[s + 1].split('|')[0]))

    data = orm.BandsData()
    data.set_cell(np.array(phonon.primitive.cell, dtype=float))
    data.set_kpoints(np.asarray(bands['qpoints'])[keep])
    data.labels = labels
    data.set_bands(np.asarray(bands['frequencies'])[keep], units='THz')
    data.set_array('distances', np.asarray(bands['distances'], dtype=float)[keep])
    data.set_array('segment', segment[keep].astype(np.int64))
    data.base.attributes.set('path', bands['path'])
    data.base.attributes.set('label_names', list(names))
    data.base.attributes.set('label_distances', [float(d) for d in bands['label_distances']])
    return data


def _dos_data(dos: dict) -> orm.XyData:
    data = orm.XyData()
    data.set_x(dos['frequency_points'], 'frequency', 'THz')
    data.set_y(dos['dos'], 'dos', 'states/THz per primitive cell')
    return data
