"""Phonon lifetimes of EMT Cu through ``LifetimesWorkChain``: NVT, NVE, every mode's lifetime (a minute).

Run `anharmal setup` first, then

    python examples/lifetimes_workflow_emt_cu.py [--protocol fast]

It builds EMT Cu's harmonic force constants with phonopy (fcc primitive cell, 2 x 2 x 2: 8 atoms),
stores them as a ``ForceConstants`` node and submits ``LifetimesWorkChain`` with EMT driving the
MD (protocol ``fast``: 1 ps Langevin, then 10 ps NVE at 4 fs). It prints the summary: modes per
flag, the median lifetime and the fraction below the Ioffe-Regel limit. Pass ``ensemble=...`` to
the builder instead of ``engine`` and an ensemble's MD gives its lifetimes the same way.
"""

import argparse

from aiida import load_profile, orm
from aiida.engine import submit
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.core.phonons.harmonic import force_constants_with
from aiida_anharmal.data.force_constants import ForceConstants
from aiida_anharmal.workflows import LifetimesWorkChain


def emt_cu_force_constants() -> ForceConstants:
    return ForceConstants.from_phonopy(force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6), [2, 2, 2])).store()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--protocol', default='fast')
    parser.add_argument('--profile', default='anharmal')
    args = parser.parse_args()
    load_profile(args.profile)
    codes = {'md': orm.load_code('anharmal-md@localhost'), 'lifetimes': orm.load_code('anharmal-lifetimes@localhost')}
    builder = LifetimesWorkChain.get_builder_from_protocol(
        codes, emt_cu_force_constants(), engine='emt', protocol=args.protocol
    )
    node = submit(builder)
    print(f'submitted LifetimesWorkChain<{node.pk}>; waiting for it')
    import time

    while not node.is_terminated:
        time.sleep(2)
    if not node.is_finished_ok:
        raise SystemExit(f'failed: {node.exit_status} {node.exit_message}')
    summary = node.outputs.summary.get_dict()
    print(
        f'modes by flag {summary["flags"]}; median lifetime {summary["median_tau"]:.2f} ps over {summary["t_max"]:.0f} ps'
    )
    for band, row in summary['bands'].items():
        print(f'  {band} THz: {row["modes"]} modes, median tau {row["median_tau"]:.2f} ps')
    print(f'below the Ioffe-Regel limit (tau < 1/nu): {100 * summary["ioffe_regel_fraction"]:.0f} % of the modes')


if __name__ == '__main__':
    main()
