"""Parser of ``anharmal.evaluate``: the per-frame arrays and the test-set statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from ..engines import evaluate as program


class EvaluateParser(Parser):
    def parse(self, retrieved_temporary_folder=None, **kwargs):
        repo = self.retrieved.base.repository
        names = repo.list_object_names()
        if program.STATUS_FILE not in names:
            return self.exit_codes.ERROR_NO_OUTPUT
        status = json.loads(repo.get_object_content(program.STATUS_FILE))
        if status['state'] == 'setup_failed':
            return self.exit_codes.ERROR_SETUP_FAILED.format(message=status.get('message', ''))
        if status['state'] != 'finished':
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(message=status.get('message', ''))
        path = Path(retrieved_temporary_folder or '') / program.EVALUATION_FILE
        if not path.exists() or program.STATISTICS_FILE not in names:
            return self.exit_codes.ERROR_NO_OUTPUT
        evaluation = orm.ArrayData()
        with np.load(path) as data:
            for name in data.files:
                evaluation.set_array(name, data[name])
        evaluation.base.attributes.set('ensemble_uuid', self.node.inputs.ensemble.uuid)
        evaluation.base.attributes.set('structures_uuid', self.node.inputs.structures.uuid)
        self.out('evaluation', evaluation)
        self.out('statistics', orm.Dict(json.loads(repo.get_object_content(program.STATISTICS_FILE))))
        return None
