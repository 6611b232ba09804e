"""``ForceConstants``: harmonic force constants of a supercell, with phonopy's own file alongside."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from aiida import orm

from .common import HasSpecies

#: Name of phonopy's file (cells, matrices, force constants) in the node's repository.
PHONOPY_YAML = 'phonopy.yaml'

#: Values of the ``source`` attribute.
SOURCES = ('phonopy finite displacements', 'imported')

#: Phonopy's units that the arrays assume (ASE's: Angstrom, eV/Angstrom^2).
LENGTH_UNIT = 'angstrom'
FORCE_CONSTANTS_UNIT = 'eV/angstrom^2'


class ForceConstants(HasSpecies, orm.ArrayData):
    """The perfect supercell and its harmonic force constants.

    Arrays (the supercell's atoms in phonopy's order):

    * ``positions`` (N, 3) reference positions in Angstrom,
    * ``cell`` (3, 3) supercell vectors as rows, Angstrom,
    * ``numbers`` (N,) atomic numbers,
    * ``masses`` (N,) atomic masses (amu) used for the frequencies,
    * ``force_constants`` (3N, 3N) in eV/Angstrom^2 with ``F = -Phi u``, ``u`` flattened atom-major
      (the convention of :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference`).

    These are exactly the arrays that the ``harmonic`` input of ``anharmal.evaluate`` reads, so the
    node can be passed there as it is. Phonopy's ``phonopy.yaml`` with the unit cell, the supercell
    and primitive matrices and the full force constants is in the repository (:data:`PHONOPY_YAML`);
    :meth:`get_phonopy` loads it.

    Attributes: ``n_atoms``, ``species`` (sorted), ``supercell_matrix``, ``primitive_matrix``,
    ``source`` (``phonopy finite displacements`` or ``imported``) and, when the forces came from a
    labelling engine, ``label_engine`` and ``ground_truth``.

    Build with :meth:`from_phonopy` or, for force constants computed elsewhere, :meth:`from_phonopy_yaml`.
    """

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_phonopy(
        cls,
        phonon,
        source: str = 'phonopy finite displacements',
        label_engine: str | None = None,
        ground_truth: str | None = None,
        **kwargs,
    ) -> ForceConstants:
        """Build from a :class:`phonopy.Phonopy` object holding force constants (full or compact).

        :param source: one of :data:`SOURCES`.
        :param label_engine: engine that computed the forces (``gpaw``, ``emt``, ...), if known.
        :param ground_truth: ``dft``, ``stand-in`` or ``toy``, if known.
        """
        from ..core.phonons.harmonic import force_constants_to_matrix, full_force_constants, phonopy_yaml_text

        if source not in SOURCES:
            raise ValueError(f'source must be one of {SOURCES}, not {source!r}')
        if phonon.force_constants is None:
            raise ValueError('the phonopy object has no force constants')
        fc = full_force_constants(phonon)
        if not np.isfinite(fc).all():
            raise ValueError('the force constants contain NaN or infinite values')
        supercell = phonon.supercell
        if phonon.force_constants.shape != fc.shape:
            phonon = _with_full_force_constants(phonon, fc)

        node = cls(**kwargs)
        node.set_array('positions', np.array(supercell.positions, dtype=float))
        node.set_array('cell', np.array(supercell.cell, dtype=float))
        node.set_array('numbers', np.array(supercell.numbers, dtype=np.int64))
        node.set_array('masses', np.array(supercell.masses, dtype=float))
        node.set_array('force_constants', force_constants_to_matrix(fc))
        text = phonopy_yaml_text(phonon, force_constants=True)
        node.base.repository.put_object_from_filelike(io.BytesIO(text.encode('utf-8')), PHONOPY_YAML)

        attrs = node.base.attributes
        attrs.set('n_atoms', len(supercell))
        attrs.set('species', sorted(set(supercell.symbols)))
        attrs.set('supercell_matrix', np.asarray(phonon.supercell_matrix, dtype=int).tolist())
        attrs.set('primitive_matrix', np.asarray(phonon.primitive_matrix, dtype=float).tolist())
        attrs.set('source', source)
        if label_engine:
            attrs.set('label_engine', label_engine)
        if ground_truth:
            attrs.set('ground_truth', ground_truth)
        return node

    @classmethod
    def from_phonopy_yaml(cls, path: str | Path, symprec: float = 1e-5, **kwargs) -> ForceConstants:
        """Import force constants made elsewhere from a ``phonopy.yaml`` that contains them.

        The file must hold the unit cell and the force constants (full or compact; phonopy writes
        them with ``phonopy --writefc --fc-format=...`` or ``Phonopy.save(settings={'force_constants':
        True})``) in Angstrom and eV/Angstrom^2: files written for calculators with other units
        (Quantum ESPRESSO, ABINIT, ...) are refused rather than converted. The node records
        ``source='imported'`` and the file's name in ``source_file``.
        """
        from phonopy.interface.phonopy_yaml import PhonopyYaml

        from ..core.phonons.harmonic import load_phonopy_yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'no phonopy yaml file at {path}')
        text = path.read_text(encoding='utf-8')
        data = PhonopyYaml().read(io.StringIO(text))
        units = data.physical_units
        if units is None and data.calculator:
            from phonopy.physical_units import get_calculator_physical_units

            units = get_calculator_physical_units(data.calculator)
        if units is not None and (
            units.length_unit != LENGTH_UNIT or units.force_constants_unit != FORCE_CONSTANTS_UNIT
        ):
            raise ValueError(
                f'{path.name}: length in {units.length_unit!r} and force constants in {units.force_constants_unit!r} '
                f'(calculator {data.calculator!r}); only {LENGTH_UNIT!r} and {FORCE_CONSTANTS_UNIT!r} can be imported'
            )
        if data.force_constants is None:
            raise ValueError(f'{path.name} holds no force constants: write it with force constants included')
        phonon = load_phonopy_yaml(io.StringIO(text), symprec=symprec)
        node = cls.from_phonopy(phonon, source='imported', **kwargs)
        node.base.attributes.set('source_file', path.name)
        return node

    # ------------------------------------------------------------------ reading
    @property
    def n_atoms(self) -> int:
        return int(self.base.attributes.get('n_atoms'))

    @property
    def supercell_matrix(self) -> np.ndarray:
        return np.array(self.base.attributes.get('supercell_matrix'), dtype=int)

    @property
    def source(self) -> str:
        return self.base.attributes.get('source')

    def get_phonopy_yaml_text(self) -> str:
        """The stored ``phonopy.yaml`` as text."""
        return self.base.repository.get_object_content(PHONOPY_YAML, mode='r')

    def get_phonopy(self, symprec: float = 1e-5):
        """A new :class:`phonopy.Phonopy` object from the stored ``phonopy.yaml``, with the force constants."""
        from ..core.phonons.harmonic import load_phonopy_yaml

        return load_phonopy_yaml(io.StringIO(self.get_phonopy_yaml_text()), symprec=symprec)

    def get_harmonic_reference(self):
        """The supercell and force constants as a :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference`."""
        return harmonic_reference(self)

    def get_supercell(self):
        """The perfect supercell as periodic :class:`ase.Atoms`, atoms in phonopy's order, with its masses."""
        from ase import Atoms

        names = self.get_arraynames()
        return Atoms(
            numbers=self.get_array('numbers'),
            positions=self.get_array('positions'),
            cell=self.get_array('cell'),
            masses=self.get_array('masses') if 'masses' in names else None,
            pbc=True,
        )

    def get_description(self) -> str:
        return f'{self.n_atoms}-atom supercell ({", ".join(self.species)}), {self.source}'


def _with_full_force_constants(phonon, fc: np.ndarray):
    """A copy of ``phonon`` holding the full force constants ``fc``."""
    import copy

    phonon = copy.deepcopy(phonon)
    phonon.force_constants = fc
    return phonon


#: Arrays any harmonic reference node (ForceConstants or a plain ArrayData) must hold.
HARMONIC_ARRAYS = ('positions', 'cell', 'force_constants', 'numbers')


def harmonic_arrays(node: orm.ArrayData) -> dict:
    """The arrays of a harmonic reference node; ``ValueError`` naming what is missing."""
    missing = [n for n in HARMONIC_ARRAYS if n not in node.get_arraynames()]
    if missing:
        raise ValueError(f'the harmonic reference lacks array(s) {missing}; it needs {list(HARMONIC_ARRAYS)}')
    return {name: node.get_array(name) for name in HARMONIC_ARRAYS}


def harmonic_reference(node: orm.ArrayData):
    """The :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference` of a harmonic reference node."""
    from ase.data import chemical_symbols

    from ..core.phonons.anharmonicity import HarmonicReference

    arrays = harmonic_arrays(node)
    return HarmonicReference(
        arrays['positions'],
        arrays['cell'],
        arrays['force_constants'],
        tuple(chemical_symbols[z] for z in arrays['numbers']),
    )
