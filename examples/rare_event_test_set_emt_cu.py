"""A rare-event test set and the errors of a potential on each of its parts, EMT Cu standing in for DFT (seconds).

    python examples/rare_event_test_set_emt_cu.py

EMT Cu is the ground truth: a 16-atom cell, its MD at 600 K (``thermal``), its MD with a vacancy
(``defect``), and the images of its own NEB of the vacancy hop (``path``). The potential under test is
the Morse potential of Cu (Girifalco and Weizer 1959: D = 0.3429 eV, alpha = 1.3588 1/A, r0 = 2.866 A),
its energy shifted to EMT's at the ideal crystal: a pair potential, right near the crystal it was fitted
to, less so where an atom is missing. The same code scores the three methods on CuI
(``benchmarks/methods_head_to_head.py``; docs/source/rare_events.rst).
"""

from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.morse import MorsePotential

from aiida_anharmal.core.learning.rare_event_set import (
    check_independent,
    defect_energy_error,
    md_part,
    part_errors,
    path_part,
)
from aiida_anharmal.core.md.neb import NEBSettings, interpolate, run_neb
from aiida_anharmal.core.structures.defects import relax, vacancy_hop
from aiida_anharmal.core.structures.frames import Frames

crystal = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 1))
initial, final = vacancy_hop(crystal)
initial, final = (relax(atoms, EMT(), fmax=0.02).atoms for atoms in (initial, final))
band = run_neb(interpolate(initial, final, NEBSettings(n_images=3)), NEBSettings(n_images=3), calculator=EMT())
test_set = Frames.concatenate(
    [
        md_part(crystal, EMT(), 'thermal', temperature=600.0, steps=200, save_stride=20, equilibration=100.0),
        md_part(initial, EMT(), 'defect', temperature=600.0, steps=200, save_stride=20, equilibration=100.0, seed=1),
        path_part(band.images, EMT()),
    ]
)
training = md_part(crystal, EMT(), 'thermal', temperature=600.0, steps=100, save_stride=10, seed=7)
check_independent(test_set, training)  # another seed: no shared frame

morse = MorsePotential(epsilon=0.3429, r0=2.866, rho0=1.3588 * 2.866)


def energy_and_forces(atoms, calculator):
    atoms = atoms.copy()
    atoms.calc = calculator
    return atoms.get_potential_energy(), atoms.get_forces()


shift = (energy_and_forces(crystal, EMT())[0] - energy_and_forces(crystal, morse)[0]) / len(crystal)


def predict(atoms):
    energy, forces = energy_and_forces(atoms, morse)
    return energy + shift * len(atoms), forces


print(f'{len(test_set)} frames; Morse against EMT per part:')
print('part      frames  energy MAE (meV/atom)  force MAE (meV/A)')
for part, errors in part_errors(test_set, predict).items():
    print(f'{part:<8}  {errors["frames"]:>6}  {errors["energy_mae"]:>21.1f}  {errors["force_mae"]:>17.1f}')
# the barrier at EMT's saddle (the highest image of its path), at fixed geometries
saddle = max(band.images, key=lambda image: energy_and_forces(image, EMT())[0])
barrier = energy_and_forces(saddle, EMT())[0] - energy_and_forces(initial, EMT())[0]
error = defect_energy_error(predict, initial, saddle, barrier)
print(f'the vacancy hop: EMT barrier {barrier:.3f} eV; Morse error {error:+.3f} eV')
