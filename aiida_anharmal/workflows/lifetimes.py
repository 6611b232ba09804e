"""``LifetimesWorkChain``: NVT equilibration, NVE production, fully anharmonic lifetimes of every harmonic mode.

The MD runs on an ensemble's mean forces or on the labelling engine itself (the "aiMD" of Kang
et al.'s comparison), through the same MD program: first Langevin NVT at the temperature to
equilibrate, then NVE from its last frame (positions and velocities), then a
``LifetimeCalculation`` on the NVE trajectory against the harmonic reference. An interrupted run
is continued from its checkpoint by ``MDBaseWorkChain``, so the production trajectory is one run.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain

from .. import exit_codes
from ..calculations.lifetimes import PARAMETER_KEYS, LifetimeCalculation, trajectory_problem
from ..calculations.md import add_reference_inputs
from ..data.ensemble import Ensemble
from ..data.force_constants import ForceConstants
from ..data.mlip_model import MLIPModel
from ..ports import dict_input
from ..protocols import ProtocolMixin, recursive_merge
from .codes import resolve_codes
from .common import add_options_input, describe, options_message, set_reference
from .md import MDBaseWorkChain
from .validation import run_ended


def validate_lifetimes_inputs(value, ctx=None):
    if 'harmonic' not in value:
        return None
    if ('ensemble' in value) == bool(value.get('reference')):
        return 'give either an `ensemble` or a `reference` engine to drive the MD, not both'
    for key, expected in (('equilibration', 'langevin'), ('production', 'nve')):
        parameters = value[key].get_dict() if key in value else {}
        if parameters.get('dynamics', expected) != expected:
            return f'`{key}` must be {expected} dynamics, not {parameters["dynamics"]}'
    production = dict_input(value, 'production')
    frames = production.get('steps', 0) // max(production.get('save_stride', 1), 1)
    analysis = dict_input(value, 'analysis')
    unknown = sorted(set(analysis) - PARAMETER_KEYS)
    if unknown:
        return f'unknown `analysis` key(s) {unknown}; allowed: {sorted(PARAMETER_KEYS)}'
    from ..core.phonons.normal_modes import MIN_FRAMES

    needed = analysis.get('min_frames', MIN_FRAMES)
    if frames < needed:
        return f'the production saves {frames} frames, too few for a lifetime fit (at least {needed})'
    structure = value.get('structure')
    if structure is not None:
        harmonic = value['harmonic']
        positions = np.array([site.position for site in structure.sites])
        if len(positions) != harmonic.n_atoms:
            return f'the structure has {len(positions)} atoms, the supercell of `harmonic` {harmonic.n_atoms}'
        if np.abs(np.array(structure.cell) - harmonic.get_array('cell')).max() > 1e-4:
            return 'the structure is not the supercell of `harmonic` (another cell)'
    return options_message(value)


class LifetimesWorkChain(ProtocolMixin, WorkChain):
    """Equilibrate (NVT), run NVE, fit every mode's lifetime (``LifetimeCalculation``)."""

    _protocol_file = 'lifetimes.yaml'
    _open_keys = (*ProtocolMixin._open_keys, 'analysis')  # LifetimeCalculation's keys, checked by the validator

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('harmonic', valid_type=ForceConstants, help='The harmonic reference (its supercell is simulated).')
        spec.input('structure', valid_type=orm.StructureData, required=False, help='Start (default: the supercell).')
        spec.input('ensemble', valid_type=Ensemble, required=False, help='The ensemble whose mean forces drive the MD.')
        add_reference_inputs(spec, required=False)
        spec.input('equilibration', valid_type=orm.Dict, help='MD settings of the NVT equilibration (`MDCalculation`).')
        spec.input('production', valid_type=orm.Dict, help='MD settings of the NVE production (`MDCalculation`).')
        spec.input(
            'analysis', valid_type=orm.Dict, default=lambda: orm.Dict({}), help='`LifetimeCalculation` parameters.'
        )
        spec.input('guards', valid_type=orm.Dict, required=False, help='Stop rules of both MD runs (`MDCalculation`).')
        spec.input('md_code', valid_type=orm.AbstractCode, help='Code of `anharmal-md`.')
        spec.input('lifetimes_code', valid_type=orm.AbstractCode, help='Code of `anharmal-lifetimes`.')
        spec.input('max_restarts', valid_type=orm.Int, default=lambda: orm.Int(3), help='Calculations per MD run.')
        add_options_input(spec, 'calculation')
        spec.inputs.validator = validate_lifetimes_inputs
        spec.outline(cls.equilibrate, cls.produce, cls.analyse, cls.results)
        spec.output('equilibration', valid_type=orm.TrajectoryData, help='The NVT trajectory.')
        spec.output('trajectory', valid_type=orm.TrajectoryData, help='The NVE trajectory the lifetimes come from.')
        spec.output('modes', valid_type=orm.ArrayData, help='The per-mode table of `LifetimeCalculation`.')
        spec.output('summary', valid_type=orm.Dict, help='Counts, Ioffe-Regel fraction, median lifetimes.')
        exit_codes.declare(spec, 'ERROR_EXPLORATION_FAILED', 'ERROR_LIFETIMES_FAILED', workchain=True)

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict,
        harmonic: ForceConstants,
        ensemble: Ensemble | None = None,
        engine: str | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
        model: MLIPModel | None = None,
        engine_parameters: dict | None = None,
        options: dict | None = None,
    ):
        """A builder from a protocol (``fast``, ``moderate``, ``precise``).

        :param codes: ``{'md', 'lifetimes'}`` -> codes. Either ``ensemble`` or ``engine`` (with ``model``
            for ``nequip-reference`` and ``engine_parameters``) drives the MD.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.harmonic = harmonic
        codes = resolve_codes(codes, required=('md', 'lifetimes'))
        builder.md_code, builder.lifetimes_code = codes['md'], codes['lifetimes']
        if ensemble is not None:
            builder.ensemble = ensemble
        set_reference(builder, engine, model, engine_parameters)
        for key in ('equilibration', 'production', 'analysis'):
            builder[key] = orm.Dict(inputs[key])
        builder.max_restarts = orm.Int(inputs['max_restarts'])
        builder.options = recursive_merge(inputs['options'], options or {})
        return builder

    def _md(self, parameters: orm.Dict, label: str, **start):
        md = {
            'code': self.inputs.md_code,
            'harmonic': self.inputs.harmonic,
            'parameters': parameters,
            'metadata': {'options': dict(self.inputs.options)},
            **start,
        }
        if 'guards' in self.inputs:
            md['guards'] = self.inputs.guards
        if 'ensemble' in self.inputs:
            md['ensemble'] = self.inputs.ensemble
        else:
            md['reference'] = dict(self.inputs.reference)
        return self.submit(
            MDBaseWorkChain, md=md, max_iterations=self.inputs.max_restarts, metadata={'call_link_label': label}
        )

    def equilibrate(self):
        structure = (
            self.inputs.structure
            if 'structure' in self.inputs
            else orm.StructureData(ase=self.inputs.harmonic.get_supercell())
        )
        self.report(f'NVT equilibration: {self.inputs.equilibration["steps"]} steps')
        return ToContext(equilibration=self._md(self.inputs.equilibration, 'equilibration', structure=structure))

    def produce(self):
        node = self.ctx.equilibration
        if not node.is_finished_ok or 'trajectory' not in node.outputs:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=f'equilibration: {describe(node)}')
        self.out('equilibration', node.outputs.trajectory)
        self.report(f'NVE production: {self.inputs.production["steps"]} steps from the last equilibrated frame')
        start = {'parent_trajectory': node.outputs.trajectory, 'start_frame': orm.Int(-1)}
        return ToContext(production=self._md(self.inputs.production, 'production', **start))

    def analyse(self):
        node = self.ctx.production
        if not node.is_finished_ok or 'trajectory' not in node.outputs:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=f'production: {describe(node)}')
        self.out('trajectory', node.outputs.trajectory)
        from ..core.phonons.normal_modes import MIN_FRAMES

        problem = trajectory_problem(
            node.outputs.trajectory, self.inputs.harmonic, int(self.inputs.analysis.get('min_frames', MIN_FRAMES))
        )
        if problem:  # e.g. a guard ended the run early: say so instead of failing on the calculation's validation
            ended = run_ended(node)
            return self.exit_codes.ERROR_LIFETIMES_FAILED.format(message=f'the NVE run ({ended}): {problem}')
        calculation = self.submit(
            LifetimeCalculation,
            code=self.inputs.lifetimes_code,
            trajectory=node.outputs.trajectory,
            harmonic=self.inputs.harmonic,
            parameters=self.inputs.analysis,
            metadata={'options': dict(self.inputs.options), 'call_link_label': 'lifetimes'},
        )
        return ToContext(lifetimes=calculation)

    def results(self):
        node = self.ctx.lifetimes
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LIFETIMES_FAILED.format(message=describe(node))
        self.out('modes', node.outputs.modes)
        self.out('summary', node.outputs.summary)
        summary = node.outputs.summary
        median = summary['median_tau']
        self.report(
            f'{summary["flags"].get("ok", 0)} of {summary["modes"]} modes resolved, median tau '
            f'{"n/a" if median is None else f"{median:.2f} ps"}, below the Ioffe-Regel limit: '
            f'{100 * summary["ioffe_regel_fraction"]:.0f} %'
        )
        return None
