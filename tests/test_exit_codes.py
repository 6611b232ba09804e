"""Exit codes are numbered by meaning across the plugin, and the docs table lists exactly those the processes declare."""

import re
from importlib.metadata import entry_points
from pathlib import Path

from aiida.engine import BaseRestartWorkChain, CalcJob, WorkChain

from aiida_anharmal import exit_codes

TABLE = Path(__file__).parents[1] / 'docs' / 'source' / 'exit_codes.rst'


def aiida_codes() -> set[tuple[int, str]]:
    return {
        (c.status, label) for cls in (BaseRestartWorkChain, WorkChain, CalcJob) for label, c in cls.exit_codes.items()
    }


def declared() -> dict[tuple[int, str], list[str]]:
    """(status, label) -> the plugin's processes that declare it, AiiDA's own codes left out."""
    theirs = aiida_codes()
    found: dict[tuple[int, str], list[str]] = {}
    for group in ('aiida.calculations', 'aiida.workflows'):
        for entry in entry_points(group=group):
            if not entry.name.startswith('anharmal.'):
                continue
            cls = entry.load()
            for label, code in getattr(cls, 'exit_codes', {}).items():
                if (code.status, label) not in theirs:
                    found.setdefault((code.status, label), []).append(cls.__name__)
    return found


def documented() -> set[tuple[int, str]]:
    rows = re.findall(r'^   \* - (\d{3})\n     - ((?:ERROR|STOPPED)_\w+)$', TABLE.read_text(), flags=re.MULTILINE)
    return {(int(status), label) for status, label in rows}


def test_same_number_same_meaning_everywhere():
    by_status: dict[int, set[str]] = {}
    for status, label in declared():
        by_status.setdefault(status, set()).add(label)
    assert {s: labels for s, labels in by_status.items() if len(labels) > 1} == {}
    by_label: dict[str, set[int]] = {}
    for status, label in declared():
        by_label.setdefault(label, set()).add(status)
    assert {label: s for label, s in by_label.items() if len(s) > 1} == {}, 'one label, two numbers'
    assert not {status for status, _ in declared()} & {status for status, _ in aiida_codes()}, 'an AiiDA number reused'


def test_the_docs_table_lists_every_declared_code():
    assert documented() == set(declared())
    assert documented() == {(c.status, c.label) for c in exit_codes.all_codes()}


def test_stop_rules_stay_in_their_ranges():
    from aiida_anharmal.core.md.stop_rules import GUARDS, TRIGGERS

    (first, last, _), (tfirst, tlast, _) = exit_codes.STRATEGY_RANGES
    assert all(first <= g.exit_status <= last for g in GUARDS)
    assert all(tfirst <= t.exit_status <= tlast for t in TRIGGERS)
