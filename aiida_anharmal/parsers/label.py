"""Parser of ``anharmal.label``: labels into a TrainingSet, failures into a Dict, never losing a label."""

from __future__ import annotations

import json

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from ..core.labelling.labellers import get_labeller
from ..data.training_set import TrainingSet
from ..engines import label as program
from .base import AnharmalParser


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


class LabelParser(AnharmalParser):
    """Turn the engine's per-structure records into ``labelled`` and ``failures`` outputs."""

    def parse_outputs(self, status):
        records = []
        if self.has(program.LABELS_FILE):
            try:
                records = read_label_records(self.read_text(program.LABELS_FILE))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return self.exit_codes.ERROR_OUTPUT_CORRUPT.format(message=f'{program.LABELS_FILE}: {exc}')
        structures = self.node.inputs.structures
        inputs = self.node.inputs
        indices = inputs.indices.get_list() if 'indices' in inputs else list(range(len(structures)))
        by_index = {int(r['index']): r for r in records}
        ok = [i for i in indices if by_index.get(i, {}).get('status') == 'ok']
        failures = self._failures(status, indices, by_index)
        if ok:
            self.out('labelled', self._labelled_set(structures, ok, by_index, inputs.engine.value))
        if failures:
            self.out('failures', orm.Dict(failures))
        return self._verdict(status, records, [f['reason'] for f in failures.values()])

    @staticmethod
    def _failures(status, indices, by_index) -> dict:
        """Source index -> reason and message, for every structure without a label."""
        state = status['state'] if status else 'killed'
        failures = {}
        for i in indices:
            record = by_index.get(i)
            if state == 'setup_failed':
                failures[str(i)] = {'reason': 'setup_failed', 'message': status.get('message', '')}
            elif record is None:
                failures[str(i)] = {'reason': 'not_attempted', 'message': f'not reached: the engine stopped ({state})'}
            elif record['status'] != 'ok':
                failures[str(i)] = {'reason': record['status'], 'message': record.get('message', '')}
        return failures

    def _verdict(self, status, records, reasons):
        """The exit code from the per-structure outcomes; ``None`` leaves it to the program's state."""
        state = status['state'] if status else 'killed'
        if state == 'setup_failed' or (status is None and not records):
            return None
        if state == 'failed' and reasons:  # the program broke off: what it labelled is kept, the rest is resent
            message = f'{status.get("message", "")}; {reasons.count("not_attempted")} structure(s) not reached'
            return self.exit_codes.ERROR_PROGRAM_FAILED.format(message=message)
        if 'not_attempted' in reasons:
            why = 'killed, e.g. out of walltime' if status is None else 'time budget `max_seconds` spent'
            message = f'{reasons.count("not_attempted")} structure(s) not reached: {why}'
            return self.exit_codes.ERROR_INTERRUPTED.format(message=message)
        if 'scf_not_converged' in reasons:
            message = f'{reasons.count("scf_not_converged")} structure(s)'
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED.format(message=message)
        if reasons:
            return self.exit_codes.ERROR_STRUCTURES_FAILED.format(message=f'{len(reasons)} structure(s)')
        return ExitCode(0)

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
        if 'ensemble' in self.node.inputs:
            description += f'; ensemble {self.node.inputs.ensemble.uuid}'
        labelled.set_label_provenance(engine, labeller.ground_truth, description)
        return labelled
