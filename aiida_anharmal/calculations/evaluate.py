"""``anharmal.evaluate``: an ensemble on a TrainingSet -> per-frame uncertainties and test-set statistics."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm

from ..data.ensemble import Ensemble
from ..data.force_constants import harmonic_arrays
from ..data.training_set import TrainingSet
from ..engines import evaluate as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys

SETTINGS_KEYS = {'member_forces', 'workers'}


def check_harmonic(harmonic: orm.ArrayData, structures: TrainingSet) -> str | None:
    """Error message if the harmonic reference does not fit every frame (atom count, species order)."""
    try:
        arrays = harmonic_arrays(harmonic)
    except ValueError as exc:
        return str(exc)
    numbers = arrays['numbers']
    n = len(numbers)
    if arrays['force_constants'].shape != (3 * n, 3 * n):
        return f'harmonic force constants of shape {arrays["force_constants"].shape} for {n} atoms'
    frames = structures.frames
    for k in range(len(frames)):
        if frames.n_atoms[k] != n or not np.array_equal(frames.numbers[frames.atom_slice(k)], numbers):
            return (
                f'frame {k} ({frames.n_atoms[k]} atoms) does not match the harmonic reference supercell '
                f'({n} atoms, same species order required)'
            )
    return None


def validate_inputs(value, ctx=None):
    if 'ensemble' not in value or 'structures' not in value:
        return None
    ensemble, structures = value['ensemble'], value['structures']
    if len(structures) == 0:
        return 'the `structures` set is empty'
    unknown = sorted(set(structures.frames.species) - set(ensemble.species))
    if unknown:
        return f'elements {unknown} of the structures are not among the ensemble species {ensemble.species}'
    settings = dict_input(value, 'settings')
    message = unknown_keys(settings, SETTINGS_KEYS)
    if message:
        return message
    if 'harmonic' in value:
        return check_harmonic(value['harmonic'], structures)
    return None


class EvaluateCalculation(AnharmalCalcJob):
    """Run every member of an ensemble on a set of frames (one neighbour list per frame for all members).

    Outputs ``evaluation`` (ArrayData: per-frame ``energy`` (ensemble mean U), ``uce_energy``,
    ``uce_force_max``, ``member_energies``, errors against labels where present, per-atom
    ``forces`` and ``uce_forces``; ``anharmonicity`` and ``uce_anharmonicity`` with a harmonic
    reference) and ``statistics`` (Dict: mean and std of UCE_U, UCE_F^max, UCE_A and U over the
    frames, the reference of the acquisition, plus errors against labels).
    """

    _parser = 'anharmal.evaluate'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('ensemble', valid_type=Ensemble, help='The ensemble to evaluate.')
        spec.input('structures', valid_type=TrainingSet, help='Frames, e.g. the fixed test set.')
        spec.input(
            'harmonic',
            valid_type=orm.ArrayData,
            required=False,
            help='Harmonic reference (arrays positions, cell, force_constants, numbers) for A and UCE_A.',
        )
        spec.input(
            'settings',
            valid_type=orm.Dict,
            required=False,
            help="`member_forces` (keep every member's forces; default False), `workers` (threads).",
        )
        spec.inputs.validator = validate_inputs
        spec.output('evaluation', valid_type=orm.ArrayData, required=False, help='Per-frame and per-atom arrays.')
        spec.output('statistics', valid_type=orm.Dict, required=False, help='Test-set statistics and errors.')

    def prepare_for_submission(self, folder):
        settings = dict_input(self.inputs, 'settings')
        member_files, local_copy_list = self.member_files(folder, self.inputs.ensemble)
        config = {
            'member_files': member_files,
            'member_forces': bool(settings.get('member_forces', False)),
            'workers': settings.get('workers'),
            'harmonic_file': self.write_harmonic(folder),
        }
        self.write_config(folder, config)
        folder.create_file_from_filelike(
            io.BytesIO(self.inputs.structures.frames.to_npz_bytes()), program.STRUCTURES_FILE, mode='wb'
        )
        return self.calcinfo(
            local_copy_list,
            retrieve_list=[STATUS_FILE, program.STATISTICS_FILE],
            retrieve_temporary_list=[program.EVALUATION_FILE],
        )
