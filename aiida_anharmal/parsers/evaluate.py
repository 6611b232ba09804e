"""Parser of ``anharmal.evaluate``: the per-frame arrays and the test-set statistics."""

from __future__ import annotations

import numpy as np
from aiida import orm

from ..engines import evaluate as program
from .base import AnharmalParser


class EvaluateParser(AnharmalParser):
    def parse_outputs(self, status):
        if not status or status['state'] != 'finished':
            return None
        path = self.temporary_file(program.EVALUATION_FILE)
        missing = [
            name
            for name, there in (
                (program.EVALUATION_FILE, path is not None),
                (program.STATISTICS_FILE, self.has(program.STATISTICS_FILE)),
            )
            if not there
        ]
        if missing:
            return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message=f'finished without {", ".join(missing)}')
        evaluation = orm.ArrayData()
        with np.load(path) as data:
            for name in data.files:
                evaluation.set_array(name, data[name])
        evaluation.base.attributes.set('ensemble_uuid', self.node.inputs.ensemble.uuid)
        evaluation.base.attributes.set('structures_uuid', self.node.inputs.structures.uuid)
        self.out('evaluation', evaluation)
        self.out('statistics', orm.Dict(self.read_json(program.STATISTICS_FILE)))
        return None
