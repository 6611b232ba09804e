"""The documentation builds without warnings."""

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).parents[1] / 'docs' / 'source'


def test_sphinx_build_has_no_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-b', 'html', str(DOCS), str(tmp_path / 'html')],
        capture_output=True,
        check=False,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
