"""Phonon lifetimes of EMT Cu at 300 K, fully anharmonic (NVE MD) and perturbative (phono3py), with the core.

    OMP_NUM_THREADS=1 python examples/lifetimes_emt_cu.py [--temperature 300] [--ps 100] [--plot lifetimes.png]

It computes EMT Cu's harmonic force constants with phonopy (the fcc primitive cell in a 3 x 3 x 3
supercell: 27 atoms, 27 q-points, 78 optical and acoustic modes besides the three translations),
equilibrates 5 ps with Langevin dynamics, runs ``--ps`` of NVE (velocity Verlet, 4 fs, a frame every
20 fs), projects the frames on the harmonic modes (:mod:`aiida_anharmal.core.phonons.normal_modes`) and
fits the lifetime of every mode from its energy autocorrelation
(:mod:`aiida_anharmal.core.phonons.lifetimes`). It prints the lifetimes per frequency band, the fraction of
modes below the Ioffe-Regel limit (tau < 1/nu) and a DHO cross-check, and draws tau^-1 against the
frequency with the Ioffe-Regel line. The perturbative route (:mod:`aiida_anharmal.core.phonons.perturbative`)
labels phono3py's displaced supercells of the same reference with EMT and gives the RTA lifetimes
on the q-points of the MD (a 3 x 3 x 3 mesh) and on an 11 x 11 x 11 mesh, side by side. No AiiDA
profile is needed (the workchains: ``examples/lifetimes_workflow_emt_cu.py``); about two minutes.
"""

import argparse

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from aiida_anharmal.core.phonons.harmonic import force_constants_with
from aiida_anharmal.core.phonons.lifetimes import OK, ioffe_regel_fraction, lifetime_table
from aiida_anharmal.core.phonons.normal_modes import commensurate_modes, project
from aiida_anharmal.core.phonons.phonopy_io import phonopy_to_ase


def harmonic_cu(repeat: int = 3):
    return force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6), [repeat] * 3)


def nve_frames(phonon, temperature: float, picoseconds: float, seed: int = 0):
    """Positions (A) and velocities (A/fs) every 20 fs of NVE MD after 5 ps of Langevin equilibration."""
    atoms = phonopy_to_ase(phonon.supercell)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(atoms)
    Langevin(
        atoms, 4 * units.fs, temperature_K=temperature, friction=0.01 / units.fs, rng=np.random.default_rng(seed)
    ).run(1250)
    Stationary(atoms)
    dynamics = VelocityVerlet(atoms, timestep=4 * units.fs)
    positions, velocities = [], []
    for _ in range(round(picoseconds * 50)):
        dynamics.run(5)
        positions.append(atoms.positions.copy())
        velocities.append(atoms.get_velocities() * units.fs)
    return np.array(positions), np.array(velocities)


def perturbative(phonon, mesh, temperature: float):
    """RTA lifetimes from EMT's third-order force constants on the harmonic reference's supercell."""
    from aiida_anharmal.core.phonons.perturbative import make_fc3_displacements, perturbative_lifetimes

    displacements = make_fc3_displacements(phonon)
    forces = []
    for atoms in displacements.supercells():
        atoms.calc = EMT()
        forces.append(atoms.get_forces())
    result = perturbative_lifetimes(displacements, forces, phonon.force_constants, mesh, [temperature])
    return result.table(0), len(forces)


def print_perturbative(table, mesh, n_supercells):
    from aiida_anharmal.core.phonons.lifetimes import mode_summary

    summary = mode_summary(table['frequency'], table['tau'], table['flag'], table['weight'])
    bands = ', '.join(f'{band} THz {row["median_tau"]:.2f}' for band, row in summary['bands'].items())
    print(
        f'perturbative, {n_supercells} fc3 supercells, mesh {mesh}: median tau {summary["median_tau"]:.2f} ps '
        f'({bands}); below Ioffe-Regel {summary["ioffe_regel_fraction"]:.2f}'
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--temperature', type=float, default=300.0)
    parser.add_argument('--ps', type=float, default=100.0, help='length of the NVE run (ps)')
    parser.add_argument('--plot', default=None, help='PNG of tau^-1 against the frequency')
    args = parser.parse_args()
    phonon = harmonic_cu()
    modes = commensurate_modes(phonon)
    positions, velocities = nve_frames(phonon, args.temperature, args.ps)
    projection = project(modes, positions, velocities)
    table = lifetime_table(modes, projection, dt=0.02, dho=True)
    ok = table['flag'] == OK
    flags = {flag: int((table['flag'] == flag).sum()) for flag in np.unique(table['flag'])}
    print(f'{len(positions)} frames over {args.ps:g} ps at {args.temperature:g} K; modes by flag: {flags}')
    print(' band (THz)   modes  median tau (ps)  median tau_DHO (ps)')
    for low in range(8):
        band = ok & (table['frequency'] >= low) & (table['frequency'] < low + 1)
        if band.any():
            print(
                f'  {low}-{low + 1}       {band.sum():5d}  {np.median(table["tau"][band]):15.2f}'
                f'  {np.median(table["tau_dho"][band]):19.2f}'
            )
    kept = table['flag'] != 'no_mode'
    print(
        f'fraction below the Ioffe-Regel limit (tau < 1/nu): {ioffe_regel_fraction(table["frequency"][kept], table["tau"][kept]):.2f}'
    )
    perturbative_tables = {}
    for mesh in (3, 11):
        perturbative_tables[mesh], n_supercells = perturbative(phonon, [mesh] * 3, args.temperature)
        print_perturbative(perturbative_tables[mesh], f'{mesh}x{mesh}x{mesh}', n_supercells)
    if args.plot:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        nu = table['frequency'][ok]
        ax.scatter(nu, 1 / table['tau'][ok], s=12, label='MD, energy ACF')
        ax.scatter(table['frequency_dho'][ok], 1 / table['tau_dho'][ok], s=8, marker='x', label='MD, DHO fit')
        for mesh, style in ((11, {'s': 3, 'c': '0.7'}), (3, {'s': 14, 'marker': '+', 'c': 'C3'})):
            pt = perturbative_tables[mesh]
            keep = pt['flag'] == OK
            ax.scatter(pt['frequency'][keep], 1 / pt['tau'][keep], label=f'phono3py RTA, {mesh}x{mesh}x{mesh}', **style)
        grid = np.linspace(0, nu.max() * 1.05, 50)
        ax.plot(grid, grid, 'k--', lw=1, label=r'Ioffe-Regel $\tau^{-1} = \nu$')
        ax.set_xlabel('frequency (THz)')
        ax.set_ylabel(r'$\tau^{-1}$ (1/ps)')
        ax.set_ylim(0, max(1.2 * (1 / table['tau'][ok]).max(), 0.5))
        ax.set_title(f'EMT Cu, {args.temperature:g} K, {args.ps:g} ps NVE')
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f'wrote {args.plot}')


if __name__ == '__main__':
    main()
