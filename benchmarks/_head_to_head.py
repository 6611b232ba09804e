"""The contenders and scenarios of ``methods_head_to_head.py run``: what each submits, and its learning curve.

Every NequIP contender of a scenario starts from the same data and the same initial ensemble (the scenario's
``setup``): ``train`` (20 labelled frames: harmonic samples at 300 K, or frames of the aiMD pool), the yardstick
``test`` (16 aiMD-pool frames: the test set of the loop's acquisition, never trained on) and ``ensemble`` (3
subsets x 1 seed of the ``fast`` members, trained from scratch on ``train``). A loop contender then runs 4
iterations of at most 20 labels each, every member fine-tuned from the previous ensemble for at most 60 epochs
(the point ``i`` of its curve is the ensemble that explored in iteration ``i``: trained on ``train`` plus the
labels of iterations 1 .. i-1; the labels of the last iteration are trained on by no one and not counted). The
aiMD random contender trains the same ensembles on ``train`` plus 20, 40, 60 frames drawn at random from the
aiMD pool.
"""

from __future__ import annotations

import time

import numpy as np

from aiida_anharmal.cli.demo_settings import HAL_OVERRIDES, LADDER, LADDER_OVERRIDES

#: 3 subsets x 1 seed (half the paper's 3 x 2, to fit the comparison in the CPU budget), fine-tuned for 60 epochs
#: (benchmarks/results/member_recipes_cpu-2core-finetune-caps.md: 24.9 against 23.4 meV/A for 150, in half the time)
ENSEMBLE = {'n_sub': 3, 'seeds': [0], 'hyperparameters': {'finetune_max_epochs': 60}}
#: the exploration of the paper (MD at 300 K on the ensemble mean, Kang et al.'s Langevin dynamics), two 1 ps runs
EXPLORE = {
    'seeds': [0, 1],
    'parameters': {'steps': 200, 'save_stride': 5, 'timestep': 5.0, 'friction': 0.00295},
    'guards': {'max_anharmonicity': 1.5},
}
ITERATIONS = 4
BUDGET = 20  # labels per iteration
#: the soft acquisition of the UCE kinds takes far fewer than BUDGET frames an iteration (measured: 0, 1 and 4 in
#: the first three iterations from the harmonic start): their loops get twice the iterations to spend the budget
UCE_ITERATIONS = 8
TEMPERATURE = 300.0
#: never stop before the cap: every contender gets the same number of points
NEVER_CONVERGED = {'tolerance': 1e-9}


def merge(*dicts) -> dict:
    from aiida_anharmal.protocols import recursive_merge

    out = {}
    for d in dicts:
        out = recursive_merge(out, d)
    return out


