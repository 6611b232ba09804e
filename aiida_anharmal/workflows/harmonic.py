"""``HarmonicWorkChain``: phonopy displacements -> labelled forces -> force constants, frequencies, bands, DOS."""

from __future__ import annotations

import math

import numpy as np
from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import WorkChain

from .. import exit_codes
from ..calculations.label import check_label_inputs
from ..core.phonons.phonopy_io import check_supercell_matrix as core_check_supercell_matrix
from ..data.force_constants import ForceConstants
from ..data.mlip_model import MLIPModel
from ..data.training_set import TrainingSet
from ..functions.harmonic import (
    DISPLACEMENT_KEYS,
    SPECTRUM_KEYS,
    build_force_constants,
    make_displacements,
)
from ..ports import dict_input
from ..protocols import ProtocolMixin, namespace_inputs
from .codes import code_or_setup
from .common import describe, options_message
from .label import LabelWorkChain

#: Largest accepted finite displacement (Angstrom): beyond it the forces are no longer harmonic.
MAX_DISPLACEMENT_DISTANCE = 0.1

#: Keys of ``phonopy_parameters``: phonopy's displacement options and the spectra's.
PHONOPY_KEYS = (DISPLACEMENT_KEYS - {'supercell_matrix', 'distance'}) | SPECTRUM_KEYS


def check_supercell_matrix(matrix) -> str | None:
    """Error message unless ``matrix`` is 3 integers or a 3x3 integer matrix with a positive determinant."""
    try:
        core_check_supercell_matrix(matrix)
    except ValueError as error:
        return str(error)
    return None


def check_phonopy_parameters(parameters: dict) -> str | None:
    """Error message for unknown keys or bad values of ``phonopy_parameters``."""
    unknown = sorted(set(parameters) - PHONOPY_KEYS)
    if unknown:
        return f'unknown `phonopy_parameters` key(s) {unknown}; allowed: {sorted(PHONOPY_KEYS)}'
    mesh = parameters.get('dos_mesh', [1, 1, 1])
    if not (isinstance(mesh, list) and len(mesh) == 3 and all(isinstance(m, int) and m >= 1 for m in mesh)):
        return f'`phonopy_parameters.dos_mesh` must be three positive integers, not {mesh!r}'
    npoints = parameters.get('band_npoints', 2)
    if not isinstance(npoints, int) or npoints < 2:
        return f'`phonopy_parameters.band_npoints` must be an integer of at least 2, not {npoints!r}'
    for key in ('dos_sigma', 'symprec'):
        number = parameters.get(key)
        if number is not None and not (isinstance(number, (int, float)) and number > 0):
            return f'`phonopy_parameters.{key}` must be a positive number, not {number!r}'
    if parameters.get('is_plusminus', 'auto') not in ('auto', True, False):
        return f"`phonopy_parameters.is_plusminus` must be 'auto', true or false, not {parameters['is_plusminus']!r}"
    return None


