"""The numbers of a validation MD run, on force-constant potentials whose A is known."""

import numpy as np
import pytest

from aiida_anharmal.core.learning.validation import reference_frame_indices, run_summary
from aiida_anharmal.core.md.loop import MDSettings, read_frames, run_md
from aiida_anharmal.core.phonons.anharmonicity import harmonic_forces, minimum_image_displacements

from .test_md import ModelPotential, cu_reference


def md(tmp_path, name, potential, reference):
    folder = tmp_path / name
    folder.mkdir()
    settings = MDSettings(temperature=300, timestep=2.0, steps=100, save_stride=5, friction=0.01, seed=1)
    run_md(cu_reference()[0], potential, settings, folder, harmonic=reference)
    return read_frames(folder)


def test_a_harmonic_run_has_a_zero_and_a_quartic_one_a_positive(tmp_path):
    _, reference = cu_reference()
    harmonic = md(tmp_path, 'h', ModelPotential(reference), reference)
    summary = run_summary(
        harmonic['time'],
        harmonic['anharmonicity'],
        harmonic['positions'],
        harmonic['forces'],
        reference,
        equilibration=20.0,
    )
    assert summary['n_frames'] == 19  # frames at 20, 30, ..., 200 fs
    assert summary['a_mean'] < 1e-10 and summary['sigma_a'] < 1e-10 and summary['fraction_a_above_1'] == 0.0
    quartic = md(tmp_path, 'q', ModelPotential(reference, quartic=200.0), reference)
    summary = run_summary(
        quartic['time'],
        quartic['anharmonicity'],
        quartic['positions'],
        quartic['forces'],
        reference,
        equilibration=20.0,
    )
    assert 0.1 < summary['a_mean'] < summary['a_max']
    # sigma_A by hand: std of F - F_harmonic over std of F, all frames after 20 fs together
    keep = quartic['time'] >= 20.0
    u = minimum_image_displacements(quartic['positions'][keep], reference.positions, reference.cell)
    f = quartic['forces'][keep]
    f_a = f - np.stack([harmonic_forces(x, reference.force_constants) for x in u])
    assert summary['sigma_a'] == pytest.approx(np.std(f_a) / np.std(f), rel=1e-10)


def test_fraction_above_one_and_the_frames_to_evaluate():
    _, reference = cu_reference()
    positions = np.repeat(reference.positions[None], 4, axis=0)
    forces = np.ones((4, 32, 3))
    summary = run_summary([0, 10, 20, 30], [0.5, 1.5, 0.9, 1.2], positions, forces, reference)
    assert summary['fraction_a_above_1'] == 0.5 and summary['a_max'] == 1.5
    assert run_summary([0, 10], [0.5, 0.6], positions[:2], forces[:2], reference, equilibration=50)['n_frames'] == 0
    assert reference_frame_indices([0, 10, 20, 30, 40, 50], 15.0, 2) == [2, 4]
    with pytest.raises(ValueError, match='stride must be at least 1'):
        reference_frame_indices([0], 0.0, 0)
