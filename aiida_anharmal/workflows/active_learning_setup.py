"""The builder of :class:`~aiida_anharmal.workflows.active_learning.ActiveLearningWorkChain` from protocols.

:class:`ActiveLearningProtocol` composes the loop's builder from its own protocol and the builders of
its three sub-workchains (and of the validation, lifetimes and NEB namespaces);
:mod:`~aiida_anharmal.workflows.active_learning_checks` refuses what cannot run before any job starts.
"""

from __future__ import annotations

from aiida import orm

from ..core.learning.acquisition import with_defaults as acquisition_defaults
from ..core.learning.convergence import with_defaults as convergence_defaults
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..protocols import ProtocolMixin, namespace_inputs
from .active_learning_lifetimes import ROUTE_WORKCHAINS
from .active_learning_neb import NEB_LOOP_SETS
from .active_learning_validation import LOOP_SETS
from .codes import resolve_codes
from .ensemble import EnsembleWorkChain
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
        code=None,
        structure=None,
        protocol: str | None = None,
        overrides: dict | None = None,
        *,
        engine: str = 'gpaw',
        training_set: TrainingSet | None = None,
        test_set: TrainingSet | None = None,
        harmonic: orm.ArrayData | None = None,
        model: MLIPModel | None = None,
        initial_ensemble: Ensemble | None = None,
        options: dict | None = None,
        exploration: str = 'md',
    ):
        """A builder from one protocol name for the loop, its initial data and its three sub-workchains.

        :param code: ``None`` (the codes that ``anharmal setup`` made on ``localhost``), one code of this package
            (the others from its computer) or a dict by role (``train``, ``evaluate``, ``md``, ``label``; ``neb``,
            ``lifetimes``, ``perturbative`` for validation): :func:`~aiida_anharmal.workflows.codes.resolve_codes`.
        :param structure: start of the exploration, StructureData or ASE Atoms.
        :param protocol: ``fast``, ``moderate`` (default) or ``precise``.
        :param engine: labelling engine (``gpaw``, the default: DFT; ``emt``; ``nequip-reference`` with ``model``;
            any engine of the ``anharmal.labellers`` entry points).
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
        if structure is None:
            raise ValueError('`structure` is needed: the start of the exploration (StructureData or ASE Atoms)')
        codes = resolve_codes(
            code,
            required=('train', 'evaluate', 'md', 'label', *(('neb',) if neb is not None else ())),
            optional=('lifetimes', 'perturbative') if validation is not None else (),
        )
        builder = cls.get_builder()
        builder.structure = structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
        cls._set_starting_data(builder, inputs, 'test_md' in overrides, training_set, test_set, harmonic)
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
    def _set_starting_data(builder, inputs: dict, test_md_given: bool, training_set, test_set, harmonic) -> None:
        """The training and test data: given sets, or the protocol's initial data; the test MD of the protocol (or
        of the overrides), unless a ``test_set`` is given."""
        test_md = inputs.get('test_md')
        if test_set is not None and test_md_given:
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
        if test_md is not None:
            builder.test_md = orm.Dict(test_md)
        if training_set is not None:
            builder.training_set = training_set
            if test_set is not None:
                builder.test_set = test_set
            return
        mode = inputs['initial'].get('mode') or ('harmonic' if harmonic is not None else 'random')
        parameters = dict(inputs['initial']['parameters'][mode])
        if test_md is not None:  # the test set comes from MD: no initial test frame
            parameters['n_test'] = 0
        builder.initial = {'mode': orm.Str(mode), 'parameters': orm.Dict(parameters)}

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
