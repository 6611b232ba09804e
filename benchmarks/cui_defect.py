"""Ground truth of the NEB validation: the Cu Frenkel pair of CuI with the reference model, and its own NEB.

The bundled CuI reference model (stand-in for DFT, as in the main job) relaxes the pristine
64-atom supercell and the Frenkel pair of :func:`aiida_anharmal.core.structures.defects.cui_frenkel_pair`
(the Cu at the origin on the tetrahedral site (1/2, 0, 0) a), checks that the relaxed defect is
a local minimum (rattle by 0.05 A, relax again), and runs its own climbing-image NEB from the
crystal to the defect. Prints and writes ``benchmarks/results/cui_defect_<tag>.md``::

    OMP_NUM_THREADS=1 python benchmarks/cui_defect.py [--images 5] [--fmax 0.05] [--tag cpu-2core]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _cui_data import LATTICE, RESULTS, reference_calculator


def relax_defect(calculator, fmax: float) -> dict:
    from aiida_anharmal.core.structures.defects import check_minimum, cui_frenkel_pair, neighbour_shell, relax

    pristine, defect = cui_frenkel_pair(LATTICE)
    start = time.monotonic()
    crystal = relax(pristine, calculator, fmax=fmax)
    relaxed = relax(defect, calculator, fmax=fmax, steps=500)
    moved = float(np.linalg.norm(relaxed.atoms.positions[0] - defect.positions[0]))
    check = check_minimum(relaxed, calculator, rattle=0.05, seed=0, watch=0, fmax=fmax, steps=500)
    return {
        'crystal': crystal,
        'defect': relaxed,
        'defect_energy': relaxed.energy - crystal.energy,
        'defect_converged': relaxed.converged,
        'defect_steps': relaxed.steps,
        'interstitial_moved': moved,
        'interstitial_shell': neighbour_shell(relaxed.atoms, relaxed.atoms.positions[0]),
        'is_minimum': check.is_minimum,
        'rattle_max_displacement': check.max_displacement,
        'rattle_energy_change': check.energy_change,
        'relax_seconds': time.monotonic() - start,
    }


def reference_neb(calculator, crystal, defect, images: int, fmax: float, steps: int) -> dict:
    from aiida_anharmal.core.md.neb import NEBSettings, interpolate, path_profile, run_neb
    from aiida_anharmal.core.models.uncertainty import CalculatorAsEnsemble

    settings = NEBSettings(n_images=images, fmax=fmax, steps=steps)
    start = time.monotonic()
    band = run_neb(interpolate(crystal, defect, settings), settings, calculator=calculator)
    profile = path_profile(band.images, CalculatorAsEnsemble(calculator))
    return {
        'converged': band.converged,
        'steps': band.steps,
        'seconds': time.monotonic() - start,
        'energies': profile.energies.round(4).tolist(),
        'images': [image.copy() for image in band.images],
        **profile.summary(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', type=int, default=5)
    parser.add_argument('--fmax', type=float, default=0.05)
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--tag', default='cpu-2core')
    args = parser.parse_args(argv)
    from member_recipes import machine

    calculator = reference_calculator()
    defect = relax_defect(calculator, fmax=0.02)
    print(
        f'defect: {defect["defect_energy"]:.3f} eV above the crystal, interstitial moved {defect["interstitial_moved"]:.2f} A, '
        f'local minimum {defect["is_minimum"]} (rattle: max move {defect["rattle_max_displacement"]:.3f} A)',
        flush=True,
    )
    neb = reference_neb(calculator, defect['crystal'].atoms, defect['defect'].atoms, args.images, args.fmax, args.steps)
    print(f'NEB: barrier {neb["barrier"]:.3f} eV, {neb["steps"]} steps, {neb["seconds"]:.0f} s', flush=True)
    info = machine()
    for key in ('crystal', 'defect'):
        defect.pop(key)
    neb.pop('images')
    report = {'machine': info, 'settings': vars(args), 'defect': defect, 'neb': neb}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'cui_defect_{args.tag}.json').write_text(json.dumps(report, indent=1))
    lines = [
        f'# CuI Frenkel pair with the reference model ({info["date"]})',
        '',
        f'Machine: {info["cpu"]}, {info["cores"]} cores, one thread. 64-atom supercell, a = {LATTICE} A.',
        '',
        (
            f'- defect energy (relaxed Frenkel pair - relaxed crystal): {defect["defect_energy"]:.3f} eV '
            f'({defect["defect_steps"]} BFGS steps, converged {defect["defect_converged"]})'
        ),
        (
            f'- the interstitial Cu moved {defect["interstitial_moved"]:.2f} A while relaxing; neighbours: '
            f'{defect["interstitial_shell"]}'
        ),
        (
            f'- local minimum: {defect["is_minimum"]} (rattle 0.05 A and relax: largest move '
            f'{defect["rattle_max_displacement"]:.3f} A, energy change {defect["rattle_energy_change"]:.4f} eV)'
        ),
        f'- relaxations: {defect["relax_seconds"]:.0f} s',
        (
            f'- reference NEB ({args.images} images, fmax {args.fmax}, climbing image, improved tangent): barrier '
            f'{neb["barrier"]:.3f} eV (fit {neb["fit_barrier"]:.3f}), reaction energy {neb["reaction_energy"]:.3f} eV, '
            f'highest image {neb["highest_image"]}, converged {neb["converged"]} after {neb["steps"]} steps, '
            f'{neb["seconds"]:.0f} s'
        ),
        f'- image energies (eV): {neb["energies"]}',
    ]
    (RESULTS / f'cui_defect_{args.tag}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
