"""``anharmal.perturbative``: labelled fc3 supercells and a ``ForceConstants`` node -> RTA linewidths, lifetimes, kappa."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm

from ..data.force_constants import ForceConstants
from ..data.training_set import TrainingSet
from ..engines import perturbative as program
from ..engines.runner import STATUS_FILE
from ..ports import dict_input
from .base import AnharmalCalcJob, unknown_keys

#: Keys of ``parameters``, with their defaults.
PARAMETER_DEFAULTS = {
    'mesh': [11, 11, 11],
    'temperatures': [300.0],
    'fc_calculator': None,
    'fc2': 'reference',
    'sigma': None,
}


def parameters_problem(parameters: dict, displacement_set) -> str | None:
    """Why ``parameters`` cannot run on ``displacement_set``, else ``None``."""
    from ..core.phonons.perturbative import FC2_SOURCES, FC_CALCULATORS

    message = unknown_keys(parameters, PARAMETER_DEFAULTS, '`parameters`')
    if message:
        return message
    p = {**PARAMETER_DEFAULTS, **parameters}
    mesh = p['mesh']
    if not (isinstance(mesh, list) and len(mesh) == 3 and all(isinstance(m, int) and m >= 1 for m in mesh)):
        return f'`parameters.mesh` must be three positive integers, not {mesh!r}'
    temperatures = p['temperatures']
    if not (isinstance(temperatures, list) and temperatures) or not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in temperatures
    ):
        return f'`parameters.temperatures` must be a non-empty list of positive numbers (K), not {temperatures!r}'
    if p['fc_calculator'] not in FC_CALCULATORS:
        return f'`parameters.fc_calculator` must be one of {list(FC_CALCULATORS)}, not {p["fc_calculator"]!r}'
    if displacement_set.n_random is not None and p['fc_calculator'] is None:
        return "random fc3 displacements need a fitting force-constant calculator: `fc_calculator: 'symfc'`"
    sigma = p['sigma']
    if sigma is not None and (isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0):
        return f'`parameters.sigma` must be a positive smearing width (THz) or null (tetrahedra), not {sigma!r}'
    if p['fc2'] not in FC2_SOURCES:
        return f'`parameters.fc2` must be one of {list(FC2_SOURCES)}, not {p["fc2"]!r}'
    if p['fc2'] == 'labels' and not np.array_equal(
        displacement_set.supercell_matrix, displacement_set.phonon_supercell_matrix
    ):
        return '`parameters.fc2: labels` needs the fc3 supercell to be the harmonic one'
    return None


def harmonic_problem(displacement_set, harmonic: ForceConstants) -> str | None:
    """Why the fc3 displacements do not belong to the crystal and supercell of ``harmonic``, else ``None``."""
    if not np.array_equal(displacement_set.phonon_supercell_matrix, harmonic.supercell_matrix):
        return (
            f'the fc3 displacements were made for the harmonic supercell {displacement_set.phonon_supercell_matrix.tolist()}'
            f', the force constants are of {harmonic.supercell_matrix.tolist()}'
        )
    phonon = harmonic.get_phonopy()
    unitcell, theirs = phonon.unitcell, displacement_set.unitcell
    same = (
        list(unitcell.symbols) == theirs.get_chemical_symbols()
        and np.allclose(unitcell.cell, theirs.cell.array, atol=1e-6)
        and np.allclose(unitcell.masses, theirs.get_masses(), atol=1e-6)
    )
    if same:
        shift = np.asarray(unitcell.scaled_positions) - theirs.get_scaled_positions(wrap=False)
        same = np.abs(shift - np.round(shift)).max() < 1e-6
    if not same:
        return 'the fc3 displacements were made for another unit cell (atoms, positions or masses) than the force constants'
    if not np.allclose(phonon.primitive_matrix, displacement_set.primitive_matrix, atol=1e-8):
        return 'the fc3 displacements were made with another primitive matrix than the force constants'
    return None


def validate_inputs(value, ctx=None):
    if not all(name in value for name in ('harmonic', 'fc3_displacements', 'labelled')):
        return None
    from ..core.phonons.perturbative import Fc3DisplacementSet
    from ..functions.harmonic import ordered_displacement_forces
    from ..functions.perturbative import FC3_KIND

    displacement_set = Fc3DisplacementSet.from_dict(value['fc3_displacements'].get_dict())
    parameters = dict_input(value, 'parameters')
    message = parameters_problem(parameters, displacement_set) or harmonic_problem(displacement_set, value['harmonic'])
    if message:
        return message
    try:
        ordered_displacement_forces(displacement_set, value['labelled'], kind=FC3_KIND)
    except ValueError as exc:
        return str(exc)
    return None


class PerturbativeCalculation(AnharmalCalcJob):
    """Perturbative phonon lifetimes in the RTA with phono3py (program ``anharmal-perturbative``).

    fc3 from the labelled displaced supercells of ``fc3_displacements`` (every one must be labelled),
    fc2 from ``harmonic`` (or from the same labels), linewidths on a mesh. Outputs ``modes`` (ArrayData,
    per mode at the first temperature: ``q``, ``band``, ``weight``, ``frequency`` THz, ``gamma`` THz,
    ``tau`` ps, ``flag``), ``rta`` (ArrayData: phono3py's arrays for every temperature, ``kappa`` in W/(m K))
    and ``summary`` (Dict: kappa, counts per flag, the fraction below the Ioffe-Regel limit, medians).
    """

    _parser = 'anharmal.perturbative'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('harmonic', valid_type=ForceConstants, help='The harmonic reference (fc2, cells, masses).')
        spec.input('fc3_displacements', valid_type=orm.Dict, help='The `fc3_displacements` output of the calcfunction.')
        spec.input('labelled', valid_type=TrainingSet, help='Every supercell of `fc3_displacements`, labelled.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='`mesh` ([11, 11, 11]), `temperatures` (K, [300]), `fc_calculator` (null or symfc), '
            '`fc2` (reference or labels), `sigma` (THz smearing; null: tetrahedra).',
        )
        spec.inputs.validator = validate_inputs
        spec.output('modes', valid_type=orm.ArrayData, required=False, help='The per-mode table.')
        spec.output('rta', valid_type=orm.ArrayData, required=False, help='RTA arrays for every temperature.')
        spec.output('summary', valid_type=orm.Dict, required=False, help='kappa, Ioffe-Regel fraction, medians.')

    def prepare_for_submission(self, folder):
        import json

        from ..core.phonons.perturbative import Fc3DisplacementSet
        from ..functions.harmonic import ordered_displacement_forces
        from ..functions.perturbative import FC3_KIND

        parameters = {
            **PARAMETER_DEFAULTS,
            **(dict_input(self.inputs, 'parameters')),
        }
        self.write_config(folder, parameters)
        text = self.inputs.harmonic.get_phonopy_yaml_text()
        folder.create_file_from_filelike(io.StringIO(text), program.PHONOPY_FILE, mode='w', encoding='utf-8')
        data = self.inputs.fc3_displacements.get_dict()
        folder.create_file_from_filelike(io.StringIO(json.dumps(data)), program.DISPLACEMENTS_FILE, mode='w')
        forces = ordered_displacement_forces(Fc3DisplacementSet.from_dict(data), self.inputs.labelled, kind=FC3_KIND)
        buffer = io.BytesIO()
        np.save(buffer, forces)
        folder.create_file_from_filelike(io.BytesIO(buffer.getvalue()), program.FORCES_FILE, mode='wb')
        return self.calcinfo(
            retrieve_list=[STATUS_FILE, program.SUMMARY_FILE],
            retrieve_temporary_list=[program.MODES_FILE, program.RESULT_FILE],
        )
