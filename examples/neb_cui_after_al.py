"""The CuI Frenkel-pair NEB of every ensemble of a finished main job, next to the reference model.

Run the main job first (`bash scripts/main.sh`), then

    python examples/neb_cui_after_al.py AL_PK [--protocol fast]

It builds the pristine 64-atom supercell and its Cu Frenkel pair (the Cu at the origin on the
tetrahedral site (1/2, 0, 0) a, `aiida_anharmal.core.structures.defects.cui_frenkel_pair`), and submits one
NEBWorkChain per iteration ensemble of the AL run (end points relaxed with each ensemble); the
first also runs the reference model's own NEB. It prints per iteration the barrier of the
ensemble's path, the reference model's energies on the same images and the largest UCE_F^max,
and the reference model's own path. With the `fast` NEB protocol (3 images, fmax 0.1 eV/A) the
reference NEB takes several minutes on 2 CPU cores (one model call per image and step).
"""

import argparse
import time

from aiida import load_profile, orm
from aiida.engine import submit

from aiida_anharmal.cli.demo_al import CUI_LATTICE_CONSTANT
from aiida_anharmal.core.structures.defects import cui_frenkel_pair
from aiida_anharmal.workflows import NEBWorkChain

parser = argparse.ArgumentParser()
parser.add_argument('al_pk', type=int)
parser.add_argument('--protocol', default='fast')
args = parser.parse_args()
load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)

al = orm.load_node(args.al_pk)
label = al.inputs.label
# the loop's own supercell (phonopy's atom order, that of the harmonic reference)
pristine, defect = cui_frenkel_pair(CUI_LATTICE_CONSTANT, pristine=al.inputs.structure.get_ase())
codes = {'neb': orm.load_code('anharmal-neb@localhost'), 'label': orm.load_code('anharmal-label@localhost')}
iterations = al.outputs.iterations
nodes = {}
for name in sorted(iterations):
    builder = NEBWorkChain.get_builder_from_protocol(
        codes,
        iterations[name]['ensemble'],
        pristine,
        defect,
        engine=label.engine.value,
        protocol=args.protocol,
        overrides={'reference_neb': not nodes},
        model=label.model if 'model' in label else None,
        harmonic=al.inputs.harmonic if 'harmonic' in al.inputs else None,
    )
    nodes[name] = submit(builder)
    print(f'{name}: NEBWorkChain<{nodes[name].pk}>')
start = time.monotonic()
while not all(node.is_terminated for node in nodes.values()):
    time.sleep(5)
print(f'finished in {time.monotonic() - start:.0f} s')
print('iteration  MLIP barrier  MLIP reaction  reference on the same images  max UCE_F^max (meV/A)')
for name, node in nodes.items():
    if not node.is_finished_ok:
        print(f'{name}: failed: exit {node.exit_status} {node.exit_message}')
        continue
    c = node.outputs.comparison
    on = c.get('engine_on_mlip_path', {})
    print(
        f'{name}  {c["mlip"]["barrier"]:12.3f}  {c["mlip"]["reaction_energy"]:13.3f}  '
        f'{on.get("barrier", float("nan")):13.3f} / {on.get("reaction_energy", float("nan")):.3f}  '
        f'{1000 * c["max_uce_force_max"]:21.0f}'
    )
    if 'engine_path' in c:
        own = c['engine_path']
        print(
            f"  reference model's own path: barrier {own['barrier']:.3f} eV, reaction energy "
            f'{own["reaction_energy"]:.3f} eV, converged {own["converged"]}'
        )
