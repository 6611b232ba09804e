"""The one contract of every program of this package (``anharmal-label``, ``-train``, ``-evaluate``, ``-md``, ...).

A program runs in a job folder (its only argument, default ``.``):

1. **setup** reads ``aiida.json`` and the input files and builds what the run needs; any error
   here ends the program in state ``setup_failed`` before any compute;
2. **run** does the work and returns its final status, or raises :class:`Stop` to end in a named
   state of its own (e.g. ``training_failed``) with what it finished kept on disk; any other
   error ends it in state ``failed`` with the traceback in the log;
3. the runner writes ``status.json`` atomically: ``{"state", "message", "seconds", ...}``. A job
   folder without it belongs to a program that was killed (walltime, ``kill -9``, node failure).

Exit status: 0 when ``run`` returned (the program reached one of its ends; ``status.json`` says
which, e.g. ``finished``, ``time_budget_spent``, a guard's reason), 1 when it broke off (a
:class:`Stop` or an error), 2 when it could not start (``setup_failed``). Each
calculation maps the states of its program to exit codes (``AnharmalCalcJob.state_exit_codes``)
and one base parser applies the map. No AiiDA import.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INPUT_FILE = 'aiida.json'
STATUS_FILE = 'status.json'

EXIT_DONE, EXIT_FAILED, EXIT_SETUP_FAILED = 0, 1, 2


class Stop(Exception):
    """End the run in ``state`` (a state of the program) with ``message`` and extra status fields."""

    def __init__(self, state: str, message: str, **extra):
        super().__init__(message)
        self.state = state
        self.extra = extra


def describe(exc: BaseException) -> str:
    return f'{type(exc).__name__}: {exc}'.strip()


def write_status(directory: Path, status: dict) -> None:
    """Write ``status.json`` atomically (a reader sees the old file or the whole new one)."""
    path = Path(directory) / STATUS_FILE
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, path)


def environment() -> dict:
    """Where the program ran: what decides whether a rerun gives the same numbers bit for bit.

    Results are reproducible on the same CPU model with the same software and thread counts; a
    different CPU (other SIMD kernels) or a GPU changes the last bits, which MD and training amplify.
    """
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            cpu = next((line.split(':', 1)[1].strip() for line in handle if line.startswith('model name')), cpu)
    except OSError:
        pass
    info = {'host': platform.node(), 'cpu': cpu, 'cores': os.cpu_count(), 'python': platform.python_version()}
    info.update({key: os.environ[key] for key in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS') if key in os.environ})
    torch = sys.modules.get('torch')
    if torch is not None:
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def read_config(directory: Path) -> dict:
    """The program's ``aiida.json``."""
    return json.loads((Path(directory) / INPUT_FILE).read_text())


@dataclass
class Program:
    """A console program of this package: its name, its two phases, its log file and its environment defaults."""

    name: str
    description: str
    setup: Callable[[Path], Any]
    run: Callable[[Any], dict]
    log_file: str | None = None
    #: Environment variables set (if not set already) before the program runs.
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(self.name)

    def execute(self, directory: str | Path = '.') -> tuple[dict, int]:
        """Run both phases in ``directory``, write ``status.json``; return the status and the exit status."""
        directory = Path(directory)
        start = time.monotonic()
        try:
            job = self.setup(directory)
        except Exception as exc:  # every setup failure is reported the same way
            self.logger.exception('setup failed')
            status, exit_status = {'state': 'setup_failed', 'message': describe(exc)}, EXIT_SETUP_FAILED
        else:
            status, exit_status = self._run(job)
        status.setdefault('message', '')
        status['seconds'] = round(time.monotonic() - start, 3)
        status['environment'] = environment()
        write_status(directory, status)
        return status, exit_status

    def _run(self, job) -> tuple[dict, int]:
        """The final status: what ``run`` returned (exit 0), or why it broke off (exit 1)."""
        try:
            status = dict(self.run(job))
        except Stop as stop:
            self.logger.error('%s: %s', stop.state, stop)
            exit_status = EXIT_SETUP_FAILED if stop.state == 'setup_failed' else EXIT_FAILED
            return {'state': stop.state, 'message': str(stop), **stop.extra}, exit_status
        except Exception as exc:  # noqa: BLE001 - the status says what failed; the log has the traceback
            self.logger.error(traceback.format_exc())
            return {'state': 'failed', 'message': describe(exc)}, EXIT_FAILED
        status.setdefault('state', 'finished')
        return status, EXIT_DONE

    def main(self, argv=None) -> int:
        """The console entry point: ``<name> [directory]``."""
        parser = argparse.ArgumentParser(prog=self.name, description=self.description)
        parser.add_argument('directory', nargs='?', default='.', help='the job folder, with aiida.json')
        args = parser.parse_args(argv)
        handlers = [logging.StreamHandler(sys.stdout)]
        if self.log_file:
            handlers.append(logging.FileHandler(Path(args.directory) / self.log_file))
        logging.basicConfig(
            level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s', handlers=handlers, force=True
        )
        for key, value in self.environment.items():
            os.environ.setdefault(key, value)
        status, exit_status = self.execute(args.directory)
        print(json.dumps(status))
        return exit_status
