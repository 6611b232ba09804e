"""What every CalcJob of this package shares: one program of ours, run in its folder with ``.`` as argument."""

from __future__ import annotations

import io

import numpy as np
from aiida.common import datastructures
from aiida.engine import CalcJob


def unknown_keys(given, allowed, what: str = '`settings`') -> str | None:
    """An error message naming the keys of ``given`` not in ``allowed``, else ``None``."""
    extra = sorted(set(given) - set(allowed))
    if extra:
        return f'unknown {what} key(s) {extra}; allowed: {sorted(allowed)}'
    return None


class AnharmalCalcJob(CalcJob):
    """Base of the calculations: sets the parser and file names, and builds the ``CalcInfo``.

    Subclasses name their parser in ``_parser`` and the program's input file in ``_input_file``.
    """

    _parser: str = ''
    _input_file: str = 'aiida.json'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['metadata']['options']['parser_name'].default = cls._parser
        spec.inputs['metadata']['options']['input_filename'].default = cls._input_file
        spec.inputs['metadata']['options']['output_filename'].default = 'aiida.out'

    def time_budget(self, requested: float | None) -> float | None:
        """``requested`` seconds, or by default 80 % of the walltime (the program stops cleanly before the kill)."""
        if requested is not None:
            return requested
        walltime = self.inputs.metadata.options.get('max_wallclock_seconds')
        return 0.8 * walltime if walltime else None

    def member_files(self, ensemble) -> tuple[list[str], list[tuple]]:
        """Relative paths of the ensemble's member files in the job folder, and their local copy list."""
        files, copies = [], []
        for label, member in ensemble.members.items():
            target = f'members/{label}.nequip.zip'
            copies.append((member.uuid, member.filename, target))
            files.append(target)
        return files, copies

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
