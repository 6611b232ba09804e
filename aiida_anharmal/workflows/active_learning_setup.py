"""Before the loop of :class:`~aiida_anharmal.workflows.active_learning.ActiveLearningWorkChain` runs.

:class:`ActiveLearningProtocol` composes the loop's builder from its own protocol and the builders of
its three sub-workchains; :func:`validate_active_learning_inputs` refuses everything that cannot run
before any job starts, in the words of the check that the jobs themselves would apply
(labelling, initial data, acquisition and convergence strategies).
"""

from __future__ import annotations

from aiida import orm

from ..calculations.label import check_label_inputs
from ..calculations.md import bias_steps_message
from ..core.acquisition import ACQUISITIONS, check_acquisition_parameters
from ..core.acquisition import with_defaults as acquisition_defaults
from ..core.checks import check_seed
from ..core.convergence import check_convergence_parameters
from ..core.convergence import with_defaults as convergence_defaults
from ..core.exploration_start import check_start_parameters
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..protocols import ProtocolMixin, namespace_inputs
from .active_learning_lifetimes import ROUTE_WORKCHAINS, check_lifetime_inputs
from .active_learning_neb import NEB_LOOP_SETS, check_neb_inputs
from .active_learning_test_set import check_test_set_inputs
from .active_learning_validation import LOOP_SETS, check_validation_inputs
from .ensemble import EnsembleWorkChain
from .initial import check_initial_inputs
from .label import LabelWorkChain
from .md import ExplorationWorkChain
from .validation import ValidationMDWorkChain

#: Sub-workchains whose builders fill the namespaces of the same name, and the ports the loop sets itself.
SUB_WORKCHAINS = {
    'ensemble': (EnsembleWorkChain, ('training_set', 'parent_ensemble')),
    'explore': (ExplorationWorkChain, ('ensemble', 'structure', 'harmonic')),
    'label': (LabelWorkChain, ('structures',)),
}


