"""Label batches and an MD run as SLURM jobs on the production stack (PostgreSQL, RabbitMQ, SLURM; ~30 s).

Start the services and make the profile first (``docs/source/production.rst``)::

    bash scripts/services.sh start
    anharmal setup --production -p production

then

    python examples/production_slurm.py [-p production]

It labels 12 rattled Cu cells with EMT in three batches, each a SLURM job on the computer ``slurm``,
and runs an MD job of 108 Cu atoms driven by EMT there with a walltime of one minute; it prints
each job's SLURM job id and exit status, and how many SLURM jobs ran at once.
"""

import argparse
import subprocess
import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import LabelWorkChain, MDBaseWorkChain

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument('-p', '--profile', default='production')
args = parser.parse_args()
load_profile(args.profile)
resources = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}

structures = []
for k in range(12):
    atoms = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat((2, 2, 1))
    atoms.rattle(0.05, seed=k)
    structures.append(atoms)
label = LabelWorkChain.get_builder_from_protocol(
    orm.load_code('anharmal-label@slurm'),
    TrainingSet.from_ase(structures),
    engine='emt',
    protocol='fast',
    overrides={'batch_size': 4},
    options={'resources': resources, 'max_wallclock_seconds': 600},
)
md = MDBaseWorkChain.get_builder()
md.md.code = orm.load_code('anharmal-md@slurm')
md.md.reference.engine = orm.Str('emt')
md.md.structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(3))
md.md.parameters = orm.Dict({'steps': 1000, 'save_stride': 20, 'temperature': 300.0, 'seed': 1})
md.md.metadata.options = {'resources': resources, 'max_wallclock_seconds': 60}

nodes = [submit(label), submit(md)]
most = 0
while not all(node.is_terminated for node in nodes):
    running = subprocess.run(['squeue', '-h', '-t', 'R', '-o', '%i'], capture_output=True, text=True, check=True)
    most = max(most, len(running.stdout.split()))
    time.sleep(0.5)

for node in nodes:
    print(f'{node.process_label}<{node.pk}>: exit {node.exit_status}')
    for job in sorted(node.called_descendants, key=lambda n: n.ctime):
        if job.process_type.startswith('aiida.calculations'):
            print(f'  {job.process_label}<{job.pk}> SLURM job {job.get_job_id()}: exit {job.exit_status}')
print(f'labelled {len(nodes[0].outputs.labelled)} structures; at most {most} SLURM jobs ran at once')
