"""LabelCalculation through a real profile: GPAW, EMT and the CuI reference model."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_anharmal.calculations.label import LabelCalculation
from aiida_anharmal.data import TrainingSet

from .conftest import REFERENCE_MODEL, cu_structures, cui_cell, emt_cu_frames, placeholder_ensemble


def inputs(label_code, options, structures, engine, **extra):
    return {
        'structures': TrainingSet.from_ase(structures),
        'engine': orm.Str(engine),
        'code': label_code,
        'metadata': {'options': options},
        **extra,
    }


def test_gpaw_lcao_matches_direct_ase(label_code, options):
    from gpaw import GPAW

    parameters = {
        'mode': 'lcao',
        'basis': 'dzp',
        'xc': 'PBE',
        'kpts': {'size': [2, 2, 2]},
        'occupations': {'name': 'fermi-dirac', 'width': 0.1},
    }
    atoms = cui_cell(0.1)
    results, node = run_get_node(
        LabelCalculation, **inputs(label_code, options, [atoms], 'gpaw', parameters=orm.Dict(parameters))
    )
    assert node.is_finished_ok, node.exit_message
    labelled = results['labelled']
    direct = atoms.copy()
    direct.calc = GPAW(**{**parameters, 'kpts': {'size': (2, 2, 2)}}, txt=None)
    assert abs(labelled.get_array('energy')[0] - direct.get_potential_energy()) < 1e-6
    assert np.abs(labelled.get_array('forces') - direct.get_forces()).max() < 1e-6
    assert labelled.ground_truth == 'dft' and labelled.base.attributes.get('label_engine') == 'gpaw'
    assert labelled.origins[0]['label_calc'] == node.uuid


def test_reference_model_matches_direct_evaluation(label_code, options, reference_model):
    import torch
    from ase.neighborlist import neighbor_list

    atoms = cui_cell(0.15).repeat((2, 1, 1))
    results, node = run_get_node(
        LabelCalculation, **inputs(label_code, options, [atoms], 'nequip-reference', model=reference_model)
    )
    assert node.is_finished_ok, node.exit_message
    # Direct evaluation written out independently of the package's calculator.
    model = torch.jit.load(str(REFERENCE_MODEL))
    i, j, shift = neighbor_list('ijS', atoms, 5.0)
    data = {
        'pos': torch.tensor(atoms.positions),
        'edge_index': torch.tensor(np.stack([i, j])),
        'edge_cell_shift': torch.tensor(shift, dtype=torch.float64),
        'cell': torch.tensor(atoms.cell.array),
        'pbc': torch.tensor([True, True, True]),
        'atom_types': torch.tensor([[0 if s == 'Cu' else 1] for s in atoms.get_chemical_symbols()]),
    }
    out = model(data)
    labelled = results['labelled']
    assert abs(labelled.get_array('energy')[0] - out['total_energy'].item()) < 1e-9
    assert np.abs(labelled.get_array('forces') - out['forces'].detach().numpy()).max() < 1e-9
    assert labelled.ground_truth == 'stand-in'
    assert reference_model.uuid in labelled.base.attributes.get('label_description')


def test_the_ensemble_engine_labels_with_the_ensemble_mean(label_code, options, train_code):
    from .test_md_calculation import ensemble_and_reference

    ensemble, _, _ = ensemble_and_reference(train_code)
    frames = emt_cu_frames(2, seed=7)
    results, node = run_get_node(LabelCalculation, **inputs(label_code, options, frames, 'ensemble', ensemble=ensemble))
    assert node.is_finished_ok, node.exit_message
    labelled = results['labelled']
    calculator = ensemble.calculator(workers=1)
    for k, atoms in enumerate(frames):
        atoms.calc = calculator
        assert abs(labelled.get_array('energy')[k] - atoms.get_potential_energy()) < 1e-9
        np.testing.assert_allclose(labelled.frames.get_atoms(k).get_forces(), atoms.get_forces(), atol=1e-9)
    assert labelled.ground_truth == 'surrogate'
    assert ensemble.uuid in labelled.base.attributes.get('label_description')


def test_time_budget_keeps_finished_labels(label_code, options):
    results, node = run_get_node(
        LabelCalculation,
        **inputs(label_code, options, cu_structures(3), 'emt', settings=orm.Dict({'max_seconds': 1e-6})),
    )
    assert node.exit_status == LabelCalculation.exit_codes.ERROR_INTERRUPTED.status
    assert len(results['labelled']) == 1
    assert set(results['failures'].get_dict()) == {'1', '2'}


def test_scf_failure_has_its_exit_code(label_code, options):
    parameters = {'mode': 'lcao', 'basis': 'sz(dzp)', 'xc': 'PBE', 'kpts': {'size': [1, 1, 1]}, 'maxiter': 2}
    results, node = run_get_node(
        LabelCalculation, **inputs(label_code, options, [cui_cell()], 'gpaw', parameters=orm.Dict(parameters))
    )
    assert node.exit_status == LabelCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED.status
    assert results['failures'].get_dict()['0']['reason'] == 'scf_not_converged'


@pytest.mark.parametrize(
    'engine, structures, extra, match',
    [
        ('vasp', lambda: cu_structures(1), {}, 'unknown labelling engine'),
        ('emt', lambda: [cui_cell()], {}, r'does not support the element\(s\) I'),
        ('nequip-reference', lambda: cu_structures(1), {}, 'needs a `model` input'),
        ('gpaw', lambda: cu_structures(1), {'parameters': {'mode': 'lcao', 'txt': 'x'}}, '`txt`'),
        ('emt', list, {}, 'empty'),
        ('ensemble', lambda: cu_structures(1), {}, 'needs an `ensemble` input'),
        ('ensemble', lambda: cu_structures(1), {'parameters': {'workers': 0}}, '`workers` must be a positive'),
    ],
)
def test_bad_input_refused_before_submission(label_code, options, engine, structures, extra, match):
    kwargs = inputs(label_code, options, structures(), engine)
    kwargs.update({k: orm.Dict(v) for k, v in extra.items()})
    with pytest.raises(ValueError, match=match):
        run_get_node(LabelCalculation, **kwargs)


def test_bad_geometry_and_model_species_refused(label_code, options, reference_model):
    close = cu_structures(1)[0]
    close.positions[1] = close.positions[0] + [0.1, 0, 0]
    with pytest.raises(ValueError, match='closer than the threshold'):
        run_get_node(LabelCalculation, **inputs(label_code, options, [close], 'emt'))
    flat = cu_structures(1)[0]
    flat.pbc = False
    with pytest.raises(ValueError, match='not periodic'):
        run_get_node(LabelCalculation, **inputs(label_code, options, [flat], 'emt'))
    from ase.build import bulk

    with pytest.raises(ValueError, match=r'does not support the element\(s\) Ag'):
        run_get_node(
            LabelCalculation,
            **inputs(
                label_code, options, [bulk('AgI', 'zincblende', a=6.5)], 'nequip-reference', model=reference_model
            ),
        )


def test_an_ensemble_is_refused_where_the_engine_takes_none_and_for_foreign_species(label_code, options):
    with pytest.raises(ValueError, match='takes no `ensemble` input'):
        run_get_node(
            LabelCalculation, **inputs(label_code, options, cu_structures(1), 'emt', ensemble=placeholder_ensemble())
        )
    with pytest.raises(ValueError, match=r'does not support the element\(s\) I'):
        run_get_node(
            LabelCalculation, **inputs(label_code, options, [cui_cell()], 'ensemble', ensemble=placeholder_ensemble())
        )


def test_missing_resources_refused(label_code):
    kwargs = inputs(label_code, {}, cu_structures(1), 'emt')
    with pytest.raises(ValueError, match='resources'):
        run_get_node(LabelCalculation, **kwargs)


def test_labels_file_cut_by_a_kill_keeps_complete_lines():
    from aiida_anharmal.parsers.label import read_label_records

    text = '{"index": 0, "status": "ok", "energy": -1.0}\n{"index": 1, "status": "ok", "ene'
    assert read_label_records(text) == [{'index': 0, 'status': 'ok', 'energy': -1.0}]
    with pytest.raises(ValueError):
        read_label_records('{"index": 0, "sta\n{"index": 1}\n')
