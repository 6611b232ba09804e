"""The results of ``methods_head_to_head.py``: the json (curves averaged over seeds), the ``.md`` (with the spread
per seed) and the Fig. 8-style plot, all from the runs file (the resumable record of every run and its curve)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / 'results'
DATA = Path(__file__).parent / 'data'
COMMAND = 'OMP_NUM_THREADS=1 python benchmarks/methods_head_to_head.py run'
SCENARIO_NAMES = {'harmonic': 'harmonic start', 'aimd': 'aiMD start'}


def runs_path(tag: str) -> Path:
    return RESULTS / f'methods_head_to_head_{tag}_runs.json'


def contender_name(name: str, scenario: str) -> str:
    return f'{name} [{SCENARIO_NAMES[scenario]}]'


def collect(state: dict) -> dict:
    """{contender name: {scenario, name, seeds: {seed: curve}}} of every scored run."""
    out = {}
    for key, record in sorted(state['runs'].items()):
        if 'curve' not in record:
            continue
        scenario, name, seed = key.split('/')
        entry = out.setdefault(contender_name(name, scenario), {'scenario': scenario, 'name': name, 'seeds': {}})
        entry['seeds'][int(seed)] = record['curve']
    return out


def averaged(curves: list[list[dict]]) -> list[dict]:
    """The point-wise mean of the seeds' curves (each key; up to the shortest curve)."""
    n = min(len(c) for c in curves)
    points = []
    for i in range(n):
        point = {}
        for key in curves[0][i]:
            values = [c[i][key] for c in curves if c[i][key] is not None]
            point[key] = round(float(np.mean(values)), 4) if values else None
        point['labels'] = round(point['labels'])
        points.append(point)
    return points


def results(state: dict) -> dict:
    summary = json.loads((DATA / 'cui_rare_event_test_set.json').read_text())
    return {
        'test_set': {part: summary['frames'][part] for part in ('thermal', 'defect', 'path')},
        'contenders': {
            name: {
                'scenario': entry['scenario'],
                'seeds': sorted(entry['seeds']),
                'curve': averaged([entry['seeds'][s] for s in sorted(entry['seeds'])]),
            }
            for name, entry in collect(state).items()
        },
    }


COLUMNS = (
    ('labels', 'labels', '{:.0f}'),
    ('energy_mae_thermal', 'E thermal', '{:.2f}'),
    ('energy_mae_defect', 'E defect', '{:.2f}'),
    ('energy_mae_path', 'E path', '{:.2f}'),
    ('force_mae_thermal', 'F thermal', '{:.1f}'),
    ('force_mae_defect', 'F defect', '{:.1f}'),
    ('defect_energy_error', 'dE_FP (eV)', '{:+.3f}'),
    ('minutes', 'min', '{:.1f}'),
)


def _cell(values: list, fmt: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    if len(set(values)) == 1:
        return fmt.format(float(np.mean(values)))
    return f'{fmt.format(float(np.mean(values)))} ({fmt.format(min(values))}..{fmt.format(max(values))})'


def markdown(state: dict, tag: str) -> str:
    data = results(state)
    lines = [
        '# Methods head to head on the CuI rare-event test set',
        '',
        (
            f'Test set: {data["test_set"]["thermal"]} thermal, {data["test_set"]["defect"]} defect-basin and '
            f'{data["test_set"]["path"]} path frames of the CuI reference model (benchmarks/data). Energies meV/atom, '
            'forces meV/A, the Frenkel-pair energy error dE_FP in eV (the potential at the reference-relaxed '
            'geometries minus the reference 0.514 eV); labels: training frames; minutes: wall time from the start of '
            'the initial ensemble, two runs sharing the 2 cores. Each cell: the mean over seeds (min..max).'
        ),
        '',
    ]
    entries = collect(state)
    header = '| ' + ' | '.join(title for _, title, _ in COLUMNS) + ' |'
    for name, entry in entries.items():
        seeds = sorted(entry['seeds'])
        lines += [f'## {name}, seeds {seeds}', '', header, '|' + '---|' * len(COLUMNS)]
        curves = [entry['seeds'][s] for s in seeds]
        for i in range(min(len(c) for c in curves)):
            cells = [_cell([c[i][key] for c in curves], fmt) for key, _, fmt in COLUMNS]
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    missing = sorted(key for key, record in state['runs'].items() if 'curve' not in record)
    if missing:
        lines += [f'Not yet scored: {", ".join(missing)}.', '']
    machine = state.get('machine', {})
    lines += [f'Machine: {machine}', '', f'Command: `{COMMAND} --tag {tag}` (resumable), then `report`.']
    return '\n'.join(lines) + '\n'


def plot(state: dict, path: Path) -> Path:
    """Energy MAE on the defect and on the path frames against labels, one line per contender (Kang et al. Fig. 8)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    data = results(state)['contenders']
    figure, axes = plt.subplots(1, 4, figsize=(19, 4.5))
    panels = (
        ('energy_mae_thermal', 'thermal frames'),
        ('energy_mae_defect', 'defect-basin frames'),
        ('energy_mae_path', 'NEB path frames'),
        ('defect_energy_error', 'Frenkel-pair energy error'),
    )
    methods = sorted({name.split(' [')[0] for name in data})  # one colour per method, a line style per scenario
    colours = {method: f'C{k}' for k, method in enumerate(methods)}
    for (key, title), axis in zip(panels, axes):
        for name, entry in data.items():
            labels = [p['labels'] for p in entry['curve']]
            style = '--' if entry['scenario'] == 'aimd' else '-'
            colour = colours[name.split(' [')[0]]
            axis.plot(labels, [p[key] for p in entry['curve']], style, color=colour, marker='o', label=name)
        if key == 'defect_energy_error':
            axis.axhline(0.0, color='black', lw=0.8)
            axis.set(xlabel='training labels', ylabel='E_FP(potential) - E_FP(reference) (eV)', title=title)
        else:
            axis.set(xlabel='training labels', ylabel='energy MAE (meV/atom)', title=title, yscale='log')
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_results(state: dict, tag: str) -> None:
    if not any('curve' in record for record in state['runs'].values()):
        return
    stem = RESULTS / f'methods_head_to_head_{tag}'
    Path(f'{stem}.json').write_text(json.dumps(results(state), indent=1))
    Path(f'{stem}.md').write_text(markdown(state, tag))
    plot(state, Path(f'{stem}.png'))
    print(f'wrote {stem}.json, .md, .png', flush=True)