def diagonal_supercell(cell, min_length: float) -> list[int]:
    """Repetitions along each cell vector so that opposite faces of the supercell are ``min_length`` apart."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return [max(1, math.ceil(min_length / h - 1e-8)) for h in heights]


def validate_inputs(value, ctx=None):
    """Refuse bad input before anything runs: geometry, supercell, displacement, phonopy keys, labelling."""
    structure = value.get('structure')
    if structure is not None:
        if not all(structure.pbc):
            return (
                f'the structure must be periodic in all three directions for phonons, but its pbc is '
                f'{list(structure.pbc)}'
            )
        if abs(structure.get_cell_volume()) < 1e-6:
            return 'the structure has a cell of zero volume'
    if 'supercell_matrix' in value:
        message = check_supercell_matrix(value['supercell_matrix'].get_list())
        if message:
            return message
    if 'displacement_distance' in value:
        distance = value['displacement_distance'].value
        if not 0 < distance <= MAX_DISPLACEMENT_DISTANCE:
            return f'`displacement_distance` must be positive and at most {MAX_DISPLACEMENT_DISTANCE} A, not {distance}'
    if 'phonopy_parameters' in value:
        message = check_phonopy_parameters(value['phonopy_parameters'].get_dict())
        if message:
            return message
    label = value.get('label') or {}
    if structure is not None and 'engine' in label:
        # the displaced supercells hold the unit cell's species and distances (up to the displacement)
        message = check_label_inputs(label, [structure.get_ase()])
        if message:
            return f'labelling: {message}'
        return options_message(label, 'label.options')
    return None


class HarmonicWorkChain(ProtocolMixin, WorkChain):
    """Harmonic force constants by phonopy's finite displacements, labelled by any engine.

    Steps: :func:`~aiida_anharmal.functions.make_displacements` makes the symmetry-reduced
    displaced supercells of ``structure``; a :class:`LabelWorkChain` computes their forces with the
    engine of the ``label`` namespace; :func:`~aiida_anharmal.functions.build_force_constants`
    turns them into a :class:`ForceConstants` node with the frequencies at Gamma, a band structure
    and the DOS. Every displaced supercell must be labelled: force constants need all of them.
    """

    _protocol_file = 'harmonic.yaml'
    _namespaces = ('label',)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData, help='Unit cell, periodic in three directions.')
        spec.input(
            'supercell_matrix',
            valid_type=orm.List,
            help='3 integers (diagonal) or a 3x3 integer matrix: supercell = matrix @ unit cell.',
        )
        spec.input(
            'displacement_distance',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.01),
            help='Finite displacement in Angstrom (0 < d <= 0.1).',
        )
        spec.input(
            'phonopy_parameters',
            valid_type=orm.Dict,
            required=False,
            help=f'Optional phonopy options: {", ".join(sorted(PHONOPY_KEYS))}.',
        )
        spec.expose_inputs(
            LabelWorkChain,
            namespace='label',
            exclude=('structures',),
            namespace_options={'help': 'Inputs of the LabelWorkChain that computes the forces.'},
        )
        spec.inputs.validator = validate_inputs
        spec.outline(cls.make_displacements, cls.run_labelling, cls.inspect_labelling, cls.build)
        spec.output('force_constants', valid_type=ForceConstants, help='Supercell and its force constants.')
        spec.output('gamma_frequencies', valid_type=orm.List, help='Frequencies at Gamma in THz, ascending.')
        spec.output('band_structure', valid_type=orm.BandsData, help='Phonon bands of the primitive cell in THz.')
        spec.output('dos', valid_type=orm.XyData, help='Total phonon DOS: frequency (THz), states/THz.')
        spec.output('displacements', valid_type=TrainingSet, help='The displaced supercells, labelled.')
        exit_codes.declare(
            spec, 'ERROR_LABELLING_FAILED', 'ERROR_TOO_FEW_LABELLED', 'ERROR_FORCE_CONSTANTS_FAILED', workchain=True
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        structure,
        engine: str = 'gpaw',
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        options: dict | None = None,
    ):
        """Return a builder filled from a protocol (``fast``, ``moderate``, ``precise``).

        :param structure: the unit cell, a StructureData or ASE Atoms.
        :param engine: labelling engine (``gpaw``, ``emt`` or ``nequip-reference`` with ``model``).
        :param overrides: nested dict of protocol values to replace, e.g. ``{'supercell_matrix': [2, 2, 2],
            'displacement_distance': 0.02, 'label': {'batch_size': 5}, 'phonopy': {'dos_mesh': [8, 8, 8]}}``;
            ``label`` overrides values of the labelling protocol named by ``label_protocol``.
        :param options: scheduler options merged into the labelling protocol's ``options``.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if not isinstance(structure, orm.StructureData):
            structure = orm.StructureData(ase=structure)
        label = LabelWorkChain.get_builder_from_protocol(
            code_or_setup(code, 'label'),
            None,
            engine,
            inputs['label_protocol'],
            inputs.get('label'),
            model=model,
            options=options,
        )
        matrix = inputs.get('supercell_matrix')
        if matrix is None:
            matrix = diagonal_supercell(structure.cell, inputs['supercell_min_length'])

        builder = cls.get_builder()
        builder.structure = structure
        builder.supercell_matrix = orm.List(np.asarray(matrix).tolist())
        builder.displacement_distance = orm.Float(inputs['displacement_distance'])
        if inputs.get('phonopy'):
            builder.phonopy_parameters = orm.Dict(inputs['phonopy'])
        builder.label = namespace_inputs(label, exclude=('structures',))
        return builder

    def _phonopy_parameters(self, keys) -> dict:
        given = dict_input(self.inputs, 'phonopy_parameters')
        return {k: v for k, v in given.items() if k in keys}

    def make_displacements(self):
        parameters = {
            'supercell_matrix': self.inputs.supercell_matrix.get_list(),
            'distance': self.inputs.displacement_distance.value,
            **self._phonopy_parameters(DISPLACEMENT_KEYS),
        }
        results = make_displacements(
            self.inputs.structure, orm.Dict(parameters), metadata={'call_link_label': 'make_displacements'}
        )
        self.ctx.displacements = results['displacements']
        self.ctx.displacement_dataset = results['displacement_dataset']
        n_atoms = self.ctx.displacements.base.attributes.get('n_atoms_total') // max(len(self.ctx.displacements), 1)
        self.report(f'{len(self.ctx.displacements)} displaced supercell(s) of {n_atoms} atoms')

    def run_labelling(self):
        inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, 'label'))
        inputs.structures = self.ctx.displacements
        inputs.metadata = {'call_link_label': 'label'}
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'labelling the displaced supercells in {node.process_label}<{node.pk}>')
        return self.to_context(label=node)

    def inspect_labelling(self):
        node = self.ctx.label
        excluded = dict_input(node.outputs, 'excluded')
        for index, why in excluded.items():
            self.report(f'displaced supercell {index} not labelled: {why.get("reason")} ({why.get("message", "")})')
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(message=describe(node))
        if excluded:
            which = ', '.join(sorted(excluded, key=int))
            message = (
                f'{len(excluded)} of {len(self.ctx.displacements)} displaced supercell(s) could not be '
                f'labelled ({which}); force constants need every one of them'
            )
            return self.exit_codes.ERROR_TOO_FEW_LABELLED.format(message=message)
        return None

    def build(self):
        labelled = self.ctx.label.outputs.labelled
        kwargs = {'metadata': {'call_link_label': 'build_force_constants'}}
        spectrum = self._phonopy_parameters(SPECTRUM_KEYS)
        if spectrum:
            kwargs['parameters'] = orm.Dict(spectrum)
        try:
            results = build_force_constants(self.ctx.displacement_dataset, labelled, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a calcfunction's error becomes the exit message
            return self.exit_codes.ERROR_FORCE_CONSTANTS_FAILED.format(message=str(exc))
        for name in ('force_constants', 'gamma_frequencies', 'band_structure', 'dos'):
            self.out(name, results[name])
        self.out('displacements', labelled)
        frequencies = results['gamma_frequencies'].get_list()
        self.report(
            f'force constants of {results["force_constants"].n_atoms} atoms; Gamma frequencies (THz): '
            f'{", ".join(f"{f:.3f}" for f in frequencies[:6])}{" ..." if len(frequencies) > 6 else ""}'
        )
        return None
