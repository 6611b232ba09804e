"""Dynamic training of a Bayesian force-constant model at 300 K, both retrain rules side by side.

The ground truth is ASE's Tersoff potential with the Si(C) parameters of Tersoff (1988) (labelling engine
``tersoff``): no DFT, and anharmonic enough for third and fourth order. For each retrain rule
(``trajectory_average``, gamma 3, k 1000; ``eps_min``) one run of the core's :func:`dynamic_training`: the same
initial data (random displacements of the 64-atom supercell), the same Langevin trajectory settings and seed;
at each firing the frame is labelled by Tersoff, the model refitted, the trajectory continued. Then the final
fit on 50 frames of an independent Tersoff NVT run at the same temperature (not seen by any fit): force MAE and
RMSE, the bracket beta^-1/2 <= RMSE <= sqrt(beta^-1 + mean eps_B^2), and the paper's figures beside them::

    OMP_NUM_THREADS=1 python benchmarks/dynamic_fc.py [--steps 20000] [--tag cpu-2core]
    OMP_NUM_THREADS=1 python benchmarks/dynamic_fc.py --system cui --test-frames 37 --tag cpu-2core-cui

``--system cui``: the strongly anharmonic case, the CuI reference model (about 1 s per label) on the 64-atom
supercell of the CuI benchmarks; the test frames are the cached frames of its own MD at 300 K.

writes ``benchmarks/results/dynamic_fc_<tag>.{json,md}`` and the traces (eps_B per step, refits) in ``.npz``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

RESULTS = Path(__file__).parent / 'results'

#: Callsen et al., Tables I/II: N_data, test RMSE, beta^-1/2, mean eps_B (meV/A), trajectory-average rule.
PAPER = {'BAs': (81, 8.8, 8.3, 2.5), 'Si': (60, 11.6, 10.1, 2.6), 'SnSe': (314, 31.5, 30.0, 6.2)}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=20000, help='MD steps of each dynamic training run (1 fs)')
    parser.add_argument('--temperature', type=float, default=300.0)
    parser.add_argument('--system', choices=['si', 'cui'], default='si', help='Tersoff Si or the CuI reference model')
    parser.add_argument('--cutoffs', type=float, nargs='+', default=None, help='orders 2, 3, 4 (A); default per system')
    parser.add_argument('--initial', type=int, default=1, help='initial structures (random displacements)')
    parser.add_argument('--amplitude', type=float, default=0.005, help='their Gaussian displacement (A)')
    parser.add_argument('--k', type=int, default=1000)
    parser.add_argument('--gamma', type=float, default=3.0)
    parser.add_argument('--max-refits', type=int, default=500)
    parser.add_argument('--test-frames', type=int, default=50)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--tag', default='cpu-2core')
    return parser.parse_args(argv)


def silicon():
    from ase.build import bulk

    return bulk('Si', 'diamond', a=5.432), bulk('Si', 'diamond', a=5.432, cubic=True).repeat(2)


def cui():
    """CuI zincblende at a = 6.06 A and the 64-atom supercell of the CuI benchmarks' cached data."""
    from _cui_data import CACHE, LATTICE
    from ase import Atoms
    from ase.build import bulk

    with np.load(CACHE) as data:
        ideal = Atoms(numbers=data['numbers'], positions=data['positions'], cell=data['cell'], pbc=True)
    return bulk('CuI', 'zincblende', a=LATTICE), ideal


def ground_truth(system: str):
    from aiida_anharmal.core.labelling.labellers import get_labeller

    if system == 'si':
        return get_labeller('tersoff').make_calculator({})
    from _cui_data import reference_calculator

    return reference_calculator()


def cui_test_frames(args) -> list[tuple[np.ndarray, np.ndarray]]:
    """The cached frames of the CuI reference model's own Langevin MD at 300 K (1 ps, one every 25 fs)."""
    from _cui_data import CACHE

    with np.load(CACHE) as data:
        return list(zip(data['md_positions'], data['md_forces'], strict=True))[: args.test_frames]


