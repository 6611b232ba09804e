"""Report of ``ensemble_eval.py``: the Markdown tables and file, the JSON file, the shared-machine note.

:func:`table` (every variant) and :func:`goal_lines` (the ratios against the issue's goals) are
printed by the benchmark and written into the Markdown file by :func:`write_markdown`, together
with the machine, the models and the method; :func:`write_report` writes the JSON (every timing)
and the Markdown file of a run.
"""

from __future__ import annotations

import json
from pathlib import Path


def table(results: list[dict]) -> list[str]:
    lines = [
        '| model | atoms | variant | torch threads | calls | median ms/call | min–max ms | / single |',
        '|---|---:|---|---:|---:|---:|---:|---:|',
    ]
    for res in results:
        for row in res['variants']:
            name = row['name'] if row['workers'] is None else f'ensemble W={row["workers"]}'
            names = {'single': 'single (a)', 'single_all': 'single, all cores', 'loop': f'loop of {res["n_members"]}'}
            name = names.get(name, name)
            lines.append(
                f'| {res["model"]} | {res["n_atoms"]} | {name} | {row["torch_threads"]} | {row["n_calls"]} | '
                f'{row["median_ms"]:.1f} | {row["min_ms"]:.1f}–{row["max_ms"]:.1f} | {row["ratio_to_single"]:.2f} |'
            )
    return lines


