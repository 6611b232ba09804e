"""The three methods head to head on a rare-event test set of CuI (Kang et al., Fig. 8, and beyond it).

``test-set``: the rare-event test set, labelled by the bundled CuI reference model (the ground truth of
the main job) and written once to ``benchmarks/data/cui_rare_event_test_set.extxyz`` (origins as
``origin_*`` columns; :mod:`aiida_anharmal.core.rare_event_set`):

* ``thermal``: the reference model's Langevin MD of the 64-atom crystal at 300 K (seed 11; neither the
  loop's test MD, seed 1, nor its validation MD, seed 0), a frame every 50 fs after 250 fs;
* ``defect``: its MD at 300 K from the relaxed Frenkel pair (seed 12), a frame every 50 fs after 50 fs,
  only frames whose Cu still sits in an interstitial basin (``cui_frenkel_basin``);
* ``path``: the images of its own climbing-image NEB from the relaxed crystal to the relaxed Frenkel pair.

The relaxed crystal, the relaxed Frenkel pair and the reference defect energy are written beside it
(``cui_rare_event_ends.extxyz``, ``cui_rare_event_test_set.json`` with the frame counts and the cost)::

    OMP_NUM_THREADS=1 python benchmarks/methods_head_to_head.py test-set [--steps 450] [--defect-steps 250]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _cui_data import LATTICE, reference_calculator

DATA = Path(__file__).parent / 'data'
TEST_SET = DATA / 'cui_rare_event_test_set.extxyz'
ENDS = DATA / 'cui_rare_event_ends.extxyz'
SUMMARY = DATA / 'cui_rare_event_test_set.json'


def make_test_set(args) -> int:
    from ase.io import write
    from cui_defect import reference_neb, relax_defect
    from member_recipes import machine

    from aiida_anharmal.core.defects import cui_frenkel_basin, cui_frenkel_pair
    from aiida_anharmal.core.frames import Frames
    from aiida_anharmal.core.rare_event_set import labelled_copy, md_part, parts_of, path_part

    calculator = reference_calculator()
    seconds = {}
    start = time.monotonic()
    ends = relax_defect(calculator, fmax=0.02)
    neb = reference_neb(calculator, ends['crystal'].atoms, ends['defect'].atoms, args.images, 0.05, 300)
    seconds['relax_and_neb'] = time.monotonic() - start
    if not neb['converged']:
        raise SystemExit(f'the reference NEB did not converge in {neb["steps"]} steps: no path part')
    pristine = cui_frenkel_pair(LATTICE)[0]
    parts = {}
    for part, begin, steps, seed, equilibration, keep in (
        ('thermal', ends['crystal'].atoms, args.steps, 11, 250.0, None),
        ('defect', ends['defect'].atoms, args.defect_steps, 12, 50.0, lambda a: bool(cui_frenkel_basin(a, pristine))),
    ):
        start = time.monotonic()
        parts[part] = md_part(
            begin, calculator, part, temperature=300.0, steps=steps, save_stride=10, equilibration=equilibration,
            seed=seed, keep=keep,
        )  # fmt: skip
        seconds[part] = time.monotonic() - start
        print(f'{part}: {len(parts[part])} frames, {seconds[part]:.0f} s', flush=True)
    start = time.monotonic()
    parts['path'] = path_part(neb['images'], calculator)
    seconds['path'] = time.monotonic() - start
    test_set = Frames.concatenate([parts[name] for name in ('thermal', 'defect', 'path')])
    DATA.mkdir(exist_ok=True)
    test_set.write_extxyz(TEST_SET)
    # each end point with its own relaxed energy and forces (the shared calculator holds the last image's)
    write(ENDS, [labelled_copy(ends[key].atoms, calculator) for key in ('crystal', 'defect')], format='extxyz')
    summary = {
        'machine': machine(),
        'frames': {name: len(indices) for name, indices in parts_of(test_set).items()},
        'defect_energy': ends['defect_energy'],
        'barrier': neb['barrier'],
        'neb_converged': neb['converged'],
        'seconds': {key: round(value, 1) for key, value in seconds.items()},
        'settings': vars(args) | {'temperature': 300.0, 'timestep': 5.0, 'save_stride': 10},
    }
    SUMMARY.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ('frames', 'defect_energy', 'barrier', 'seconds')}, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    test_set = commands.add_parser('test-set', help='make the rare-event test set of CuI (once)')
    test_set.add_argument('--steps', type=int, default=450, help='steps of the thermal MD (5 fs)')
    test_set.add_argument('--defect-steps', type=int, default=250, help='steps of the MD in the defect basin')
    test_set.add_argument('--images', type=int, default=5, help='NEB images between the end points')
    args = parser.parse_args(argv)
    return make_test_set(args)


if __name__ == '__main__':
    raise SystemExit(main())
