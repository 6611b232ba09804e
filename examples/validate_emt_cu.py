"""Validation MD: an ensemble's MD next to the labelling engine's own (EMT Cu stands in for DFT).

Run `anharmal setup` and `python examples/ensemble_emt_cu.py` first (it trains a 2 x 2
ensemble of 16-atom Cu cells), then

    python examples/validate_emt_cu.py [ENSEMBLE_PK]

It builds EMT force constants of the 16-atom cell, then runs ValidationMDWorkChain: 0.4 ps of
Langevin MD at 300 K from the same start with the same seed, driven by the ensemble and by EMT
itself, and prints the table (mean, std and max of A, sigma_A, the fraction of frames with
A > 1, the ensemble's force error on the EMT frames). About a minute on 2 CPU cores.
"""

import sys
import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.analysis.validation import validation_lines
from aiida_anharmal.data import Ensemble
from aiida_anharmal.workflows import HarmonicWorkChain, ValidationMDWorkChain

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

harmonic = HarmonicWorkChain.get_builder_from_protocol(
    orm.load_code('anharmal-label@localhost'),
    bulk('Cu', 'fcc', a=3.6, cubic=True),
    engine='emt',
    protocol='fast',
    overrides={'supercell_matrix': [2, 2, 1]},
)
force_constants = wait(submit(harmonic)).outputs.force_constants

codes = {'md': orm.load_code('anharmal-md@localhost'), 'evaluate': orm.load_code('anharmal-evaluate@localhost')}
builder = ValidationMDWorkChain.get_builder_from_protocol(
    codes,
    force_constants.get_supercell(),
    force_constants,
    {'example': ensemble},
    engine='emt',
    protocol='fast',
    overrides={'parameters': {'steps': 200, 'timestep': 2.0}, 'analysis': {'equilibration': 50.0}},
)
node = wait(submit(builder))
print('\n'.join(validation_lines(node.outputs.comparison)))
