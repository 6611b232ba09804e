"""The rare-event test set on EMT Cu: its parts and origins, its independence from training data, its metrics."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.learning.rare_event_set import (
    CURVE_KEYS,
    check_independent,
    curve_point,
    defect_energy_error,
    md_part,
    part_errors,
    parts_of,
    path_part,
)
from aiida_anharmal.core.structures.defects import vacancy_hop
from aiida_anharmal.core.structures.frames import Frames


@pytest.fixture(scope='module')
def cu():
    return bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 1))


@pytest.fixture(scope='module')
def test_set(cu):
    thermal = md_part(cu, EMT(), 'thermal', temperature=300.0, steps=20, save_stride=4, equilibration=20.0)
    initial, final = vacancy_hop(cu)
    defect = md_part(initial, EMT(), 'defect', temperature=300.0, steps=12, save_stride=4, equilibration=0.0, seed=3)
    images = [initial.copy() for _ in range(4)]
    for k, image in enumerate(images):
        image.positions = initial.positions + k / 3 * (final.positions - initial.positions)
    return Frames.concatenate([thermal, defect, path_part(images, EMT())])


def emt_predict(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_potential_energy(), atoms.get_forces()


def test_each_part_has_its_frames_and_origins(test_set, cu):
    parts = parts_of(test_set)
    # thermal: steps 0..20 saved every 4 (5 fs), the first 20 fs left out -> steps 4, 8, ..., 20
    assert [test_set.origins[i]['step'] for i in parts['thermal']] == [4, 8, 12, 16, 20]
    assert [test_set.origins[i]['step'] for i in parts['defect']] == [0, 4, 8, 12]
    assert [test_set.origins[i]['image'] for i in parts['path']] == [0, 1, 2, 3]
    assert {test_set.origins[i]['seed'] for i in parts['defect']} == {3}
    # the labels are the engine's own at each frame's positions
    for index in (parts['thermal'][2], parts['defect'][1], parts['path'][2]):
        energy, forces = emt_predict(test_set.get_atoms(index, with_labels=False))
        assert test_set.energy[index] == pytest.approx(energy, abs=1e-8)
        np.testing.assert_allclose(test_set.forces[test_set.atom_slice(index)], forces, atol=1e-8)
    # the thermal frames moved away from the crystal
    first = test_set.get_atoms(parts['thermal'][0])
    assert 0.01 < np.abs(first.positions - cu.positions).max() < 0.5


def test_the_keep_filter_and_bad_settings(cu):
    with pytest.raises(ValueError, match='the defect MD kept no frame: none saved after 50.0 fs that `keep` accepted'):
        md_part(cu, EMT(), 'defect', temperature=300.0, steps=12, save_stride=4, keep=lambda atoms: False)
    with pytest.raises(ValueError, match="unknown part 'interstitial'"):
        md_part(cu, EMT(), 'interstitial', temperature=300.0, steps=8)
    with pytest.raises(ValueError, match=r'equilibration 40.0 fs must lie in \[0, 40.0\)'):
        md_part(cu, EMT(), 'thermal', temperature=300.0, steps=8, equilibration=40.0)
    stray = Frames.from_atoms([cu], [{'kind': 'liquid'}])
    with pytest.raises(ValueError, match="origin kind 'liquid'"):
        parts_of(stray)


def test_a_test_set_sharing_a_training_frame_is_refused(test_set, cu):
    training = Frames.from_atoms([cu, test_set.get_atoms(3)])
    with pytest.raises(ValueError, match='shares 1 frame'):
        check_independent(test_set, training)
    # a copy shifted by a lattice vector is the same frame (minimum image); one atom 0.01 A off is not
    shifted = test_set.get_atoms(3)
    shifted.positions[0] += shifted.cell[0]
    with pytest.raises(ValueError, match='test frame 3 = frame 0'):
        check_independent(test_set, Frames.from_atoms([shifted]))
    moved = test_set.get_atoms(3)
    moved.positions[5, 1] += 0.01
    check_independent(test_set, Frames.from_atoms([cu, moved]))


def test_the_metrics_of_a_known_offset(test_set, cu):
    """A potential that is EMT plus 10 meV per atom and 2 meV/A on every force component: exactly 10 and 2."""
    assert {part: e['energy_mae'] for part, e in part_errors(test_set, emt_predict).items()} == {
        'thermal': pytest.approx(0, abs=1e-9),
        'defect': pytest.approx(0, abs=1e-9),
        'path': pytest.approx(0, abs=1e-9),
    }

    def offset(atoms):
        energy, forces = emt_predict(atoms)
        return energy + 0.010 * len(atoms), forces - 0.002

    errors = part_errors(test_set, offset)
    assert errors['thermal'] == {'frames': 5, 'energy_mae': pytest.approx(10.0), 'force_mae': pytest.approx(2.0)}
    assert errors['path']['frames'] == 4 and errors['defect']['energy_mae'] == pytest.approx(10.0)
    empty = part_errors(Frames.concatenate([test_set.subset(parts_of(test_set)['thermal'])]), offset)
    assert empty['path'] == {'frames': 0, 'energy_mae': None, 'force_mae': None}
    initial, final = vacancy_hop(cu)
    reference = emt_predict(final)[0] - emt_predict(initial)[0]
    assert defect_energy_error(offset, initial, final, reference) == pytest.approx(0, abs=1e-9)
    assert defect_energy_error(emt_predict, initial, final, reference - 0.25) == pytest.approx(0.25)
    with pytest.raises(ValueError, match='same atoms in the same order'):
        defect_energy_error(emt_predict, cu, final, 0.0)
    unlabelled = Frames.concatenate([test_set, Frames.from_atoms([cu], [{'kind': 'thermal'}])])
    with pytest.raises(ValueError, match=r'test frame\(s\) \[13\] lack an energy or forces'):
        part_errors(unlabelled, emt_predict)


def test_a_point_of_the_learning_curve_has_the_keys_of_the_results(test_set, cu):
    def offset(atoms):
        energy, forces = emt_predict(atoms)
        return energy + 0.010 * len(atoms), forces - 0.002

    initial, final = vacancy_hop(cu)
    reference = emt_predict(final)[0] - emt_predict(initial)[0]
    point = curve_point(offset, test_set, (initial, final, reference + 0.1), labels=28, minutes=3.14159)
    assert tuple(point) == CURVE_KEYS
    assert point['labels'] == 28 and point['minutes'] == 3.14
    assert point['energy_mae_path'] == pytest.approx(10.0) and point['force_mae_defect'] == pytest.approx(2.0)
    assert point['defect_energy_error'] == pytest.approx(-0.1)
