"""Hyperactive learning against plain MD: how many MD steps until the ensemble meets a frame it does not know.

From the same start structure and the same ensemble (an iteration of a finished active-learning run in
the AiiDA profile, e.g. the CuI main job), for each seed: Langevin MD on the ensemble mean, and the same
MD biased by E - tau sigma (adaptive tau), each until the first frame whose UCE_F^max passes the
acquisition threshold of that iteration (mu + s sigma of the test set; an uncertainty guard at that
threshold ends the run there), capped at ``--steps``. Same thermostat seed, same velocities at step 0,
so the runs differ only by the bias. Prints the median steps of both and their ratio, and writes
``benchmarks/results/hal_vs_md_<tag>.{json,md}``::

    OMP_NUM_THREADS=1 python benchmarks/hal_vs_md.py --al PK [--iteration 1] [--seeds 5] [--steps 400]

A run that reaches the cap without an uncertain frame counts as the cap (a lower bound: the median is
then a lower bound too, and the table says how many were capped). The second comparison of the issue
(labels to convergence, ``md`` vs ``hal``) is two whole loops: ``anharmal demo al --exploration hal`` and
the plain demo, compared with ``--compare MD_PK HAL_PK`` (their summaries side by side).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

RESULTS = Path(__file__).parent / 'results'


def iteration_inputs(node, iteration: int | None) -> dict:
    """The ensemble, threshold, start and MD settings of one iteration of an AL run."""
    from aiida_anharmal.core.learning.acquisition import check_acquisition_parameters

    names = sorted(node.outputs.iterations)
    name = names[-1] if iteration is None else f'iter_{iteration:02d}'
    outputs = node.outputs.iterations[name]
    acquisition = check_acquisition_parameters(node.inputs.acquisition.get_dict())
    stats = outputs['statistics'].get_dict()['uce_force_max']
    explore = node.inputs.explore
    return {
        'iteration': name,
        'ensemble': outputs['ensemble'],
        'threshold': stats['mean'] + acquisition['s'] * stats['std'],
        'start': node.inputs.structure.get_ase(),
        'temperature': float(explore.temperatures.get_list()[0]),
        'parameters': explore.parameters.get_dict(),
        'guards': explore.guards.get_dict() if 'guards' in explore else {},
        'harmonic': node.inputs.harmonic if 'harmonic' in node.inputs else None,
    }


def steps_to_uncertain(setting: dict, calculator, seed: int, steps: int, bias: dict | None) -> dict:
    """One run until the first frame above the threshold (or the cap); its step, why it stopped, its time."""
    from aiida_anharmal.core.md.loop import MDSettings, build_bias, read_frames, run_md
    from aiida_anharmal.core.md.stop_rules import build_stop_rules
    from aiida_anharmal.data.force_constants import harmonic_reference

    parameters = {**setting['parameters'], 'steps': steps, 'save_stride': 1, 'seed': seed}
    settings = MDSettings(**{**parameters, 'temperature': setting['temperature']})
    harmonic = harmonic_reference(setting['harmonic']) if setting['harmonic'] is not None else None
    guards = {**setting['guards'], 'max_uncertainty': setting['threshold']}
    # a trigger that never fires records max_i f_i (the relative force uncertainty) of every frame
    rules = build_stop_rules(guards, settings.temperature, harmonic, {'kind': 'max_relative', 'tol': 1e9})
    with tempfile.TemporaryDirectory() as folder:
        start = time.monotonic()
        result = run_md(setting['start'].copy(), calculator, settings, folder, rules, harmonic, bias=build_bias(bias))
        frames = read_frames(folder)
    tau = frames['tau'][-1] if bias else 0.0
    return {
        'seed': seed,
        'steps': int(result.last_step),
        'state': result.state,
        'reached': result.state == 'uncertainty_too_large',
        'uce_force_max': float(frames['uce_force_max'][-1]),
        # the stop frame has none (the guard fires before the trigger is read): the largest of the run before it
        'f_max_run': float(np.nanmax(frames['trigger_score'])) if len(frames['step']) > 1 else float('nan'),
        'tau_last': float(tau),
        'seconds': round(time.monotonic() - start, 1),
    }


def summary(runs: list[dict]) -> dict:
    steps = [r['steps'] for r in runs]
    return {
        'median_steps': statistics.median(steps),
        'steps': steps,
        'capped': sum(not r['reached'] for r in runs),
        'states': sorted({r['state'] for r in runs}),
        'median_f_max_run': statistics.median(r['f_max_run'] for r in runs),
    }


def compare_loops(md_pk: int, hal_pk: int) -> list[str]:
    """The two loops' summaries side by side: labels per iteration and the decisions."""
    from aiida import orm

    lines = [
        '| loop | iteration | training frames | selected | test F MAE (meV/A) | decision |',
        '|---|---|---|---|---|---|',
    ]
    for kind, pk in (('md', md_pk), ('hal', hal_pk)):
        node = orm.load_node(pk)
        for row in node.outputs.summary['rows']:
            lines.append(
                f'| {kind} <{pk}> | {row["iteration"]} | {row["training_frames"]} | {row["selected"]} | '
                f'{1000 * row["test_forces_mae"]:.1f} | {row["decision"]} |'
            )
        decision = node.outputs.convergence['reason']
        lines.append(f'| {kind} <{pk}> | final | {len(node.outputs.training_set)} | | | {decision} |')
    lines += [
        '',
        '| loop | validation MD: mean A of the final ensemble | frames with A > 1 | reference mean A |',
        '|---|---|---|---|',
    ]
    for kind, pk in (('md', md_pk), ('hal', hal_pk)):
        node = orm.load_node(pk)
        if 'validation' not in node.outputs:
            continue
        rows = {row['run']: row for row in node.outputs.validation['rows']}
        final, reference = rows.get('final', {}), rows.get('reference', {})
        lines.append(
            f'| {kind} <{pk}> | {final.get("a_mean", float("nan")):.3f} | '
            f'{100 * final.get("fraction_a_above_1", float("nan")):.0f} % | {reference.get("a_mean", float("nan")):.3f} |'
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--al', type=int, default=None, help='pk of a finished ActiveLearningWorkChain')
    parser.add_argument('--iteration', type=int, default=None, help='its iteration (default: the last)')
    parser.add_argument('--seeds', type=int, default=5, help='0: only --compare')
    parser.add_argument('--steps', type=int, default=400, help='cap of every run')
    parser.add_argument('--tau-r', type=float, default=0.1)
    parser.add_argument('--tau-hist', type=int, default=20)
    parser.add_argument('--compare', type=int, nargs=2, metavar=('MD_PK', 'HAL_PK'), default=None)
    parser.add_argument('--profile', default='anharmal')
    parser.add_argument('--tag', default='cpu-2core')
    args = parser.parse_args(argv)
    if (args.seeds and args.al is None) or (not args.seeds and not args.compare):
        parser.error('give --al PK (steps to the first uncertain frame) or --seeds 0 with --compare MD_PK HAL_PK')
    from aiida import load_profile, orm
    from member_recipes import machine

    load_profile(args.profile)
    if args.seeds == 0:  # only the two loops side by side
        lines = [f'# HAL vs MD: two loops side by side ({machine()["date"]})', '', *compare_loops(*args.compare)]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f'hal_vs_md_{args.tag}.md').write_text('\n'.join(lines) + '\n')
        print('\n'.join(lines))
        return 0
    setting = iteration_inputs(orm.load_node(args.al), args.iteration)
    calculator = setting['ensemble'].calculator()
    bias = {'kind': 'hal', 'tau_r': args.tau_r, 'tau_hist': args.tau_hist}
    print(f'{setting["iteration"]} of AL<{args.al}>: threshold UCE_F^max {1000 * setting["threshold"]:.1f} meV/A')
    runs = {'md': [], 'hal': []}
    for seed in range(args.seeds):
        for kind in ('md', 'hal'):
            run = steps_to_uncertain(setting, calculator, seed, args.steps, bias if kind == 'hal' else None)
            runs[kind].append(run)
            print(f'  seed {seed} {kind}: {run["steps"]} steps ({run["state"]}, {run["seconds"]} s)', flush=True)
    result = {kind: summary(r) for kind, r in runs.items()}
    ratio = result['md']['median_steps'] / max(result['hal']['median_steps'], 1)
    info = machine()
    report = {'machine': info, 'settings': {**vars(args), 'threshold': setting['threshold']}, 'runs': runs}
    report.update(summary=result, ratio_md_over_hal=ratio)
    lines = [
        f'# HAL vs MD: steps to the first uncertain frame ({info["date"]})',
        '',
        (
            f'Machine: {info["cpu"]}, {info["cores"]} cores. Ensemble and test-set threshold of {setting["iteration"]} '
            f'of ActiveLearningWorkChain<{args.al}> (UCE_F^max > {1000 * setting["threshold"]:.1f} meV/A), its start '
            f'structure and MD settings at {setting["temperature"]:.0f} K, cap {args.steps} steps; HAL: adaptive tau, '
            f'tau_r {args.tau_r}, tau_hist {args.tau_hist}.'
        ),
        '',
        "| exploration | median steps | per seed | capped | median of the runs' largest max_i f_i |",
        '|---|---|---|---|---|',
    ]
    for kind in ('md', 'hal'):
        r = result[kind]
        lines.append(
            f'| {kind} | {r["median_steps"]} | {r["steps"]} | {r["capped"]} of {args.seeds} | '
            f'{r["median_f_max_run"]:.3f} |'
        )
    lines += ['', f'Ratio md / hal of the median steps: **{ratio:.2f}**']
    if args.compare:
        lines += ['', '## Labels to convergence', '', *compare_loops(*args.compare)]
        report['compare'] = args.compare
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'hal_vs_md_{args.tag}.json').write_text(json.dumps(report, indent=1, default=float))
    (RESULTS / f'hal_vs_md_{args.tag}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
