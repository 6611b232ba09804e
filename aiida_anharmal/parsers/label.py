"""Parser of ``anharmal.label``: labels into a TrainingSet, failures into a Dict, never losing a label."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from ..core.labellers import get_labeller
from ..data.training_set import TrainingSet
from ..engines import label as program


def read_label_records(text: str) -> list[dict]:
    """Parse ``labels.jsonl``; a last line cut by a kill is ignored, any other bad line raises."""
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) - 1:
                break  # the job was killed while writing its last line
            raise
    return records


class LabelParser(Parser):
    """Turn the engine's per-structure records into ``labelled`` and ``failures`` outputs."""

    def parse(self, **kwargs):
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        status = None
        if program.STATUS_FILE in names:
            status = json.loads(retrieved.base.repository.get_object_content(program.STATUS_FILE))
        records = []
        if program.LABELS_FILE in names:
            try:
                records = read_label_records(retrieved.base.repository.get_object_content(program.LABELS_FILE))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message=str(exc))

        structures = self.node.inputs.structures
        indices = self.node.inputs.indices.get_list() if 'indices' in self.node.inputs else list(range(len(structures)))
        by_index = {int(r['index']): r for r in records}
        ok = [i for i in indices if by_index.get(i, {}).get('status') == 'ok']
        state = status.get('state') if status else None

        failures = {}
        for i in indices:
            record = by_index.get(i)
            if state == 'setup_failed':
                failures[str(i)] = {'reason': 'setup_failed', 'message': status.get('message', '')}
            elif record is None:
                why = 'killed' if status is None else state
                failures[str(i)] = {'reason': 'not_attempted', 'message': f'not reached: the engine stopped ({why})'}
            elif record['status'] != 'ok':
                failures[str(i)] = {'reason': record['status'], 'message': record.get('message', '')}

        if ok:
            self.out('labelled', self._labelled_set(structures, ok, by_index, self.node.inputs.engine.value))
        if failures:
            self.out('failures', orm.Dict(failures))

        reasons = [f['reason'] for f in failures.values()]
        if state == 'setup_failed':
            return self.exit_codes.ERROR_SETUP_FAILED.format(message=status.get('message', 'unknown error'))
        if status is None and not records:
            return self.exit_codes.ERROR_NO_OUTPUT
        if 'not_attempted' in reasons:
            why = 'killed, e.g. out of walltime' if status is None else 'time budget `max_seconds` spent'
            return self.exit_codes.ERROR_INTERRUPTED.format(n=reasons.count('not_attempted'), reason=why)
        if 'scf_not_converged' in reasons:
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED.format(n=reasons.count('scf_not_converged'))
        if reasons:
            return self.exit_codes.ERROR_STRUCTURES_FAILED.format(n=len(reasons))
        return None

    def _labelled_set(self, structures: TrainingSet, ok: list[int], by_index: dict, engine: str) -> TrainingSet:
        frames = structures.frames.subset(ok)
        offsets = frames.offsets
        for k, i in enumerate(ok):
            record = by_index[i]
            frames.energy[k] = record['energy']
            if 'forces' in record:
                frames.forces[offsets[k] : offsets[k + 1]] = np.asarray(record['forces'])
            else:
                frames.forces[offsets[k] : offsets[k + 1]] = np.nan
            frames.stress[k] = np.asarray(record['stress']) if 'stress' in record else np.nan
            frames.origins[k].update({'source_uuid': structures.uuid, 'source_index': i, 'label_calc': self.node.uuid})
        labelled = TrainingSet(frames=frames)
        labeller = get_labeller(engine)
        description = labeller.description
        if 'model' in self.node.inputs:
            description += f'; model {self.node.inputs.model.uuid}'
        labelled.set_label_provenance(engine, labeller.ground_truth, description)
        return labelled
