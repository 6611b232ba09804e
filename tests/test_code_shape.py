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


PACKAGE = ROOT / 'aiida_anharmal'
#: what each subpackage of core/ may import of core/ (besides itself and the registry); the order of the
#: layers that ``aiida_anharmal/core/__init__.py`` documents
CORE_LAYERS = {
    'structures': set(),
    'phonons': {'structures'},
    'models': {'structures', 'phonons'},
    'md': {'structures', 'phonons'},
    'labelling': {'models'},
    'learning': {'structures', 'phonons', 'models', 'md'},
    'bayesian': {'structures', 'phonons', 'md'},
}


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of this package it imports (anywhere in it, function bodies too)."""
    modules = {}
    for path in PACKAGE.rglob('*.py'):
        parts = list(path.relative_to(ROOT).with_suffix('').parts)
        modules['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name.split('.') if path.name == '__init__.py' else name.split('.')[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = (
                    '.'.join(package[: len(package) - node.level + 1] + [node.module or ''])
                    if node.level
                    else node.module
                )
                base = base.rstrip('.')
                found.update(f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base for a in node.names)
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_core_has_subpackages_by_concern_and_only_the_registry_at_the_top():
    core = PACKAGE / 'core'
    assert sorted(p.name for p in core.glob('*.py')) == ['__init__.py', 'registry.py']
    assert sorted(p.name for p in core.iterdir() if (p / '__init__.py').exists()) == sorted(CORE_LAYERS)
    for sub in CORE_LAYERS:
        assert len(ast.get_docstring(ast.parse((core / sub / '__init__.py').read_text())) or '') > 80, sub


def test_core_subpackages_import_only_the_layers_below():
    wrong = []
    for module, imported in import_graph().items():
        parts = module.split('.')
        if parts[:2] != ['aiida_anharmal', 'core'] or len(parts) < 4:
            continue
        allowed = CORE_LAYERS[parts[2]] | {parts[2], 'registry'}
        for other in imported:
            other_parts = other.split('.')
            if other_parts[:2] == ['aiida_anharmal', 'core'] and len(other_parts) > 2 and other_parts[2] not in allowed:
                wrong.append(f'{module} imports {other}')
            elif other_parts[:2] == ['aiida_anharmal', 'core'] or other_parts[:1] != ['aiida_anharmal']:
                continue
            else:
                wrong.append(f'{module} imports {other} (outside core/)')
    assert not wrong, wrong


#: what each folder of the AiiDA layer may import of this package (besides itself); cli/ sits on top of all
AIIDA_LAYERS = {
    'data': {'core', 'jsonsafe', 'ports', 'resources', 'exit_codes'},
    'engines': {'core', 'jsonsafe', 'resources', 'exit_codes'},
    'calculations': {'core', 'data', 'engines', 'exit_codes', 'jsonsafe', 'ports', 'resources', 'functions'},
    'parsers': {'core', 'data', 'calculations', 'engines', 'exit_codes', 'jsonsafe', 'ports'},
    'functions': {'core', 'data', 'exit_codes', 'jsonsafe', 'ports', 'resources'},
}


def test_the_aiida_layer_imports_only_downwards():
    wrong = []
    for module, imported in import_graph().items():
        parts = module.split('.')
        if len(parts) < 2 or parts[1] not in AIIDA_LAYERS:
            continue
        allowed = AIIDA_LAYERS[parts[1]] | {parts[1], 'aiida_anharmal'}
        wrong += [
            f'{module} imports {other}'
            for other in imported
            if other.split('.')[1:2][0:1] and other.split('.')[1] not in allowed
        ]
    assert not wrong, wrong
