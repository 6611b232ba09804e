"""Where the time of an active-learning run went, read from the provenance graph (``anharmal al timing``).

Each step of an iteration is a called process with a link label (``ensemble_NN``, ``test_set_NN``,
``explore_NN``, ``label_NN``); its wall time is the span from its creation to its last change. An
iteration runs from the creation of its first process to the creation of the next iteration's
first (or of the validation, or the loop's end); what its steps do not cover is ``other``: the
workchain's own steps, calcfunctions (acquisition, calibration, merge, convergence) and the
daemon's gaps between processes. For training it also reads the members' own metrics: the mean
seconds of ``nequip-train`` (epochs and start-up) and of packaging per member.
"""

from __future__ import annotations

import re

STEPS = (('training', 'ensemble'), ('evaluation', 'test_set'), ('md', 'explore'), ('labelling', 'label'))
COLUMNS = 'iter  total (s)  training  evaluation      md  labelling   other  per member: nequip-train / package (s)'


def _span(node) -> float:
    return (node.mtime - node.ctime).total_seconds()


def _calls(node):
    from aiida.common.links import LinkType

    return node.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()


def _called(node) -> dict[str, object]:
    """The finished processes ``node`` called, by link label."""
    return {link.link_label: link.node for link in _calls(node) if link.node.is_terminated}


def _member_stages(ensemble_wc) -> tuple[float | None, float | None]:
    """Mean seconds of the nequip-train and nequip-package stages over the members of an EnsembleWorkChain."""
    train, package = [], []
    for node in ensemble_wc.called_descendants:  # each member's TrainCalculation, under its TrainBaseWorkChain
        if node.process_label != 'TrainCalculation' or 'metrics' not in node.outputs:
            continue
        stages = node.outputs.metrics.get('stages', {})
        if 'nequip-train' in stages:
            train.append(stages['nequip-train'])
        if 'nequip-package' in stages:
            package.append(stages['nequip-package'])
    return _mean(train), _mean(package)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def timing_rows(node) -> list[dict]:
    """Per iteration: total, training, evaluation, md, labelling and other seconds, and the member stages."""
    called = _called(node)
    pattern = re.compile(r'^(ensemble|test_set|explore|label)_(\d\d)$')
    iterations: dict[int, dict] = {}
    for label, child in called.items():
        match = pattern.match(label)
        if match:
            iterations.setdefault(int(match.group(2)), {})[match.group(1)] = child
    starts = {k: min(c.ctime for c in steps.values()) for k, steps in iterations.items()}
    ends = sorted(starts.values())[1:]
    closing = [called[name].ctime for name in ('validation',) if name in called]
    ends.append(min(closing) if closing else node.mtime)
    rows = []
    for (k, steps), end in zip(sorted(iterations.items()), ends, strict=True):
        row = {'iteration': k, 'total': (end - starts[k]).total_seconds()}
        for name, prefix in STEPS:
            row[name] = _span(steps[prefix]) if prefix in steps else 0.0
        row['other'] = row['total'] - sum(row[name] for name, _ in STEPS)
        row['member_train'], row['member_package'] = (
            _member_stages(steps['ensemble']) if 'ensemble' in steps else (None, None)
        )
        rows.append(row)
    return rows


def run_spans(node) -> dict[str, float]:
    """Wall seconds of the whole run, the initial data, the ground-truth MD and the validation."""
    called = _called(node)
    spans = {'whole run': _span(node)}
    for name, label in (
        ('initial_data', 'initial data'),
        ('validation_ground_truth', 'ground-truth MD'),
        ('validation', 'validation'),
    ):
        if name in called:
            spans[label] = _span(called[name])
    return spans


def timing_lines(node) -> list[str]:
    lines = [COLUMNS]
    for r in timing_rows(node):
        stages = '-'
        if r['member_train'] is not None:
            stages = f'{r["member_train"]:.0f} / {r["member_package"] or 0:.1f}'
        lines.append(
            f'{r["iteration"]:4d}  {r["total"]:9.0f}  {r["training"]:8.0f}  {r["evaluation"]:10.0f}  {r["md"]:6.0f}  '
            f'{r["labelling"]:9.0f}  {r["other"]:6.0f}  {stages}'
        )
    spans = run_spans(node)
    lines.append('; '.join(f'{name} {seconds:.0f} s' for name, seconds in spans.items()))
    return lines