class ActiveLearningProtocol(ProtocolMixin):
    """The protocols of the loop: its own YAML file and the builders of its three sub-workchains."""

    _protocol_file = 'active_learning.yaml'
    _namespaces = (*SUB_WORKCHAINS, 'validation', 'neb')

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        structure,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        training_set: TrainingSet | None = None,
        test_set: TrainingSet | None = None,
        harmonic: orm.ArrayData | None = None,
        model: MLIPModel | None = None,
        initial_ensemble: Ensemble | None = None,
        options: dict | None = None,
        exploration: str = 'md',
    ):
        """A builder from one protocol name for the loop, its initial data and its three sub-workchains.

        :param codes: ``{'train', 'evaluate', 'md', 'label'}`` -> codes of the four programs.
        :param structure: start of the exploration, StructureData or ASE Atoms.
        :param engine: labelling engine (``gpaw``, ``emt``, ``nequip-reference`` with ``model``).
        :param overrides: nested dict; ``ensemble``, ``explore`` and ``label`` go to those workchains'
            own builders (``get_builder_from_protocol``), every other key to this workchain's protocol
            (e.g. ``initial``, ``acquisition``); unknown keys are refused at every level the protocols spell
            out (the contents of free-form keys such as ``acquisition`` are checked when submitted).
        :param training_set: labelled start frames (with ``test_set``); without them the protocol's
            ``initial`` data are made: harmonic sampling when ``harmonic`` is given, else random
            displacements of ``structure``.
        :param harmonic: ForceConstants of ``structure``: A, UCE_A and the harmonic sampling.
        :param options: scheduler options of every job, merged recursively into each protocol's.
        :param exploration: ``md`` (MD on the ensemble mean, soft acquisition) or ``hal`` (hyperactive learning:
            the bias and trigger of the exploration protocol's ``hal`` section, acquisition kind ``trigger``).
        """
        overrides = dict(overrides or {})
        sub = {name: overrides.pop(name, None) for name in SUB_WORKCHAINS}
        validation = overrides.pop('validation', None)
        neb = overrides.pop('neb', None)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        missing = sorted({'train', 'evaluate', 'md', 'label'} - set(codes))
        if missing:
            raise ValueError(f'codes missing for {missing}')
        test_md = inputs.get('test_md')
        if test_set is not None and 'test_md' in overrides:
            raise ValueError('give `test_set` or make it with `test_md` (overrides), not both')
        if test_set is not None:
            test_md = None  # the given test set wins over a protocol's test MD
        if (training_set is None and test_set is not None) or (
            training_set is not None and test_md is None is test_set
        ):
            raise ValueError(
                'give both `training_set` and `test_set` (or `training_set` and a `test_md`), or neither (then the '
                'initial data are made)'
            )
        builder = cls.get_builder()
        builder.structure = structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
        if test_md is not None:
            builder.test_md = orm.Dict(test_md)
        if training_set is not None:
            builder.training_set = training_set
            if test_set is not None:
                builder.test_set = test_set
        else:
            mode = inputs['initial'].get('mode') or ('harmonic' if harmonic is not None else 'random')
            parameters = dict(inputs['initial']['parameters'][mode])
            if test_md is not None:  # the test set comes from MD: no initial test frame
                parameters['n_test'] = 0
            builder.initial = {'mode': orm.Str(mode), 'parameters': orm.Dict(parameters)}
        cls._set_loop_inputs(builder, inputs, exploration)
        builder.evaluate_code = codes['evaluate']
        if harmonic is not None:
            builder.harmonic = harmonic
        if initial_ensemble is not None:
            builder.initial_ensemble = initial_ensemble
        builders = {
            'ensemble': EnsembleWorkChain.get_builder_from_protocol(
                codes['train'], None, protocol, sub['ensemble'], options=options
            ),
            'explore': ExplorationWorkChain.get_builder_from_protocol(
                codes['md'], None, None, protocol, sub['explore'], options=options, exploration=exploration
            ),
            'label': LabelWorkChain.get_builder_from_protocol(
                codes['label'], None, engine, protocol, sub['label'], model=model, options=options
            ),
        }
        for name, (_, exclude) in SUB_WORKCHAINS.items():
            builder[name] = namespace_inputs(builders[name], exclude)
        if validation is not None:
            builder.validation = cls._validation_namespace(
                codes, dict(validation), harmonic, engine, protocol, model, options
            )
        if neb is not None:
            builder.neb = cls._neb_inputs(codes, dict(neb), engine, protocol, options)
        return builder

    @staticmethod
    def _set_loop_inputs(builder, inputs: dict, exploration: str) -> None:
        """The loop's own inputs; the strategies with the defaults of their classes filled in (checked with
        the other inputs when the loop is submitted); exploration ``hal`` selects acquisition kind ``trigger``
        unless the override names a kind."""
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.seed = orm.Int(inputs['seed'])
        hal = {'kind': 'trigger'} if exploration == 'hal' else {}
        builder.acquisition = orm.Dict(acquisition_defaults({**hal, **inputs['acquisition']}))
        builder.convergence = orm.Dict(convergence_defaults(inputs['convergence']))
        builder.start = orm.Dict(inputs['start'])

    @classmethod
    def _validation_namespace(cls, codes, validation: dict, harmonic, engine, protocol, model, options) -> dict:
        """The ``validation`` namespace from the override: the validation MD (unless the override holds only
        ``lifetimes``) with the loop's protocol, and ``lifetimes``."""
        lifetimes = validation.pop('lifetimes', None)
        namespace = {}
        if validation or lifetimes is None:  # the override names the validation MD
            validate = ValidationMDWorkChain.get_builder_from_protocol(
                {}, protocol=protocol, overrides=validation, options=options
            )
            namespace = namespace_inputs(validate, LOOP_SETS)
        if lifetimes is not None:
            namespace['lifetimes'] = cls._lifetime_inputs(
                codes, dict(lifetimes), harmonic, engine, protocol, model, options
            )
        return namespace

    @staticmethod
    def _lifetime_inputs(codes, lifetimes: dict, harmonic, engine, protocol, model, options) -> dict:
        """The ``validation.lifetimes`` namespace from the override: ``md`` and/or ``perturbative``, each the
        overrides of that route's workchain protocol (``{}`` for the protocol as it is)."""
        unknown = sorted(set(lifetimes) - set(ROUTE_WORKCHAINS))
        if unknown or not lifetimes:
            raise ValueError(
                f'`validation.lifetimes` takes the routes {sorted(ROUTE_WORKCHAINS)}, not {unknown or "none"}'
            )
        if harmonic is None:
            raise ValueError('the lifetimes validation needs `harmonic` (a ForceConstants node)')
        namespaces = {}
        for route, overrides in lifetimes.items():
            workchain, exclude = ROUTE_WORKCHAINS[route]
            names = ('md', 'lifetimes') if route == 'md' else ('label', 'perturbative')
            missing = [name for name in names if codes.get(name) is None]
            if missing:
                raise ValueError(f'the lifetimes route `{route}` needs codes {missing}')
            route_codes = {name: codes[name] for name in names}
            if route == 'md':
                builder = workchain.get_builder_from_protocol(
                    route_codes, harmonic, protocol=protocol, overrides=overrides, options=options
                )
            else:
                dropped = sorted({'label', 'label_protocol'} & set(overrides or {}))
                if dropped:
                    raise ValueError(f'`validation.lifetimes.perturbative` labels like the loop: {dropped} not allowed')
                builder = workchain.get_builder_from_protocol(
                    route_codes, harmonic, engine, protocol, overrides, model=model, options=options
                )
            namespaces[route] = namespace_inputs(builder, exclude)
        return namespaces

    @staticmethod
    def _neb_inputs(codes: dict, neb: dict, engine: str, protocol: str | None, options: dict | None) -> dict:
        """The ``neb`` namespace from the ``neb`` override: ``initial`` and ``final`` (Atoms or StructureData),
        the rest overrides of the NEBWorkChain protocol."""
        from .neb import NEBWorkChain

        missing = sorted({'initial', 'final'} - set(neb))
        if missing or 'neb' not in codes:
            raise ValueError(f'the `neb` override needs `initial`, `final` and codes["neb"]; missing {missing}')
        initial, final, acquire = neb.pop('initial'), neb.pop('final'), neb.pop('acquire', None)
        builder = NEBWorkChain.get_builder_from_protocol(
            {'neb': codes['neb'], 'label': codes['label']}, None, initial, final, engine, protocol, neb, options=options
        )
        namespace = namespace_inputs(builder, NEB_LOOP_SETS)
        if acquire is not None:
            namespace['acquire'] = orm.Bool(acquire)
        return namespace


