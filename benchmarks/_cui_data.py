"""CuI data of the member benchmarks: reference-model labels of harmonic samples and of its own MD (cached).

The ground truth is the bundled CuI reference model (stand-in for DFT, as in the main job): the
64-atom zincblende supercell at a = 6.06 A, its phonopy force constants (2 displacements), harmonic
samples at 300 K (training, validation and a harmonic test set), and the frames of the reference
model's own Langevin MD at 300 K (1 ps, 5 fs steps, a frame every 25 fs after 100 fs): the
dynamics an ensemble must reproduce. Labels cost ~1 s per frame on a CPU core, so the data are
written once to ``benchmarks/results/cui_data.npz`` and reused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / 'results'
CACHE = RESULTS / 'cui_data.npz'
LATTICE = 6.06


def reference_calculator():
    from aiida_anharmal.core.labelling.labellers import get_labeller
    from aiida_anharmal.resources import cui_reference_model_path

    return get_labeller('nequip-reference').make_calculator({}, model_path=cui_reference_model_path())


def labelled(frames, calculator):
    from aiida_anharmal.core.structures.frames import Frames

    for atoms in frames:
        atoms.calc = calculator
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return Frames.from_atoms(frames)


def make_data(n_harmonic: int = 30, seed: int = 0) -> dict:
    """Harmonic samples and reference-MD frames, labelled by the reference model."""
    from ase.build import bulk

    from aiida_anharmal.core.md.loop import MDSettings, read_frames, run_md
    from aiida_anharmal.core.models.uncertainty import CalculatorAsEnsemble
    from aiida_anharmal.core.phonons.harmonic import force_constants_from_forces, harmonic_reference, make_displacements
    from aiida_anharmal.core.structures.sampling import harmonic_samples

    calculator = reference_calculator()
    displacements = make_displacements(bulk('CuI', 'zincblende', a=LATTICE, cubic=True), [2, 2, 2])
    forces = []
    for atoms in displacements.displaced_supercells():
        atoms.calc = calculator
        forces.append(atoms.get_forces())
    fc = force_constants_from_forces(displacements, forces)
    reference = harmonic_reference(displacements, fc)
    supercell = displacements.supercell
    samples = labelled(harmonic_samples(supercell, reference.force_constants, 300.0, n_harmonic, seed), calculator)
    settings = MDSettings(temperature=300.0, timestep=5.0, steps=200, save_stride=5, friction=0.00295, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        run_md(supercell.copy(), CalculatorAsEnsemble(calculator), settings, tmp, harmonic=reference)
        md = read_frames(tmp)
    keep = md['time'] >= 100.0
    return {'harmonic': samples, 'md': md, 'keep': keep, 'reference': reference, 'supercell': supercell}


def cached_data() -> dict:
    """The data of :func:`make_data`, from the cache when there is one: Frames of the harmonic samples and of the
    reference MD (energy, forces), and the harmonic reference arrays."""
    from ase import Atoms

    from aiida_anharmal.core.phonons.anharmonicity import HarmonicReference
    from aiida_anharmal.core.structures.frames import Frames

    if not CACHE.exists():
        data = make_data()
        md, keep, supercell = data['md'], data['keep'], data['supercell']
        RESULTS.mkdir(exist_ok=True)
        np.savez(
            CACHE,
            harmonic=np.frombuffer(data['harmonic'].to_npz_bytes(), dtype=np.uint8),
            md_positions=md['positions'][keep],
            md_forces=md['forces'][keep],
            md_energy=md['energy'][keep],
            md_anharmonicity=md['anharmonicity'],
            md_time=md['time'],
            numbers=supercell.numbers,
            cell=supercell.cell[:],
            positions=supercell.positions,
            force_constants=data['reference'].force_constants,
        )
    import io

    with np.load(CACHE) as raw:
        harmonic = Frames.from_npz(io.BytesIO(raw['harmonic'].tobytes()))
        supercell = Atoms(numbers=raw['numbers'], positions=raw['positions'], cell=raw['cell'], pbc=True)
        md_frames = []
        from ase.calculators.singlepoint import SinglePointCalculator

        for positions, forces, energy in zip(raw['md_positions'], raw['md_forces'], raw['md_energy']):
            atoms = supercell.copy()
            atoms.positions = positions
            atoms.calc = SinglePointCalculator(atoms, energy=float(energy), forces=forces)
            md_frames.append(atoms)
        reference = HarmonicReference(
            raw['positions'], raw['cell'], raw['force_constants'], tuple(supercell.get_chemical_symbols())
        )
        return {
            'harmonic': harmonic,
            'md': Frames.from_atoms(md_frames),
            'reference': reference,
            'supercell': supercell,
            'md_anharmonicity': raw['md_anharmonicity'],
            'md_time': raw['md_time'],
        }
