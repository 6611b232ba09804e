"""What :class:`~aiida_anharmal.workflows.active_learning.ActiveLearningWorkChain` refuses before any job runs.

:func:`validate_active_learning_inputs` checks every input of the loop in the words of the check the jobs
themselves would apply (labelling, initial data, test set, acquisition, convergence and start strategies,
the exploration's stop rules and bias, fine-tuning, validation, lifetimes, NEB).
"""

from __future__ import annotations

from ..calculations.label import check_label_inputs
from ..calculations.md import bias_steps_message
from ..core.learning.acquisition import ACQUISITIONS, check_acquisition_parameters
from ..core.learning.convergence import check_convergence_parameters
from ..core.learning.exploration_start import check_start_parameters
from ..core.structures.checks import check_seed
from ..data.training_set import TrainingSet
from ..ports import dict_input, input_value
from .active_learning_lifetimes import check_lifetime_inputs
from .active_learning_neb import check_neb_inputs
from .active_learning_test_set import check_test_set_inputs
from .active_learning_validation import check_validation_inputs
from .initial import check_initial_inputs


def frame_keys(training_set: TrainingSet) -> set[bytes]:
    """One key per frame, equal for frames equal up to a translation, a lattice translation of an atom or a
    permutation of the atoms (:func:`~aiida_anharmal.core.structures.checks.structure_fingerprint`)."""
    from ..core.structures.checks import structure_fingerprint

    frames = training_set.frames
    return {
        structure_fingerprint(
            frames.numbers[frames.atom_slice(k)], frames.positions[frames.atom_slice(k)], frames.cells[k]
        )
        for k in range(len(frames))
    }


def _labeller_message(value, to_label) -> str | None:
    """The labelling request refused for the structures the loop will label, in the label jobs' own words."""
    label = value.get('label', {})
    if 'engine' not in label:
        return None
    if label['engine'].value == 'ensemble':
        return "the loop cannot label with engine `ensemble`: an ensemble's own labels teach it nothing"
    return check_label_inputs(label, to_label)


def _finetune_message(value) -> str | None:
    """With a pretrained ensemble and ``retrain: finetune``, iteration 2 fine-tunes its members: check them now."""
    ensemble = value.get('ensemble', {})
    if 'initial_ensemble' not in value or 'retrain' not in ensemble or ensemble['retrain'].value != 'finetune':
        return None
    if 'max_iterations' in value and value['max_iterations'].value < 2:
        return None  # the loop ends before it would fine-tune
    from ..calculations.train import check_parent_model
    from .ensemble import member_label

    members = value['initial_ensemble'].members
    n_sub = ensemble['n_sub'].value if 'n_sub' in ensemble else 3
    seeds = ensemble['seeds'].get_list() if 'seeds' in ensemble else [0, 1]
    missing = sorted({member_label(k, s) for k in range(n_sub) for s in seeds} - set(members))
    if missing:
        return f'the initial ensemble has no member(s) {missing} to fine-tune from (it has {sorted(members)})'
    hyperparameters = dict_input(ensemble, 'hyperparameters')
    for label, member in sorted(members.items()):
        species = ensemble['species'].get_list() if 'species' in ensemble else member.species
        message = check_parent_model(member, hyperparameters, species)
        if message:
            return f'initial ensemble member {label}: {message}'
    return None


def _exploration_message(explore) -> str | None:
    """The stop rules and bias of the exploration, refused now (its runs get their ensemble only in the loop)."""
    from ..core.md.loop import check_bias_settings
    from ..core.md.stop_rules import check_guard_settings, check_trigger_settings

    checked = {}
    for name, check in (
        ('guards', check_guard_settings),
        ('bias', check_bias_settings),
        ('trigger', check_trigger_settings),
    ):
        if name in explore:
            try:
                checked[name] = check(explore[name].get_dict())
            except ValueError as exc:
                return f'bad `explore.{name}`: {exc}'
    parameters = dict_input(explore, 'parameters')
    if 'temperatures' in explore or 'seeds' in explore:
        from .md import runs_message

        temperatures = explore['temperatures'].get_list() if 'temperatures' in explore else [300.0]
        message = runs_message(temperatures, explore['seeds'].get_list() if 'seeds' in explore else [0], 'explore.')
        if message:
            return message
    return bias_steps_message(checked.get('bias'), parameters.get('steps'), 'explore.bias')


