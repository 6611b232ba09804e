"""What every CalcJob of this package shares: one program of ours, run in its folder with ``.`` as argument.

The program (:mod:`aiida_anharmal.engines.runner`) ends in a named state; each calculation says
which exit code each state means (:meth:`AnharmalCalcJob.state_exit_codes`) and the one base
parser (:class:`aiida_anharmal.parsers.base.AnharmalParser`) applies that map.
"""

from __future__ import annotations

import io
import json
from pathlib import PurePath
from typing import ClassVar

import numpy as np
from aiida.common import datastructures
from aiida.engine import CalcJob

from .. import exit_codes
from ..engines.runner import INPUT_FILE
from ..ports import dict_input

#: What every program's common states mean; ``killed``: no ``status.json`` (walltime, kill -9).
COMMON_STATES = {
    'setup_failed': 'ERROR_SETUP_FAILED',
    'failed': 'ERROR_PROGRAM_FAILED',
    'killed': 'ERROR_NO_OUTPUT',
}


def unknown_keys(given, allowed, what: str = '`settings`') -> str | None:
    """An error message naming the keys of ``given`` not in ``allowed``, else ``None``."""
    extra = sorted(set(given) - set(allowed))
    if extra:
        return f'unknown {what} key(s) {extra}; allowed: {sorted(allowed)}'
    return None


class AnharmalCalcJob(CalcJob):
    """Base of the calculations: sets the parser and file names, and builds the ``CalcInfo``.

    Subclasses name their parser in ``_parser``, the program's input file in ``_input_file``, what
    their program's own states mean in ``_states`` (state -> exit code label, over
    :data:`COMMON_STATES`) and the further codes their parser returns in ``_exit_codes``.
    """

    _parser: str = ''
    _input_file: str = INPUT_FILE
    _states: ClassVar[dict[str, str]] = {}
    _exit_codes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['metadata']['options']['parser_name'].default = cls._parser
        spec.inputs['metadata']['options']['input_filename'].default = cls._input_file
        spec.inputs['metadata']['options']['output_filename'].default = 'aiida.out'
        labels = ['ERROR_NO_OUTPUT', 'ERROR_OUTPUT_CORRUPT', *cls.state_exit_codes().values(), *cls._exit_codes]
        exit_codes.declare(spec, *sorted(set(labels), key=labels.index))

    @classmethod
    def state_exit_codes(cls) -> dict[str, str]:
        """Program state -> exit code label (``finished`` is success and not listed)."""
        return {**COMMON_STATES, **cls._states}

    def time_budget(self, requested: float | None) -> float | None:
        """``requested`` seconds, or by default 80 % of the walltime (the program stops cleanly before the kill)."""
        if requested is not None:
            return requested
        walltime = self.inputs.metadata.options.get('max_wallclock_seconds')
        return 0.8 * walltime if walltime else None

    def member_files(self, folder, ensemble) -> tuple[list[str], list[tuple]]:
        """Relative paths of the ensemble's member files in the job folder, and their local copy list."""
        folder.get_subfolder('members', create=True)
        files, copies = [], []
        for label, member in ensemble.members.items():
            target = f'members/{label}.nequip.zip'
            copies.append((member.uuid, member.filename, target))
            files.append(target)
        return files, copies

    def reference_engine(self) -> tuple[dict, list]:
        """The ``engine`` entry of ``aiida.json`` when the labelling engine drives the program (the ``reference``
        namespace), and the copy of its model file."""
        reference = self.inputs.reference
        engine = {
            'engine': reference.engine.value,
            'parameters': dict_input(reference, 'parameters'),
            'model_file': None,
        }
        copies = []
        if 'model' in reference:
            suffix = ''.join(PurePath(reference.model.filename).suffixes)
            engine['model_file'] = f'reference_model{suffix}'
            copies.append((reference.model.uuid, reference.model.filename, engine['model_file']))
        return engine, copies

    def driver_files(self, folder) -> tuple[dict | None, list[str], list[tuple]]:
        """What drives the program: ``(engine, member_files, local_copy_list)`` for the ``ensemble`` input, or for
        the labelling engine of the ``reference`` namespace (no member files)."""
        if 'ensemble' in self.inputs:
            member_files, copies = self.member_files(folder, self.inputs.ensemble)
            return None, member_files, copies
        if 'engine' not in self.inputs.get('reference', {}):
            return None, [], []  # a driver of the program's own, e.g. a Bayesian model's arrays
        engine, copies = self.reference_engine()
        return engine, [], copies

    def write_harmonic(self, folder) -> str | None:
        """Write the ``harmonic`` input (if any) for the program; return its file name or ``None``."""
        if 'harmonic' not in self.inputs:
            return None
        from ..data.force_constants import harmonic_arrays
        from ..engines.inputs import HARMONIC_FILE

        self.write_arrays(folder, HARMONIC_FILE, harmonic_arrays(self.inputs.harmonic))
        return HARMONIC_FILE

    def write_config(self, folder, config: dict) -> None:
        """The program's ``aiida.json``."""
        with folder.open(self._input_file, 'w', encoding='utf-8') as handle:
            json.dump(config, handle, indent=1)

    @staticmethod
    def write_arrays(folder, name: str, arrays: dict) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        folder.create_file_from_filelike(io.BytesIO(buffer.getvalue()), name, mode='wb')

    def calcinfo(self, local_copy_list=(), retrieve_list=(), retrieve_temporary_list=(), remote_copy_list=()):
        """The ``CalcInfo`` of a run of the code with ``.`` as its argument; stdout in ``aiida.out``."""
        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['.']
        codeinfo.stdout_name = self.inputs.metadata.options.output_filename
        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = list(local_copy_list)
        calcinfo.remote_copy_list = list(remote_copy_list)
        calcinfo.retrieve_list = [*retrieve_list, self.inputs.metadata.options.output_filename]
        calcinfo.retrieve_temporary_list = list(retrieve_temporary_list)
        return calcinfo
