"""The rare-event tools of the loop from Python, EMT Cu standing in for DFT (a few minutes on 2 CPU cores).

Run `anharmal setup` first, then

    python examples/rare_events_emt_cu.py [--neb-acquire]

A 16-atom Cu cell. The test set comes from a short EMT MD at 600 K (`test_md`); each iteration
explores a temperature ladder (600 and 900 K, one seed each), every run stopped by the `uncertainty`
trigger where UCE_F^max stays above mu + 2 sigma of the test set for 3 steps; P(U) judges each run's
frames at its own temperature; the loop stops when every run of an iteration ran quietly at both
temperatures (`quiet_ladder`), or after 3 iterations. Beside it, the NEB of a vacancy hop in a
15-atom cell with every ensemble and EMT's own NEB: validation only, unless `--neb-acquire` feeds the
uncertain images of each path to the training set (recorded as a priori knowledge). At the end: the
iterations table, the NEB table, and what each run's trigger did. The main job (`anharmal demo al`)
does this for CuI's Frenkel pair with the reference model of Kang et al. (docs/source/rare_events.rst).
"""

import argparse
import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.analysis.al import status_lines
from aiida_anharmal.analysis.neb import neb_lines
from aiida_anharmal.core.structures.defects import vacancy_hop
from aiida_anharmal.workflows import ActiveLearningWorkChain

parser = argparse.ArgumentParser()
parser.add_argument('--neb-acquire', action='store_true', help='feed the uncertain NEB images to the training set')
args = parser.parse_args()
load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)
codes = {name: orm.load_code(f'anharmal-{name}@localhost') for name in ('train', 'evaluate', 'md', 'label', 'neb')}
start = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat((2, 2, 1))
initial, final = vacancy_hop(start)

builder = ActiveLearningWorkChain.get_builder_from_protocol(
    codes,
    start,
    engine='emt',
    protocol='fast',
    overrides={
        'max_iterations': 3,
        'initial': {'mode': 'random', 'parameters': {'random': {'n_train': 12, 'amplitude': 0.08}}},
        'test_md': {'steps': 60, 'save_stride': 4, 'equilibration': 60.0, 'stride': 1},
        'acquisition': {'n_max': 4},
        'convergence': {'rule': 'quiet_ladder'},
        'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 10}},
        'explore': {
            'temperatures': [600.0, 900.0],
            'parameters': {'steps': 100, 'save_stride': 5},
            'trigger': {'kind': 'uncertainty', 's': 2.0, 'patience': 3},
        },
        'neb': {'initial': initial, 'final': final, 'parameters': {'steps': 30}, 'acquire': args.neb_acquire},
    },
)
node = submit(builder)
print(f'submitted ActiveLearningWorkChain<{node.pk}>')
while not node.is_terminated:
    time.sleep(5)
print('\n'.join(status_lines(node)))
print('\n'.join(neb_lines(node)))
if node.is_finished_ok:
    for name in sorted(node.outputs.iterations):
        selection = node.outputs.iterations[name]['selection']
        ends = ', '.join(f'{run["run"]} {"quiet" if run["ended_normally"] else "stopped"}' for run in selection['runs'])
        print(f'{name}: threshold {1000 * selection["threshold"]:.1f} meV/A; {ends}')
    a_priori = [o for o in node.outputs.training_set.origins if o.get('a_priori')]
    print(f'{len(a_priori)} training frame(s) from the NEB paths (a priori knowledge)')