def loop_overrides(kind: str) -> tuple[dict, str]:
    """The loop's overrides of the ``fast`` protocol for a contender, and its exploration (``md`` or ``hal``)."""
    base = {
        'max_iterations': UCE_ITERATIONS if kind in ('force_max', 'energy', 'anharmonicity') else ITERATIONS,
        'acquisition': {'n_max': BUDGET},
        'convergence': NEVER_CONVERGED,
        'ensemble': {**ENSEMBLE, 'retrain': 'finetune'},
        'explore': {**EXPLORE, 'temperatures': [TEMPERATURE]},
        'label': {'batch_size': BUDGET},
    }
    if kind in ('force_max', 'energy', 'anharmonicity', 'random'):
        return merge(base, {'acquisition': {'kind': kind}}), 'md'
    if kind == 'ladder':  # the rare-event work's exploration: 1, 2, 3 x 300 K, each run judged at its temperature
        ladder = merge(LADDER_OVERRIDES['moderate'], {'convergence': {'rule': 'mae_and_selection'}})
        temperatures = [factor * TEMPERATURE for factor in LADDER]
        return merge(base, ladder, {'explore': {'temperatures': temperatures}}), 'md'
    if kind == 'hal':  # ten biased runs per iteration, each ended by its trigger: 2 labels a run
        hal = merge(HAL_OVERRIDES['fast'], {'explore': {'seeds': list(range(BUDGET // 2))}})
        return merge(base, hal), 'hal'
    raise ValueError(f'unknown loop kind {kind!r}')


#: name -> (what runs, its kind): the loop with an acquisition or exploration, or ensembles on aiMD draws
CONTENDERS = {
    'AL UCE_F^max': ('loop', 'force_max'),
    'MLIP-MD rdm': ('loop', 'random'),
    'aiMD rdm': ('aimd', None),
    'AL UCE_A': ('loop', 'anharmonicity'),
    'AL UCE_U': ('loop', 'energy'),
    'HAL': ('loop', 'hal'),
    'AL ladder': ('loop', 'ladder'),
    'Bayesian FC': ('dynamic', None),
}
SCENARIOS = ('harmonic', 'aimd')


def codes() -> dict:
    from aiida import orm

    return {name: orm.load_code(f'anharmal-{name}@localhost') for name in ('train', 'evaluate', 'md', 'label')}


def reference_model():
    from aiida_anharmal.cli.common import reference_model as model

    return model()


def wait_for(nodes, poll: float = 15.0):
    while not all(node.is_terminated for node in nodes):
        time.sleep(poll)
    for node in nodes:
        if not node.is_finished_ok:
            raise RuntimeError(
                f'{node.process_label}<{node.pk}> failed: exit {node.exit_status} {node.exit_message}; '
                f'see `verdi process report {node.pk}`'
            )


def force_constants(code):
    """The phonopy force constants of the main job's 64-atom supercell by the reference model (through the daemon):
    the reference of A, UCE_A and of the harmonic sampling."""
    from aiida_anharmal.cli.demo_al import harmonic_reference

    return harmonic_reference(code, 'nequip-reference', 'fast', reference_model(), timeout=3600)


def harmonic_data(code, harmonic, n_train: int):
    """Harmonic samples of the 64-atom supercell at 300 K, labelled by the reference model (through the daemon)."""
    from aiida import orm
    from aiida.engine import submit

    from aiida_anharmal.protocols import namespace_inputs
    from aiida_anharmal.workflows.initial import InitialDataWorkChain
    from aiida_anharmal.workflows.label import LabelWorkChain

    builder = InitialDataWorkChain.get_builder()
    builder.mode = orm.Str('harmonic')
    builder.parameters = orm.Dict({'n_train': n_train, 'n_test': 0, 'seed': 0, 'temperature': TEMPERATURE})
    builder.force_constants = harmonic
    label = LabelWorkChain.get_builder_from_protocol(code, None, 'nequip-reference', 'fast', model=reference_model())
    builder.label = namespace_inputs(label, ('structures',))
    node = submit(builder)
    wait_for([node])
    return node.outputs.training_set


def train_ensemble(code, training_set, parent=None):
    """Submit the members of the comparison on ``training_set`` (from scratch, or fine-tuned from ``parent``)."""
    from aiida.engine import submit

    from aiida_anharmal.workflows.ensemble import EnsembleWorkChain

    overrides = {**ENSEMBLE, 'retrain': 'finetune' if parent is not None else 'scratch'}
    builder = EnsembleWorkChain.get_builder_from_protocol(code, training_set, 'fast', overrides, parent_ensemble=parent)
    return submit(builder)


def pool_slices(n: int) -> dict:
    """Disjoint slices of the aiMD pool (time order): ``test`` every 7th frame from the 4th (the yardstick),
    ``initial`` every other of the rest within the first 48 frames (the aiMD scenario's start), ``draws`` the
    rest (the aiMD random contender)."""
    test = list(range(3, n, 7))
    rest = [i for i in range(n) if i not in set(test)]
    initial = [i for i in rest if i < 48][::2]
    draws = [i for i in rest if i not in set(initial)]
    return {'test': test, 'initial': initial, 'draws': draws}


def site_order(crystal, ideal) -> np.ndarray:
    """``order[j]``: the atom of ``crystal`` nearest to site ``j`` of ``ideal`` (minimum image); refuses a mapping
    that is not one to one or puts an atom on a site of another element."""
    cell = np.asarray(ideal.cell)
    delta = crystal.positions[None, :, :] - ideal.positions[:, None, :]
    fractional = delta @ np.linalg.inv(cell)
    distance = np.linalg.norm((fractional - np.round(fractional)) @ cell, axis=2)
    order = distance.argmin(axis=1)
    if len(set(order.tolist())) != len(ideal) or (crystal.numbers[order] != ideal.numbers).any():
        raise ValueError('the crystal does not map one to one onto the ideal sites')
    return order


def pool_subset(pool, indices, name: str, ideal):
    """A TrainingSet of the pool's frames ``indices``, their atoms put in the order of the sites of ``ideal`` (the
    loop's harmonic reference: A and UCE_A need its order); labelled by the reference model, stored."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read
    from methods_head_to_head import ENDS

    from aiida_anharmal.data.training_set import TrainingSet

    order, atoms = site_order(read(ENDS, 0), ideal), []
    subset = pool.subset(indices)
    for frame in subset.to_atoms(with_labels=True):
        mapped = frame[order]  # indexing drops the calculator: the labels follow the atoms by hand
        forces = frame.get_forces()[order]
        mapped.calc = SinglePointCalculator(mapped, energy=frame.get_potential_energy(), forces=forces)
        atoms.append(mapped)
    node = TrainingSet.from_ase(atoms, subset.origins)
    node.set_label_provenance('nequip-reference', 'CuI reference model (Kang et al.)', f'aiMD pool: {name}')
    node.label = f'head-to-head aiMD {name}'
    return node.store()


def submit_setup(scenario: str, pool) -> dict:
    """The scenario's data and the submitted initial ensemble: {train, test, structure, ensemble (node)}."""
    from aiida import orm

    if scenario not in SCENARIOS:
        raise ValueError(f'unknown scenario {scenario!r}: one of {SCENARIOS}')
    slices = pool_slices(len(pool))
    harmonic = force_constants(codes()['label'])
    # the loop explores from the ideal supercell in phonopy's atom order, the order of its harmonic reference
    ideal = harmonic.get_supercell()
    structure = orm.StructureData(ase=ideal).store()
    test = pool_subset(pool, slices['test'], 'test', ideal)
    if scenario == 'harmonic':
        train = harmonic_data(codes()['label'], harmonic, 20)
    else:
        train = pool_subset(pool, slices['initial'][:20], 'initial', ideal)
    ensemble = train_ensemble(codes()['train'], train)
    return {'train': train, 'test': test, 'structure': structure, 'harmonic': harmonic, 'ensemble': ensemble}


def submit_loop(kind: str, seed: int, setup: dict):
    from aiida import orm
    from aiida.engine import submit

    from aiida_anharmal.workflows.active_learning import ActiveLearningWorkChain

    overrides, exploration = loop_overrides(kind)
    overrides['explore']['seeds'] = [s + 100 * seed for s in overrides['explore']['seeds']]
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes(), setup['structure'], engine='nequip-reference', protocol='fast', overrides=overrides,
        training_set=setup['train'], test_set=setup['test'], model=reference_model(),
        initial_ensemble=setup['ensemble'].outputs.ensemble, exploration=exploration, harmonic=setup['harmonic'],
    )  # fmt: skip
    builder.seed = orm.Int(seed)
    return submit(builder)


def aimd_draws(pool, seed: int) -> list[list[int]]:
    """The pool frames of the aiMD random contender at each point: 20, 40, 60 random draws (nested)."""
    import numpy as np

    draws = pool_slices(len(pool))['draws']
    order = np.random.default_rng(1000 + seed).permutation(draws)
    return [sorted(int(i) for i in order[: BUDGET * k]) for k in range(1, ITERATIONS)]


def trained_on(ensemble) -> int:
    """The number of training frames of ``ensemble``: the training set of the EnsembleWorkChain that made it."""
    for link in ensemble.base.links.get_incoming().all():
        workchain = link.node.caller if link.node.caller is not None else link.node
        if 'training_set' in workchain.inputs:
            return len(workchain.inputs.training_set)
    raise ValueError(f'no training set found for Ensemble<{ensemble.pk}>')


def predictor(ensemble):
    """``predict(atoms) -> (energy, forces)`` of the ensemble mean."""
    calculator = ensemble.calculator(workers=1)

    def predict(atoms):
        copy = atoms.copy()
        copy.calc = calculator
        return float(copy.get_potential_energy()), copy.get_forces().copy()

    return predict


def loop_points(node) -> list:
    """(ensemble, labels, minutes since the loop started) of each iteration of a finished loop."""
    points = []
    for i in range(1, len(node.outputs.iterations) + 1):
        ensemble = node.outputs.iterations[f'iter_{i:02d}'].ensemble
        minutes = max(0.0, (ensemble.ctime - node.ctime).total_seconds() / 60)
        points.append((ensemble, trained_on(ensemble), minutes if i > 1 else 0.0))
    return points


def curve(points, test_set, ends, offset: float) -> list[dict]:
    """The learning curve of ``points`` (ensemble, labels, minutes) on the rare-event test set; ``offset``: the
    minutes of the shared initial ensemble, added to every point."""
    from aiida_anharmal.core.learning.rare_event_set import curve_point

    return [curve_point(predictor(e), test_set, ends, labels, minutes + offset) for e, labels, minutes in points]


class Job:
    """One contender x scenario x seed: submits its processes in turn through the daemon, then scores its curve.

    ``record`` (the entry of the runs file) holds the uuids of what was submitted, so that a rerun on the same
    profile waits for them instead of submitting again, and ``curve`` once scored."""

    def __init__(self, name: str, scenario: str, seed: int, record: dict):
        self.name, self.scenario, self.seed, self.record = name, scenario, seed, record
        self.what, self.kind = CONTENDERS[name]

    @property
    def done(self) -> bool:
        return 'curve' in self.record or 'failed' in self.record

    def _nodes(self) -> list:
        """The processes submitted so far; none when this profile lacks them (the runs file came from another
        machine: the run starts again here)."""
        from aiida import orm
        from aiida.common.exceptions import NotExistent

        try:
            return [orm.load_node(uuid) for uuid in self.record.get('submitted', [])]
        except NotExistent:
            self.record.pop('submitted', None)
            self.record.pop('pks', None)
            return []

    def advance(self, setup: dict, pool, test_set, ends) -> bool:
        """Submit the next process if the previous one finished; score the curve after the last. True when done."""
        nodes = self._nodes()
        if nodes and not nodes[-1].is_terminated:
            return False
        try:
            wait_for(nodes[-1:])
        except RuntimeError as exc:  # kept in the runs file with its reason; `--retry-failed` submits it again
            self.record['failed'] = str(exc)
            return True
        stages = ITERATIONS - 1 if self.what == 'aimd' else 1
        if len(nodes) < stages:
            try:
                node = self._submit_next(setup, pool, nodes)
            except (ValueError, TypeError) as exc:  # refused before it ran: kept with its reason
                self.record['failed'] = f'not submitted: {exc}'
                return True
            self.record.setdefault('submitted', []).append(node.uuid)
            self.record['pks'] = [*self.record.get('pks', []), node.pk]
            return False
        first = setup['ensemble']
        offset = (first.mtime - first.ctime).total_seconds() / 60
        if self.what == 'dynamic':  # its own initial fit: no shared ensemble time
            from _head_to_head_fc import fc_curve

            self.record['curve'] = fc_curve(nodes[0], setup, test_set, ends)
            return True
        if self.what == 'loop':
            points = loop_points(nodes[0])
        else:
            points, elapsed = [(first.outputs.ensemble, len(setup['train']), 0.0)], 0.0
            for node in nodes:
                elapsed += (node.mtime - node.ctime).total_seconds() / 60
                points.append((node.outputs.ensemble, trained_on(node.outputs.ensemble), elapsed))
        self.record['curve'] = curve(points, test_set, ends, offset)
        return True

    def _submit_next(self, setup: dict, pool, nodes: list):
        if self.what == 'loop':
            return submit_loop(self.kind, self.seed, setup)
        if self.what == 'dynamic':
            from _head_to_head_fc import submit_dynamic

            if self.scenario != 'harmonic':
                raise ValueError('the Bayesian FC contender runs in the harmonic scenario only')
            return submit_dynamic(setup, self.seed)
        from aiida_anharmal.functions.datasets import merge_training_sets

        k = len(nodes)
        name = f'random draws, seed {self.seed}, point {k + 2}'
        draws = pool_subset(pool, aimd_draws(pool, self.seed)[k], name, setup['structure'].get_ase())
        training_set = merge_training_sets(a=setup['train'], b=draws)
        parent = nodes[-1].outputs.ensemble if nodes else setup['ensemble'].outputs.ensemble
        return train_ensemble(codes()['train'], training_set, parent)
