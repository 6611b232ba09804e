"""sigma_A of FHI-vibes' CsPbI3 test trajectory (DFT MD, 135 atoms, 9 frames).

python examples/sigma_a_cspbi3.py      # -> sigma_A 0.659416; Cs 0.826162, Pb 0.674311, I 0.647513
"""

from pathlib import Path

import h5py

from aiida_anharmal.core.phonons.anharmonicity import HarmonicReference

path = Path(__file__).parents[1] / 'tests' / 'data' / 'fhi_vibes_cspbi3_trajectory.nc'
with h5py.File(path, 'r') as f:
    reference = HarmonicReference(
        f['positions_reference'][:],
        f['lattice_reference'][:],
        f['force_constants_remapped'][:],
        tuple(str(s) for s in f.attrs['symbols']),
    )
    positions, forces = f['positions'][:], f['forces'][:]

print(f'sigma_A = {reference.sigma(positions, forces):.6f}')
for species, value in reference.sigma_per_species(positions, forces).items():
    print(f'  {species:2s} {value:.6f}')
print('A(t):', ' '.join(f'{a:.4f}' for a in reference.a_per_frame(positions, forces)))
