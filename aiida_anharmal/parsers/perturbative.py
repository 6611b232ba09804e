"""Parser of ``anharmal.perturbative``: the per-mode table, phono3py's RTA arrays and the summary."""

from __future__ import annotations

import numpy as np
from aiida import orm

from ..engines import perturbative as program
from .base import AnharmalParser

UNITS = {'frequency': 'THz', 'frequencies': 'THz', 'gamma': 'THz', 'tau': 'ps', 'kappa': 'W/(m K)', 'temperatures': 'K'}


class PerturbativeParser(AnharmalParser):
    def parse_outputs(self, status):
        if not status or status['state'] != 'finished':
            return None
        paths = {name: self.temporary_file(name) for name in (program.MODES_FILE, program.RESULT_FILE)}
        if None in paths.values() or not self.has(program.SUMMARY_FILE):
            return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message='finished without the lifetimes or the summary')
        for label, name in (('modes', program.MODES_FILE), ('rta', program.RESULT_FILE)):
            node = orm.ArrayData()
            with np.load(paths[name]) as data:
                for array in data.files:
                    node.set_array(array, data[array])
            node.base.attributes.set('units', {k: v for k, v in UNITS.items() if k in node.get_arraynames()})
            self.out(label, node)
        self.out('summary', orm.Dict(self.read_json(program.SUMMARY_FILE)))
        return None
