"""Inputs, protocols and input checks of :class:`~aiida_anharmal.workflows.dynamic_training.DynamicTrainingWorkChain`."""

from __future__ import annotations

import numpy as np
from aiida import orm

from ..core.bayesian.convergence import make_dynamic_convergence
from ..core.bayesian.model import check_frame
from ..core.md.loop import MDSettings
from ..core.md.stop_rules import check_guard_settings
from ..data.training_set import TrainingSet
from ..functions.bayesian_fc import check_fit_parameters
from ..ports import dict_input
from ..protocols import OPEN_KEYS, namespace_inputs, recursive_merge
from .codes import resolve_codes
from .common import add_options_input, options_message
from .initial import InitialDataWorkChain, check_initial_inputs
from .label import LabelWorkChain


def nearest_neighbour_distance(atoms) -> float:
    """The shortest interatomic distance of a periodic crystal (images included), A."""
    from ase.neighborlist import neighbor_list

    distances = neighbor_list('d', atoms, 6.0)
    if not len(distances):
        raise ValueError('no two atoms within 6 A: give the cut-offs in A (`fit.cutoffs`)')
    return float(distances.min())


def retrain_message(retrain: dict) -> str | None:
    from ..core.bayesian.dynamic_training import RetrainTrigger

    try:
        RetrainTrigger.validate(retrain)
    except ValueError as exc:
        return f'bad `retrain`: {exc}'
    return None


def frames_message(frames, supercell, name: str) -> str | None:
    """Why ``frames`` (the input ``name``) are not frames of the supercell: its atoms in its order, its cell."""
    for index in range(len(frames)):
        atoms = frames.get_atoms(index, with_labels=False)
        try:
            check_frame(supercell, atoms.numbers, atoms.cell[:], index)
        except ValueError as exc:
            return f'`{name}`: {exc}'
    return None


def test_set_message(value, supercell) -> str | None:
    """Why the ``test_set`` cannot test the fits (no forces, not the supercell, another engine's labels)."""
    if 'test_set' not in value:
        return None
    frames = value['test_set'].frames
    if not len(frames) or not frames.has_forces.all():
        return '`test_set`: every frame needs forces'
    message = frames_message(frames, supercell, 'test_set')
    if message:
        return message
    engine = value['test_set'].base.attributes.get('label_engine', None)
    label = value.get('label') or {}
    if engine and 'engine' in label and engine != label['engine'].value:
        return f'`test_set` was labelled by `{engine}`, the training frames are labelled by `{label["engine"].value}`'
    return None


def _problem(value) -> str | None:
    """The first reason the inputs cannot run, before any process."""
    primitive, supercell = value['primitive'].get_ase(), value['supercell'].get_ase()
    try:
        check_fit_parameters(dict_input(value, 'fit'), primitive, supercell)
    except ValueError as exc:
        return f'bad `fit`: {exc}'
    message = retrain_message(dict_input(value, 'retrain'))
    if message:
        return message
    try:
        make_dynamic_convergence(dict_input(value, 'convergence'))
    except ValueError as exc:
        return f'bad `convergence`: {exc}'
    if 'max_refits' in value and value['max_refits'].value < 1:
        return f'`max_refits` must be at least 1, not {value["max_refits"].value}'
    md = value.get('md', {})
    try:
        MDSettings(**(dict_input(md, 'parameters'))).check()
        check_guard_settings(dict_input(md, 'guards'))
    except (TypeError, ValueError) as exc:
        return f'bad `md`: {exc}'
    message = test_set_message(value, supercell)
    if message:
        return message
    initial = value.get('initial') or {}
    if 'mode' in initial:
        return initial_message(initial, value['supercell'], supercell)
    return None


def initial_message(initial, structure: orm.StructureData, supercell) -> str | None:
    """Why the initial data cannot be made: mode ``random`` displaces the supercell; ``trajectory`` frames must be
    frames of it (its atoms in its order, its cell); ``harmonic`` needs force constants."""
    mode = initial['mode'].value
    message = check_initial_inputs({**initial, 'structure': structure} if mode == 'random' else dict(initial))
    if message:
        return f'`initial`: {message}'
    if mode == 'trajectory' and 'frames' in initial:
        return frames_message(initial['frames'].frames, supercell, 'initial.frames')
    return None


def validate_dynamic_inputs(value, ctx=None):
    """Refuse bad input before anything runs (fit, retrain rule, convergence, MD, initial data, labelling)."""
    if 'primitive' not in value or 'supercell' not in value:
        return None
    message = _problem(value)
    if message:
        return message
    label = value.get('label') or {}
    if 'engine' in label:
        from ..calculations.label import check_label_inputs

        message = check_label_inputs(label, [value['supercell'].get_ase()])
        if message:
            return f'labelling: {message}'
    return options_message(value)


