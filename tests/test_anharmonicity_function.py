"""The sigma_A calcfunction on FHI-vibes' CsPbI3 DFT trajectory imported as a TrainingSet."""

from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.functions import anharmonicity

DATA = Path(__file__).parent / 'data' / 'fhi_vibes_cspbi3_trajectory.nc'


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
                'sigma_per_sample',
                'cell',
            )
            if k in f
        }
        data['symbols'] = [str(s) for s in f.attrs['symbols']]
    return data


def harmonic_node(data):
    from ase.data import atomic_numbers

    node = orm.ArrayData()
    node.set_array('positions', data['positions_reference'])
    node.set_array('cell', data['lattice_reference'])
    node.set_array('force_constants', data['force_constants_remapped'])
    node.set_array('numbers', np.array([atomic_numbers[s] for s in data['symbols']]))
    return node


def trajectory_set(data, n=None):
    frames = []
    for positions, forces in zip(data['positions'], data['forces']):
        atoms = Atoms(symbols=data['symbols'][:n], positions=positions[:n], cell=data['lattice_reference'], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, forces=forces[:n])
        frames.append(atoms)
    return TrainingSet.from_ase(frames)


def test_sigma_a_of_imported_dft_trajectory(vibes):
    result = anharmonicity(trajectory_set(vibes), harmonic_node(vibes))
    sigma = result['sigma'].get_dict()
    assert sigma['sigma_A'] == pytest.approx(0.659416, abs=1e-6)
    assert sigma['per_species'] == {
        'Cs': pytest.approx(0.826162, abs=1e-6),
        'Pb': pytest.approx(0.674311, abs=1e-6),
        'I': pytest.approx(0.647513, abs=1e-6),
    }
    assert sigma['n_frames'] == 9
    assert result['per_frame'].get_array('anharmonicity').shape == (9,)
    assert result['sigma'].creator is not None  # a calcfunction node: the graph records how it was computed


def test_mismatched_trajectory_refused(vibes):
    with pytest.raises(ValueError, match='does not match the harmonic reference'):
        anharmonicity(trajectory_set(vibes, n=134), harmonic_node(vibes))
