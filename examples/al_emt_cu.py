"""Active learning from Python, EMT Cu standing in for DFT (a few minutes on 2 CPU cores).

Run `anharmal setup` first, then

    python examples/al_emt_cu.py

Initial data: 16 training + 6 test frames of random displacements of a 16-atom Cu cell, labelled
by EMT; then two iterations of the fast protocol (2 x 1 tiny members, MD at 900 K, up to 4 frames
per iteration). At the end: the iterations table, why it stopped, and where the first selected
frame came from, all read from the provenance graph. The main job (`anharmal demo al`) does the
same for CuI with the reference model of Kang et al.
"""

import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.analysis.al import status_lines, why
from aiida_anharmal.workflows import ActiveLearningWorkChain

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)
codes = {name: orm.load_code(f'anharmal-{name}@localhost') for name in ('train', 'evaluate', 'md', 'label')}
start = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 1))

builder = ActiveLearningWorkChain.get_builder_from_protocol(
    codes,
    start,
    engine='emt',
    protocol='fast',
    overrides={
        'initial': {'mode': 'random', 'parameters': {'random': {'n_train': 16, 'n_test': 6, 'amplitude': 0.08}}},
        'acquisition': {'n_max': 4},
        'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 10}},
        'explore': {'temperatures': [900.0], 'parameters': {'steps': 100, 'save_stride': 5}},
    },
)
node = submit(builder)
print(f'submitted ActiveLearningWorkChain<{node.pk}>')
while not node.is_terminated:
    time.sleep(5)
print('\n'.join(status_lines(node)))
if node.is_finished_ok:
    final = node.outputs.training_set
    picked = [k for k, origin in enumerate(final.origins) if origin.get('kind') == 'exploration']
    if picked:
        print('\n'.join(why(final, picked[0])))
