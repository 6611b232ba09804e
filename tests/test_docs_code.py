"""The docs cannot drift from the code: their commands, imports and runnable blocks are checked.

* every ``anharmal ...`` command line in the docs and the README names a real (sub)command and only options that
  command has;
* every Python code block of the docs and every example compiles, and every name it imports from
  ``aiida_anharmal`` exists;
* every code block marked ``:class: runnable`` runs (in a fresh interpreter, no profile).
"""

import ast
import re
import shlex
import subprocess
import sys
import textwrap
from importlib import import_module
from pathlib import Path

import click
import pytest

from aiida_anharmal.cli import cli

ROOT = Path(__file__).parents[1]
DOCS = sorted((ROOT / 'docs' / 'source').glob('*.rst'))
EXAMPLES = sorted((ROOT / 'examples').glob('*.py'))
BLOCK = re.compile(r'^( *)\.\. code-block:: (\w+)\n((?:\1   :[\w-]+:.*\n)*)\n((?:\1   .*\n|\n)+)', re.MULTILINE)


def code_blocks(path: Path) -> list[tuple[str, str, str]]:
    """(language, options, dedented code) of every code block of an rst file."""
    blocks = []
    for match in BLOCK.finditer(path.read_text()):
        code = textwrap.dedent(match.group(4)).strip('\n') + '\n'
        blocks.append((match.group(2), match.group(3), code))
    return blocks


def command_lines() -> list[tuple[str, str]]:
    """(file, command) of every ``anharmal ...`` line of the docs and the README."""
    found = []
    for path in [*DOCS, ROOT / 'README.md']:
        for line in path.read_text().splitlines():
            text = line.strip().removeprefix('$ ')
            if text.startswith('anharmal ') and not text.startswith('anharmal-'):
                found.append((path.name, text.split('  #')[0].split(' # ')[0].strip()))
    return found


@pytest.mark.parametrize(('where', 'line'), command_lines(), ids=lambda value: str(value)[:60])
def test_every_documented_command_exists_with_its_options(where, line):
    words = shlex.split(line)[1:]
    command, path = cli, ['anharmal']
    while isinstance(command, click.Group) and words and not words[0].startswith('-'):
        assert words[0] in command.commands, f'{where}: `{line}`: no command `{" ".join([*path, words[0]])}`'
        path.append(words.pop(0))
        command = command.commands[path[-1]]
    known = {name for parameter in command.params for name in getattr(parameter, 'opts', [])}
    known |= {name for parameter in command.params for name in getattr(parameter, 'secondary_opts', [])}
    known |= {'-h', '--help'}
    options = [word.split('=')[0] for word in words if word.startswith('-') and not re.fullmatch(r'-\d.*', word)]
    unknown = [option for option in options if option not in known]
    assert not unknown, f'{where}: `{line}`: unknown option(s) {unknown} of `{command.name}`'


def python_sources() -> list[tuple[str, str]]:
    sources = [(path.name, path.read_text()) for path in EXAMPLES]
    for path in DOCS:
        sources += [(path.name, code) for language, _, code in code_blocks(path) if language == 'python']
    return sources


@pytest.mark.parametrize(('where', 'code'), python_sources(), ids=lambda value: str(value)[:40])
def test_python_in_the_docs_and_examples_compiles_and_imports_what_exists(where, code):
    tree = ast.parse(code, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('aiida_anharmal'):
            module = import_module(node.module)
            for alias in node.names:
                name = alias.name
                assert hasattr(module, name) or _is_submodule(node.module, name), f'{where}: {node.module}.{name}'
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('aiida_anharmal'):
                    import_module(alias.name)


def _is_submodule(module: str, name: str) -> bool:
    try:
        import_module(f'{module}.{name}')
    except ModuleNotFoundError:
        return False
    return True


def runnable_blocks() -> list[tuple[str, str]]:
    return [
        (path.name, code)
        for path in DOCS
        for language, options, code in code_blocks(path)
        if language == 'python' and 'runnable' in options
    ]


def test_some_blocks_are_marked_runnable():
    assert len(runnable_blocks()) >= 2


@pytest.mark.parametrize(('where', 'code'), runnable_blocks(), ids=lambda value: str(value)[:40])
def test_runnable_blocks_run(where, code, tmp_path):
    script = tmp_path / 'block.py'
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, f'{where}:\n{code}\n{result.stderr[-2000:]}'
