"""``anharmal.lifetimes``: an NVE trajectory and a ``ForceConstants`` node -> the lifetime of every harmonic mode."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm

from ..data.force_constants import ForceConstants
from ..engines import lifetimes as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys

PARAMETER_KEYS = {'dho', 'shell_tolerance', 'min_frames'}


def trajectory_problem(trajectory: orm.TrajectoryData, harmonic: ForceConstants, min_frames: int) -> str | None:
    """Why ``trajectory`` cannot give lifetimes against ``harmonic``, or ``None`` (checked before any job)."""
    creator = trajectory.creator
    if creator is not None and 'parameters' in creator.inputs:
        dynamics = creator.inputs.parameters.get_dict().get('dynamics')
        if dynamics is not None and dynamics != 'nve':
            return f'the trajectory comes from `{dynamics}` dynamics: lifetimes need an NVE run (no thermostat)'
    if 'velocities' not in trajectory.get_arraynames():
        return 'the trajectory has no velocities: the mode energies need them'
    if 'times' not in trajectory.get_arraynames():
        return 'the trajectory has no times: the time between frames is needed'
    n_frames, n_atoms = trajectory.get_shape('positions')[:2]
    if n_atoms != harmonic.n_atoms:
        return f'the trajectory has {n_atoms} atoms, the supercell of the force constants {harmonic.n_atoms}'
    if n_frames < min_frames:
        return f'{n_frames} frames are too few for a lifetime fit (at least {min_frames})'
    from types import SimpleNamespace

    from ..core.phonons.normal_modes import cell_problem, site_problem

    reference = SimpleNamespace(**{name: harmonic.get_array(name) for name in ('positions', 'cell', 'masses')})
    return cell_problem(trajectory.get_cells(), reference.cell) or site_problem(
        reference, trajectory.get_positions()[0]
    )


def validate_inputs(value, ctx=None):
    if 'trajectory' not in value or 'harmonic' not in value:
        return None
    from ..core.phonons.normal_modes import MIN_FRAMES

    parameters = dict_input(value, 'parameters')
    message = unknown_keys(parameters, PARAMETER_KEYS, '`parameters`')
    if message:
        return message
    return trajectory_problem(value['trajectory'], value['harmonic'], int(parameters.get('min_frames', MIN_FRAMES)))


class LifetimeCalculation(AnharmalCalcJob):
    """Fully anharmonic phonon lifetimes from an NVE trajectory (program ``anharmal-lifetimes``).

    The frames are projected on the harmonic modes of ``harmonic`` at the commensurate q-points of
    its supercell, and each mode's lifetime is fitted to its energy autocorrelation (FHI-vibes'
    conventions, :doc:`lifetimes`). Outputs ``modes`` (ArrayData: per mode ``q``, ``band``,
    ``frequency`` THz, ``tau`` and ``tau_fit`` ps, ``window``, ``flag``, ``shell``, ``tau_shell``,
    with ``dho`` also ``frequency_dho`` and ``tau_dho``) and ``summary`` (Dict: counts per flag, the
    fraction below the Ioffe-Regel limit, median lifetimes overall and per 1-THz band).
    """

    _parser = 'anharmal.lifetimes'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'trajectory',
            valid_type=orm.TrajectoryData,
            help='NVE MD with velocities (A/fs) and times (fs), atoms in the order of the supercell of `harmonic`.',
        )
        spec.input('harmonic', valid_type=ForceConstants, help='The harmonic reference whose modes are projected on.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='`dho` (the damped-oscillator cross-check too; false), `shell_tolerance` (THz, 1e-3), '
            '`min_frames` (100).',
        )
        spec.inputs.validator = validate_inputs
        spec.output('modes', valid_type=orm.ArrayData, required=False, help='The per-mode table.')
        spec.output('summary', valid_type=orm.Dict, required=False, help='Counts, Ioffe-Regel fraction, medians.')

    def prepare_for_submission(self, folder):
        parameters = dict_input(self.inputs, 'parameters')
        self.write_config(folder, parameters)
        text = self.inputs.harmonic.get_phonopy_yaml_text()
        folder.create_file_from_filelike(io.StringIO(text), program.PHONOPY_FILE, mode='w', encoding='utf-8')
        trajectory = self.inputs.trajectory
        times = trajectory.get_times()
        self.write_arrays(
            folder,
            program.TRAJECTORY_FILE,
            {
                'positions': trajectory.get_positions(),
                'velocities': trajectory.get_array('velocities'),
                'cells': trajectory.get_cells(),
                'times': np.asarray(times, dtype=float),
            },
        )
        return self.calcinfo(
            retrieve_list=[STATUS_FILE, program.SUMMARY_FILE], retrieve_temporary_list=[program.LIFETIMES_FILE]
        )
