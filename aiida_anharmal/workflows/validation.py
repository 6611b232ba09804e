"""``ValidationMDWorkChain``: MD of ensembles and of the labelling engine itself, side by side (Kang et al., Fig. 6).

Every run starts from the same structure with the same seed, temperature and length. The
ground-truth run (the labelling engine drives it, through the same MD program) gives the A(t)
the ensembles must reproduce; its frames, labelled by the engine as it ran, are the frames the
ensembles are scored on. The output ``comparison`` is the table: per run the mean and standard
deviation of A after the equilibration, sigma_A, the fraction of frames with A > 1, how the run
ended; per ensemble its force and energy error on the ground-truth frames.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from .. import exit_codes
from ..calculations.evaluate import EvaluateCalculation
from ..calculations.md import MDCalculation, add_reference_inputs
from ..core.labelling.labellers import get_labeller
from ..data.ensemble import Ensemble
from ..data.mlip_model import MLIPModel
from ..functions.validation import compare_validation, reference_frames
from ..ports import dict_input
from ..protocols import ProtocolMixin, recursive_merge
from .codes import resolve_codes
from .common import add_options_input, describe, set_reference
from .md import MDBaseWorkChain

#: The label of the ground-truth run among the runs.
REFERENCE = 'reference'


def validate_validation_inputs(value, ctx=None):
    if 'structure' not in value or 'reference' not in value:
        return None
    ensembles = value.get('ensembles', {})
    if not ensembles:
        return 'give at least one ensemble to compare with the reference engine'
    if REFERENCE in ensembles:
        return f'`{REFERENCE}` is the label of the ground-truth run: name the ensembles otherwise'
    parameters = dict_input(value, 'analysis')
    unknown = sorted(set(parameters) - {'equilibration', 'stride'})
    if unknown:
        return f'unknown `analysis` key(s) {unknown}; allowed: equilibration (fs), stride'
    message = check_ground_truth(value)
    if message:
        return message
    from ..calculations.md import validate_inputs as validate_md

    for label, ensemble in [(REFERENCE, None), *sorted(ensembles.items())]:
        md = {
            **{k: value[k] for k in ('structure', 'harmonic', 'parameters', 'guards') if k in value},
            'code': value.get('md_code'),
        }
        if ensemble is None:
            md['reference'] = value['reference']
        else:
            md['ensemble'] = ensemble
        message = validate_md(md)
        if message:
            return f'run `{label}`: {message}'
    return None


def check_ground_truth(value) -> str | None:
    """A given ground-truth run is complete and starts from the validation's structure."""
    given = value.get('ground_truth', {})
    if not given:
        return None
    missing = sorted({'trajectory', 'frames', 'ended'} - set(given))
    if missing:
        return f'the `ground_truth` run needs trajectory, frames and ended; missing {missing}'
    import numpy as np

    start = np.asarray(given['trajectory'].get_positions()[0])
    expected = np.array([site.position for site in value['structure'].sites])
    if start.shape != expected.shape or not np.allclose(start, expected, atol=1e-6):
        return 'the `ground_truth` run does not start from `structure`'
    return None


def md_inputs(inputs, label: str) -> dict:
    """The ``md`` inputs of run ``label`` (``reference`` or an ensemble's) from ValidationMDWorkChain-like inputs."""
    md = {
        'code': inputs['md_code'],
        'structure': inputs['structure'],
        'harmonic': inputs['harmonic'],
        'parameters': inputs['parameters'],
        'metadata': {'options': dict(inputs['options'])},
    }
    if 'guards' in inputs:
        md['guards'] = inputs['guards']
    if label == REFERENCE:
        md['reference'] = dict(inputs['reference'])
    else:
        md['ensemble'] = inputs['ensembles'][label]
    return md


def run_ended(node) -> str:
    """How an MD run (MDBaseWorkChain) ended: ``finished`` or ``stopped: <exit message of its last calculation>``."""
    calcs = sorted((c for c in node.called if c.process_class is MDCalculation), key=lambda c: c.ctime)
    last = calcs[-1]
    return 'finished' if last.is_finished_ok else f'stopped: {last.exit_message}'


