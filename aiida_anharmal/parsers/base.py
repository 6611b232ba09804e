"""The one base parser: read the program's ``status.json``, let the subclass store the outputs, map the state.

A failed job keeps what it produced: :meth:`AnharmalParser.parse_outputs` stores every output it
can read before the exit code is chosen. The exit code is then, in this order: the one
``parse_outputs`` returns (an output-level verdict such as a corrupt file, or ``ExitCode(0)``
for success whatever the state), else the calculation's map of the program's state
(:meth:`~aiida_anharmal.calculations.base.AnharmalCalcJob.state_exit_codes`; no status file is
the state ``killed``), else success for ``finished``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiida.engine import ExitCode
from aiida.parsers import Parser

from ..engines.runner import STATUS_FILE

#: Message of the ``killed`` state (no status file).
KILLED_MESSAGE = 'no status file: the job was killed, e.g. out of walltime'

#: What a scheduler writes to the job's stderr when it ends a job at its walltime (SLURM, PBS, SGE).
WALLTIME_MARKERS = re.compile(r'due to time limit|walltime \S+ exceeded limit|job killed: walltime', re.IGNORECASE)

#: AiiDA's exit codes of a scheduler's verdict (set on the node before the parser runs).
SCHEDULER_VERDICTS = {110: 'out of memory', 120: 'out of walltime', 140: 'node failure'}


class AnharmalParser(Parser):
    """Base of the parsers of this package; subclasses implement :meth:`parse_outputs`."""

    def parse(self, retrieved_temporary_folder=None, **kwargs):
        self.temporary = Path(retrieved_temporary_folder) if retrieved_temporary_folder else None
        status, corrupt = None, None
        try:
            status = self.read_json(STATUS_FILE) if self.has(STATUS_FILE) else None
        except (ValueError, UnicodeDecodeError) as exc:
            corrupt = f'{STATUS_FILE}: {exc}'  # the other outputs are still read and kept
        exit_code = self.parse_outputs(status)
        if corrupt is not None:
            return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message=corrupt)
        if exit_code is not None:
            return exit_code
        return self.exit_code_of(status)

    def parse_outputs(self, status: dict | None) -> ExitCode | None:
        """Store the outputs; return an exit code only for a verdict the state alone does not give."""
        raise NotImplementedError

    def exit_code_of(self, status: dict | None) -> ExitCode | None:
        """The exit code of the program's final state (``None``: finished)."""
        state = status['state'] if status else 'killed'
        if state == 'finished':
            return None
        message = (status or {}).get('message') or (self.killed_message() if status is None else state)
        label = self.node.process_class.state_exit_codes().get(state)
        if label is None:
            return self.exit_codes.ERROR_PROGRAM_FAILED.format(message=f'unknown final state `{state}`: {message}')
        if label not in self.exit_codes:  # a stop rule registered after the process spec was built
            why = f'state `{state}` maps to {label}, which the calculation does not declare: {message}'
            return self.exit_codes.ERROR_PROGRAM_FAILED.format(message=why)
        return self.exit_codes[label].format(message=message)

    def killed_message(self) -> str:
        """Why a job left no status file: the scheduler's verdict where it gave one, else the generic message."""
        verdict = SCHEDULER_VERDICTS.get(self.node.exit_status)
        if verdict is None:
            stderr_name = self.node.get_option('scheduler_stderr')
            if stderr_name and self.has(stderr_name) and WALLTIME_MARKERS.search(self.read_text(stderr_name)):
                verdict = 'out of walltime'
        if verdict is None:
            return KILLED_MESSAGE
        return f'no status file: the scheduler ended the job, {verdict}'

    # --------------------------------------------------------------------------------- file access
    @property
    def names(self) -> list[str]:
        return self.retrieved.base.repository.list_object_names()

    def has(self, name: str) -> bool:
        return name in self.names

    def read_text(self, name: str) -> str:
        return self.retrieved.base.repository.get_object_content(name)

    def read_json(self, name: str):
        return json.loads(self.read_text(name))

    def temporary_file(self, name: str) -> Path | None:
        """A file of the retrieved temporary folder, or ``None`` if it is not there."""
        if self.temporary is None or not (self.temporary / name).exists():
            return None
        return self.temporary / name
