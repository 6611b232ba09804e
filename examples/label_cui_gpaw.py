"""Label rattled CuI cells with GPAW through the daemon (run `anharmal setup` first).

python examples/label_cui_gpaw.py
"""

import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import LabelWorkChain

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)

structures = []
for seed in range(4):
    atoms = bulk('CuI', 'zincblende', a=6.05)
    atoms.rattle(0.05, seed=seed)
    structures.append(atoms)

training_set = TrainingSet.from_ase(structures, origins=[{'kind': 'example', 'seed': s} for s in range(4)])
builder = LabelWorkChain.get_builder_from_protocol(
    orm.load_code('anharmal-label@localhost'),
    training_set,
    engine='gpaw',
    protocol='fast',
    overrides={'batch_size': 2},
)
node = submit(builder)
print(f'submitted LabelWorkChain<{node.pk}>')
while not node.is_terminated:
    time.sleep(2)
print(node.exit_status, node.exit_message)
labelled = node.outputs.labelled
print(labelled.get_description(), labelled.get_array('energy'))
labelled.write_extxyz('cui_labelled.extxyz')