def test_frames(ideal, args) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames of an independent Langevin run of the ground truth (its own seed): 500 steps to equilibrate,
    then one frame every 20 steps."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    if args.system == 'cui':
        return cui_test_frames(args)
    atoms = ideal.copy()
    atoms.calc = ground_truth(args.system)
    rng = np.random.default_rng(1000 + args.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=rng)
    dynamics = Langevin(atoms, 1.0 * units.fs, temperature_K=args.temperature, friction=0.01 / units.fs, rng=rng)
    dynamics.run(500)
    frames = []
    for _ in range(args.test_frames):
        dynamics.run(20)
        frames.append((atoms.positions.copy(), atoms.get_forces().copy()))
    return frames


def initial_model(primitive, ideal, args):
    from aiida_anharmal.core.bayesian.model import BayesianForceConstantModel

    with contextlib.redirect_stdout(io.StringIO()):
        model = BayesianForceConstantModel(primitive, args.cutoffs, ideal)
    rng = np.random.default_rng(args.seed)
    calculator = ground_truth(args.system)
    for _ in range(args.initial):
        atoms = ideal.copy()
        atoms.positions += rng.normal(0.0, args.amplitude, atoms.positions.shape)
        atoms.calc = calculator
        model.add(atoms.positions, atoms.get_forces())
    model.fit()
    return model


def evaluate(model, frames) -> dict:
    """:func:`~aiida_anharmal.core.bayesian.convergence.force_errors` under the names of the result table."""
    from aiida_anharmal.core.bayesian.convergence import force_errors

    result = force_errors(model, frames)
    return {
        'test_mae': result['forces_mae'],
        'test_rmse': result['forces_rmse'],
        'test_mean_eps_b': result['mean_eps_b'],
        'bracket': result['bracket'],
        'in_bracket': result['in_bracket'],
    }


def learning_curve(model, test, sizes=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500)) -> dict[int, float]:
    """Test RMSE of the fit on the first N training structures of a run (in the order they were added), for
    each N of ``sizes`` up to the run's N_data; the model is refitted on all of them afterwards."""
    rows, curve = list(model._rows), {}
    for n in [n for n in sizes if n <= len(rows)]:
        model._rows = rows[:n]
        model.fit()
        curve[n] = evaluate(model, test)['test_rmse']
    model._rows = rows
    model.fit()
    return curve


def run_rule(rule: dict, primitive, ideal, test, args) -> tuple[dict, dict]:
    from aiida_anharmal.core.bayesian.convergence import NoisePlateau, RefitRecord, skewness, z_scores
    from aiida_anharmal.core.bayesian.dynamic_training import BayesianPotential, dynamic_training
    from aiida_anharmal.core.md.loop import MDSettings, read_frames

    model = initial_model(primitive, ideal, args)
    initial = RefitRecord(0, model.fit_result.n_structures, model.fit_result.noise)
    settings = MDSettings(temperature=args.temperature, timestep=1.0, steps=args.steps, save_stride=1, seed=args.seed)
    labeller = ground_truth(args.system)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        run = dynamic_training(ideal, BayesianPotential(model), labeller, settings, folder, rule, None, args.max_refits)
        frames = read_frames(folder)
    seconds = time.monotonic() - start
    eps = frames['trigger_score']
    refits = [initial] + [
        RefitRecord(r['step'], r['n_data'], r['noise'], r['reference'], r['eps_b']) for r in run.refits
    ]
    last = int(run.result.last_step)
    finished = run.result.state == 'finished'
    decision = NoisePlateau({}).decide(refits, last - refits[-1].step, finished, args.max_refits)
    if not finished and len(run.refits) >= args.max_refits:
        decision = NoisePlateau({}).decide(refits, 0, False, args.max_refits)  # stopped at the refit cap
    row = {
        'rule': rule['rule'],
        'state': run.result.state,
        'steps': last,
        'refits': len(run.refits),
        'n_data': model.fit_result.n_structures,
        'noise': model.fit_result.noise,
        'trajectory_mean_eps_b_last_k': float(np.nanmean(eps[-args.k :])),
        'z_b_skewness': skewness(z_scores(eps, args.k)),
        'decision': decision.reason,
        'seconds': round(seconds, 1),
        **evaluate(model, test),
        'learning_curve': learning_curve(model, test),
    }
    traces = {
        f'{rule["rule"]}_eps_b': eps.astype(np.float32),
        f'{rule["rule"]}_refit_steps': np.array([r.step for r in refits]),
        f'{rule["rule"]}_refit_noise': np.array([r.noise for r in refits]),
        f'{rule["rule"]}_refit_n_data': np.array([r.n_data for r in refits]),
    }
    return row, traces


