"""``InitialDataWorkChain``: the first labelled training frames and the fixed test set of an AL run.

Modes (``mode`` input):

``harmonic``
    canonical sampling of the harmonic model at ``temperature`` from ``force_constants``
    (cheaper than an aiMD run and already thermal);
``random``
    Gaussian displacements of ``structure``;
``trajectory``
    frames of a given trajectory (``frames``: e.g. aiMD or reference-model MD, labelled or not).

The candidates are split first (``split_initial``: training frames spread over the candidates,
test frames drawn from the rest, never trained on), then only the chosen frames are labelled,
training and test set in parallel. Frames already labelled are not labelled again.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from .. import exit_codes
from ..data.training_set import TrainingSet
from ..functions.initial import MODES, check_initial_parameters, harmonic_sampling, random_sampling, split_initial
from ..ports import dict_input
from .common import describe
from .label import LabelWorkChain

#: The input each mode needs.
NEEDS = {'harmonic': 'force_constants', 'random': 'structure', 'trajectory': 'frames'}


def check_initial_inputs(value: dict) -> str | None:
    """An error message for an initialisation request that cannot run, else ``None``."""
    mode = value['mode'].value
    try:
        p = check_initial_parameters(mode, dict_input(value, 'parameters'))
    except ValueError as exc:
        return str(exc)
    if NEEDS[mode] not in value:
        return f'initialisation mode `{mode}` needs the input `{NEEDS[mode]}`'
    extra = [NEEDS[m] for m in MODES if m != mode and NEEDS[m] in value]
    if extra:
        return f'initialisation mode `{mode}` does not use {extra}'
    if mode == 'trajectory':
        usable = len(value['frames']) - p['skip']
        if p['n_train'] + p['n_test'] > usable:
            return (
                f'the trajectory has {usable} usable frame(s), fewer than the {p["n_train"]} training + '
                f'{p["n_test"]} test frames requested'
            )
    return None


def validate_initial_inputs(value, ctx=None):
    if 'mode' not in value:
        return None
    return check_initial_inputs(value)


class InitialDataWorkChain(WorkChain):
    """Candidates -> disjoint training/test split -> labels: the start of an AL run."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('mode', valid_type=orm.Str, help=f'One of {sorted(MODES)}.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='n_train, n_test, seed; temperature and quantum (harmonic); amplitude (random); '
            'skip and spread (trajectory).',
        )
        spec.input(
            'force_constants',
            valid_type=orm.ArrayData,
            required=False,
            help='Harmonic reference (ForceConstants) of mode `harmonic`.',
        )
        spec.input('structure', valid_type=orm.StructureData, required=False, help='Structure of mode `random`.')
        spec.input('frames', valid_type=TrainingSet, required=False, help='Trajectory frames of mode `trajectory`.')
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('structures',))
        spec.inputs.validator = validate_initial_inputs
        spec.outline(cls.split, if_(cls.needs_labels)(cls.label, cls.collect), cls.results)
        spec.output('training_set', valid_type=TrainingSet, help='Labelled training frames.')
        spec.output(
            'test_set',
            valid_type=TrainingSet,
            required=False,
            help='Labelled test frames, disjoint from the training frames (none for `n_test` 0).',
        )
        exit_codes.declare(spec, 'ERROR_LABELLING_FAILED', 'ERROR_TOO_FEW_LABELLED', workchain=True)

    def split(self):
        mode = self.inputs.mode.value
        if mode == 'harmonic':
            candidates = harmonic_sampling(self.inputs.force_constants, self.inputs.parameters)
        elif mode == 'random':
            candidates = random_sampling(self.inputs.structure, self.inputs.parameters)
        else:
            candidates = self.inputs.frames
        result = split_initial(candidates, self.inputs.parameters, self.inputs.mode)
        self.ctx.sets = dict(result)
        n_test = len(result['test_set']) if 'test_set' in result else 0
        self.report(f'{mode}: {len(result["training_set"])} training and {n_test} test frames')

    def needs_labels(self):
        return any(not (s.frames.has_energy & s.frames.has_forces).all() for s in self.ctx.sets.values())

    def label(self):
        running = {}
        for name, frames in self.ctx.sets.items():
            inputs = self.exposed_inputs(LabelWorkChain, 'label')
            inputs['structures'] = frames
            inputs['metadata'] = {'call_link_label': f'label_{name}'}
            running[name] = self.submit(LabelWorkChain, **inputs)
        return ToContext(**running)

    def collect(self):
        for name in self.ctx.sets:
            node = self.ctx[name]
            which = name.replace('_', ' ')
            if 'labelled' not in node.outputs:
                return self.exit_codes.ERROR_LABELLING_FAILED.format(message=f'{which}: {describe(node)}')
            if len(node.outputs.labelled) < 2:
                n = len(node.outputs.labelled)
                message = f'only {n} {which} frame(s) labelled; at least 2 are needed'
                return self.exit_codes.ERROR_TOO_FEW_LABELLED.format(message=message)
            self.ctx.sets[name] = node.outputs.labelled
        return None

    def results(self):
        for name, node in self.ctx.sets.items():
            self.out(name, node)
