"""Calcfunctions of the NEB validation: the images of a path as structures to label, and the comparison table."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.training_set import TrainingSet
from .datasets import trajectory_atoms


@calcfunction
def path_structures(path: orm.TrajectoryData) -> TrainingSet:
    """The images of a relaxed band as an (unlabelled) TrainingSet, each with its origin (image, path)."""
    atoms = trajectory_atoms(path, range(path.numsteps))
    origins = [{'kind': 'neb', 'image': k, 'path_uuid': path.uuid} for k in range(path.numsteps)]
    return TrainingSet.from_ase(atoms, origins=origins)


def _barrier(energies) -> dict:
    energies = np.asarray(energies, dtype=float)
    relative = energies - energies[0]
    return {
        'barrier': float(relative.max()),
        'reaction_energy': float(relative[-1]),
        'highest_image': int(np.argmax(relative)),
    }


@calcfunction
def compare_paths(images_data: orm.ArrayData, labelled: TrainingSet, **reference) -> orm.Dict:
    """The MLIP's path next to the ground truth: energies of the *same* images, and the ground truth's own NEB.

    ``labelled``: the MLIP path's images labelled by the engine (origins carry the image index).
    ``reference``: optionally ``reference_summary`` and ``reference_images_data`` of the engine's own NEB.
    Energies in eV relative to the initial image; force errors in eV/A (mean over atoms of
    |F_MLIP - F_engine| per image, and the largest component error).
    """
    mlip = images_data.get_array('energies')
    uce = images_data.get_array('uce_force_max')
    forces = images_data.get_array('forces') if 'forces' in images_data.get_arraynames() else None
    frames = labelled.frames
    images = [origin['image'] for origin in labelled.origins]
    truth = np.full(len(mlip), np.nan)
    truth[images] = frames.energy
    rows = []
    for k in range(len(mlip)):
        row = {'image': k, 'mlip_energy': float(mlip[k]), 'uce_force_max': float(uce[k])}
        if k in images:
            j = images.index(k)
            row['engine_energy'] = float(truth[k] - truth[images.index(0)]) if 0 in images else None
            if forces is not None:
                error = np.abs(forces[k] - frames.forces[frames.atom_slice(j)])
                row['force_mae'] = float(error.mean())
                row['force_max_error'] = float(error.max())
        rows.append(row)
    result = {'rows': rows, 'mlip': _barrier(mlip)}
    if 0 in images and len(images) == len(mlip):
        result['engine_on_mlip_path'] = _barrier(truth)
        result['energy_mae'] = float(np.mean(np.abs((truth - truth[0]) - mlip)))
    result['max_uce_force_max'] = float(uce.max())
    if 'reference_summary' in reference:
        summary = reference['reference_summary'].get_dict()
        result['engine_path'] = {k: summary[k] for k in ('barrier', 'reaction_energy', 'highest_image') if k in summary}
        result['engine_path']['converged'] = summary.get('converged')
    if 'reference_images_data' in reference:
        result['engine_path_energies'] = reference['reference_images_data'].get_array('energies').tolist()
    return orm.Dict(result)


@calcfunction
def uncertain_images(
    images_data: orm.ArrayData,
    labelled: TrainingSet,
    statistics: orm.Dict,
    parameters: orm.Dict,
    seed: orm.Int,
    iteration: orm.Int,
):
    """The images of an ensemble's NEB path drawn like exploration frames, as labelled training frames (``neb.acquire``).

    Each image is drawn with the acquisition's P(UCE) of its UCE_F^max against the test-set ``statistics``
    (``parameters``: the loop's acquisition, ``s`` and ``g``; at most ``n_max`` images, the most uncertain
    first). P(U) is left out: a relaxed path is no thermal frame. The frames come from ``labelled`` (the path's
    images labelled by the engine for the comparison), so they cost no new label; each origin says ``reason:
    neb_image`` and ``a_priori: true`` (the path was given to the loop), with the image, its UCE_F^max and P(UCE)
    and the iteration. Outputs ``selection`` (Dict: ``images`` drawn, ``added`` to the frames, ``unlabelled``
    ones the engine had failed on, ``p_uncertainty``, ``threshold``) and, if any image was added, ``frames``.
    Whatever the acquisition's kind, the images are drawn on UCE_F^max with its ``s`` and ``g``.
    """
    from ..core.learning.acquisition import UncertaintyProbability, check_acquisition_parameters

    p = check_acquisition_parameters(parameters.get_dict())
    stats = statistics.get_dict()['uce_force_max']
    uce = images_data.get_array('uce_force_max')
    probability = UncertaintyProbability(stats['mean'], stats['std'], p['s'], p['g'])(uce)
    drawn = np.random.default_rng([int(seed.value), 2]).random(len(uce))
    chosen = [int(k) for k in np.argsort(-uce, kind='stable') if drawn[k] < probability[k]][: p['n_max']]
    selection = {
        'images': chosen,
        'p_uncertainty': probability.tolist(),
        'threshold': float(stats['mean'] + p['s'] * stats['std']),
        'n_images': len(uce),
    }
    images = [origin['image'] for origin in labelled.origins]
    keep = [images.index(k) for k in chosen if k in images]
    selection['added'] = [k for k in chosen if k in images]
    selection['unlabelled'] = [k for k in chosen if k not in images]  # drawn, but the engine could not label them
    outputs = {'selection': orm.Dict(selection)}
    if keep:
        frames = labelled.frames.subset(keep)
        for origin, k in zip(frames.origins, [images[j] for j in keep], strict=True):
            origin.update(
                reason='neb_image',
                a_priori=True,
                iteration=iteration.value,
                uce_force_max=float(uce[k]),
                p_uncertainty=float(probability[k]),
            )
        node = TrainingSet(frames=frames)
        attributes = labelled.base.attributes
        if attributes.get('label_engine', None):
            node.set_label_provenance(
                attributes.get('label_engine'), attributes.get('ground_truth'), attributes.get('label_description', '')
            )
        outputs['frames'] = node
    return outputs
