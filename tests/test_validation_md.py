"""ValidationMDWorkChain through the daemon: an ensemble's MD next to the labelling engine's own (EMT Cu)."""

import numpy as np
import pytest
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import EnsembleWorkChain, HarmonicWorkChain, ValidationMDWorkChain

from .conftest import emt_cu_frames


@pytest.mark.slow
def test_ensemble_md_next_to_the_ground_truth(
    submit_and_await, train_code, evaluate_code, md_code, label_code, options, tmp_path
):
    unit = bulk('Cu', 'fcc', a=3.6, cubic=True)
    harmonic = HarmonicWorkChain.get_builder_from_protocol(
        label_code, unit, engine='emt', protocol='fast', overrides={'supercell_matrix': [2, 2, 1]}, options=options
    )
    harmonic = submit_and_await(harmonic, timeout=300)
    assert harmonic.is_finished_ok, harmonic.exit_message
    force_constants = harmonic.outputs.force_constants
    members = EnsembleWorkChain.get_builder_from_protocol(
        train_code,
        TrainingSet.from_ase(emt_cu_frames(10)),
        'fast',
        {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 6}},
        options=options,
    )
    members = submit_and_await(members, timeout=600)
    assert members.is_finished_ok, members.exit_message
    ensemble = members.outputs.ensemble

    builder = ValidationMDWorkChain.get_builder_from_protocol(
        {'md': md_code, 'evaluate': evaluate_code},
        force_constants.get_supercell(),
        force_constants,
        {'tiny': ensemble},
        engine='emt',
        protocol='fast',
        overrides={
            'parameters': {'steps': 40, 'save_stride': 4, 'timestep': 2.0},
            'analysis': {'equilibration': 20.0, 'stride': 1},
        },
        options=options,
    )
    node = submit_and_await(builder, timeout=600)
    assert node.is_finished_ok, node.exit_message
    rows = {row['run']: row for row in node.outputs.comparison['rows']}
    assert set(rows) == {'reference', 'tiny'} and rows['reference']['driver'] == 'reference'
    assert rows['reference']['n_frames'] == rows['tiny']['n_frames'] == 8  # frames at 24, 32, ..., 80 fs

    # same start, same seed: the runs share their first frame, positions and velocities
    reference_frames, tiny_frames = node.outputs.trajectories['reference'], node.outputs.trajectories['tiny']
    assert np.array_equal(reference_frames.get_positions()[0], tiny_frames.get_positions()[0])
    assert np.array_equal(reference_frames.get_array('velocities')[0], tiny_frames.get_array('velocities')[0])

    # the ground truth is the engine: EMT on the recorded positions gives the recorded energy and forces
    scored = node.outputs.reference_frames
    assert scored.base.attributes.get('label_engine') == 'emt' and len(scored) == 8
    for atoms in scored.to_ase()[:3]:
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
        assert np.abs(atoms.get_forces() - forces).max() < 1e-10

    # the A the reference run recorded is A of the EMT forces against the harmonic reference
    reference = force_constants.get_harmonic_reference()
    frames = node.outputs.frames['reference']
    a = reference.a_per_frame(reference_frames.get_positions(), reference_frames.get_array('forces'))
    np.testing.assert_allclose(frames.get_array('anharmonicity'), a, rtol=1e-10)
    keep = frames.get_array('time') >= 20.0
    assert rows['reference']['a_mean'] == pytest.approx(a[keep].mean(), rel=1e-10)

    # the ensemble's score: its mean forces on the ground-truth frames against EMT's
    calculator = ensemble.calculator(workers=1)
    errors = [np.abs(calculator.predict(atoms).forces - atoms.get_forces()).mean() for atoms in scored.to_ase()]
    assert rows['tiny']['reference_forces_mae'] == pytest.approx(np.mean(errors), rel=1e-6)

    # the table and the plot that `anharmal al validate` and `anharmal al plot` show
    from matplotlib.image import imread

    from aiida_anharmal.analysis.validation import plot_validation, validation_lines, validation_traces

    lines = validation_lines(node.outputs.comparison)
    assert lines[0] == 'validation MD (numbers after the first 20 fs)'
    assert lines[2].startswith('reference  reference  finished') and lines[3].startswith('tiny       ensemble')
    image = imread(plot_validation(validation_traces(node.outputs.comparison), tmp_path / 'validation.png'))
    assert image.shape[0] > 100 and image.std() > 0


def test_a_validation_without_a_harmonic_reference_is_refused(train_code, evaluate_code, md_code, label_code):
    from aiida_anharmal.workflows import ActiveLearningWorkChain

    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}
    frames = emt_cu_frames(12)
    labelled = TrainingSet.from_ase(frames[:8])
    labelled.set_label_provenance('emt', 'toy', 'ASE EMT')
    test_set = TrainingSet.from_ase(frames[8:])
    test_set.set_label_provenance('emt', 'toy', 'ASE EMT')
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        frames[0],
        engine='emt',
        protocol='fast',
        training_set=labelled,
        test_set=test_set,
        overrides={'validation': {}},
    )
    with pytest.raises(ValueError, match='the validation MD needs the `harmonic` input'):
        run_get_node(builder)
