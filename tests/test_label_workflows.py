"""Label workchains through the daemon: batches, SCF recovery, interruption, exclusion, archives."""

import numpy as np
from aiida import orm

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows.label import LabelBaseWorkChain, LabelWorkChain

from .conftest import cu_structures, cui_cell


def submit_budget_limited(submit_and_await, label_code, options, **extra):
    """Three EMT structures with a time budget so small that each job labels one, then stops."""
    return submit_and_await(
        LabelWorkChain,
        timeout=300,
        structures=TrainingSet.from_ase(cu_structures(3)),
        engine=orm.Str('emt'),
        settings=orm.Dict({'max_seconds': 1e-6}),
        code=label_code,
        options=options,
        **extra,
    )


def test_emt_batch_labelling_through_daemon(submit_and_await, label_code, options):
    structures = TrainingSet.from_ase(cu_structures(12), origins=[{'kind': 'initial', 'frame': k} for k in range(12)])
    builder = LabelWorkChain.get_builder_from_protocol(
        label_code, structures, engine='emt', protocol='fast', overrides={'batch_size': 5}
    )
    node = submit_and_await(builder, timeout=300)
    assert node.is_finished_ok, node.exit_message
    labelled = node.outputs.labelled
    assert len(labelled) == 12 and node.outputs.excluded.get_dict() == {}
    assert [o['source_index'] for o in labelled.origins] == list(range(12))
    assert [o['frame'] for o in labelled.origins] == list(range(12))  # input origin kept
    assert len([c for c in node.called if c.process_class is LabelBaseWorkChain]) == 3
    from ase.calculators.emt import EMT

    direct = cu_structures(12)[7]
    direct.calc = EMT()
    assert abs(labelled.get_array('energy')[7] - direct.get_potential_energy()) < 1e-12


def test_scf_failure_recovered_by_handler(submit_and_await, label_code, options):
    parameters = {
        'mode': 'lcao',
        'basis': 'sz(dzp)',
        'xc': 'PBE',
        'kpts': {'size': [1, 1, 1]},
        'maxiter': 3,
        'occupations': {'name': 'fermi-dirac', 'width': 0.1},
    }
    node = submit_and_await(
        LabelBaseWorkChain,
        timeout=300,
        label={
            'structures': TrainingSet.from_ase([cui_cell()]),
            'engine': orm.Str('gpaw'),
            'parameters': orm.Dict(parameters),
            'code': label_code,
            'metadata': {'options': options},
        },
    )
    assert node.is_finished_ok, node.exit_message
    calcs = sorted(node.called, key=lambda n: n.ctime)
    calcs = [c for c in calcs if c.process_type.endswith('anharmal.label')]
    assert [c.exit_status for c in calcs] == [310, 0]
    assert calcs[1].inputs.parameters['maxiter'] == 100
    assert len(node.outputs.labelled) == 1


def test_interrupted_job_resubmits_the_rest(submit_and_await, label_code, options):
    node = submit_budget_limited(submit_and_await, label_code, options)
    assert node.is_finished_ok, node.exit_message
    assert len(node.outputs.labelled) == 3
    base = node.called[0] if node.called[0].process_class is LabelBaseWorkChain else node.called[-1]
    assert len([c for c in base.called if c.process_type.endswith('anharmal.label')]) == 3


def test_structure_that_cannot_be_finished_is_excluded_others_kept(submit_and_await, label_code, options):
    node = submit_budget_limited(submit_and_await, label_code, options, max_restarts=orm.Int(2))
    assert node.is_finished_ok, node.exit_message
    labelled, excluded = node.outputs.labelled, node.outputs.excluded.get_dict()
    assert [o['source_index'] for o in labelled.origins] == [0, 1]
    assert list(excluded) == ['2'] and excluded['2']['reason'] == 'not_attempted'
    assert excluded['2']['attempts'] == 2


def test_bad_workchain_input_refused(label_code):
    import pytest
    from aiida.engine import submit

    with pytest.raises(ValueError, match='options.resources'):
        submit(
            LabelWorkChain,
            structures=TrainingSet.from_ase(cu_structures(1)),
            engine=orm.Str('emt'),
            code=label_code,
            options={},
        )
    with pytest.raises(ValueError, match='batch_size'):
        submit(
            LabelWorkChain,
            structures=TrainingSet.from_ase(cu_structures(1)),
            engine=orm.Str('emt'),
            code=label_code,
            batch_size=orm.Int(0),
        )


def test_archive_roundtrip_keeps_arrays(submit_and_await, label_code, tmp_path, aiida_config, aiida_profile_factory):
    from aiida.tools.archive import create_archive, import_archive

    structures = TrainingSet.from_ase(cu_structures(4))
    node = submit_and_await(LabelWorkChain, timeout=300, structures=structures, engine=orm.Str('emt'), code=label_code)
    assert node.is_finished_ok
    labelled = node.outputs.labelled
    arrays = {name: labelled.get_array(name) for name in ('positions', 'energy', 'forces', 'stress', 'numbers')}
    origins, uuid, workchain_uuid = labelled.origins, labelled.uuid, node.uuid
    archive = tmp_path / 'label.aiida'
    create_archive([node], filename=archive)

    with aiida_profile_factory(aiida_config, name='fresh_import'):
        import_archive(archive)
        imported = orm.load_node(uuid)
        assert isinstance(imported, TrainingSet)
        for name, value in arrays.items():
            assert np.array_equal(imported.get_array(name), value, equal_nan=True)
        assert imported.origins == origins
        assert orm.load_node(workchain_uuid).outputs.labelled.uuid == uuid  # provenance came along


def test_engine_that_cannot_start_is_not_retried(submit_and_await, label_code, options):
    node = submit_and_await(
        LabelWorkChain,
        timeout=300,
        structures=TrainingSet.from_ase([cui_cell(), cui_cell(0.1)]),
        engine=orm.Str('gpaw'),
        # a mode GPAW cannot build (the keyword check of the validator knows the keywords, not their insides)
        parameters=orm.Dict({'mode': {'name': 'lcao', 'not_a_mode_keyword': 1}}),
        code=label_code,
        options=options,
    )
    assert node.exit_status == LabelWorkChain.exit_codes.ERROR_LABELLING_FAILED.status == 410
    excluded = node.outputs.excluded.get_dict()
    assert set(excluded) == {'0', '1'}
    assert excluded['0']['reason'] == 'setup_failed' and 'not_a_mode_keyword' in excluded['0']['message']
    assert excluded['0']['attempts'] == 1  # a setup failure is not worth a second job
