"""Parser of ``anharmal.neb``: the band as a TrajectoryData, the per-image arrays and the summary, whatever the end."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm

from ..engines import neb as program
from .base import AnharmalParser


class NEBParser(AnharmalParser):
    """``path`` (the last band written, also after a guard or an interruption), ``images_data``, ``summary``."""

    def parse_outputs(self, status):
        if status and status['state'] == 'setup_failed':
            return None
        if not self.has(program.BAND_FILE):
            return self.exit_codes.ERROR_NO_OUTPUT
        try:
            band = self._arrays(program.BAND_FILE)
            self.out('path', self._trajectory(band))
            if self.has(program.PROFILE_FILE):
                images = orm.ArrayData()
                for name, values in self._arrays(program.PROFILE_FILE).items():
                    images.set_array(name, values)
                self.out('images_data', images)
            if self.has(program.SUMMARY_FILE):
                self.out('summary', orm.Dict(self.read_json(program.SUMMARY_FILE)))
        except (OSError, ValueError, KeyError) as exc:
            return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message=str(exc))
        return None

    def _arrays(self, name: str) -> dict:
        content = self.retrieved.base.repository.get_object_content(name, mode='rb')
        with np.load(io.BytesIO(content)) as data:
            return {key: data[key] for key in data.files}

    def _trajectory(self, band: dict) -> orm.TrajectoryData:
        from ase.data import chemical_symbols

        positions = band['positions']
        n = len(positions)
        trajectory = orm.TrajectoryData()
        trajectory.set_trajectory(
            symbols=[chemical_symbols[z] for z in band['numbers']],
            positions=positions,
            stepids=np.arange(n),
            cells=np.repeat(band['cell'][None], n, axis=0),
            pbc=[bool(p) for p in band['pbc']],
        )
        trajectory.base.attributes.set('optimizer_step', int(band['step']) if 'step' in band else None)
        return trajectory
