"""One self-contained HTML page of an active-learning run: the decision in plain words, every table, every plot.

The plots are written as PNG files beside the page (:func:`~aiida_anharmal.analysis.al.write_plots`) and also
embedded in it as data URIs, so that ``index.html`` alone can be mailed or attached to a lab notebook. Every
table is the text that the ``anharmal al`` commands print; nothing here computes a number of its own.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = (
    'body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}'
    'pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}'
    'img{max-width:100%;border:1px solid #ddd;margin:.5em 0}'
    '.decision{font-size:1.15em;padding:.6em .9em;border-left:6px solid #888;background:#fafafa}'
    '.converged{border-color:#2a2}.not-converged{border-color:#d80}.failed{border-color:#c22}'
)


def decision_words(node) -> tuple[str, str]:
    """The outcome of the run in one sentence, and its css class."""
    if not node.is_terminated:
        return f'Still running ({node.process_status or node.process_state.value}).', 'not-converged'
    if not node.is_finished_ok:
        status = node.exit_status if node.is_finished else node.process_state.value
        return f'The run failed ({status}): {node.exit_message or "see verdi process report"}.', 'failed'
    if 'convergence' not in node.outputs:
        return 'The run finished without a convergence decision.', 'not-converged'
    c = node.outputs.convergence
    rows = node.outputs.summary['rows'] if 'summary' in node.outputs else []
    iterations = f' after {len(rows)} iteration(s)' if rows else ''
    if c['converged']:
        return f'Converged{iterations}: {c["message"]}.', 'converged'
    return f'Not converged{iterations} ({c["reason"]}): {c["message"]}.', 'not-converged'


def _section(title: str, lines: list[str] | None) -> str:
    if not lines:
        return ''
    return f'<h2>{html.escape(title)}</h2>\n<pre>{html.escape(chr(10).join(lines))}</pre>\n'


def _tables(node) -> str:
    """Every text table the CLI prints of this run, those that exist."""
    from .al import status_lines
    from .lifetimes import lifetime_lines, lifetime_table
    from .neb import neb_lines
    from .timing import timing_lines

    parts = [_section('Iterations', status_lines(node)), _section('Where the time went (s)', timing_lines(node))]
    if 'validation' in node.outputs:
        from .validation import comparison_of, validation_lines

        comparison = comparison_of(node)
        parts.append(_section('Validation MD', None if comparison is None else validation_lines(comparison)))
    parts.append(_section('NEB validation (eV)', neb_lines(node)))
    rows = lifetime_table(node)
    parts.append(_section('Lifetimes validation', None if rows is None else lifetime_lines(rows)))
    return ''.join(parts)


def _figures(paths: list[Path]) -> str:
    parts = ['<h2>Plots</h2>\n'] if paths else []
    for path in paths:
        data = base64.b64encode(path.read_bytes()).decode('ascii')
        name = html.escape(path.name)
        parts.append(f'<h3>{name}</h3>\n<img alt="{name}" src="data:image/png;base64,{data}">\n')
    return ''.join(parts)


def write_report(node, directory) -> Path:
    """``directory/index.html`` of the AL run ``node`` (and its plots as PNG files beside it); returns the page."""
    from .al import write_plots

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    words, kind = decision_words(node)
    title = f'{node.process_label}<{node.pk}>'
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n'
        f'<p>{html.escape(node.uuid)}, created {node.ctime:%Y-%m-%d %H:%M} UTC</p>\n'
        f'<p class="decision {kind}">{html.escape(words)}</p>\n'
        + _tables(node)
        + _figures(write_plots(node, directory))
        + '</body></html>\n'
    )
    path = directory / 'index.html'
    path.write_text(page, encoding='utf-8')
    return path
