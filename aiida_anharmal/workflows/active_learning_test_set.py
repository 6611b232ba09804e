"""The test set of the AL loop from a short ground-truth MD: frames of the kind the exploration produces.

``ActiveLearningWorkChain`` inherits these steps. The test set is the yardstick of the acquisition
(P(UCE) and P(U) against its statistics), of the exploration's ``uncertainty`` trigger and of the
stopping rule. Harmonic samples are easier for an ensemble than MD frames at the same temperature
(measured on CuI: its force error on them is 4-5 times its UCE_F^max), so thresholds from them never
go quiet. With ``test_md``, the labelling engine runs its own Langevin MD (Kang et al.'s test set:
unseen aiMD frames), started with the loop (it needs nothing the loop learns); every ``stride``-th
saved frame after ``equilibration`` fs is a test frame, labelled by the engine as it ran. It starts
from a classical harmonic sample of the loop's harmonic reference at the temperature (``start:
harmonic``, the default when the loop has one: thermal displacements from step 0, so 50 fs of
equilibration do) or from the loop's structure (``start: structure``, the ideal crystal: 250 fs). Its
seed differs from the validation MD's, so the two are independent.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from ..core.md.loop import MDSettings
from ..core.registry import check_number
from ..functions.initial import thermal_start
from ..functions.validation import reference_frames
from ..ports import dict_input
from .common import describe, engine_reference
from .md import MDBaseWorkChain

#: Parameters of ``test_md``: the MD settings of the run and which of its frames are test frames.
TEST_MD_DEFAULTS = {
    'temperature': None,  # K; None: the lowest exploration temperature (the target of a ladder)
    'steps': 150,
    'timestep': 5.0,
    'friction': 0.00295,
    'save_stride': 5,
    'seed': 1,
    'start': None,  # `harmonic` (a harmonic sample at the temperature) or `structure`; None: harmonic if possible
    'equilibration': None,  # fs left out at the start; None: 50 after a harmonic start, 250 after the structure
    'stride': 1,  # every n-th saved frame after the equilibration
}
#: The equilibration (fs) of each start when none is given.
EQUILIBRATION = {'harmonic': 50.0, 'structure': 250.0}


def check_test_md(parameters: dict, default_temperature: float, harmonic: bool = True) -> dict:
    """``test_md`` parameters with the defaults filled in (``harmonic``: the loop has a harmonic reference);
    ``ValueError`` for a run that cannot give a test set."""
    unknown = sorted(set(parameters) - set(TEST_MD_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown `test_md` parameter(s) {unknown}; known: {sorted(TEST_MD_DEFAULTS)}')
    p = {**TEST_MD_DEFAULTS, **parameters}
    if p['temperature'] is None:
        p['temperature'] = float(default_temperature)
    if p['start'] is None:
        p['start'] = 'harmonic' if harmonic else 'structure'
    if p['start'] not in EQUILIBRATION:
        raise ValueError(f'`test_md.start` must be one of {sorted(EQUILIBRATION)}, not {p["start"]!r}')
    if p['start'] == 'harmonic' and not harmonic:
        raise ValueError("`test_md.start` `harmonic` needs the loop's `harmonic` input")
    if p['equilibration'] is None:
        p['equilibration'] = EQUILIBRATION[p['start']]
    md = {k: p[k] for k in ('temperature', 'steps', 'timestep', 'friction', 'save_stride', 'seed')}
    try:
        MDSettings(dynamics='langevin', **md).check()
    except (TypeError, ValueError) as exc:
        raise ValueError(f'bad `test_md`: {exc}') from None
    equilibration = p['equilibration']
    if isinstance(equilibration, bool) or not isinstance(equilibration, (int, float)) or equilibration < 0:
        raise ValueError(f'`test_md.equilibration` must be a non-negative time in fs, not {equilibration!r}')
    check_number('test_md.stride', p['stride'], integer=True)
    saved = [step for step in range(0, p['steps'] + 1, p['save_stride']) if step * p['timestep'] >= equilibration]
    n_frames = len(saved[:: p['stride']])
    if n_frames < 2:
        raise ValueError(
            f'`test_md` gives {n_frames} test frame(s) ({p["steps"]} steps of {p["timestep"]} fs, a frame every '
            f'{p["save_stride"]} steps, every {p["stride"]}-th after {equilibration} fs): at least 2 are needed'
        )
    return p


def md_parameters(p: dict) -> dict:
    """The MD calculation's ``parameters`` of the test run."""
    keys = ('temperature', 'steps', 'timestep', 'friction', 'save_stride', 'seed')
    return {'dynamics': 'langevin', **{k: p[k] for k in keys}}


