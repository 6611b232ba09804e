"""Test fixtures: a real temporary AiiDA profile (SQLite + ZeroMQ broker, so the daemon works)."""

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

pytest_plugins = ['aiida.tools.pytest_fixtures']

REFERENCE_MODEL = (
    Path(__file__).parents[1] / 'aiida_anharmal' / 'resources' / 'cui_reference' / 'deployed-model_0_0.pth'
)


@pytest.fixture(scope='session', autouse=True)
def aiida_profile(aiida_config, aiida_profile_factory):
    """Override the plugin's profile: same SQLite storage, plus the built-in ZeroMQ broker."""
    with aiida_profile_factory(aiida_config, broker_backend='core.zeromq') as profile:
        yield profile


def installed_code(computer, program):
    """The console script ``program`` of this package as an InstalledCode on ``computer``."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_anharmal.cli.setup import PREPEND_TEXT, PROGRAMS, program_path

    try:
        return orm.load_code(f'{program}@{computer.label}')
    except NotExistent:
        return orm.InstalledCode(
            label=program,
            computer=computer,
            filepath_executable=str(program_path(program)),
            default_calc_job_plugin=PROGRAMS[program],
            prepend_text=PREPEND_TEXT,
        ).store()


@pytest.fixture
def label_code(aiida_localhost):
    """The `anharmal-label` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-label')


@pytest.fixture
def train_code(aiida_localhost):
    """The `anharmal-train` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-train')


@pytest.fixture
def evaluate_code(aiida_localhost):
    """The `anharmal-evaluate` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-evaluate')


@pytest.fixture
def md_code(aiida_localhost):
    """The `anharmal-md` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-md')


@pytest.fixture
def neb_code(aiida_localhost):
    """The `anharmal-neb` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-neb')


@pytest.fixture
def perturbative_code(aiida_localhost):
    """The `anharmal-perturbative` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-perturbative')


@pytest.fixture
def lifetimes_code(aiida_localhost):
    """The `anharmal-lifetimes` program of this package as an InstalledCode on localhost."""
    return installed_code(aiida_localhost, 'anharmal-lifetimes')


def emt_cu_frames(n, seed=0, repeat=(2, 2, 1)):
    """``n`` rattled fcc Cu supercells (16 atoms by default) with EMT energy, forces and stress."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(repeat)
        atoms.rattle(0.05 + 0.05 * (k % 2), seed=seed + k)
        atoms.calc = EMT()
        results = {'energy': atoms.get_potential_energy(), 'forces': atoms.get_forces(), 'stress': atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def placeholder_model_bytes() -> bytes:
    """A zip archive (what every model format is) that is never loaded as a model."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        archive.writestr('placeholder', 'never loaded')
    return buffer.getvalue()


def placeholder_ensemble(species=('Cu',)):
    """Members whose files are never loaded: input validation reads attributes only."""
    import io

    from aiida_anharmal.data import Ensemble, MLIPModel

    members = {
        f'sub0_seed{s}': MLIPModel(
            io.BytesIO(placeholder_model_bytes()),
            filename='m.nequip.zip',
            architecture='NequIP',
            model_format='nequip-package',
            species=list(species),
            r_max=4.0,
            seed=s,
        ).store()
        for s in (0, 1)
    }
    return Ensemble(members=members).store()


def cu_structures(n, seed=0):
    """``n`` rattled fcc Cu cells of 4 atoms."""
    structures = []
    for k in range(n):
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True)
        atoms.rattle(0.05, seed=seed + k)
        structures.append(atoms)
    return structures


def cui_cell(displacement=0.0):
    atoms = bulk('CuI', 'zincblende', a=6.05)
    atoms.positions[0] += np.array([1.0, -0.5, 0.3]) * displacement
    return atoms


@pytest.fixture
def options():
    return {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


@pytest.fixture
def reference_model():
    from aiida_anharmal.data import MLIPModel

    return MLIPModel.from_legacy_nequip(REFERENCE_MODEL, source='test').store()