class DynamicTrainingSetup:
    """The inputs of the workchain and its builder from a protocol."""

    _namespaces = ('label',)
    _open_keys = (*OPEN_KEYS, 'retrain')

    @classmethod
    def define_inputs(cls, spec):
        spec.input('primitive', valid_type=orm.StructureData, help='Primitive cell of the cluster space.')
        spec.input(
            'supercell', valid_type=orm.StructureData, help='The ideal supercell (of `primitive`) of the trajectory.'
        )
        spec.input(
            'fit',
            valid_type=orm.Dict,
            help='`cutoffs` (A, orders 2, 3, ...: n_max = len + 1, not increasing), `max_iter`, `tol`.',
        )
        spec.input(
            'retrain',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({'rule': 'trajectory_average'}),
            help='The retrain rule: `rule` (trajectory_average | eps_min) and its parameters (gamma, k).',
        )
        spec.input(
            'convergence',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({'kind': 'noise_plateau'}),
            help='Stop rule: `kind` noise_plateau, `tolerance` (relative change of beta^-1/2), `refits`, `quiet_steps`.',
        )
        spec.input('max_refits', valid_type=orm.Int, default=lambda: orm.Int(100), help='At most this many refits.')
        spec.input(
            'test_set',
            valid_type=TrainingSet,
            required=False,
            help='Labelled frames of the supercell never fitted (e.g. of an independent ground-truth MD run at the '
            "trajectory's temperature): each fit's RMSE is measured on them instead of the initial data's test frames.",
        )
        spec.input_namespace('md', help='The MD of the trajectory.')
        spec.input('md.code', valid_type=orm.AbstractCode, help='Code of `anharmal-md`.')
        spec.input(
            'md.parameters',
            valid_type=orm.Dict,
            help='MD settings of the whole trajectory: temperature, timestep (fs), steps, save_stride, friction, seed.',
        )
        spec.input('md.guards', valid_type=orm.Dict, required=False, help='Thresholds of the MD guards.')
        spec.input('md.settings', valid_type=orm.Dict, required=False, help='`max_seconds`, `workers` of each job.')
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures',))
        spec.expose_inputs(
            InitialDataWorkChain,
            namespace='initial',
            exclude=('label', 'structure'),
            namespace_options={'help': 'The initial training and test frames (mode `random` displaces `supercell`).'},
        )
        spec.inputs['initial'].validator = None  # checked with the supercell by validate_dynamic_inputs
        add_options_input(spec, 'MD job')

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        primitive,
        supercell_matrix,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        model=None,
        options: dict | None = None,
    ):
        """A builder from a protocol (``fast``, ``moderate``, ``precise``).

        :param codes: ``{'label', 'md'}`` -> codes.
        :param primitive: the primitive cell (ASE Atoms or StructureData).
        :param supercell_matrix: 3 integers (diagonal) or a 3x3 integer matrix of the supercell.
        :param overrides: e.g. ``{'fit': {'cutoffs': [5.0, 4.0, 3.0]}, 'md': {'parameters': {'steps': 5000}},
            'retrain': {'k': 500}, 'label': {...}}``; the protocol's cut-offs are multiples of the nearest-neighbour
            distance (``fit.cutoffs_nn``), ``fit.cutoffs`` in A replaces them.
        """
        from ase.build import make_supercell

        codes = resolve_codes(codes, required=('label', 'md'))
        inputs = cls.get_protocol_inputs(protocol, overrides)
        atoms = primitive.get_ase() if isinstance(primitive, orm.StructureData) else primitive
        matrix = np.array(supercell_matrix, dtype=int)
        matrix = np.diag(matrix) if matrix.shape == (3,) else matrix
        fit = dict(inputs['fit'])
        multiples = fit.pop('cutoffs_nn')
        if fit.get('cutoffs') is None:
            distance = nearest_neighbour_distance(atoms)
            fit['cutoffs'] = [round(m * distance, 3) for m in multiples]
        label = LabelWorkChain.get_builder_from_protocol(
            codes['label'], None, engine, inputs['label_protocol'], inputs.get('label'), model=model, options=options
        )
        builder = cls.get_builder()
        builder.primitive = orm.StructureData(ase=atoms)
        builder.supercell = orm.StructureData(ase=make_supercell(atoms, matrix))
        builder.fit = orm.Dict(fit)
        retrain = (overrides or {}).get('retrain', {})
        # another rule than the protocol's: its own parameters only (eps_min has no gamma or k)
        builder.retrain = orm.Dict(retrain if 'rule' in retrain else inputs['retrain'])
        builder.convergence = orm.Dict(inputs['convergence'])
        builder.max_refits = orm.Int(inputs['max_refits'])
        builder.md.code = codes['md']
        builder.md.parameters = orm.Dict(inputs['md']['parameters'])
        builder.md.guards = orm.Dict(check_guard_settings(inputs['md'].get('guards') or {}))
        builder.initial.mode = orm.Str(inputs['initial']['mode'])
        builder.initial.parameters = orm.Dict(inputs['initial']['parameters'])
        builder.label = namespace_inputs(label, exclude=('structures',))
        builder.options = recursive_merge(inputs['options'], options or {})
        return builder

    # ------------------------------------------------------------------ what the loop reads of its inputs
    def total_steps(self) -> int:
        md = self.inputs.md
        return int((dict_input(md, 'parameters')).get('steps', MDSettings.steps))

    def quiet_steps(self) -> int:
        return int(make_dynamic_convergence(self.inputs.convergence.get_dict()).parameters['quiet_steps'])

    def settled(self) -> bool:
        """Whether beta^-1/2 has settled (the first half of the stop rule) after the fits so far."""
        from ..core.bayesian.convergence import RefitRecord

        rule = make_dynamic_convergence(self.inputs.convergence.get_dict())
        records = [RefitRecord(int(r['step']), int(r['n_data']), float(r['noise'])) for r in self.ctx.history]
        return bool(getattr(rule, 'noise_settled', lambda _: False)(records))

    def md_inputs(self) -> dict:
        """The ``md`` namespace of an MDBaseWorkChain: code, guards, settings and the scheduler options."""
        md = self.inputs.md
        inputs = {'code': md.code, 'metadata': {'options': dict(self.inputs.options)}}
        for name in ('guards', 'settings'):
            if name in md:
                inputs[name] = md[name]
        return inputs
