"""Train a 2 x 2 NequIP ensemble on EMT-labelled Cu and evaluate it on held-out frames.

Run `anharmal setup` first (profile, codes, daemon), then

    python examples/ensemble_emt_cu.py

About 2 minutes on 2 CPU cores. EMT stands in for DFT here; for real labels run the
LabelWorkChain first (examples/label_cui_gpaw.py) and pass its `labelled` output.
"""

import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_anharmal.calculations import EvaluateCalculation
from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows.ensemble import EnsembleWorkChain

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)


def emt_frames(n, seed):
    frames = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 1))
        atoms.rattle(0.05 + 0.05 * (k % 2), seed=seed + k)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


def wait(node):
    while not node.is_terminated:
        time.sleep(2)
    if not node.is_finished_ok:
        raise SystemExit(f'{node.process_label}<{node.pk}> failed: {node.exit_status} {node.exit_message}')
    return node


training_set = TrainingSet.from_ase(emt_frames(32, seed=0))
training_set.set_label_provenance('emt', 'toy', 'ASE EMT (example)')
builder = EnsembleWorkChain.get_builder_from_protocol(
    orm.load_code('anharmal-train@localhost'),
    training_set,
    protocol='fast',
    overrides={'n_sub': 2, 'seeds': [0, 1]},
)
node = wait(submit(builder))
ensemble = node.outputs.ensemble
print(f'EnsembleWorkChain<{node.pk}> -> Ensemble<{ensemble.pk}>: {ensemble.get_description()}')
for label, member in ensemble.members.items():
    metrics = member.base.attributes.get('metrics')
    print(
        f'  {label}: seed {member.base.attributes.get("seed")}, '
        f'{len(member.base.attributes.get("train_indices"))} training frames, '
        f'validation force MAE {1000 * metrics["validation_forces_mae"]:.1f} meV/A'
    )

holdout = TrainingSet.from_ase(emt_frames(8, seed=100))
evaluation = wait(
    submit(
        EvaluateCalculation,
        ensemble=ensemble,
        structures=holdout,
        code=orm.load_code('anharmal-evaluate@localhost'),
        metadata={'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}},
    )
)
stats = evaluation.outputs.statistics.get_dict()
print(
    f'held-out: force MAE of the mean {1000 * stats["errors"]["forces_mae"]:.1f} meV/A; '
    f'UCE_F^max {1000 * stats["uce_force_max"]["mean"]:.1f} +- {1000 * stats["uce_force_max"]["std"]:.1f} meV/A; '
    f'UCE_U {1000 * stats["uce_energy"]["mean"]:.2f} +- {1000 * stats["uce_energy"]["std"]:.2f} meV'
)
