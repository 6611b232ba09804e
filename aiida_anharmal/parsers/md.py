"""Parser of ``anharmal.md``: every saved frame into a TrajectoryData and the per-frame arrays, whatever stopped the run."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from ..core.md import read_frames
from ..engines import md as program

#: Guard reason (status.json state) -> exit code label.
STOPS = {
    'atoms_too_close': 'ERROR_ATOMS_TOO_CLOSE',
    'force_too_large': 'ERROR_FORCE_TOO_LARGE',
    'uncertainty_too_large': 'ERROR_UNCERTAINTY_TOO_LARGE',
    'temperature_runaway': 'ERROR_TEMPERATURE_RUNAWAY',
    'not_finite': 'ERROR_NOT_FINITE',
}


class MDParser(Parser):
    def parse(self, retrieved_temporary_folder=None, **kwargs):
        repo = self.retrieved.base.repository
        names = repo.list_object_names()
        status = json.loads(repo.get_object_content(program.STATUS_FILE)) if program.STATUS_FILE in names else None
        if status and status['state'] == 'setup_failed':
            return self.exit_codes.ERROR_SETUP_FAILED.format(message=status.get('message', ''))
        frames_file = Path(retrieved_temporary_folder or '') / program.FRAMES_FILE
        n_frames = 0
        if frames_file.exists() and program.LAYOUT_FILE in names:
            with tempfile.TemporaryDirectory() as tmp:
                shutil.copy(frames_file, Path(tmp) / program.FRAMES_FILE)
                (Path(tmp) / program.LAYOUT_FILE).write_text(repo.get_object_content(program.LAYOUT_FILE))
                frames = read_frames(tmp)
            n_frames = len(frames['step'])
            if n_frames:
                self._store_frames(frames)
        if not n_frames:
            return self.exit_codes.ERROR_NO_OUTPUT
        if status is None:
            return self.exit_codes.ERROR_INTERRUPTED.format(message='killed, e.g. out of walltime')
        state, message = status['state'], status.get('message', '')
        if state == 'finished':
            return None
        if state in STOPS:
            return getattr(self.exit_codes, STOPS[state]).format(message=message)
        if state == 'time_budget_spent':
            return self.exit_codes.ERROR_INTERRUPTED.format(message=message)
        return self.exit_codes.ERROR_MD_FAILED.format(message=message)

    def _store_frames(self, frames: dict) -> None:
        from ..calculations.md import start_atoms

        atoms = start_atoms(self.node.inputs)
        n = len(frames['step'])
        trajectory = orm.TrajectoryData()
        trajectory.set_trajectory(
            symbols=atoms.get_chemical_symbols(),
            positions=frames['positions'],
            stepids=frames['step'],
            cells=np.repeat(atoms.cell[:][None], n, axis=0),
            times=frames['time'],
            velocities=frames['velocities'],
            pbc=[bool(p) for p in atoms.pbc],
        )
        trajectory.set_array('forces', frames['forces'])
        trajectory.base.attributes.set(
            'units', {'positions': 'A', 'velocities': 'A/fs', 'forces': 'eV/A', 'times': 'fs'}
        )
        self.out('trajectory', trajectory)
        arrays = orm.ArrayData()
        for name, values in frames.items():
            if name not in ('positions', 'velocities', 'forces'):
                arrays.set_array(name, np.asarray(values))
        self.out('frames', arrays)
