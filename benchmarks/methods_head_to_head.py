"""The three methods head to head on a rare-event test set of CuI (Kang et al., Fig. 8, and beyond it).

``test-set``: the rare-event test set, labelled by the bundled CuI reference model (the ground truth of
the main job) and written once to ``benchmarks/data/cui_rare_event_test_set.extxyz`` (origins as
``origin_*`` columns; :mod:`aiida_anharmal.core.learning.rare_event_set`):

* ``thermal``: the reference model's Langevin MD of the 64-atom crystal at 300 K (seed 11; neither the
  loop's test MD, seed 1, nor its validation MD, seed 0), a frame every 50 fs after 250 fs;
* ``defect``: its MD at 300 K from the relaxed Frenkel pair (seed 12), a frame every 50 fs after 50 fs,
  only frames whose Cu still sits in an interstitial basin (``cui_frenkel_basin``);
* ``path``: the images of its own climbing-image NEB from the relaxed crystal to the relaxed Frenkel pair.

The relaxed crystal, the relaxed Frenkel pair and the reference defect energy are written beside it
(``cui_rare_event_ends.extxyz``, ``cui_rare_event_test_set.json`` with the frame counts and the cost)::

    OMP_NUM_THREADS=1 python benchmarks/methods_head_to_head.py test-set [--steps 450] [--defect-steps 250]

``pool``: the aiMD frames of the comparison (``benchmarks/data/cui_aimd_pool.extxyz``), the reference model's MD
at 300 K from its relaxed crystal (seed 21); the loops' yardstick test set, the aiMD initial data and the aiMD
random draws are disjoint slices of it (``_head_to_head.pool_slices``).

``run``: the contenders (``_head_to_head.CONTENDERS``: AL with UCE_F^max, UCE_A and UCE_U, MLIP-MD random,
aiMD random, HAL, the temperature ladder, the Bayesian force-constant model) from each scenario's shared start
(``harmonic``: 20 harmonic samples, the main job's start; ``aimd``: 20 aiMD frames), each seed a run through the
daemon of the profile ``anharmal setup`` made; every finished run is scored on the test set (a learning curve
of :data:`~aiida_anharmal.core.learning.rare_event_set.CURVE_KEYS`) and written to
``benchmarks/results/methods_head_to_head_<tag>_runs.json``; rerun the same command to resume (runs with a curve
are skipped, submitted ones awaited; on another machine the missing ones are submitted again from a new shared
start). After each run: ``methods_head_to_head_<tag>.{json,md,png}`` (``_head_to_head_report``)::

    OMP_NUM_THREADS=1 python benchmarks/methods_head_to_head.py run [--scenarios harmonic aimd] [--seeds 0 1]
        [--contenders 'AL UCE_F^max' 'aiMD rdm'] [--parallel 2] [--retry-failed]
    python benchmarks/methods_head_to_head.py report      # the results files again, from the runs file
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
POOL = DATA / 'cui_aimd_pool.extxyz'


def make_test_set(args) -> int:
    from ase.io import write
    from cui_defect import reference_neb, relax_defect
    from member_recipes import machine

    from aiida_anharmal.core.learning.rare_event_set import labelled_copy, md_part, parts_of, path_part
    from aiida_anharmal.core.structures.defects import cui_frenkel_basin, cui_frenkel_pair
    from aiida_anharmal.core.structures.frames import Frames

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


def make_pool(args) -> int:
    """The aiMD frames of the comparison: the reference model's Langevin MD at 300 K from its relaxed crystal
    (seed 21: neither the test set's 11 and 12 nor a loop's), a frame every 25 fs after 200 fs; the contenders
    take their yardstick, the aiMD initial data and the aiMD random draws from disjoint slices of it."""
    from ase.io import read

    from aiida_anharmal.core.learning.rare_event_set import md_frames

    crystal = read(ENDS, index=0)
    calculator = reference_calculator()
    start = time.monotonic()
    pool = md_frames(
        crystal, calculator, 'aimd', temperature=300.0, steps=args.steps, save_stride=5, equilibration=200.0,
        seed=21,
    )  # fmt: skip
    seconds = time.monotonic() - start
    pool.write_extxyz(POOL)
    print(f'aiMD pool: {len(pool)} frames in {seconds:.0f} s -> {POOL}')
    return 0


def load_setup(state: dict, scenario: str, pool):
    """The scenario's setup (its nodes), submitted if this profile lacks it; ``None`` while its ensemble trains."""
    from _head_to_head import submit_setup, wait_for
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    uuids = state['setup'].get(scenario)
    try:
        setup = {key: orm.load_node(uuid) for key, uuid in (uuids or {}).items()}
    except NotExistent:  # a new machine: the committed runs file names nodes of another profile
        setup = {}
    if not setup:
        setup = submit_setup(scenario, pool)
        state['setup'][scenario] = {key: node.uuid for key, node in setup.items()}
        print(f'{scenario}: initial ensemble EnsembleWorkChain<{setup["ensemble"].pk}> submitted', flush=True)
    if not setup['ensemble'].is_terminated:
        return None
    wait_for([setup['ensemble']])
    return setup


