"""Frames: the array layout of TrainingSet (pure numpy, no AiiDA)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.structures.frames import Frames, _voigt


def labelled_cu(n):
    out = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((1, 1, k + 1))
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        out.append(atoms)
    return out


def test_roundtrip_atoms_keeps_labels_and_sizes():
    atoms_list = labelled_cu(3)
    frames = Frames.from_atoms(atoms_list, origins=[{'kind': 'initial', 'frame': k} for k in range(3)])
    assert len(frames) == 3 and list(frames.n_atoms) == [4, 8, 12]
    back = frames.to_atoms()
    for a, b in zip(atoms_list, back):
        assert np.array_equal(a.positions, b.positions)
        assert b.get_potential_energy() == a.get_potential_energy()
        assert np.array_equal(b.get_forces(), a.get_forces())
        assert np.allclose(b.get_stress(), a.get_stress(), atol=0)
    assert back[2].info['origin_frame'] == 2


def test_unlabelled_frames_are_nan_and_masks():
    atoms_list = labelled_cu(2)
    atoms_list[1].calc = None
    frames = Frames.from_atoms(atoms_list)
    assert list(frames.has_energy) == [True, False]
    assert list(frames.has_forces) == [True, False]
    assert frames.to_atoms()[1].calc is None


def test_npz_roundtrip_is_exact(tmp_path):
    frames = Frames.from_atoms(labelled_cu(3), origins=[{'a': k, 'nested': {'x': [1, 2]}} for k in range(3)])
    path = tmp_path / 'f.npz'
    frames.to_npz(path)
    back = Frames.from_npz(path)
    for name in ('numbers', 'positions', 'cells', 'pbc', 'n_atoms', 'energy', 'forces', 'stress'):
        assert np.array_equal(getattr(back, name), getattr(frames, name))
    assert back.origins == frames.origins


def test_extxyz_roundtrip(tmp_path):
    frames = Frames.from_atoms(labelled_cu(2), origins=[{'iteration': 1, 'frame': k} for k in range(2)])
    path = tmp_path / 'f.extxyz'
    frames.write_extxyz(path)
    back = Frames.read_extxyz(path)
    assert np.allclose(back.positions, frames.positions, atol=1e-8)
    assert np.allclose(back.energy, frames.energy, atol=1e-8)
    assert np.allclose(back.forces, frames.forces, atol=1e-8)
    assert back.origins[1] == {'iteration': 1, 'frame': 1}


def test_subset_and_concatenate():
    frames = Frames.from_atoms(labelled_cu(3))
    sub = frames.subset([2, 0])
    assert list(sub.n_atoms) == [12, 4]
    assert np.array_equal(sub.forces[:12], frames.forces[frames.atom_slice(2)])
    joined = Frames.concatenate([sub, frames.subset([1])])
    assert list(joined.n_atoms) == [12, 4, 8]


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match='positions'):
        Frames(numbers=[29, 29], positions=np.zeros((3, 3)), cells=np.eye(3)[None], pbc=[[1, 1, 1]], n_atoms=[2])


def test_voigt_from_matrix():
    m = np.array([[1, 6, 5], [6, 2, 4], [5, 4, 3]], float)
    assert list(_voigt(m)) == [1, 2, 3, 4, 5, 6]
