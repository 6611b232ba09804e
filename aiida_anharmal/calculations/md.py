"""``anharmal.md``: MD on an ensemble's mean forces with per-frame uncertainty, anharmonicity and guards."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from aiida import orm

from ..core.labelling.labellers import LABELLERS
from ..core.md.biases import BIASES, check_bias_settings
from ..core.md.loop import MDSettings
from ..core.md.stop_rules import (
    TRIGGERS,
    check_guard_settings,
    check_trigger_settings,
    needing_harmonic,
    settable_rules,
    stop_rules,
)
from ..core.structures.checks import DEFAULT_MIN_DISTANCE, check_structure
from ..data.bayesian_fc import BayesianFCModel
from ..data.ensemble import Ensemble
from ..data.force_constants import harmonic_reference
from ..data.mlip_model import MLIPModel
from ..engines import md as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys

SETTINGS_KEYS = {'max_seconds', 'workers', 'posterior_samples'}


def start_atoms(value):
    """The start structure as ASE Atoms (with velocities when starting from a trajectory frame)."""
    if 'structure' in value:
        return value['structure'].get_ase()
    trajectory = value['parent_trajectory']
    frame = value['start_frame'].value if 'start_frame' in value else -1
    atoms = trajectory.get_step_structure(range(trajectory.numsteps)[frame]).get_ase()
    if 'velocities' in trajectory.get_arraynames():
        from ase import units

        atoms.set_velocities(trajectory.get_array('velocities')[frame] / units.fs)
    return atoms


def driver_message(value, atoms) -> str | None:
    """Why the ensemble, the Bayesian model or the reference engine cannot drive MD of ``atoms``, else ``None``."""
    if 'bayesian_model' in value:
        from ..core.bayesian.model import check_frame

        try:
            check_frame(value['bayesian_model'].get_supercell(), atoms.numbers, atoms.cell[:])
        except ValueError as exc:
            return f'the start structure does not fit the `bayesian_model`: {str(exc).removeprefix("frame 0: ")}'
        return None
    if 'ensemble' in value:
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(value['ensemble'].species))
        if unknown:
            return f'elements {unknown} of the structure are not among the ensemble species {value["ensemble"].species}'
        return None
    from types import SimpleNamespace

    from ..core.structures.frames import Frames
    from .label import check_label_request

    reference = value['reference']
    message = check_label_request(
        SimpleNamespace(frames=Frames.from_atoms([atoms])),
        reference['engine'].value,
        dict_input(reference, 'parameters'),
        {'properties': ['energy', 'forces']},
        reference.get('model'),
    )
    return f'reference engine: {message}' if message else None


def validate_inputs(value, ctx=None):
    reference = value.get('reference', {})
    drivers = [name for name in ('ensemble', 'bayesian_model') if name in value] + ['reference.engine'] * (
        'engine' in reference
    )
    if not drivers:
        what = 'the `ensemble`, the `bayesian_model` or the `reference.engine` that drives the MD'
        return None if 'structure' not in value else f'give {what}'
    if len(drivers) > 1:
        return f'give one driver of the MD, not {drivers}'
    sources = [k for k in ('structure', 'parent_trajectory', 'parent_folder') if k in value]
    if (
        len(sources) != 1
        and sources != ['structure', 'parent_folder']
        and sources != ['parent_trajectory', 'parent_folder']
    ):
        return 'give the start as `structure` or `parent_trajectory` (+ `start_frame`), and optionally `parent_folder`'
    if not ({'structure', 'parent_trajectory'} & set(sources)):
        return '`parent_folder` continues a run: also give its `structure` or `parent_trajectory` (for the species)'
    try:
        MDSettings(**(dict_input(value, 'parameters'))).check()
    except (TypeError, ValueError) as exc:
        return f'bad MD `parameters`: {exc}'
    if 'parent_trajectory' in value:
        n = value['parent_trajectory'].numsteps
        frame = value['start_frame'].value if 'start_frame' in value else -1
        if not -n <= frame < n:
            return f'`start_frame` {frame} is out of range for a trajectory of {n} frames'
    atoms = start_atoms(value)
    guards = dict_input(value, 'guards')
    try:
        checked = check_guard_settings(guards)
        # the distance guard's threshold: a start that the guard would stop at once is refused now
        check_structure(atoms, checked.get('min_distance') or DEFAULT_MIN_DISTANCE, 'the start structure')
    except ValueError as exc:
        return str(exc)
    message = driver_message(value, atoms)
    if message:
        return message
    if 'harmonic' not in value and needing_harmonic(guards):
        return f'guard(s) {needing_harmonic(guards)} need the `harmonic` input (the reference of A)'
    message = committee_message(value)
    if message:
        return message
    settings = dict_input(value, 'settings')
    message = unknown_keys(settings, SETTINGS_KEYS)
    if message:
        return message
    if 'harmonic' in value:
        from ..core.phonons.harmonic import check_supercell_matches

        try:
            check_supercell_matches(harmonic_reference(value['harmonic']), atoms, max_displacement=np.inf)
        except ValueError as exc:
            return f'the structure does not match the harmonic reference: {exc}'
    return None


def bias_steps_message(bias: dict | None, steps, name: str = 'bias') -> str | None:
    """Why an adaptive bias (checked settings) would never switch on in a run of ``steps`` steps, else ``None``."""
    if not bias or bias.get('tau', 0) is not None or steps is None or 'tau_hist' not in bias:
        return None
    if bias['tau_hist'] >= steps:
        return (
            f'`{name}` `{bias["kind"]}`: tau_hist {bias["tau_hist"]} >= steps {steps}: the adaptive tau would never '
            'switch on (no bias during the first tau_hist steps)'
        )
    return None


def committee_message(value) -> str | None:
    """Why the ``bias`` or ``trigger`` input is refused (unknown kind or key, a bad value, a committee too small)."""
    settings = dict_input(value, 'settings')
    samples = settings.get('posterior_samples', 0)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        return f'`settings.posterior_samples` must be a non-negative integer, not {samples!r}'
    if samples and 'bayesian_model' not in value:
        return '`settings.posterior_samples` is a committee of a `bayesian_model`; this run has none'
    members = len(value['ensemble'].members) if 'ensemble' in value else max(1, samples)
    driver = 'bayesian' if 'bayesian_model' in value else 'ensemble'
    for name, check, registry in (('bias', check_bias_settings, BIASES), ('trigger', check_trigger_settings, TRIGGERS)):
        if name not in value:
            continue
        try:
            checked = check(value[name].get_dict())
        except ValueError as exc:
            return f'bad `{name}`: {exc}'
        if checked is None:
            continue
        unresolved = getattr(registry.get(checked['kind']), 'unresolved', None)
        message = unresolved(checked) if unresolved is not None else None
        if message:
            return f'bad `{name}`: {message}'
        kind = getattr(registry.get(checked['kind']), 'prediction_kind', 'ensemble')
        if kind == 'bayesian' and driver != 'bayesian':
            return (
                f'trigger `{checked["kind"]}` reads the Bayesian error of a Bayesian force-constant model; an MD run of '
                'an ensemble or of the labelling engine has none'
            )
        if driver == 'bayesian' and kind != 'bayesian' and not samples:
            return (
                f'{name} `{checked["kind"]}` reads the members of an ensemble; the `bayesian_model` drives this run: '
                'give it a committee of posterior samples (`settings.posterior_samples`), or use trigger `retrain`'
            )
        needed = getattr(registry.get(checked['kind']), 'min_members', 1)
        if members < needed:
            driver = (
                f'an ensemble of {members} member(s)' if 'ensemble' in value else 'the labelling engine (one member)'
            )
            return f'{name} `{checked["kind"]}` needs a committee of at least {needed} members, not {driver}'
        if name == 'bias':
            parameters = dict_input(value, 'parameters')
            message = bias_steps_message(checked, parameters.get('steps', MDSettings.steps))
            if message:
                return message
    return None


def add_reference_inputs(spec, required: bool = False) -> None:
    """The ``reference`` namespace: the labelling engine that drives an MD run instead of an ensemble."""
    spec.input_namespace(
        'reference',
        required=required,
        populate_defaults=False,
        help='Instead of an ensemble: the labelling engine itself drives the MD (the ground truth of a '
        'validation run; every UCE is 0).',
    )
    spec.input(
        'reference.engine',
        valid_type=orm.Str,
        required=required,
        help=f'A labelling engine: {", ".join(LABELLERS.keys())}.',
    )
    spec.input('reference.parameters', valid_type=orm.Dict, required=False, help='Parameters of the engine.')
    spec.input('reference.model', valid_type=MLIPModel, required=False, help='Model of `nequip-reference`.')


def guards_help() -> str:
    rules = ', '.join(f'{key} ({rule.unit}, default {rule.default})' for key, rule in settable_rules().items())
    return f'Thresholds of the stop rules by key: {rules}; null switches one off.'


class MDCalculation(AnharmalCalcJob):
    """Langevin NVT or NVE dynamics on the mean forces of an ensemble (program ``anharmal-md``).

    Every saved frame keeps positions, velocities, mean forces, U, UCE_U, UCE_F^max, per-atom UCE_F,
    temperature, and with a ``harmonic`` reference A and UCE_A. Guards stop the run with a dedicated
    exit code and every frame so far in the outputs. ``parent_folder`` (the remote folder of an
    earlier run) continues that run's trajectory from its checkpoint; ``parent_trajectory`` +
    ``start_frame`` starts a new run from a frame (positions and velocities) of an earlier one.
    """

    _parser = 'anharmal.md'
    _states: ClassVar[dict[str, str]] = {'time_budget_spent': 'ERROR_INTERRUPTED', 'killed': 'ERROR_INTERRUPTED'}

    @classmethod
    def state_exit_codes(cls) -> dict[str, str]:
        """The common states, interrupted runs, and the reason of every registered stop rule."""
        return {**super().state_exit_codes(), **{rule.reason: rule.exit_label for rule in stop_rules()}}

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('ensemble', valid_type=Ensemble, required=False, help='The ensemble whose mean forces drive the MD.')
        spec.input(
            'bayesian_model',
            valid_type=BayesianFCModel,
            required=False,
            help='Instead of an ensemble: a Bayesian force-constant fit drives the MD (frames record its eps_B as '
            '`trigger_score`, per atom as `uce_forces`); with trigger `retrain`, dynamic training.',
        )
        add_reference_inputs(spec)
        spec.input('structure', valid_type=orm.StructureData, required=False, help='Start structure.')
        spec.input(
            'parent_trajectory',
            valid_type=orm.TrajectoryData,
            required=False,
            help='Start from a frame of this trajectory (positions and velocities).',
        )
        spec.input('start_frame', valid_type=orm.Int, required=False, help='Frame of `parent_trajectory` (default -1).')
        spec.input(
            'parent_folder',
            valid_type=orm.RemoteData,
            required=False,
            help='Remote folder of an interrupted run: continue its trajectory from the checkpoint.',
        )
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='MD settings: temperature (K), timestep (fs), steps, save_stride, friction (1/fs), '
            'dynamics (langevin | nve), seed, per_atom_uncertainty.',
        )
        spec.input(
            'guards',
            valid_type=orm.Dict,
            required=False,
            help=guards_help(),
        )
        spec.input('harmonic', valid_type=orm.ArrayData, required=False, help='Harmonic reference for A and UCE_A.')
        spec.input(
            'bias',
            valid_type=orm.Dict,
            required=False,
            help=f'Bias of the dynamics: kind ({" | ".join(BIASES.keys())}) and its parameters (hal: tau, null for '
            'adaptive; tau_r; tau_hist). Frames keep the unbiased prediction and record tau and bias_force.',
        )
        spec.input(
            'trigger',
            valid_type=orm.Dict,
            required=False,
            help=f'Stop trigger: kind ({" | ".join(TRIGGERS.keys())}) and its parameters (softmax: s_tol, eps, '
            'reference_atoms; max_relative: tol, eps; uncertainty: threshold, patience). The run ends at the frame that fires (exit 340-349).',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help='max_seconds (time budget, default 80% of the walltime), workers (threads), posterior_samples (a '
            'committee of that many posterior samples of the `bayesian_model`, for the HAL bias and the ensemble '
            'triggers).',
        )
        spec.inputs.validator = validate_inputs
        spec.output(
            'trajectory',
            valid_type=orm.TrajectoryData,
            required=False,
            help='Saved frames: positions, cells, symbols, steps, times; arrays velocities (A/fs), forces.',
        )
        spec.output(
            'frames',
            valid_type=orm.ArrayData,
            required=False,
            help='Per saved frame: energy (U), uce_energy (= sigma of the HAL bias), uce_force_max, anharmonicity, '
            'uce_anharmonicity, temperature, kinetic_energy, tau, bias_force, trigger_score (NaN without a bias or '
            'trigger), step, time; uce_forces (frames x atoms).',
        )

    def write_bayesian_model(self, folder) -> str | None:
        if 'bayesian_model' not in self.inputs:
            return None
        self.write_arrays(folder, program.BAYESIAN_FILE, self.inputs.bayesian_model.arrays())
        return program.BAYESIAN_FILE

    def prepare_for_submission(self, folder):
        inputs = self.inputs
        atoms = start_atoms(inputs)
        settings = dict_input(inputs, 'settings')
        engine, member_files, local_copy_list = self.driver_files(folder)
        config = {
            'engine': engine,
            'md': dict_input(inputs, 'parameters'),
            'guards': check_guard_settings(dict_input(inputs, 'guards')),
            'bias': check_bias_settings(inputs.bias.get_dict()) if 'bias' in inputs else None,
            'trigger': check_trigger_settings(inputs.trigger.get_dict()) if 'trigger' in inputs else None,
            'member_files': member_files,
            'bayesian_file': self.write_bayesian_model(folder),
            'posterior_samples': settings.get('posterior_samples', 0),
            'workers': settings.get('workers'),
            'max_seconds': self.time_budget(settings.get('max_seconds')),
            'harmonic_file': self.write_harmonic(folder),
        }
        self.write_config(folder, config)
        start = {'numbers': atoms.numbers, 'positions': atoms.positions, 'cell': atoms.cell[:], 'pbc': atoms.pbc}
        if atoms.get_momenta().any():
            from ase import units

            start['velocities'] = atoms.get_velocities() * units.fs
        self.write_arrays(folder, program.START_FILE, start)

        remote_copy_list = []
        if 'parent_folder' in inputs:
            parent = inputs.parent_folder
            for name in (program.CHECKPOINT_FILE, program.FRAMES_FILE):
                remote_copy_list.append((parent.computer.uuid, f'{parent.get_remote_path()}/{name}', name))
        return self.calcinfo(
            local_copy_list,
            retrieve_list=[STATUS_FILE, program.LAYOUT_FILE],
            retrieve_temporary_list=[program.FRAMES_FILE],
            remote_copy_list=remote_copy_list,
        )