class TestSetSteps:
    """The steps of the loop that make its test set from a ground-truth MD (mixed into ``ActiveLearningWorkChain``)."""

    @classmethod
    def define_test_md(cls, spec):
        spec.input(
            'test_md',
            valid_type=orm.Dict,
            required=False,
            help='Test set from a Langevin MD of the labelling engine from `structure`, started with the loop: '
            f'{", ".join(TEST_MD_DEFAULTS)} (temperature null: the lowest exploration temperature). Replaces the '
            "initial data's test frames (give `initial.parameters.n_test` 0 then).",
        )
        spec.output(
            'test_md', valid_type=orm.TrajectoryData, required=False, help='The ground-truth run of the test set.'
        )

    def has_test_md(self) -> bool:
        return 'test_md' in self.inputs

    def awaits_test_md(self) -> bool:
        """The test MD runs while the first ensemble trains: the loop waits for it before the first evaluation."""
        return self.has_test_md() and self.ctx.test_set is None

    def test_md_parameters(self) -> dict:
        temperatures = self.inputs.explore.temperatures.get_list()
        return check_test_md(self.inputs.test_md.get_dict(), min(temperatures), 'harmonic' in self.inputs)

    def start_test_md(self):
        """Submit the labelling engine's MD of the test set now, without waiting."""
        p = self.test_md_parameters()
        structure = self.inputs.structure
        if p['start'] == 'harmonic':
            structure = thermal_start(
                self.inputs.harmonic,
                orm.Float(p['temperature']),
                orm.Int(p['seed']),
                metadata={'call_link_label': 'test_md_start'},
            )
        md = {
            'code': self.inputs.explore.code,
            'structure': structure,
            'parameters': orm.Dict(md_parameters(p)),
            'reference': engine_reference(self.inputs.label),
            'metadata': {'options': dict(self.inputs.explore.options)},
        }
        if 'harmonic' in self.inputs:
            md['harmonic'] = self.inputs.harmonic
        node = self.submit(MDBaseWorkChain, md=md, metadata={'call_link_label': 'test_md'})
        self.ctx.test_md_pk = node.pk
        self.report(
            f'the test set comes from a ground-truth MD at {p["temperature"]:g} K (seed {p["seed"]}, from '
            f'{"a harmonic sample" if p["start"] == "harmonic" else "the structure"}), running alongside: '
            f'MDBaseWorkChain<{node.pk}>'
        )

    def await_test_md(self):
        return ToContext(test_md=orm.load_node(self.ctx.test_md_pk))

    def make_test_set(self):
        node = self.ctx.test_md
        if not node.is_finished_ok or 'trajectory' not in node.outputs:
            # a ground-truth run stopped by a guard is no thermal yardstick: refuse it rather than judge by it
            return self.exit_codes.ERROR_TEST_SET_FAILED.format(message=f'the test MD: {describe(node)}')
        from ..core.labelling.labellers import get_labeller
        from ..core.learning.validation import reference_frame_indices

        p = self.test_md_parameters()
        n_frames = len(reference_frame_indices(node.outputs.frames.get_array('time'), p['equilibration'], p['stride']))
        if n_frames < 2:
            message = f'the test MD gave {n_frames} test frame(s) after {p["equilibration"]} fs; at least 2 are needed'
            return self.exit_codes.ERROR_TEST_SET_FAILED.format(message=message)
        engine = self.inputs.label.engine.value
        labeller = get_labeller(engine)
        parameters = {
            'equilibration': float(p['equilibration']),
            'stride': p['stride'],
            'engine': engine,
            'ground_truth': labeller.ground_truth,
            'description': labeller.description,
            'kind': 'test_md',
        }
        self.ctx.test_set = reference_frames(
            node.outputs.trajectory,
            node.outputs.frames,
            orm.Dict(parameters),
            metadata={'call_link_label': 'test_set_from_md'},
        )
        self.out('test_md', node.outputs.trajectory)
        self.report(f'test set: {len(self.ctx.test_set)} frames of the ground-truth MD')
        return None

    def test_temperature(self) -> float:
        """The temperature of the test set's frames: the test MD's, else the harmonic sampling's, else the lowest
        exploration temperature (what P(U) of a run at another temperature is carried from)."""
        if self.has_test_md():
            return float(self.test_md_parameters()['temperature'])
        initial = self.inputs.get('initial', {})
        if 'mode' in initial and initial['mode'].value == 'harmonic':
            from ..functions.initial import check_initial_parameters

            return float(check_initial_parameters('harmonic', initial['parameters'].get_dict())['temperature'])
        return float(min(self.inputs.explore.temperatures.get_list()))


def check_test_set_inputs(value) -> str | None:
    """Where the loop's test set comes from, refused before any job: exactly one of a given ``test_set``, the
    initial data's test frames (``n_test`` >= 2) or ``test_md``."""
    initial = value.get('initial') or {}
    n_test = None
    if 'mode' in initial:
        parameters = dict_input(initial, 'parameters')
        from ..functions.initial import MODES

        n_test = parameters.get('n_test', MODES.get(initial['mode'].value, {}).get('n_test'))
    if 'test_md' not in value:
        if n_test == 0:
            return (
                '`initial.parameters.n_test` 0 asks for no initial test frames: give `test_md` (the test set from MD)'
            )
        if 'training_set' in value and 'test_set' not in value:
            return (
                '`test_set` is needed with `training_set` (frames never trained on, for the statistics), or `test_md`'
            )
        return None
    if 'test_set' in value:
        return 'give the test set as `test_set` or make it with `test_md`, not both'
    if n_test:
        return f'`test_md` makes the test set: set `initial.parameters.n_test` to 0 (not {n_test}), no frame unused'
    explore = value.get('explore', {})
    temperatures = explore['temperatures'].get_list() if 'temperatures' in explore else [300.0]
    try:
        check_test_md(value['test_md'].get_dict(), min(temperatures) if temperatures else 300.0, 'harmonic' in value)
    except ValueError as exc:
        return str(exc)
    return None
