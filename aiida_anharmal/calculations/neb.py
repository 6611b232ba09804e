"""``anharmal.neb``: a climbing-image NEB on an ensemble's mean (or on the labelling engine), per-image uncertainties."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from aiida import orm

from ..core.md.neb import NEBSettings, check_end_points, check_images, image_steps
from ..data.ensemble import Ensemble
from ..engines import neb as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys
from .md import add_reference_inputs, driver_message

SETTINGS_KEYS = {'max_seconds', 'workers'}


def band_atoms(value) -> list:
    """The given images, or the two end points, as ASE Atoms."""
    if 'images' in value:
        trajectory = value['images']
        return [trajectory.get_step_structure(k).get_ase() for k in range(trajectory.numsteps)]
    return [value['initial'].get_ase(), value['final'].get_ase()]


def _band_message(value, images, settings: NEBSettings) -> str | None:
    """Why the band ``images`` (the given images, or the two end points) cannot be a path (checked before any job)."""
    try:
        if 'images' in value:
            check_images(images, settings.max_image_step)
            return None
        check_end_points(*images)
    except ValueError as exc:
        return str(exc)
    # the interpolated band moves each atom by about 1 / (n_images + 1) of its end-to-end displacement
    step = float(image_steps(images)[0]) / (settings.n_images + 1)
    if step > settings.max_image_step:
        return (
            f'an atom moves {step:.2f} A between neighbouring images of the interpolated band (limit '
            f'{settings.max_image_step:g} A): add images or check the end points'
        )
    return None


def validate_inputs(value, ctx=None):
    reference = value.get('reference', {})
    if 'ensemble' not in value and 'engine' not in reference:
        return None if 'images' not in value and 'initial' not in value else 'give the `ensemble` or `reference.engine`'
    if 'ensemble' in value and 'engine' in reference:
        return 'give the `ensemble` or the `reference.engine`, not both'
    ends = {'initial', 'final'} & set(value)
    if ('images' in value) == bool(ends) or ('images' not in value and len(ends) != 2):
        return 'give the band as `initial` and `final` (interpolated) or as `images`, not both'
    try:
        settings = NEBSettings.from_dict(dict_input(value, 'parameters'))
    except (TypeError, ValueError) as exc:
        return f'bad NEB `parameters`: {exc}'
    images = band_atoms(value)
    message = _band_message(value, images, settings) or driver_message(value, images[0])
    if message:
        return message
    message = unknown_keys(dict_input(value, 'settings'), SETTINGS_KEYS)
    if message:
        return message
    if 'harmonic' in value:
        from ..core.phonons.harmonic import check_supercell_matches
        from ..data.force_constants import harmonic_reference

        try:
            check_supercell_matches(harmonic_reference(value['harmonic']), images[0], max_displacement=np.inf)
        except ValueError as exc:
            return f'the band does not match the harmonic reference: {exc}'
    return None


class NEBCalculation(AnharmalCalcJob):
    """Climbing-image NEB (ASE, improved tangent) on an ensemble's mean forces (program ``anharmal-neb``).

    The band is ``initial`` + ``final`` (interpolated, ``idpp`` by default) or ``images`` (e.g. the
    ``path`` of an interrupted run: the restart continues from its last band). Per image the
    outputs hold the energy relative to the initial image, UCE_U, UCE_F^max, per-atom UCE_F and,
    with a ``harmonic`` reference, A and UCE_A; ``summary`` has the barrier, the reaction energy
    and the highest image. A band that does not converge within the step cap, or in which an image
    becomes unphysical, keeps its outputs and ends with its own exit code.
    """

    _parser = 'anharmal.neb'
    _states: ClassVar[dict[str, str]] = {
        'not_converged': 'ERROR_NEB_NOT_CONVERGED',
        'min_distance': 'ERROR_NEB_UNPHYSICAL_IMAGE',
        'non_finite': 'ERROR_NEB_UNPHYSICAL_IMAGE',
        'time_budget_spent': 'ERROR_INTERRUPTED',
        'killed': 'ERROR_INTERRUPTED',
    }

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('ensemble', valid_type=Ensemble, required=False, help='The ensemble whose mean drives the band.')
        add_reference_inputs(spec)
        spec.input('initial', valid_type=orm.StructureData, required=False, help='Initial state (e.g. the crystal).')
        spec.input('final', valid_type=orm.StructureData, required=False, help='Final state (e.g. the defect).')
        spec.input('images', valid_type=orm.TrajectoryData, required=False, help='The whole band, end points included.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='NEB settings (aiida_anharmal.core.md.neb.NEBSettings): n_images, interpolation, method, climb, '
            'spring, fmax, steps, optimizer, max_image_step, min_distance.',
        )
        spec.input('harmonic', valid_type=orm.ArrayData, required=False, help='Harmonic reference for A per image.')
        spec.input('settings', valid_type=orm.Dict, required=False, help='max_seconds, workers (threads).')
        spec.inputs.validator = validate_inputs
        spec.output('path', valid_type=orm.TrajectoryData, required=False, help='The band (last step), per image.')
        spec.output(
            'images_data',
            valid_type=orm.ArrayData,
            required=False,
            help='Per image: energies (relative), uce_energy, uce_force_max, uce_forces, anharmonicity, '
            'uce_anharmonicity; path, fit_path, fit_energies, fmax_history.',
        )
        spec.output('summary', valid_type=orm.Dict, required=False, help='Barrier, reaction energy, convergence.')

    def prepare_for_submission(self, folder):
        inputs = self.inputs
        settings = dict_input(inputs, 'settings')
        engine, member_files, local_copy_list = self.driver_files(folder)
        self.write_config(
            folder,
            {
                'engine': engine,
                'member_files': member_files,
                'workers': settings.get('workers'),
                'neb': dict_input(inputs, 'parameters'),
                'interpolate': 'images' not in inputs,
                'max_seconds': self.time_budget(settings.get('max_seconds')),
                'harmonic_file': self.write_harmonic(folder),
            },
        )
        self.write_arrays(folder, program.BAND_FILE, program.band_arrays(band_atoms(inputs)))
        return self.calcinfo(
            local_copy_list,
            retrieve_list=[STATUS_FILE, program.BAND_FILE, program.PROFILE_FILE, program.SUMMARY_FILE],
        )