def run(args) -> int:
    """Submit every missing contender x scenario x seed through the daemon, ``--parallel`` at a time; score each
    finished one on the test set; the runs file is rewritten after every change (rerun to resume)."""
    from _head_to_head import CONTENDERS, Job
    from _head_to_head_report import runs_path, write_results
    from aiida import load_profile
    from aiida.engine.daemon.client import get_daemon_client
    from ase.io import read

    from aiida_anharmal.cli.setup import DEFAULT_PROFILE
    from aiida_anharmal.core.structures.frames import Frames

    profile = load_profile(args.profile or DEFAULT_PROFILE, allow_switch=True)
    if not get_daemon_client(profile.name).is_daemon_running:
        raise SystemExit('the daemon is not running: run `anharmal setup` first')
    unknown = sorted(set(args.contenders) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f'unknown contender(s) {unknown}; known: {list(CONTENDERS)}')
    path = runs_path(args.tag)
    state = json.loads(path.read_text()) if path.exists() else {'setup': {}, 'runs': {}}
    from member_recipes import machine

    state['machine'] = machine()
    pool, test_set = Frames.read_extxyz(POOL), Frames.read_extxyz(TEST_SET)
    crystal, defect = read(ENDS, ':')
    ends = (crystal, defect, json.loads(SUMMARY.read_text())['defect_energy'])

    jobs = [
        Job(name, scenario, seed, state['runs'].setdefault(f'{scenario}/{name}/{seed}', {}))
        for scenario in args.scenarios for seed in args.seeds for name in args.contenders
        if not (name == 'Bayesian FC' and (scenario != 'harmonic' or seed != args.seeds[0]))
    ]  # fmt: skip
    for job in jobs:
        if args.retry_failed and 'failed' in job.record:
            job.record.clear()
    pending, setups = [job for job in jobs if not job.done], {}
    print(f'{len(jobs) - len(pending)} of {len(jobs)} runs already scored', flush=True)
    while pending:
        started = [job for job in pending if job.record.get('submitted')]
        waiting = [job for job in pending if not job.record.get('submitted')]
        for job in started + waiting[: max(0, args.parallel - len(started))]:
            if job.scenario not in setups or setups[job.scenario] is None:
                setups[job.scenario] = load_setup(state, job.scenario, pool)
            if setups[job.scenario] is not None and job.advance(setups[job.scenario], pool, test_set, ends):
                last = job.record['failed'] if 'failed' in job.record else job.record['curve'][-1]
                print(f'{job.scenario}/{job.name}/{job.seed}: {last}', flush=True)
                pending.remove(job)
                write_results(state, args.tag)
        path.write_text(json.dumps(state, indent=1))
        time.sleep(0 if not pending else args.poll)
    write_results(state, args.tag)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    test_set = commands.add_parser('test-set', help='make the rare-event test set of CuI (once)')
    test_set.add_argument('--steps', type=int, default=450, help='steps of the thermal MD (5 fs)')
    test_set.add_argument('--defect-steps', type=int, default=250, help='steps of the MD in the defect basin')
    test_set.add_argument('--images', type=int, default=5, help='NEB images between the end points')
    pool = commands.add_parser('pool', help="make the aiMD frames (the reference model's MD) of the comparison (once)")
    pool.add_argument('--steps', type=int, default=640, help='steps of the MD (5 fs)')
    runner = commands.add_parser('run', help='run the missing contenders through the daemon, then write the results')
    runner.add_argument('--tag', default='cpu-2core', help='machine tag of the results files')
    runner.add_argument('--profile', default=None, help='AiiDA profile (default: the one `anharmal setup` made)')
    runner.add_argument('--scenarios', nargs='+', default=['harmonic'], choices=['harmonic', 'aimd'])
    runner.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    runner.add_argument('--contenders', nargs='+', default=None, help='names (default: all)')
    runner.add_argument('--parallel', type=int, default=2, help='runs at once')
    runner.add_argument('--retry-failed', action='store_true', help='submit again the runs that failed before')
    runner.add_argument('--poll', type=float, default=20.0, help='seconds between looks at the daemon')
    report = commands.add_parser('report', help='(re)write the results files and the plot from the runs file')
    report.add_argument('--tag', default='cpu-2core')
    args = parser.parse_args(argv)
    if args.command == 'run' and args.contenders is None:
        from _head_to_head import CONTENDERS

        args.contenders = list(CONTENDERS)
    return {'test-set': make_test_set, 'pool': make_pool, 'run': run, 'report': report_only}[args.command](args)


def report_only(args) -> int:
    from _head_to_head_report import runs_path, write_results

    write_results(json.loads(runs_path(args.tag).read_text()), args.tag)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
