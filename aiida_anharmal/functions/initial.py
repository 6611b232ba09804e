"""Calcfunctions of the initial data of an AL run: candidate structures and the train/test split."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from ..core.structures.checks import check_seed
from ..data.training_set import TrainingSet

#: Parameters of each initialisation mode, with defaults (Kang et al.: 25 + 5 training frames).
MODES = {
    'harmonic': {'n_train': 30, 'n_test': 10, 'seed': 0, 'temperature': 300.0, 'quantum': False},
    'random': {'n_train': 30, 'n_test': 10, 'seed': 0, 'amplitude': 0.05},
    'trajectory': {'n_train': 30, 'n_test': 10, 'seed': 0, 'skip': 0, 'spread': True},
}


def check_initial_parameters(mode: str, parameters: dict) -> dict:
    """The parameters of ``mode`` with defaults; ``ValueError`` for an unknown mode, key or bad value."""
    if mode not in MODES:
        raise ValueError(f'unknown initialisation mode {mode!r}; known: {sorted(MODES)}')
    unknown = sorted(set(parameters) - set(MODES[mode]))
    if unknown:
        raise ValueError(
            f'unknown parameter(s) {unknown} of initialisation mode `{mode}`; known: {sorted(MODES[mode])}'
        )
    p = {**MODES[mode], **parameters}
    check_seed('seed', p['seed'])
    for key in ('n_train', 'n_test'):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 0:
            raise ValueError(f'`{key}` must be a non-negative integer, not {p[key]!r}')
    if p['n_train'] < 2:
        raise ValueError('`n_train` must be at least 2 (each ensemble member needs a training and a validation frame)')
    if p['n_test'] == 1:
        raise ValueError(
            '`n_test` must be 0 (the test set comes from elsewhere) or at least 2 (the test-set statistics need a '
            'standard deviation)'
        )
    if mode == 'harmonic' and not p['temperature'] > 0:
        raise ValueError(f'`temperature` must be positive, not {p["temperature"]}')
    if mode == 'random' and not p['amplitude'] > 0:
        raise ValueError(f'`amplitude` must be positive, not {p["amplitude"]}')
    return p


@calcfunction
def harmonic_sampling(force_constants: orm.ArrayData, parameters: orm.Dict):
    """``n_train + n_test`` supercells displaced by canonical sampling of the harmonic model at ``temperature``.

    ``force_constants``: a ForceConstants (or any harmonic-reference ArrayData). Unlabelled output;
    every frame's origin says ``kind: harmonic``, the temperature, the seed and its sample number.
    """
    from ase import Atoms

    from ..core.structures.sampling import harmonic_samples
    from ..data.force_constants import harmonic_arrays

    p = check_initial_parameters('harmonic', parameters.get_dict())
    arrays = harmonic_arrays(force_constants)
    names = force_constants.get_arraynames()
    atoms = Atoms(
        numbers=arrays['numbers'],
        positions=arrays['positions'],
        cell=arrays['cell'],
        pbc=True,
        masses=force_constants.get_array('masses') if 'masses' in names else None,
    )
    n = p['n_train'] + p['n_test']
    samples = harmonic_samples(atoms, arrays['force_constants'], p['temperature'], n, p['seed'], p['quantum'])
    origins = [{'kind': 'harmonic', 'temperature': p['temperature'], 'seed': p['seed'], 'sample': k} for k in range(n)]
    return TrainingSet.from_ase(samples, origins=origins)


@calcfunction
def random_sampling(structure: orm.StructureData, parameters: orm.Dict):
    """``n_train + n_test`` copies of ``structure`` with Gaussian displacements of ``amplitude`` (A)."""
    from ..core.structures.sampling import random_displacements

    p = check_initial_parameters('random', parameters.get_dict())
    n = p['n_train'] + p['n_test']
    samples = random_displacements(structure.get_ase(), p['amplitude'], n, p['seed'])
    origins = [{'kind': 'random', 'amplitude': p['amplitude'], 'seed': p['seed'], 'sample': k} for k in range(n)]
    return TrainingSet.from_ase(samples, origins=origins)


@calcfunction
def split_initial(frames: TrainingSet, parameters: orm.Dict, mode: orm.Str):
    """Disjoint ``training_set`` and ``test_set`` of ``frames`` (labelled or not); no ``test_set`` for ``n_test`` 0.

    The training frames are spread over the candidates (``spread``) or drawn; the test frames are
    drawn from the rest, so no test frame is ever trained on. Origins are kept, with ``initial_index``
    (the frame's index in ``frames``) added.
    """
    from ..core.structures.sampling import initial_split

    p = check_initial_parameters(mode.value, parameters.get_dict())
    spread = p.get('spread', False)
    train, test = initial_split(len(frames), p['n_train'], p['n_test'], p['seed'], p.get('skip', 0), spread)
    outputs = {}
    for name, indices in (('training_set', train), ('test_set', test)):
        if not indices:
            continue
        subset = frames.frames.subset(indices)
        for origin, index in zip(subset.origins, indices):
            origin['initial_index'] = int(index)
        node = TrainingSet(frames=subset)
        attributes = frames.base.attributes
        if attributes.get('label_engine', None):
            node.set_label_provenance(
                attributes.get('label_engine'), attributes.get('ground_truth'), attributes.get('label_description', '')
            )
        outputs[name] = node
    return outputs


@calcfunction
def thermal_start(force_constants: orm.ArrayData, temperature: orm.Float, seed: orm.Int) -> orm.StructureData:
    """One supercell displaced by classical harmonic sampling at ``temperature``: an MD start already at thermal
    displacements, so a run from it (with Maxwell-Boltzmann velocities) needs a far shorter equilibration than one
    from the ideal crystal."""
    from ase import Atoms

    from ..core.structures.sampling import harmonic_samples
    from ..data.force_constants import harmonic_arrays

    arrays = harmonic_arrays(force_constants)
    names = force_constants.get_arraynames()
    atoms = Atoms(
        numbers=arrays['numbers'],
        positions=arrays['positions'],
        cell=arrays['cell'],
        pbc=True,
        masses=force_constants.get_array('masses') if 'masses' in names else None,
    )
    (sample,) = harmonic_samples(atoms, arrays['force_constants'], temperature.value, 1, seed.value)
    return orm.StructureData(ase=sample)
