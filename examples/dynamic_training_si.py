"""Dynamic training of a Bayesian force-constant force field of Si (Tersoff) through ``DynamicTrainingWorkChain``.

Run `anharmal setup` first, then

    python examples/dynamic_training_si.py [--steps 3000] [--rule trajectory_average]

The 64-atom cubic supercell (2 x 2 x 2 conventional cells) of diamond Si; ground truth ASE's Tersoff
potential (labelling engine ``tersoff``). Protocol ``moderate`` (orders 2-4, cut-offs 2.2 / 1.7 / 1.3 x the
nearest-neighbour distance: 5.17 / 4.00 / 3.05 A; retrain rule ``trajectory_average``, gamma 3, k 1000) with a
shorter trajectory and two initial structures displaced by 0.005 A, so that the first fit knows little beyond
the harmonic terms. The fits are tested on 30 frames of an independent Tersoff Langevin run at 300 K, made
here first (stored as a ``TrainingSet``). Prints the table of ``anharmal dynamic status`` and writes the three
figures of ``anharmal dynamic plot`` (a few minutes on 2 CPU cores).
"""

import argparse
import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.analysis.dynamic import status_lines, write_plots
from aiida_anharmal.core.labelling.labellers import get_labeller
from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import DynamicTrainingWorkChain

CONVENTIONAL_2X2X2 = [[-2, 2, 2], [2, -2, 2], [2, 2, -2]]


def tersoff_test_set(supercell, n=30, temperature=300.0, seed=7) -> TrainingSet:
    """``n`` frames, 20 fs apart after 500 fs, of a Tersoff Langevin run at ``temperature`` (1 fs)."""
    import numpy as np
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = supercell.copy()
    atoms.calc = get_labeller('tersoff').make_calculator({})
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(atoms, units.fs, temperature_K=temperature, friction=0.01 / units.fs, rng=rng)
    dynamics.run(500)
    frames = []
    for _ in range(n):
        dynamics.run(20)
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(frame)
    origins = [{'kind': 'tersoff_nvt', 'temperature': temperature, 'seed': seed, 'frame': k} for k in range(n)]
    test_set = TrainingSet.from_ase(frames, origins=origins)
    test_set.set_label_provenance('tersoff', 'toy', 'Tersoff NVT at 300 K (examples/dynamic_training_si.py)')
    return test_set.store()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=3000)
    parser.add_argument('--rule', default='trajectory_average', choices=['trajectory_average', 'eps_min'])
    parser.add_argument('--profile', default='anharmal')
    parser.add_argument('--output', default='dynamic_training_si')
    args = parser.parse_args()
    load_profile(args.profile)
    codes = {'label': orm.load_code('anharmal-label@localhost'), 'md': orm.load_code('anharmal-md@localhost')}
    overrides = {
        'initial': {'parameters': {'n_train': 2, 'n_test': 2, 'amplitude': 0.005}},
        'md': {'parameters': {'steps': args.steps, 'save_stride': 5}},
        'max_refits': 30,
    }
    if args.rule != 'trajectory_average':
        overrides['retrain'] = {'rule': args.rule}
    builder = DynamicTrainingWorkChain.get_builder_from_protocol(
        codes,
        bulk('Si', 'diamond', a=5.432),
        CONVENTIONAL_2X2X2,
        engine='tersoff',
        protocol='moderate',
        overrides=overrides,
    )
    builder.test_set = tersoff_test_set(builder.supercell.get_ase())
    start = time.monotonic()
    node = submit(builder)
    print(f'submitted DynamicTrainingWorkChain<{node.pk}>; waiting for it')
    while not node.is_terminated:
        time.sleep(5)
    print(f'done in {time.monotonic() - start:.0f} s')
    if not node.is_finished_ok:
        raise SystemExit(f'failed: {node.exit_status} {node.exit_message}')
    for line in status_lines(node):
        print(line)
    for path in write_plots(node, args.output):
        print(f'wrote {path}')


if __name__ == '__main__':
    main()
