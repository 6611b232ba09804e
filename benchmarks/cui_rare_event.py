"""Rare events on CuI: which exploration reaches the Frenkel-pair basin, and what the main job made of it.

``reach``: from one iteration's ensemble of a finished main job (default: the last), each exploration
option runs Langevin MD (or HAL) from the ideal crystal, per seed, until the first frame with a Cu atom
in the basin of an empty tetrahedral site coordinated by I (the Frenkel pair;
``aiida_anharmal.core.structures.defects.cui_frenkel_basin``), capped at ``--steps``. The same run records where
the loop's ``uncertainty`` trigger (UCE_F^max above mu + s sigma of that iteration's test set for
``--patience`` steps) would have stopped it. Prints per option the steps (and seconds) to the basin
and to the trigger; writes ``results/cui_rare_event_reach_<tag>.{json,md}``::

    OMP_NUM_THREADS=1 python benchmarks/cui_rare_event.py reach --al PK [--iteration 3] [--seeds 3] [--steps 2000]

``record``: the results of a finished main job (``anharmal demo al``) with fixed keys: the
reference's defect energy and barrier, per iteration the labels, the ensemble's own defect energy
and barrier and the largest UCE_F^max along its path, the final ones, the decision, the labels in all
and the minutes; ``results/cui_rare_event_<tag>.json`` and a ``.md`` beside it::

    python benchmarks/cui_rare_event.py record --al PK [--minutes M] [--command '...']
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

#: The exploration options of ``reach``: (temperature in K, HAL bias or None).
OPTIONS = {
    'md_300K': (300.0, None),
    'md_600K': (600.0, None),
    'md_900K': (900.0, None),
    'hal_300K': (300.0, {'kind': 'hal', 'tau_r': 0.25, 'tau_hist': 10}),
    'hal_600K': (600.0, {'kind': 'hal', 'tau_r': 0.25, 'tau_hist': 10}),
}


class BasinStop:
    """A duck-typed MD guard: stops the run at the first frame with a Cu atom in a Frenkel-pair basin."""

    reason = 'defect_basin'
    refit = None

    def __init__(self, pristine, lattice_constant: float):
        self.pristine, self.lattice_constant = pristine, lattice_constant

    def check(self, atoms, prediction) -> str | None:
        from aiida_anharmal.core.structures.defects import cui_frenkel_basin

        found = cui_frenkel_basin(atoms, self.pristine, self.lattice_constant)
        return f'Cu {found[0][0]} in an interstitial basin' if found else None


def first_trigger(uce, threshold: float, patience: int) -> int | None:
    """The first frame (every step saved) at which UCE_F^max has been above ``threshold`` for ``patience`` steps."""
    above = 0
    for k, value in enumerate(uce):
        above = above + 1 if value > threshold else 0
        if above >= patience:
            return k
    return None


def reach_run(setting: dict, calculator, option: str, seed: int, steps: int, patience: int) -> dict:
    """One run of ``option`` until the basin or the cap: its steps and seconds to the basin and to the trigger."""
    from aiida_anharmal.core.md.loop import MDSettings, build_bias, read_frames, run_md
    from aiida_anharmal.core.md.stop_rules import build_stop_rules

    temperature, bias = OPTIONS[option]
    parameters = {**setting['parameters'], 'steps': steps, 'save_stride': 1, 'seed': seed}
    settings = MDSettings(**{**parameters, 'temperature': temperature})
    rules = build_stop_rules({'max_uncertainty': None}, temperature)  # the not-finite and distance guards
    rules.append(BasinStop(setting['start'], setting['lattice_constant']))
    with tempfile.TemporaryDirectory() as folder:
        start = time.monotonic()
        result = run_md(setting['start'].copy(), calculator, settings, folder, rules, bias=build_bias(bias))
        seconds = time.monotonic() - start
        frames = read_frames(folder)
    per_step = seconds / max(int(result.last_step), 1)
    threshold = setting['threshold'] * (temperature / setting['test_temperature']) ** setting['exponent']
    trigger = first_trigger(frames['uce_force_max'], threshold, patience)
    basin = int(result.last_step) if result.state == BasinStop.reason else None
    return {
        'option': option,
        'seed': seed,
        'state': result.state,
        'basin_step': basin,
        'basin_seconds': None if basin is None else round(basin * per_step, 1),
        'trigger_step': None if trigger is None else int(frames['step'][trigger]),
        'trigger_seconds': None if trigger is None else round(int(frames['step'][trigger]) * per_step, 1),
        'uce_at_stop': float(frames['uce_force_max'][-1]),
        'energy_drop': float(frames['energy'][-1] - frames['energy'][0]),
        'seconds': round(seconds, 1),
    }


def reach(args) -> int:
    from aiida import orm
    from hal_vs_md import iteration_inputs
    from member_recipes import machine

    from aiida_anharmal.cli.demo_al import CUI_LATTICE_CONSTANT

    node = orm.load_node(args.al)
    setting = iteration_inputs(node, args.iteration)
    setting.update(lattice_constant=CUI_LATTICE_CONSTANT, exponent=args.exponent, test_temperature=300.0)
    calculator = setting['ensemble'].calculator()
    threshold = setting['threshold']
    print(f'{setting["iteration"]} of AL<{args.al}>: trigger UCE_F^max > {1000 * threshold:.1f} meV/A', flush=True)
    runs = []
    for option in args.options:
        for seed in range(args.seeds):
            run = reach_run(setting, calculator, option, seed, args.steps, args.patience)
            runs.append(run)
            print(
                f'  {option} seed {seed}: basin at step {run["basin_step"]} ({run["state"]}), trigger at step '
                f'{run["trigger_step"]}, {run["seconds"]} s',
                flush=True,
            )
    info = machine()
    lines = [
        f'# CuI: steps to the Frenkel-pair basin per exploration option ({info["date"]})',
        '',
        (
            f'Machine: {info["cpu"]}, {info["cores"]} cores. Ensemble of {setting["iteration"]} of '
            f'ActiveLearningWorkChain<{args.al}>; from the ideal 64-atom crystal, Langevin 5 fs, friction 0.00295/fs '
            f'(HAL: adaptive tau, tau_r 0.25, tau_hist 10), cap {args.steps} steps ({args.steps * 5 / 1000:g} ps). '
            f'Basin: a Cu nearer to an empty I-coordinated tetrahedral site than to any Cu site. Trigger: UCE_F^max > '
            f'{1000 * threshold:.1f} meV/A (mu + 2 sigma of the 300 K test set) times (T / 300 K)^{args.exponent:g} '
            f'for {args.patience} steps.'
        ),
        '',
        (
            f'Command: `python benchmarks/cui_rare_event.py reach --al {args.al} --seeds {args.seeds} --steps {args.steps} '
            f'--exponent {args.exponent:g}`'
        ),
        '',
        (
            '| option | runs in the basin | steps to the basin (median of those) | seconds | steps to the trigger '
            '(median) | runs triggered |'
        ),
        '|---|---|---|---|---|---|',
    ]
    for option in args.options:
        mine = [r for r in runs if r['option'] == option]
        reached = [r for r in mine if r['basin_step'] is not None]
        triggered = [r for r in mine if r['trigger_step'] is not None]

        def median(rows, key):
            return f'{statistics.median(r[key] for r in rows):g}' if rows else '-'

        lines.append(
            f'| {option} | {len(reached)} of {len(mine)} | {median(reached, "basin_step")} | '
            f'{median(reached, "basin_seconds")} | {median(triggered, "trigger_step")} | {len(triggered)} of {len(mine)} |'
        )
    report = {
        'machine': info,
        'al': args.al,
        'iteration': setting['iteration'],
        'threshold': threshold,
        'exponent': args.exponent,
        'runs': runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f'cui_rare_event_reach_{args.tag}.json').write_text(json.dumps(report, indent=1))
    (RESULTS / f'cui_rare_event_reach_{args.tag}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


def record(args) -> int:
    from aiida import orm
    from member_recipes import machine

    from aiida_anharmal.analysis.neb import rare_event_record

    node = orm.load_node(args.al)
    result = rare_event_record(node, args.minutes)
    info = machine()
    lines = [
        f'# CuI rare event: the main job ({info["date"]})',
        '',
        f'Machine: {info["cpu"]}, {info["cores"]} cores. ActiveLearningWorkChain<{args.al}>.',
        '',
        f'Command: `{args.command}`',
        '',
        (
            f'Reference model: defect energy {result["reference"]["defect_energy"]:.3f} eV, barrier '
            f'{result["reference"]["barrier"]:.3f} eV.'
        ),
        '',
        '| iteration | labels | defect energy (eV) | barrier (eV) | max UCE_F^max on the path (eV/A) |',
        '|---|---|---|---|---|',
    ]
    for row in result['iterations']:
        lines.append(
            f'| {row["iteration"]} | {row["labels"]} | {row["defect_energy"]:.3f} | {row["barrier"]:.3f} | '
            f'{row["max_uce_path"]:.3f} |'
        )
    final = result['final']
    lines += [
        '',
        (
            f'Final ensemble: defect energy {final["defect_energy"]:.3f} eV, barrier {final["barrier"]:.3f} eV. '
            f'Decision: {result["decision"]}. Labels in all: {result["labels_total"]}. Minutes: {result["minutes"]}.'
        ),
    ]
    RESULTS.mkdir(exist_ok=True)
    result_path = RESULTS / f'cui_rare_event_{args.tag}.json'
    result_path.write_text(json.dumps(result, indent=1))
    (RESULTS / f'cui_rare_event_{args.tag}.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print(f'wrote {result_path}')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--profile', default='anharmal')
    parser.add_argument('--tag', default='cpu-2core')
    sub = parser.add_subparsers(dest='action', required=True)
    one = sub.add_parser('reach', help='steps to the Frenkel-pair basin per exploration option')
    one.add_argument('--al', type=int, required=True, help='pk of a finished ActiveLearningWorkChain (CuI)')
    one.add_argument('--iteration', type=int, default=None, help='its iteration (default: the last)')
    one.add_argument('--seeds', type=int, default=3)
    one.add_argument('--steps', type=int, default=2000, help='cap of every run (5 fs steps)')
    one.add_argument('--patience', type=int, default=3, help='steps above the threshold for the trigger')
    one.add_argument('--options', nargs='+', default=list(OPTIONS), choices=list(OPTIONS))
    one.add_argument(
        '--exponent', type=float, default=0.0, help='trigger threshold times (T / 300 K) ** exponent at T (0: as is)'
    )
    two = sub.add_parser('record', help='the results of a finished main job')
    two.add_argument('--al', type=int, required=True)
    two.add_argument('--minutes', type=float, required=True, help='wall time of the main job (minutes)')
    two.add_argument('--command', default='bash scripts/main.sh', help='what was run')
    args = parser.parse_args(argv)
    from aiida import load_profile

    load_profile(args.profile)
    np.seterr(all='ignore')
    return reach(args) if args.action == 'reach' else record(args)


if __name__ == '__main__':
    sys.exit(main())