class ValidationMDWorkChain(ProtocolMixin, WorkChain):
    """NVT MD of each ensemble and of the labelling engine from one start; A(t) and errors side by side."""

    _protocol_file = 'validation.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            'ensembles',
            valid_type=Ensemble,
            dynamic=True,
            help='The ensembles to validate by label (e.g. `initial`, `final`).',
        )
        spec.input('structure', valid_type=orm.StructureData, help='Start of every run.')
        spec.input('harmonic', valid_type=orm.ArrayData, help='Harmonic reference (ForceConstants) of A.')
        spec.input('parameters', valid_type=orm.Dict, help='MD settings of every run (see `MDCalculation`).')
        spec.input('guards', valid_type=orm.Dict, required=False, help='Stop rules of every run.')
        add_reference_inputs(spec, required=True)
        spec.input(
            'analysis',
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            help='`equilibration` (fs left out of the numbers; default 0), `stride` (every n-th saved '
            'ground-truth frame scores the ensembles; default 1).',
        )
        spec.input('md_code', valid_type=orm.AbstractCode, help='Code of `anharmal-md`.')
        spec.input('evaluate_code', valid_type=orm.AbstractCode, help='Code of `anharmal-evaluate`.')
        spec.input('max_restarts', valid_type=orm.Int, default=lambda: orm.Int(3), help='Calculations per run.')
        spec.input_namespace(
            'ground_truth',
            required=False,
            populate_defaults=False,
            help='The ground-truth run, done already with the same structure, parameters and guards (the AL loop '
            'starts it with the loop): `trajectory`, `frames`, `ended`. Without it the engine runs here.',
        )
        spec.input('ground_truth.trajectory', valid_type=orm.TrajectoryData, required=False)
        spec.input('ground_truth.frames', valid_type=orm.ArrayData, required=False)
        spec.input('ground_truth.ended', valid_type=orm.Str, required=False, help='`finished` or `stopped: ...`')
        add_options_input(spec, 'calculation')
        spec.inputs.validator = validate_validation_inputs
        spec.outline(cls.run_md, cls.inspect_md, cls.evaluate, cls.inspect_evaluation, cls.compare)
        spec.output_namespace('trajectories', valid_type=orm.TrajectoryData, dynamic=True)
        spec.output_namespace('frames', valid_type=orm.ArrayData, dynamic=True)
        spec.output('reference_frames', valid_type=orm.Data, help='Ground-truth frames (TrainingSet) of the scores.')
        spec.output('comparison', valid_type=orm.Dict, help='The validation table (`rows`).')
        exit_codes.declare(spec, 'ERROR_EXPLORATION_FAILED', 'ERROR_EVALUATION_FAILED', workchain=True)

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        structure=None,
        harmonic=None,
        ensembles: dict | None = None,
        engine: str | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        engine_parameters: dict | None = None,
        options: dict | None = None,
    ):
        """A builder from a protocol (``fast``, ``moderate``, ``precise``).

        :param codes: ``{'md', 'evaluate'}`` -> codes (either may be missing when a loop supplies it).
        :param ensembles: label -> Ensemble. :param engine: the labelling engine of the ground-truth run
            (with ``model`` for ``nequip-reference``). ``structure``, ``harmonic``, ``ensembles`` and
            ``engine`` may be ``None`` when an enclosing loop supplies them.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        if ensembles:
            builder.ensembles = dict(ensembles)
        if structure is not None:
            builder.structure = (
                structure if isinstance(structure, orm.StructureData) else orm.StructureData(ase=structure)
            )
        if harmonic is not None:
            builder.harmonic = harmonic
        builder.parameters = orm.Dict(inputs['parameters'])
        if inputs.get('guards'):
            builder.guards = orm.Dict(inputs['guards'])
        set_reference(builder, engine, model, engine_parameters)
        builder.analysis = orm.Dict(inputs['analysis'])
        codes = resolve_codes(codes, optional=('md', 'evaluate'))  # an enclosing loop may set them
        for port, name in (('md_code', 'md'), ('evaluate_code', 'evaluate')):
            if codes.get(name) is not None:
                builder[port] = codes[name]
        builder.max_restarts = orm.Int(inputs['max_restarts'])
        builder.options = recursive_merge(inputs['options'], options or {})
        return builder

    def _labels(self) -> list[str]:
        return [REFERENCE, *sorted(self.inputs.ensembles)]

    def run_md(self):
        given = 'trajectory' in self.inputs.get('ground_truth', {})
        labels = self._labels()[1:] if given else self._labels()
        running = {}
        for label in labels:
            running[label] = self.submit(
                MDBaseWorkChain,
                md=md_inputs(self.inputs, label),
                max_iterations=self.inputs.max_restarts,
                metadata={'call_link_label': f'md_{label}'},
            )
        done = ' (the ground-truth run is given)' if given else ''
        self.report(f'validation MD: {", ".join(labels)} from the same start, seed and length{done}')
        return ToContext(**{f'md_{label}': node for label, node in running.items()})

    def inspect_md(self):
        self.ctx.ended, self.ctx.runs = {}, {}
        for label in self._labels():
            if label == REFERENCE and 'trajectory' in self.inputs.get('ground_truth', {}):
                given = self.inputs.ground_truth
                trajectory, frames, ended = given.trajectory, given.frames, given.ended.value
            else:
                node = self.ctx[f'md_{label}']
                if 'trajectory' not in node.outputs:
                    return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=f'run `{label}`: {describe(node)}')
                trajectory, frames, ended = node.outputs.trajectory, node.outputs.frames, run_ended(node)
            self.out(f'trajectories.{label}', trajectory)
            self.out(f'frames.{label}', frames)
            self.ctx.runs[label] = {'trajectory': trajectory, 'frames': frames}
            self.ctx.ended[label] = ended
            self.report(f'{label}: {trajectory.numsteps} frame(s), {ended}')
        return None

    def evaluate(self):
        engine = self.inputs.reference.engine.value
        labeller = get_labeller(engine)
        analysis = self.inputs.analysis.get_dict()
        parameters = {
            'equilibration': float(analysis.get('equilibration', 0.0)),
            'stride': int(analysis.get('stride', 1)),
            'engine': engine,
            'ground_truth': labeller.ground_truth,
            'description': labeller.description,
        }
        run = self.ctx.runs[REFERENCE]
        self.ctx.reference_frames = reference_frames(run['trajectory'], run['frames'], orm.Dict(parameters))
        self.out('reference_frames', self.ctx.reference_frames)
        running = {}
        for label, ensemble in sorted(self.inputs.ensembles.items()):
            running[f'evaluation_{label}'] = self.submit(
                EvaluateCalculation,
                ensemble=ensemble,
                structures=self.ctx.reference_frames,
                harmonic=self.inputs.harmonic,
                code=self.inputs.evaluate_code,
                metadata={'options': dict(self.inputs.options), 'call_link_label': f'score_{label}'},
            )
        return ToContext(**running)

    def inspect_evaluation(self):
        for label in sorted(self.inputs.ensembles):
            node = self.ctx[f'evaluation_{label}']
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_EVALUATION_FAILED.format(message=f'ensemble `{label}`: {describe(node)}')
        return None

    def compare(self):
        runs = {}
        for label, run in self.ctx.runs.items():
            runs[f'trajectory_{label}'] = run['trajectory']
            runs[f'frames_{label}'] = run['frames']
        for label in sorted(self.inputs.ensembles):
            runs[f'statistics_{label}'] = self.ctx[f'evaluation_{label}'].outputs.statistics
        analysis = self.inputs.analysis.get_dict()
        parameters = {
            'equilibration': float(analysis.get('equilibration', 0.0)),
            'reference': REFERENCE,
            'ended': self.ctx.ended,
        }
        comparison = compare_validation(self.inputs.harmonic, orm.Dict(parameters), **runs)
        self.out('comparison', comparison)
        for row in comparison['rows']:
            self.report(
                f'{row["run"]}: mean A {row["a_mean"]:.3f}, sigma_A {row["sigma_a"]:.3f}, '
                f'A > 1 in {100 * row["fraction_a_above_1"]:.1f} % of the frames'
            )
