"""Perturbative CuI lifetimes of a finished main job: third-order force constants of the reference model,
of the initial and of the final ensemble, on the loop's harmonic reference.

Run the main job first (`bash scripts/main.sh`, or with `--iterations 5`), then

    python examples/perturbative_cui_after_al.py AL_PK [--sources reference initial final] [--mesh 11]

For each source it submits a ``PerturbativeWorkChain``: phono3py's displaced supercells of the
64-atom supercell (222, every pair of displaced atoms), labelled by the reference model (the
ground truth) or by engine ``ensemble`` (the ensemble's own fc3), fc2 of the harmonic reference,
RTA linewidths at 300 K on an ``--mesh`` mesh. A second ``PerturbativeCalculation`` on the same
labels and a 4x4x4 mesh holds the q-points of the MD route (those commensurate with the supercell).
It prints per source the median lifetime, the fraction below the Ioffe-Regel limit, kappa and the
medians per 1-THz band. The reference model labels the 222 supercells in ~4 min on two cores.
"""

import argparse
import time

from aiida import load_profile, orm
from aiida.engine import submit

from aiida_anharmal.calculations import PerturbativeCalculation
from aiida_anharmal.workflows import PerturbativeWorkChain

parser = argparse.ArgumentParser()
parser.add_argument('al_pk', type=int)
parser.add_argument('--sources', nargs='+', default=['reference', 'initial', 'final'])
parser.add_argument('--mesh', type=int, default=11)
args = parser.parse_args()
load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)

al = orm.load_node(args.al_pk)
iterations = al.outputs.iterations
codes = {
    'label': orm.load_code('anharmal-label@localhost'),
    'perturbative': orm.load_code('anharmal-perturbative@localhost'),
}
overrides = {'analysis': {'mesh': [args.mesh] * 3}, 'label': {'batch_size': 37}}


def wait(nodes):
    while not all(node.is_terminated for node in nodes.values()):
        time.sleep(10)


nodes = {}
for source in args.sources:
    if source == 'reference':
        label = al.inputs.label
        kwargs = {'engine': label.engine.value, 'model': label.get('model')}
    else:
        name = sorted(iterations)[0 if source == 'initial' else -1]
        kwargs = {'engine': 'ensemble', 'ensemble': iterations[name].ensemble}
    builder = PerturbativeWorkChain.get_builder_from_protocol(
        codes, al.inputs.harmonic, protocol='fast', overrides=overrides, **kwargs
    )
    nodes[source] = submit(builder)
    print(f'{source}: submitted PerturbativeWorkChain<{nodes[source].pk}>')
wait(nodes)

commensurate = {}
for source, node in nodes.items():
    if node.is_finished_ok:
        commensurate[source] = submit(
            PerturbativeCalculation,
            code=codes['perturbative'],
            harmonic=al.inputs.harmonic,
            fc3_displacements=node.outputs.fc3_displacements,
            labelled=node.outputs.supercells,
            parameters=orm.Dict({'mesh': [4, 4, 4], 'temperatures': [300.0]}),
            metadata={'options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}},
        )
wait(commensurate)

print('source      mesh      median tau (ps)  below Ioffe-Regel  kappa_xx (W/mK)  median per band (ps)')
for source, node in nodes.items():
    if not node.is_finished_ok:
        print(f'{source:10}  no lifetimes: exit {node.exit_status}: {node.exit_message}')
        continue
    for summary in (node.outputs.summary.get_dict(), commensurate[source].outputs.summary.get_dict()):
        bands = ', '.join(f'{band} THz {row["median_tau"]:.2f}' for band, row in summary['bands'].items())
        kappa = summary['kappa']['300']['xx']
        mesh = 'x'.join(map(str, summary['mesh']))
        print(
            f'{source:10}  {mesh:8}  {summary["median_tau"]:15.3f}  {100 * summary["ioffe_regel_fraction"]:16.0f} %'
            f'  {kappa:15.3f}  {bands}'
        )
