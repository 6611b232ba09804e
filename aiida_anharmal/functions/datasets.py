"""Calcfunctions on datasets: every dataset operation is a node in the provenance graph."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.structures.frames import Frames
from ..data.training_set import TrainingSet


def trajectory_atoms(trajectory: orm.TrajectoryData, indices) -> list:
    """Frames ``indices`` of a TrajectoryData as ASE Atoms (symbols, positions, cell, pbc; no calculator)."""
    from ase import Atoms

    positions, cells = trajectory.get_positions(), trajectory.get_cells()
    pbc = trajectory.pbc if trajectory.pbc is not None else True
    symbols = list(trajectory.symbols)
    return [Atoms(symbols=symbols, positions=positions[k], cell=cells[k], pbc=pbc) for k in indices]


def _ordered(kwargs: dict, prefix) -> list:
    return [kwargs[key] for key in sorted(kwargs) if key.startswith(prefix)]


@calcfunction
def collect_labels(**parts):
    """Merge labelled parts of one source set into one ``labelled`` set and one ``excluded`` list.

    Inputs are named ``labelled_NNN`` (TrainingSets whose frames carry ``source_index`` in their
    origin) and ``failures_NNN`` / ``excluded_NNN`` (Dicts ``source index -> {reason, message}``),
    with ``NNN`` giving the order of the attempts. A structure labelled in any part is kept (once,
    ordered by source index); a structure never labelled is excluded with the reason of its
    latest failure and the number of failed attempts.

    With ``source`` (the set that was labelled), each frame's origin is the source frame's, with
    ``source_uuid``, ``source_index`` and ``label_calc`` (the calculation that made the part): a part
    taken from AiiDA's cache (a job on the same structures in another run) then still says where
    *this* run's frame came from.
    """
    source = parts.pop('source', None)
    labelled_parts = _ordered(parts, 'labelled_')
    failure_parts = _ordered(parts, ('failures_', 'excluded_'))

    by_index: dict[int, tuple[TrainingSet, int]] = {}
    for part in labelled_parts:
        for k, origin in enumerate(part.origins):
            by_index[int(origin['source_index'])] = (part, k)

    excluded: dict[str, dict] = {}
    for part in failure_parts:
        for key, failure in part.get_dict().items():
            if int(key) in by_index:
                continue
            previous = excluded.get(key, {})
            attempts = previous.get('attempts', 0) + int(failure.get('attempts', 1))
            excluded[key] = {**failure, 'attempts': attempts}

    outputs = {'excluded': orm.Dict(dict(sorted(excluded.items(), key=lambda kv: int(kv[0]))))}
    if by_index:
        frames = Frames.concatenate([part.frames.subset([k]) for _, (part, k) in sorted(by_index.items())])
        if source is not None:
            for k, (index, (part, _)) in enumerate(sorted(by_index.items())):
                # a part a label job made: that job (a clone when taken from the cache); else as the part says
                job = isinstance(part.creator, orm.CalcJobNode)
                creator = part.creator.uuid if job else frames.origins[k].get('label_calc')
                frames.origins[k] = {
                    **source.origins[index],
                    'source_uuid': source.uuid,
                    'source_index': index,
                    'label_calc': creator,
                }
        merged = TrainingSet(frames=frames)
        first = labelled_parts[0].base.attributes
        if first.get('label_engine', None):
            merged.set_label_provenance(
                first.get('label_engine'), first.get('ground_truth'), first.get('label_description', '')
            )
        outputs['labelled'] = merged
    return outputs


@calcfunction
def subsample(training_set: TrainingSet, parameters: orm.Dict):
    """Record the train/validation frames of each ensemble subsample as ``subsample_NN`` Dict outputs.

    ``parameters``: ``n_sub``, ``validation_ratio``, ``seed``, optional ``fraction`` (default 1).
    Only frames with energy and forces are used; an unlabelled frame is refused, so a member is
    never trained on a structure without labels. Each output holds ``train`` and ``validation``
    index lists into ``training_set`` and the parameters, so membership is a query away.
    """
    from ..core.structures.splits import subsample_splits

    p = parameters.get_dict()
    frames = training_set.frames
    unlabelled = np.flatnonzero(~(frames.has_energy & frames.has_forces))
    if len(unlabelled):
        raise ValueError(
            f'the training set has {len(unlabelled)} unlabelled frame(s) (first: {unlabelled[:5].tolist()})'
        )
    splits = subsample_splits(range(len(frames)), p['n_sub'], p['validation_ratio'], p['seed'], p.get('fraction', 1.0))
    return {
        f'subsample_{k:02d}': orm.Dict({'index': k, 'train': train, 'validation': validation, **p})
        for k, (train, validation) in enumerate(splits)
    }


@calcfunction
def merge_training_sets(**parts):
    """Join labelled TrainingSets (in the order of their input names) into one; origins are kept.

    Every frame needs energy and forces, and all parts that name their labelling engine must name
    the same one (mixing, say, DFT with a stand-in model would silently change the ground truth).
    """
    names = sorted(parts)
    if not names:
        raise ValueError('nothing to merge')
    engines = {parts[n].base.attributes.get('label_engine', None) for n in names} - {None}
    if len(engines) > 1:
        raise ValueError(f'the parts were labelled by different engines {sorted(map(str, engines))}: refusing to mix')
    for name in names:
        frames = parts[name].frames
        if not (frames.has_energy & frames.has_forces).all():
            raise ValueError(f'part `{name}` has frames without energy or forces')
    merged = TrainingSet(frames=Frames.concatenate([parts[n].frames for n in names]))
    labelled = [parts[n].base.attributes for n in names if parts[n].base.attributes.get('label_engine', None)]
    if labelled:
        merged.set_label_provenance(
            labelled[0].get('label_engine'), labelled[0].get('ground_truth'), labelled[0].get('label_description', '')
        )
    return merged


@calcfunction
def frame_structure(source: orm.Data, index: orm.Int) -> orm.StructureData:
    """Frame ``index`` of a TrainingSet or a TrajectoryData as a StructureData (positions and cell only).

    The start of an exploration taken from a test-set frame or from the end of an earlier run is
    this calcfunction's output, so the graph says where every exploration started.
    """
    k = index.value
    if isinstance(source, TrainingSet):
        if not -len(source) <= k < len(source):
            raise ValueError(f'frame {k} is out of range for a set of {len(source)} frames')
        return orm.StructureData(ase=source.frames.get_atoms(k, with_labels=False))
    if isinstance(source, orm.TrajectoryData):
        steps = range(source.numsteps)
        return source.get_step_structure(steps[k])
    raise TypeError(f'frame_structure takes a TrainingSet or a TrajectoryData, not {type(source).__name__}')
