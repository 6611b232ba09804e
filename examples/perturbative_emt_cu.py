"""Perturbative phonon lifetimes of EMT Cu through ``PerturbativeWorkChain``: fc3 displacements, labels, RTA.

Run `anharmal setup` first, then

    python examples/perturbative_emt_cu.py [--protocol fast]

It builds EMT Cu's harmonic force constants with phonopy (the cubic cell 2 x 2 x 2: 32 atoms),
stores them as a ``ForceConstants`` node and submits ``PerturbativeWorkChain``: phono3py's 37
displaced supercells of every pair, labelled by EMT through ``LabelWorkChain``, fc2 of the
reference, the RTA at 300 K (protocol ``fast``: a 7x7x7 mesh). It prints kappa, the median lifetime,
the fraction below the Ioffe-Regel limit and the medians per 1-THz band. Pass ``engine='ensemble',
ensemble=...`` to the builder and an ensemble's own fc3 gives its lifetimes the same way.
"""

import argparse
import time

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.phonons.harmonic import force_constants_with
from aiida_anharmal.data.force_constants import ForceConstants
from aiida_anharmal.workflows import PerturbativeWorkChain


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocol', default='fast')
    parser.add_argument('--profile', default='anharmal')
    args = parser.parse_args()
    load_profile(args.profile)
    phonon = force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6, cubic=True), [2, 2, 2])
    harmonic = ForceConstants.from_phonopy(phonon).store()
    codes = {
        'label': orm.load_code('anharmal-label@localhost'),
        'perturbative': orm.load_code('anharmal-perturbative@localhost'),
    }
    builder = PerturbativeWorkChain.get_builder_from_protocol(codes, harmonic, engine='emt', protocol=args.protocol)
    node = submit(builder)
    print(f'submitted PerturbativeWorkChain<{node.pk}>; waiting for it')
    while not node.is_terminated:
        time.sleep(2)
    if not node.is_finished_ok:
        raise SystemExit(f'failed: {node.exit_status} {node.exit_message}')
    summary = node.outputs.summary.get_dict()
    kappa = summary['kappa'][f'{summary["temperature"]:g}']['xx']
    print(
        f'{summary["modes"]} modes on a {"x".join(map(str, summary["mesh"]))} mesh: kappa_xx {kappa:.2f} W/(m K), '
        f'median lifetime {summary["median_tau"]:.2f} ps, below the Ioffe-Regel limit '
        f'{100 * summary["ioffe_regel_fraction"]:.0f} %'
    )
    for band, row in summary['bands'].items():
        print(f'  {band} THz: {row["modes"]} modes, median tau {row["median_tau"]:.2f} ps')


if __name__ == '__main__':
    main()
