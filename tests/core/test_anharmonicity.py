"""Degree of anharmonicity against FHI-vibes' own numbers on its CsPbI3 test trajectory."""

from pathlib import Path

import numpy as np
import pytest

from aiida_anharmal.core.phonons.anharmonicity import HarmonicReference, harmonic_forces, minimum_image_displacements

DATA = Path(__file__).parents[1] / 'data' / 'fhi_vibes_cspbi3_trajectory.nc'


@pytest.fixture(scope='module')
def vibes():
    h5py = pytest.importorskip('h5py')
    with h5py.File(DATA, 'r') as f:
        data = {
            k: f[k][:]
            for k in (
                'positions',
                'forces',
                'positions_reference',
                'lattice_reference',
                'force_constants_remapped',
                'displacements',
                'forces_harmonic',
                'sigma_per_sample',
            )
        }
        data['symbols'] = tuple(str(s) for s in f.attrs['symbols'])
    reference = HarmonicReference(
        data['positions_reference'], data['lattice_reference'], data['force_constants_remapped'], data['symbols']
    )
    return reference, data


def test_displacements_and_harmonic_forces_match_vibes(vibes):
    reference, d = vibes
    u = minimum_image_displacements(d['positions'], reference.positions, reference.cell)
    assert np.abs(u - d['displacements']).max() < 1e-10
    assert np.abs(harmonic_forces(u, reference.force_constants) - d['forces_harmonic']).max() < 1e-10


def test_sigma_a_matches_published_values(vibes):
    reference, d = vibes
    assert reference.sigma(d['positions'], d['forces']) == pytest.approx(0.659416, abs=1e-6)
    per_species = reference.sigma_per_species(d['positions'], d['forces'])
    assert per_species == pytest.approx({'Cs': 0.826162, 'Pb': 0.674311, 'I': 0.647513}, abs=1e-6)
    assert np.abs(reference.a_per_frame(d['positions'], d['forces']) - d['sigma_per_sample']).max() < 1e-6


def test_harmonic_system_has_zero_anharmonicity(vibes):
    reference, d = vibes
    u = minimum_image_displacements(d['positions'], reference.positions, reference.cell)
    forces = harmonic_forces(u, reference.force_constants)
    assert reference.sigma(d['positions'], forces) < 1e-12


def test_mismatched_reference_refused(vibes):
    reference, d = vibes
    with pytest.raises(ValueError, match='do not match'):
        reference.anharmonic_forces(d['positions'][:, :10], d['forces'][:, :10])
