"""Parser of ``anharmal.md``: every saved frame into a TrajectoryData and the per-frame arrays.

Which exit code a stop gets (guards 320-329, interrupted 330, ...) is the map of
:meth:`aiida_anharmal.calculations.md.MDCalculation.state_exit_codes`, read from the registry of
stop rules.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from aiida import orm

from ..core.md.files import read_frames
from ..engines import md as program
from ..jsonsafe import finite_or_none
from .base import AnharmalParser


class MDParser(AnharmalParser):
    """Every saved frame into ``trajectory`` and ``frames``, whatever stopped the run."""

    def parse_outputs(self, status):
        if status and status['state'] == 'setup_failed':
            return None
        frames_file = self.temporary_file(program.FRAMES_FILE)
        n_frames = 0
        if frames_file is not None and self.has(program.LAYOUT_FILE):
            with tempfile.TemporaryDirectory() as tmp:
                shutil.copy(frames_file, Path(tmp) / program.FRAMES_FILE)
                (Path(tmp) / program.LAYOUT_FILE).write_text(self.read_text(program.LAYOUT_FILE))
                frames = read_frames(tmp)
            n_frames = len(frames['step'])
            if n_frames:
                self._store_frames(frames, (status or {}).get('trigger'))
        if not n_frames:
            return self.exit_codes.ERROR_NO_OUTPUT
        return None

    def _store_frames(self, frames: dict, trigger: dict | None = None) -> None:
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
        if trigger:  # the stop trigger at the run's end: its kind, last score and (retrain) the rule's reference
            arrays.base.attributes.set('trigger', finite_or_none(trigger))
        self.out('frames', arrays)
