"""``PerturbativeWorkChain`` through the daemon on EMT Cu: equal to phono3py's own run on the same forces."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_anharmal.calculations.perturbative import PerturbativeCalculation
from aiida_anharmal.data.force_constants import ForceConstants
from aiida_anharmal.workflows.perturbative import PerturbativeWorkChain

from .core.test_perturbative import cu_phonon  # noqa: F401 (a fixture)

MESH = [5, 5, 5]


@pytest.fixture
def harmonic(cu_phonon):  # noqa: F811
    return ForceConstants.from_phonopy(cu_phonon).store()


def builder_for(codes, harmonic, engine='emt', **kwargs):
    overrides = {'analysis': {'mesh': MESH, 'temperatures': [300.0, 500.0]}, **kwargs.pop('overrides', {})}
    return PerturbativeWorkChain.get_builder_from_protocol(
        codes, harmonic, engine=engine, protocol='fast', overrides=overrides, **kwargs
    )


def phono3py_on(phonon, labelled, cutoff=None):
    """phono3py's own API on the forces of ``labelled`` (every pair supercell, in the order of their origins)
    and the fc2 of ``phonon``, which must be the workchain's bit for bit (the tetrahedron method is not stable
    against a change of 1e-14 eV/A^2 in fc2: see ``perturbative_lifetimes``)."""
    from phono3py import Phono3py

    ph3 = Phono3py(phonon.unitcell, supercell_matrix=phonon.supercell_matrix, primitive_matrix='F', log_level=0)
    ph3.generate_displacements(distance=0.03, cutoff_pair_distance=cutoff)
    order = np.argsort([origin['displacement'] for origin in labelled.origins])
    forces = labelled.get_array('forces').reshape(len(labelled), -1, 3)[order]
    kept = iter(forces)
    ph3.forces = np.array(
        [np.zeros_like(forces[0]) if c is None else next(kept) for c in ph3.supercells_with_displacements]
    )
    ph3.produce_fc3()
    ph3.fc2 = phonon.force_constants
    ph3.mesh_numbers = MESH
    ph3.init_phph_interaction()
    ph3.run_thermal_conductivity(temperatures=[300.0, 500.0], write_kappa=False)
    return ph3.thermal_conductivity


@pytest.mark.slow
def test_emt_cu_perturbative_lifetimes_equal_phono3pys_own(
    submit_and_await,
    label_code,
    perturbative_code,
    harmonic,
    cu_phonon,  # noqa: F811
):
    codes = {'label': label_code, 'perturbative': perturbative_code}
    node = submit_and_await(builder_for(codes, harmonic), timeout=900)
    assert node.is_finished_ok, node.exit_message
    labelled = node.outputs.supercells
    assert len(labelled) == 37 and labelled.ground_truth == 'toy'
    theirs = phono3py_on(harmonic.get_phonopy(), labelled)
    rta = node.outputs.rta
    np.testing.assert_allclose(rta.get_array('gamma'), theirs.gamma[0], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(rta.get_array('kappa'), theirs.kappa[0], rtol=1e-9, atol=1e-12)
    summary = node.outputs.summary.get_dict()
    assert summary['kappa']['300']['xx'] == pytest.approx(theirs.kappa[0][0][0], rel=1e-9)
    assert summary['modes'] == 3 * np.prod(MESH) and summary['flags']['no_mode'] == 3
    assert summary['ioffe_regel_fraction'] == 0.0  # EMT Cu at 300 K: well-defined phonons
    modes = node.outputs.modes
    ok = modes.get_array('flag') == 'ok'
    np.testing.assert_allclose(modes.get_array('tau')[ok], 1 / (4 * np.pi * modes.get_array('gamma')[ok]))


@pytest.mark.slow
def test_the_ensemble_engine_gives_the_ensembles_own_fc3(
    submit_and_await,
    label_code,
    perturbative_code,
    train_code,
    harmonic,
):
    from .test_md_calculation import ensemble_and_reference

    ensemble, _, _ = ensemble_and_reference(train_code)
    codes = {'label': label_code, 'perturbative': perturbative_code}
    builder = builder_for(
        codes, harmonic, 'ensemble', ensemble=ensemble, overrides={'displacements': {'cutoff_pair_distance': 3.0}}
    )
    node = submit_and_await(builder, timeout=900)
    assert node.is_finished_ok, node.exit_message
    labelled = node.outputs.supercells
    assert len(labelled) == 15 and labelled.ground_truth == 'surrogate'
    assert ensemble.uuid in labelled.base.attributes.get('label_description')
    assert node.outputs.summary['median_tau'] > 0


def test_bad_input_is_refused_before_any_job(label_code, perturbative_code, harmonic):
    codes = {'label': label_code, 'perturbative': perturbative_code}
    cases = [
        ({'displacements': {'cutoff': 3.0}}, 'unknown fc3 displacement key'),
        ({'displacements': {'cutoff_pair_distance': 3.0, 'n_random': 4}}, 'not both'),
        ({'displacements': {'n_random': 4}}, 'symfc'),
        ({'displacements': {'distance': -0.01}}, '`distance` must be a positive'),
        ({'displacements': {'supercell_matrix': [2, 0, 2]}}, 'singular'),
        ({'analysis': {'meshes': [5, 5, 5]}}, 'unknown `analysis` key'),
    ]
    for overrides, match in cases:
        with pytest.raises(ValueError, match=match):
            run_get_node(builder_for(codes, harmonic, overrides=overrides))
    with pytest.raises(ValueError, match='needs an `ensemble` input'):
        run_get_node(builder_for(codes, harmonic, 'ensemble'))


def test_the_calculation_refuses_missing_labels_foreign_displacements_and_bad_parameters(
    perturbative_code,
    harmonic,
    cu_phonon,  # noqa: F811
):
    from ase.calculators.emt import EMT

    from aiida_anharmal.core.phonons.harmonic import force_constants_with
    from aiida_anharmal.data import TrainingSet
    from aiida_anharmal.functions.perturbative import fc3_displacements

    made = fc3_displacements(harmonic, orm.Dict({'cutoff_pair_distance': 3.0}))
    supercells = made['supercells']
    atoms = [supercells.frames.get_atoms(k, with_labels=False) for k in range(len(supercells))]
    for a in atoms:
        a.calc = EMT()
        a.get_forces()
    labelled = TrainingSet.from_ase(atoms, origins=supercells.origins).store()
    partial = TrainingSet.from_ase(atoms[:-1], origins=supercells.origins[:-1]).store()
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}

    def run(**kwargs):
        inputs = {
            'code': perturbative_code,
            'harmonic': harmonic,
            'fc3_displacements': made['fc3_displacements'],
            'labelled': labelled,
            'metadata': {'options': options},
            **kwargs,
        }
        return run_get_node(PerturbativeCalculation, **inputs)

    with pytest.raises(ValueError, match='have no labels'):
        run(labelled=partial)
    other = ForceConstants.from_phonopy(force_constants_with(EMT(), _cubic_cu(), [1, 1, 2]))
    with pytest.raises(ValueError, match='harmonic supercell'):
        run(harmonic=other.store())
    for parameters, match in [
        ({'mesh': [5, 5]}, 'three positive'),
        ({'temperatures': [0]}, 'positive numbers'),
        ({'fc2': 'phonopy'}, 'fc2'),
        ({'fc_calculator': 'alm'}, 'fc_calculator'),
    ]:
        with pytest.raises(ValueError, match=match):
            run(parameters=orm.Dict(parameters))


def _cubic_cu():
    from ase.build import bulk

    return bulk('Cu', 'fcc', a=3.6, cubic=True)
