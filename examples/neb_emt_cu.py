"""NEB: a vacancy hop in fcc Cu with EMT, through the core and through ``NEBCalculation`` (seconds on a laptop).

Run `anharmal setup` first, then

    python examples/neb_emt_cu.py

It relaxes the two end points of a vacancy hop in a 2x2x2 Cu supercell (31 atoms) with EMT, runs
the climbing-image NEB (improved tangent, 3 images) once in this Python process with
``aiida_anharmal.core.md.neb`` and once as an ``NEBCalculation`` driven by EMT as the `reference`
engine, and prints both barriers (they agree to 1 meV) and the per-image energies. Give an
ensemble instead of the reference engine (``ensemble=...``) and the same calculation reports
UCE_U and UCE_F^max for every image.
"""

import numpy as np
from aiida import load_profile, orm
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.optimize import BFGS

from aiida_anharmal.calculations import NEBCalculation
from aiida_anharmal.core.md.neb import NEBSettings, interpolate, path_profile, run_neb
from aiida_anharmal.core.models.uncertainty import CalculatorAsEnsemble
from aiida_anharmal.core.structures.defects import vacancy_hop

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)


def relaxed(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.01)
    atoms.calc = None
    return atoms


# the vacancy at atom 0, and its nearest neighbour hopped into it
initial, final = vacancy_hop(bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2))
initial, final = relaxed(initial), relaxed(final)

settings = NEBSettings(n_images=3, fmax=0.05, steps=200)
band = run_neb(interpolate(initial, final, settings), settings, calculator=EMT())
core = path_profile(band.images, CalculatorAsEnsemble(EMT()))
print(f'core: {band.steps} steps, converged {band.converged}, barrier {core.barrier:.3f} eV')

_, node = run_get_node(
    NEBCalculation,
    code=orm.load_code('anharmal-neb@localhost'),
    reference={'engine': orm.Str('emt')},
    initial=orm.StructureData(ase=initial),
    final=orm.StructureData(ase=final),
    parameters=orm.Dict(settings.as_dict()),
    metadata={'options': {'resources': {'num_machines': 1}, 'max_wallclock_seconds': 600}},
)
summary = node.outputs.summary
print(
    f'NEBCalculation<{node.pk}>: exit {node.exit_status}, barrier {summary["barrier"]:.3f} eV, '
    f'reaction energy {summary["reaction_energy"]:.3f} eV, highest image {summary["highest_image"]}'
)
print('image energies (eV):', np.round(node.outputs.images_data.get_array('energies'), 3).tolist())
