"""``TrainingSet``: many periodic structures with optional labels and their origins, in one node."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.orm.nodes.caching import NodeCaching

from ..core.structures.frames import ARRAY_NAMES, Frames
from .common import HasSpecies

ARRAYS_FILE = 'frames.npz'
#: The label provenance attributes an extxyz export keeps (as info keys of every frame).
PROVENANCE_KEYS = ('label_engine', 'ground_truth', 'label_description')


class TrainingSetCaching(NodeCaching):
    """The hash of what the frames are (atoms, cells, labels) and of the attributes, not of where they came from
    (the origins): a labelling job of the same structures, engine and parameters is then a cache hit whichever
    run selected them (``verdi config set caching.enabled_for aiida.calculations:anharmal.label``)."""

    def get_objects_to_hash(self) -> dict:
        import hashlib

        objects = super().get_objects_to_hash()
        frames = self._node.frames
        digest = hashlib.sha256()
        for name in ARRAY_NAMES:
            digest.update(np.ascontiguousarray(getattr(frames, name)).tobytes())
        objects['repository_hash'] = digest.hexdigest()
        return objects


class TrainingSet(HasSpecies, orm.Data):
    """Structures, labels (energy, forces, stress) and per-structure origin, as arrays.

    All frames live in one ``.npz`` file in the node's repository, not one node per structure:
    thousands of frames stay one node, fast to query and small in an archive. Attributes give
    what queries need: ``n_structures``, ``n_atoms_total``, ``species``, counts of labelled frames,
    and, when set by the labelling calculation, ``label_engine`` and ``ground_truth`` (``dft``,
    ``stand-in`` for a model used in place of DFT, ``toy`` for EMT).

    The origin of each frame is a small dict (for example ``{"kind": "initial"}``, or
    ``{"iteration": 2, "trajectory": <uuid>, "frame": 118, "label_calc": <uuid>}``).

    Like every AiiDA data node it is read-only once stored. Its hash leaves the origins out
    (:class:`TrainingSetCaching`).
    """

    _CLS_NODE_CACHING = TrainingSetCaching

    def __init__(self, frames: Frames | None = None, **kwargs):
        super().__init__(**kwargs)
        if frames is not None:
            self.set_frames(frames)

    # ------------------------------------------------------------------ writing (unstored only)
    def set_frames(self, frames: Frames) -> None:
        """Store ``frames`` in this (unstored) node and set the summary attributes."""
        import io

        self.base.repository.put_object_from_filelike(io.BytesIO(frames.to_npz_bytes()), ARRAYS_FILE)
        attrs = self.base.attributes
        attrs.set('n_structures', len(frames))
        attrs.set('n_atoms_total', int(frames.n_atoms.sum()))
        attrs.set('species', frames.species)
        attrs.set('n_with_energy', int(frames.has_energy.sum()))
        attrs.set('n_with_forces', int(frames.has_forces.sum()))
        attrs.set('n_with_stress', int(frames.has_stress.sum()))
        self.__dict__.pop('frames', None)

    def set_label_provenance(self, engine: str, ground_truth: str, description: str = '') -> None:
        """Record which engine made the labels and whether it is real DFT or a stand-in."""
        self.base.attributes.set('label_engine', engine)
        self.base.attributes.set('ground_truth', ground_truth)
        if description:
            self.base.attributes.set('label_description', description)

    @classmethod
    def from_ase(cls, atoms_list: Iterable, origins: Sequence[dict] | None = None, **kwargs) -> TrainingSet:
        """Build from ASE Atoms; labels are read from results already held by ``atoms.calc``."""
        return cls(frames=Frames.from_atoms(atoms_list, origins=origins), **kwargs)

    @classmethod
    def from_extxyz(cls, path: str | Path, **kwargs) -> TrainingSet:
        """Build from an extended-XYZ file (labels and ``origin_*`` info keys are kept); the label provenance
        that :meth:`write_extxyz` wrote is restored when every frame carries the same one."""
        from ase.io import read

        atoms_list = read(str(path), index=':', format='extxyz')
        node = cls(frames=Frames.from_atoms(atoms_list), **kwargs)
        provenance = {tuple(atoms.info.get(key) for key in PROVENANCE_KEYS) for atoms in atoms_list}
        if len(provenance) == 1:
            engine, ground_truth, description = provenance.pop()
            if engine and ground_truth:
                node.set_label_provenance(engine, ground_truth, description or '')
        return node

    # ------------------------------------------------------------------ reading
    @cached_property
    def frames(self) -> Frames:
        """The frames as a :class:`~aiida_anharmal.core.structures.frames.Frames` object (read once, cached)."""
        with self.base.repository.open(ARRAYS_FILE, 'rb') as handle:
            return Frames.from_npz(handle)

    def __len__(self) -> int:
        return int(self.base.attributes.get('n_structures'))

    @property
    def origins(self) -> list[dict]:
        return self.frames.origins

    @property
    def ground_truth(self) -> str | None:
        return self.base.attributes.get('ground_truth', None)

    def get_array(self, name: str) -> np.ndarray:
        """One of ``numbers, positions, cells, pbc, n_atoms, energy, forces, stress`` (a copy)."""
        return np.array(getattr(self.frames, name))

    def get_atoms(self, index: int, with_labels: bool = True):
        return self.frames.get_atoms(index, with_labels)

    def to_ase(self, with_labels: bool = True) -> list:
        """All frames as ASE Atoms with labels as :class:`SinglePointCalculator` results."""
        return self.frames.to_atoms(with_labels)

    def write_extxyz(self, path: str | Path) -> None:
        """Export to extended XYZ with labels, ``origin_*`` columns and, when known, the label provenance
        (``label_engine``, ``ground_truth``, ``label_description`` info keys: :meth:`from_extxyz` restores it)."""
        attrs = self.base.attributes
        info = {key: attrs.get(key) for key in PROVENANCE_KEYS if attrs.get(key, None)}
        self.frames.write_extxyz(path, info)

    def get_description(self) -> str:
        labelled = self.base.attributes.get('n_with_energy', 0)
        return f'{len(self)} structures ({", ".join(self.species)}), {labelled} labelled'
