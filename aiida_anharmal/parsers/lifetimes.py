"""Parser of ``anharmal.lifetimes``: the per-mode table and its summary."""

from __future__ import annotations

import numpy as np
from aiida import orm

from ..engines import lifetimes as program
from .base import AnharmalParser


class LifetimeParser(AnharmalParser):
    def parse_outputs(self, status):
        if not status or status['state'] != 'finished':
            return None
        path = self.temporary_file(program.LIFETIMES_FILE)
        if path is None or not self.has(program.SUMMARY_FILE):
            return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message='finished without the lifetimes or the summary')
        modes = orm.ArrayData()
        with np.load(path) as data:
            for name in data.files:
                modes.set_array(name, data[name])
        modes.base.attributes.set('units', {'frequency': 'THz', 'tau': 'ps', 'tau_fit': 'ps', 'tau_shell': 'ps'})
        self.out('modes', modes)
        self.out('summary', orm.Dict(self.read_json(program.SUMMARY_FILE)))
        return None
