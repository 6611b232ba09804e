"""Fully anharmonic CuI lifetimes of a finished main job: the reference model, the initial and the final ensemble.

Run the main job first (`bash scripts/main.sh`, or with `--iterations 5`), then

    python examples/lifetimes_cui_after_al.py AL_PK [--sources reference initial final] [--nve-ps 4]

For each source it submits a ``LifetimesWorkChain`` on the loop's harmonic reference (the 64-atom
supercell): 0.5 ps of Langevin NVT at 300 K, then ``--nve-ps`` of NVE at 5 fs with a frame every
10 fs, driven by the reference model (the ground truth), by the ensemble of the first iteration or
by that of the last. It prints per source the median lifetime, the fraction of modes below the
Ioffe-Regel limit and the medians per 1-THz band, or how the run ended when it could not give
lifetimes. The reference model costs about a second per step on a CPU core: 4 ps take ~15 min
alone (measured: 35 min while two other jobs shared the two cores); an ensemble takes ~2 min.
"""

import argparse
import time

from aiida import load_profile, orm
from aiida.engine import submit

from aiida_anharmal.workflows import LifetimesWorkChain

parser = argparse.ArgumentParser()
parser.add_argument('al_pk', type=int)
parser.add_argument('--sources', nargs='+', default=['reference', 'initial', 'final'])
parser.add_argument('--nve-ps', type=float, default=4.0)
args = parser.parse_args()
load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)

al = orm.load_node(args.al_pk)
iterations = al.outputs.iterations
codes = {'md': orm.load_code('anharmal-md@localhost'), 'lifetimes': orm.load_code('anharmal-lifetimes@localhost')}
overrides = {
    'equilibration': {'steps': 100, 'timestep': 5.0, 'save_stride': 10, 'friction': 0.00295},
    'production': {'steps': round(args.nve_ps * 200), 'timestep': 5.0, 'save_stride': 2},
}
nodes = {}
for source in args.sources:
    if source == 'reference':
        label = al.inputs.label
        kwargs = {
            'engine': label.engine.value,
            'model': label.get('model'),
            'engine_parameters': label.parameters.get_dict(),
        }
    else:
        name = sorted(iterations)[0 if source == 'initial' else -1]
        kwargs = {'ensemble': iterations[name].ensemble}
    builder = LifetimesWorkChain.get_builder_from_protocol(
        codes, al.inputs.harmonic, protocol='fast', overrides=overrides, **kwargs
    )
    nodes[source] = submit(builder)
    print(f'{source}: submitted LifetimesWorkChain<{nodes[source].pk}>')

while not all(node.is_terminated for node in nodes.values()):
    time.sleep(10)
print('source      median tau (ps)  below Ioffe-Regel  median per band (ps)')
for source, node in nodes.items():
    if not node.is_finished_ok:
        print(f'{source:10}  no lifetimes: exit {node.exit_status}: {node.exit_message}')
        continue
    summary = node.outputs.summary.get_dict()
    bands = ', '.join(f'{band} THz {row["median_tau"]:.2f}' for band, row in summary['bands'].items())
    print(f'{source:10}  {summary["median_tau"]:15.3f}  {100 * summary["ioffe_regel_fraction"]:16.0f} %  {bands}')
