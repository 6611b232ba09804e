"""The Bayesian force-constant contender of ``methods_head_to_head.py`` (Callsen et al.; a different model class).

``DynamicTrainingWorkChain`` from the harmonic scenario's 20 training frames (mode ``trajectory``: the frames as
they are), orders 2-4 with the cut-offs of ``benchmarks/dynamic_fc.py --system cui`` (5.5, 4.4, 3.4 A), the
``eps_min`` rule (a refit at every step whose eps_B is the largest since the last: the rule that keeps labelling,
Callsen et al.'s ``trajectory_average`` stopped after 3 refits on CuI), 1 fs Langevin at 300 K, at most 30 refits (one a minute through the daemon).
Its curve: the fits on 20, 30, 40 and 50 structures; one seed.

The expansion gives forces and, with the reference model's energy of the ideal supercell as its zero, energies
of any frame whose atoms can be put on the ideal lattice's sites. The test frames are mapped onto the sites once,
by the relaxed crystal (each site takes its nearest atom). In a Frenkel pair one Cu then sits 3.2 A from its
site: hiphive's calculator refuses displacements above 3 A, and the expansion has no term that could describe
a defect. Its defect and path errors and its Frenkel-pair energy are therefore not defined (``None``); the
thermal part is scored as for every contender.
"""

from __future__ import annotations

import numpy as np

CUTOFFS = [5.5, 4.4, 3.4]
#: through the daemon a refit costs about a minute on 2 busy cores (an MD job, a label job, a fit): 30 refits
MAX_REFITS = 30
POINTS = (20, 30, 40, 50)


def submit_dynamic(setup: dict, seed: int):
    from _head_to_head import codes, reference_model
    from aiida import orm
    from aiida.engine import submit
    from ase.build import bulk

    from aiida_anharmal.cli.demo_al import CUI_LATTICE_CONSTANT
    from aiida_anharmal.workflows.dynamic_training import DynamicTrainingWorkChain

    primitive = bulk('CuI', 'zincblende', a=CUI_LATTICE_CONSTANT, cubic=True)
    overrides = {
        'fit': {'cutoffs': CUTOFFS},
        'retrain': {'rule': 'eps_min'},
        'max_refits': MAX_REFITS,
        'md': {'parameters': {'steps': 20000, 'save_stride': 10, 'seed': seed}},
    }
    builder = DynamicTrainingWorkChain.get_builder_from_protocol(
        codes(), primitive, [2, 2, 2], engine='nequip-reference', protocol='moderate', overrides=overrides,
        model=reference_model(),
    )  # fmt: skip
    builder.supercell = setup['structure']  # the harmonic frames' own (phonopy's) atom order
    builder.initial.mode = orm.Str('trajectory')  # the frames as they are (the protocol's mode is `random`)
    builder.initial.parameters = orm.Dict({'n_train': len(setup['train']), 'n_test': 0, 'seed': seed})
    builder.initial.frames = setup['train']
    builder.test_set = setup['test']  # on the supercell's sites (pool_subset)
    return submit(builder)


class FCPredictor:
    """``predict(atoms) -> (energy, forces)`` of a fit, for frames in the test set's atom order."""

    def __init__(self, model, order: np.ndarray, zero: float):
        self.calculator = model.calculator()
        self.order, self.inverse, self.zero = order, np.argsort(order), zero

    def __call__(self, atoms):
        mapped = atoms[self.order]
        mapped.calc = self.calculator
        energy, forces = float(mapped.get_potential_energy()), mapped.get_forces()
        return self.zero + energy, forces[self.inverse]


def fc_points(node) -> list:
    """(fit, labels, minutes since the start) of the fits on :data:`POINTS` structures (or the nearest below)."""
    fits = sorted(node.outputs.fits.values(), key=lambda fit: fit.n_structures)
    points = []
    for n in POINTS:
        below = [fit for fit in fits if fit.n_structures <= n]
        if below and (not points or below[-1].n_structures > points[-1][1]):
            fit = below[-1]
            points.append((fit, fit.n_structures, (fit.ctime - node.ctime).total_seconds() / 60))
    return points


def fc_curve(node, setup: dict, test_set, ends) -> list[dict]:
    """The fits' curve: the thermal part as for every contender; the defect and path parts and the Frenkel-pair
    energy ``None`` (not defined): hiphive's calculator refuses a displacement above 3 A, and the Frenkel pair's Cu
    sits 3.2 A from its site."""
    from _cui_data import reference_calculator
    from _head_to_head import site_order

    from aiida_anharmal.core.learning.rare_event_set import PARTS, labelled_copy, part_errors, parts_of

    ideal = setup['structure'].get_ase()
    order = site_order(ends[0], ideal)
    zero = float(labelled_copy(ideal, reference_calculator()).get_potential_energy())
    thermal = test_set.subset(parts_of(test_set)['thermal'])
    points = []
    for fit, labels, minutes in fc_points(node):
        errors = part_errors(thermal, FCPredictor(fit.get_model(), order, zero))['thermal']
        points.append(
            {
                'labels': int(labels),
                **{f'energy_mae_{part}': errors['energy_mae'] if part == 'thermal' else None for part in PARTS},
                'force_mae_thermal': errors['force_mae'],
                'force_mae_defect': None,
                'defect_energy_error': None,
                'minutes': round(float(minutes), 2),
            }
        )
    return points
