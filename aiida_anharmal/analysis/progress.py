"""What a running workchain is doing now: its stage and the progress of each running job.

Read from the graph (which processes run, what they reported last) and, for jobs on a computer with the
``core.local`` transport, from the files the programs write as they go: a training job's epoch (the CSV log of
its trainer) against its epoch cap, an MD job's step (its checkpoint) against its length, a label job's
finished structures. Jobs elsewhere show their scheduler state only (reading a cluster's scratch would open
an SSH connection per refresh).
"""

from __future__ import annotations

import json
from pathlib import Path

#: how deep the tree of running processes is shown
MAX_DEPTH = 5


def _running_children(node) -> list:
    return [child for child in node.called if not child.is_terminated]


def _last_report(node) -> str | None:
    from aiida import orm

    logs = orm.Log.collection.get_logs_for(node)
    return logs[-1].message if logs else None


def _local_workdir(calc) -> Path | None:
    """The job's working directory if it is on this machine and exists."""
    computer = calc.computer
    if computer is None or computer.transport_type != 'core.local':
        return None
    path = calc.get_remote_workdir()
    return Path(path) if path and Path(path).is_dir() else None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not written yet, or being written


def train_progress(workdir: Path) -> str | None:
    """``epoch E of N`` of a running training job, from its trainer's CSV log and its settings."""
    config = _read_json(workdir / 'aiida.json') or {}
    hyper = config.get('hyperparameters', {})
    cap = hyper.get('finetune_max_epochs') if config.get('parent_file') else hyper.get('max_epochs')
    log = workdir / 'run' / 'csvlog' / 'metrics.csv'
    epoch = None
    try:
        lines = log.read_text().splitlines()
        if len(lines) > 1:
            epoch = int(lines[-1].split(',')[0]) + 1
    except (OSError, ValueError):
        pass
    if epoch is None:
        return 'setting up' if cap is None else f'epoch 0 of {cap}'
    return f'epoch {epoch}' + (f' of {cap}' if cap else '')


def md_progress(workdir: Path) -> str | None:
    """``step S of N`` of a running MD job, from its checkpoint and its settings."""
    config = _read_json(workdir / 'aiida.json') or {}
    steps = (config.get('md') or {}).get('steps')
    checkpoint = _read_json(workdir / 'checkpoint.json')
    if checkpoint is None:
        return 'starting'
    return f'step {checkpoint.get("step", "?")}' + (f' of {steps}' if steps else '')


def label_progress(workdir: Path) -> str | None:
    """``S structures labelled`` of a running label job (its labels file grows a line per structure)."""
    labels = workdir / 'labels.jsonl'
    if not labels.exists():
        return 'labelling the first structure'
    return f'{sum(1 for _ in labels.open())} structure(s) labelled'


PROGRESS = {'TrainCalculation': train_progress, 'MDCalculation': md_progress, 'LabelCalculation': label_progress}


def job_line(calc) -> str:
    """One line for a running CalcJob: its state and, on this machine, how far it got."""
    state = calc.process_status or (calc.process_state.value if calc.process_state else '?')
    reader = PROGRESS.get(calc.process_label)
    workdir = _local_workdir(calc) if reader else None
    done = reader(workdir) if workdir is not None else None
    return f'{calc.process_label}<{calc.pk}>: ' + (done if done else state)


def workchain_line(node) -> str:
    """One line for a running workchain: how many of its children finished, and for an ensemble its size."""
    called = node.called
    finished = sum(1 for child in called if child.is_terminated)
    line = f'{node.process_label}<{node.pk}>'
    if node.process_label == 'EnsembleWorkChain':
        from ..ports import input_value
        from ..workflows.ensemble import EnsembleWorkChain

        n_sub = input_value(node.inputs, 'n_sub', EnsembleWorkChain)
        seeds = input_value(node.inputs, 'seeds', EnsembleWorkChain)
        members = [c for c in called if c.process_label == 'TrainBaseWorkChain']
        done = sum(1 for c in members if c.is_terminated)
        return f'{line}: training, {done} of {n_sub * len(seeds)} members done'
    if called:
        line += f': {finished} of {len(called)} sub-processes done'
    return line


def progress_lines(node, depth: int = 0) -> list[str]:
    """The tree of running processes under ``node`` (itself first), one line each, indented by depth."""
    from aiida import orm

    if node.is_terminated:
        return []
    indent = '  ' * depth
    if isinstance(node, orm.CalcJobNode):
        return [indent + job_line(node)]
    lines = [indent + workchain_line(node)]
    if depth == 0:
        report = _last_report(node)
        if report:
            lines.append(f'  last report: {report}')
    if depth < MAX_DEPTH:
        for child in _running_children(node):
            lines += progress_lines(child, depth + 1)
    return lines