def _strategy_message(value) -> str | None:
    """The acquisition, convergence, start and exploration strategies refused, with what they need."""
    try:
        acquisition = check_acquisition_parameters(dict_input(value, 'acquisition'))
        check_convergence_parameters(dict_input(value, 'convergence'))
        check_start_parameters(dict_input(value, 'start'))
    except ValueError as exc:
        return str(exc)
    kind = ACQUISITIONS.get(acquisition['kind'])
    if kind.needs_harmonic and 'harmonic' not in value:
        return f'acquisition kind `{kind.key}` needs the `harmonic` input (the reference of A and UCE_A)'
    message = _exploration_message(value.get('explore', {}))
    if message:
        return message
    explore = value.get('explore', {})
    if kind.from_stops and ('trigger' not in explore or not explore['trigger'].get_dict()):
        return (
            f'acquisition kind `{kind.key}` labels the frames where a stop trigger ended a run: give '
            '`explore.trigger` (exploration `hal` of the builder sets it)'
        )
    trigger = dict_input(explore, 'trigger')
    exponent = trigger.get('exponent', 0.0) if trigger.get('kind') == 'uncertainty' else None
    if exponent is not None and trigger.get('s') is not None and exponent != acquisition['uncertainty_exponent']:
        return (
            f"the `uncertainty` trigger's `exponent` ({exponent:g}) and the acquisition's `uncertainty_exponent` "
            f'({acquisition["uncertainty_exponent"]:g}) must be equal: a run at T is stopped and drawn against the '
            'same yardstick'
        )
    return None


def validate_active_learning_inputs(value, ctx=None):
    """Refuse what cannot run before any job starts: every check of the loop's inputs, in the jobs' own words."""
    if 'structure' not in value:
        return None
    initial = value.get('initial') or {}
    given = 'training_set' in value
    if given == ('mode' in initial):
        return 'give either `training_set` and `test_set`, or `initial.mode` (and its data), not both and not neither'
    if not given and 'test_set' in value:
        return '`test_set` comes from the initial data when `initial.mode` is given; do not give both'
    message = check_test_set_inputs(value) or _strategy_message(value)
    if message:
        return message
    if 'max_iterations' in value and value['max_iterations'].value < 1:
        return f'`max_iterations` must be at least 1, not {value["max_iterations"].value}'
    try:
        check_seed('seed', input_value(value, 'seed', ctx))
    except ValueError as exc:
        return str(exc)
    species = set(value['structure'].get_ase().get_chemical_symbols())
    if given:
        training_set, test_set = value['training_set'], value.get('test_set', value['training_set'])
        if len(test_set) < 2:
            return 'the test set needs at least two frames (its statistics need a standard deviation)'
        from ..core.structures.checks import label_problem

        for name, node in (('training_set', training_set), ('test_set', test_set)):
            problem = label_problem(node.frames)
            if problem:
                return f'`{name}`: {problem}'
        species |= set(training_set.species)
        engine = value.get('label', {}).get('engine')
        for name, node in (('training set', training_set), ('test set', test_set)):
            made_by = node.base.attributes.get('label_engine', None)
            if engine is not None and made_by is not None and made_by != engine.value:
                return (
                    f'the {name} was labelled by `{made_by}` but the loop labels with `{engine.value}`: new frames '
                    'could not be merged with it (relabel it first, or start from initial data)'
                )
        shared = frame_keys(training_set) & frame_keys(test_set) if 'test_set' in value else set()
        if shared:
            return (
                f'{len(shared)} frame(s) of the test set are also in the training set: the test set must be '
                'frames never trained on'
            )
    else:
        mode = initial['mode'].value
        request = {**initial, 'mode': initial['mode']}
        if mode == 'harmonic' and 'harmonic' in value:
            request['force_constants'] = value['harmonic']
        if mode == 'random':
            request['structure'] = value['structure']
        message = check_initial_inputs(request)
        if message:
            return message.replace('input `force_constants`', 'input `harmonic`')
        if mode == 'trajectory':
            species |= set(initial['frames'].species)
    # the loop labels frames of the start structure (and, for mode `trajectory`, the given frames)
    message = _labeller_message(value, TrainingSet.from_ase([value['structure'].get_ase()]))
    if not message and not given and initial['mode'].value == 'trajectory':
        message = _labeller_message(value, initial['frames'])
    if message:
        return message
    message = (
        _finetune_message(value)
        or check_validation_inputs(value)
        or check_lifetime_inputs(value)
        or check_neb_inputs(value)
    )
    if message:
        return message
    if 'initial_ensemble' in value and set(value['initial_ensemble'].species) != species:
        return (
            f'the initial ensemble knows {sorted(value["initial_ensemble"].species)} but the structures hold '
            f'{sorted(species)}'
        )
    return None
