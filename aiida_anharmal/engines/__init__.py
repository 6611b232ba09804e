"""Programs run by the calculation jobs (console scripts): read input files, write output files."""

from __future__ import annotations

import json
from pathlib import Path

STATUS_FILE = 'status.json'


def setup_failed(directory: Path, exc: Exception) -> dict:
    """Write and return the ``setup_failed`` status of a program that could not start."""
    status = {'state': 'setup_failed', 'message': f'{type(exc).__name__}: {exc}'}
    (Path(directory) / STATUS_FILE).write_text(json.dumps(status))
    return status