def table(rows: list[dict], args) -> str:
    name = 'Si (Tersoff 1988 Si(C))' if args.system == 'si' else 'CuI (the CuI reference model, stand-in for DFT)'
    truth = 'an independent Tersoff NVT run' if args.system == 'si' else "the reference model's own MD (cached)"
    title = (
        f'# Dynamic training, {name} at {args.temperature:g} K, 64 atoms, orders 2-'
        f'{len(args.cutoffs) + 1} (cut-offs {args.cutoffs} A), {args.steps} steps of 1 fs'
    )
    setting = (
        f'Both rules from the same initial data ({args.initial} structure(s), Gaussian displacements of '
        f'{args.amplitude} A) and trajectory seed; test: {args.test_frames} frames of {truth}. meV/A.'
    )
    header = (
        '| rule | N_data | refits | beta^-1/2 | mean eps_B (test) | test MAE | test RMSE | '
        'bracket [beta^-1/2, sqrt(1/beta + eps_B^2)] | RMSE in bracket | z_B skewness | decision | time (s) |'
    )
    lines = [title, '', setting, '', header, '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lower, upper = (1000 * x for x in r['bracket'])
        lines.append(
            f'| {r["rule"]} | {r["n_data"]} | {r["refits"]} | {1000 * r["noise"]:.2f} | '
            f'{1000 * r["test_mean_eps_b"]:.2f} | {1000 * r["test_mae"]:.2f} | {1000 * r["test_rmse"]:.2f} | '
            f'[{lower:.2f}, {upper:.2f}] | {"yes" if r["in_bracket"] else "no"} | {r["z_b_skewness"]:.2f} | '
            f'{r["decision"]} | {r["seconds"]:.0f} |'
        )
    lines += ['', 'Paper (Callsen et al., trajectory-average rule): N_data, RMSE, beta^-1/2, mean eps_B', '']
    lines += ['| system | N_data | RMSE | beta^-1/2 | mean eps_B |', '|---|---|---|---|---|']
    lines += [f'| {name} | {n} | {rmse} | {noise} | {eps} |' for name, (n, rmse, noise, eps) in PAPER.items()]
    lines += [
        '',
        'Test RMSE (meV/A) of the fit on the first N structures of each run (the order they were labelled):',
        '',
    ]
    sizes = sorted({n for r in rows for n in r['learning_curve']})
    lines += ['| rule | ' + ' | '.join(f'N={n}' for n in sizes) + ' |', '|---|' + '---|' * len(sizes)]
    for r in rows:
        cells = [f'{1000 * r["learning_curve"][n]:.2f}' if n in r['learning_curve'] else '' for n in sizes]
        lines.append(f'| {r["rule"]} | ' + ' | '.join(cells) + ' |')
    first, second = rows
    ratio = second['n_data'] / first['n_data']
    rmse_ratio = second['test_rmse'] / first['test_rmse']
    lines += ['', f'N_data {second["rule"]} / {first["rule"]}: {ratio:.2f}; test RMSE ratio {rmse_ratio:.2f}.']
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse(argv)
    if args.cutoffs is None:
        args.cutoffs = [5.0, 4.0, 3.0] if args.system == 'si' else [5.5, 4.4, 3.4]
    primitive, ideal = silicon() if args.system == 'si' else cui()
    t0 = time.monotonic()
    test = test_frames(ideal, args)
    print(f'{len(test)} test frames of the ground truth in {time.monotonic() - t0:.0f} s', flush=True)
    rows, traces = [], {}
    for rule in ({'rule': 'trajectory_average', 'gamma': args.gamma, 'k': args.k}, {'rule': 'eps_min'}):
        row, trace = run_rule(rule, primitive, ideal, test, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
        traces.update(trace)
    text = table(rows, args)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    machine = f'{platform.processor() or platform.machine()}, OMP_NUM_THREADS=1'
    stem = RESULTS / f'dynamic_fc_{args.tag}'
    stem.with_suffix('.md').write_text(
        text + f'\nMachine: {machine}; `python benchmarks/dynamic_fc.py {" ".join(sys.argv[1:])}`\n'
    )
    stem.with_suffix('.json').write_text(json.dumps({'args': vars(args), 'rows': rows, 'machine': machine}, indent=1))
    np.savez_compressed(stem.with_suffix('.npz'), **traces)


if __name__ == '__main__':
    main()
