"""Hyperactive learning from Python, EMT Cu standing in for DFT (a few minutes on 2 CPU cores).

Run `anharmal setup` first, then

    python examples/hal_emt_cu.py

The loop of `al_emt_cu.py` with exploration `hal`: every MD run is biased by E - tau sigma (the
committee's energy spread; adaptive tau, no bias for the first 10 steps) and ends where the committee's
relative force uncertainty max_i f_i passes 0.045 (the `max_relative` trigger); that frame and the saved
frame before it are labelled by EMT (acquisition kind `trigger`), the ensemble is retrained, the next
HAL runs start. The published softmax trigger is the protocol's default; on this 16-atom cell and these
tiny members its score stays at 0.064-0.066 (1/16 for equal f_i), so it would never fire here (see the
hyperactive learning page of the docs). At the end: the iterations table and why each labelled frame
was chosen, read from the graph.
"""

import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.analysis.al import status_lines
from aiida_anharmal.workflows import ActiveLearningWorkChain

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)
codes = {name: orm.load_code(f'anharmal-{name}@localhost') for name in ('train', 'evaluate', 'md', 'label')}
start = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 1))
start.rattle(0.05, seed=0)

builder = ActiveLearningWorkChain.get_builder_from_protocol(
    codes,
    start,
    engine='emt',
    protocol='fast',
    exploration='hal',
    overrides={
        'initial': {'mode': 'random', 'parameters': {'random': {'n_train': 16, 'n_test': 6, 'amplitude': 0.08}}},
        'acquisition': {'frames_before': 1},
        'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 6}},
        'explore': {
            'temperatures': [600.0],
            'seeds': [0, 1],
            'parameters': {'steps': 120, 'save_stride': 4},
            'hal': {'bias': {'tau_hist': 10, 'tau_r': 0.25}},
            'trigger': {'kind': 'max_relative', 'tol': 0.045},
        },
    },
)
node = submit(builder)
print(f'submitted ActiveLearningWorkChain<{node.pk}> (exploration hal)')
while not node.is_terminated:
    time.sleep(5)
print('\n'.join(status_lines(node)))
if node.is_finished_ok:
    for name, outputs in sorted(node.outputs.iterations.items()):
        selection = outputs['selection']
        print(f'{name}: labelled {selection["frames"]} because {selection["reasons"]}')