def goal_lines(results: list[dict]) -> list[str]:
    lines = [
        (
            '| model | atoms | loop/single (goal ≥ 6) | ensemble W=1 / single | ensemble best W / single (goal ≤ 3.5) '
            '| ensemble best W / single on all cores | other processes (cores busy) |'
        ),
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for res in results:
        rows = {r['name']: r for r in res['variants']}
        ens = [r for r in res['variants'] if r['workers'] is not None]
        best = min(ens, key=lambda r: r['ratio_to_single'])
        w1 = rows.get('ens_w1')
        other = res['machine_during'].get('other_cores_busy')
        w1_text = f'{w1["ratio_to_single"]:.2f}' if w1 else '–'
        verdict = 'met' if best['ratio_to_single'] <= 3.5 else 'not met'
        lines.append(
            f'| {res["model"]} | {res["n_atoms"]} | {rows["loop"]["ratio_to_single"]:.2f} | {w1_text} | '
            f'{best["ratio_to_single"]:.2f} (W={best["workers"]}, {verdict}) | '
            f'{best["median_ms"] / rows["single_all"]["median_ms"]:.2f} | '
            f'{other if other is not None else "n/a"} |'
        )
    return lines


def shared_note(results: list[dict]) -> str:
    """Whether other processes used the machine while the blocks ran, from the largest load of any block."""
    other = [r['machine_during'].get('other_cores_busy') for r in results]
    other = [x for x in other if x is not None]
    worst = max(other) if other else None
    if worst is None:
        return 'unknown (no /proc/stat)'
    if worst < 0.1:
        return f'no: other processes used at most {worst:.2f} cores on average during any block'
    return (
        f'yes: other processes used up to {worst:.2f} cores on average during a block '
        '(see the last column of the goal table); timings with all cores busy are affected most'
    )


def write_report(out_dir: Path, tag: str, report: dict) -> tuple[Path, Path]:
    """Write ``ensemble_eval_<tag>.json`` and ``.md`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f'ensemble_eval_{tag}.json'
    md_path = out_dir / f'ensemble_eval_{tag}.md'
    json_path.write_text(json.dumps(report, indent=1) + '\n')
    write_markdown(md_path, report)
    return json_path, md_path


def write_markdown(path: Path, report: dict) -> None:
    m = report['machine']
    a = report['settings']
    lines = [
        f'# Ensemble evaluation benchmark ({report["tag"]})',
        '',
        f'Date: {report["date"]}  ',
        f'Command: `{report["command"]}`  ',
        (
            f'Machine: {m["cpu_model"]}, {m["n_cores"]} cores available to the process ({m["os_cpu_count"]} online), '
            f'device `{a["device"]}`{", " + m["cuda_device"] if m.get("cuda_device") else ""}  '
        ),
        (
            f'Software: Python {m["python"]}, torch {m["torch"]}, nequip {m["nequip"]}, ase {m["ase"]}, '
            f'numpy {m["numpy"]}  '
        ),
        (
            'Threads: '
            + ', '.join(f'{k}={v}' for k, v in m['env'].items())
            + '; torch.set_num_threads as in the table '
            '(ensemble W>1: each member thread runs torch on 1 thread)  '
        ),
        f'Load (`uptime`, counts this benchmark too): at start `{m["uptime_before"]}`; at end `{m["uptime_after"]}`  ',
        f'Shared machine: {report["shared_note"]}',
        '',
        (
            'Per-call time of energy + forces (`calc.reset()` before every call, so the neighbour list and all '
            'members are recomputed). Ratios are medians divided by the median of (a) on 1 thread.'
        ),
        '',
        *table(report['results']),
        '',
        '## Against the goal of the issue',
        '',
        *goal_lines(report['results']),
        '',
        '## Models',
        '',
    ]
    for label, info in report['models'].items():
        lines.append(f'- `{label}`: {info["description"]}; {info["n_params"]} parameters per member')
    lines += _method_lines(report)
    path.write_text('\n'.join(lines))


def _method_lines(report: dict) -> list[str]:
    """The ``## Method`` section: structure, models, warm-up, timing, load, consistency, run time."""
    a = report['settings']
    measured = sum(r['machine_during']['wall_s'] for r in report['results'])
    busy_blocks = [
        f'{r["model"]}/{r["n_atoms"]} atoms ({r["machine_during"]["other_cores_busy"]:.2f} cores)'
        for r in report['results']
        if a['max_other_load'] is not None and r['machine_during'].get('other_cores_busy', 0.0) > a['max_other_load']
    ]
    return [
        '',
        '## Method',
        '',
        (
            f'- Structure: CuI zincblende, a = 6.05 Å, 8-atom cubic cell repeated n×n×n, rattled with stdev 0.05 Å '
            f'(seed {a["seed"]}).'
        ),
        (
            f'- Models: {a["members"]} members with random weights (seeds 0..{a["members"] - 1}), float64, eager mode; '
            '(a) uses member 0.'
        ),
        (
            f'- Warm-up: {a["warmup"]} untimed calls per variant, stopping after the first call slower than '
            f'{a["slow_call"]} s (one-off costs are a fraction of a second).'
        ),
        '- Timing: `time.perf_counter` around each call'
        + ('; `torch.cuda.synchronize()` before both readings' if a['device'].startswith('cuda') else '')
        + f'. Variants interleaved round robin in {a["slice_time"]} s slices; a variant stops once it has '
        f'≥ {a["min_calls"]} calls '
        f'and ≥ {a["min_time"]} s, or ≥ 2 calls and ≥ {a["max_time"]} s (slow variants).',
        (
            '- "other processes (cores busy)": CPU time used by all other processes during the block '
            '(/proc/stat busy time, steal included, minus this process), divided by the wall time.'
        ),
        (
            f'- Blocks during which other processes kept more than {a["max_other_load"]} cores busy were discarded '
            f'and measured again (up to {a["retries"]} times); discarded: '
            f'{sum(len(r["discarded_attempts"]) for r in report["results"])}.'
            + (
                ' Still busy on the last attempt, kept as measured: ' + ', '.join(busy_blocks) + '.'
                if busy_blocks
                else ''
            )
            if a['max_other_load'] is not None
            else '- Blocks were not re-measured when the machine was busy (no --max-other-load).'
        ),
        (
            '- Members of the ensemble were checked against the separate calculators: largest differences '
            f'{report["max_energy_diff"]:.2e} eV (energy), {report["max_force_diff"]:.2e} eV/Å (forces).'
        ),
        (
            f'- Run time: {measured:.0f} s for the blocks kept; {report["total_wall_s"]:.0f} s in all, including '
            'waits for an idle machine and discarded blocks.'
        ),
        '',
    ]
