"""Harmonic reference + MD exploration with an ensemble (EMT Cu stands in for DFT).

Run `anharmal setup` and `python examples/ensemble_emt_cu.py` first (it trains a 2 x 2
ensemble of 16-atom Cu cells), then

    python examples/explore_emt_cu.py [ENSEMBLE_PK]

It builds EMT force constants of the same 16-atom cell with HarmonicWorkChain, then explores
at 300 K and 800 K with ExplorationWorkChain and prints per-frame U, UCE_F^max, A and UCE_A.
About a minute on 2 CPU cores.
"""

import sys
import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.data import Ensemble
from aiida_anharmal.workflows import ExplorationWorkChain, HarmonicWorkChain

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)


def wait(node):
    while not node.is_terminated:
        time.sleep(2)
    if not node.is_finished_ok:
        raise SystemExit(f'{node.process_label}<{node.pk}> failed: {node.exit_status} {node.exit_message}')
    return node


if len(sys.argv) > 1:
    ensemble = orm.load_node(int(sys.argv[1]))
else:
    ensemble = orm.QueryBuilder().append(Ensemble).order_by({Ensemble: {'ctime': 'desc'}}).first()[0]
print(f'ensemble <{ensemble.pk}>: {ensemble.get_description()}')

harmonic = wait(
    submit(
        HarmonicWorkChain.get_builder_from_protocol(
            orm.load_code('anharmal-label@localhost'),
            bulk('Cu', 'fcc', a=3.6, cubic=True),
            engine='emt',
            protocol='fast',
            overrides={'supercell_matrix': [2, 2, 1]},
        )
    )
)
force_constants = harmonic.outputs.force_constants
print('Gamma frequencies (THz):', [round(f, 3) for f in harmonic.outputs.gamma_frequencies.get_list()][:6], '...')

builder = ExplorationWorkChain.get_builder_from_protocol(
    orm.load_code('anharmal-md@localhost'),
    ensemble,
    force_constants.get_supercell(),
    protocol='fast',
    harmonic=force_constants,
    overrides={'temperatures': [300, 800], 'seeds': [0]},
)
exploration = wait(submit(builder))
for label, frames in exploration.outputs.frames.items():
    print(f'\n{label}: step  U (eV)  UCE_F^max (meV/A)  A  UCE_A  T (K)')
    arrays = {
        name: frames.get_array(name)
        for name in ('step', 'energy', 'uce_force_max', 'anharmonicity', 'uce_anharmonicity', 'temperature')
    }
    for k in range(0, len(arrays['step']), 4):
        print(
            f'  {arrays["step"][k]:5d} {arrays["energy"][k]:8.3f} {1000 * arrays["uce_force_max"][k]:8.1f} '
            f'{arrays["anharmonicity"][k]:6.3f} {arrays["uce_anharmonicity"][k]:6.3f} {arrays["temperature"][k]:6.0f}'
        )