def frame_keys(training_set: TrainingSet) -> set[bytes]:
    """One key per frame, equal for frames equal up to a translation, a lattice translation of an atom or a
    permutation of the atoms (:func:`~aiida_anharmal.core.checks.structure_fingerprint`)."""
    from ..core.checks import structure_fingerprint

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
    hyperparameters = ensemble['hyperparameters'].get_dict() if 'hyperparameters' in ensemble else {}
    for label, member in sorted(members.items()):
        species = ensemble['species'].get_list() if 'species' in ensemble else member.species
        message = check_parent_model(member, hyperparameters, species)
        if message:
            return f'initial ensemble member {label}: {message}'
    return None


def _exploration_message(explore) -> str | None:
    """The stop rules and bias of the exploration, refused now (its runs get their ensemble only in the loop)."""
    from ..core.guards import check_guard_settings
    from ..core.md import check_bias_settings
    from ..core.triggers import check_trigger_settings

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
    parameters = explore['parameters'].get_dict() if 'parameters' in explore else {}
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
        acquisition = check_acquisition_parameters(value['acquisition'].get_dict() if 'acquisition' in value else {})
        check_convergence_parameters(value['convergence'].get_dict() if 'convergence' in value else {})
        check_start_parameters(value['start'].get_dict() if 'start' in value else {})
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
        check_seed('seed', value['seed'].value if 'seed' in value else 0)
    except ValueError as exc:
        return str(exc)
    species = set(value['structure'].get_ase().get_chemical_symbols())
    if given:
        training_set, test_set = value['training_set'], value.get('test_set', value['training_set'])
        if len(test_set) < 2:
            return 'the test set needs at least two frames (its statistics need a standard deviation)'
        from ..core.checks import label_problem

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
