"""House rules that a reader can check: no module over 400 lines, no function over 80, no AiiDA in ``core/``."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = sorted([*(ROOT / 'aiida_anharmal').rglob('*.py'), *(ROOT / 'benchmarks').rglob('*.py')])


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f'{path.name}: {len(text.splitlines())} lines'
    long = [
        f'{node.name} ({node.end_lineno - node.lineno + 1} lines)'
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long, f'{path.name}: {long}'


def test_core_imports_no_aiida():
    for path in sorted((ROOT / 'aiida_anharmal' / 'core').rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or '']
            assert not [n for n in names if n == 'aiida' or n.startswith('aiida.')], path.name
