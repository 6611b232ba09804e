"""``NEBWorkChain`` through the daemon: a tiny EMT-trained ensemble's path, EMT on the same images, EMT's own path."""

import numpy as np
import pytest
from aiida import orm

from aiida_anharmal.workflows.neb import NEBWorkChain

from .conftest import placeholder_ensemble
from .test_md_calculation import ensemble_and_reference
from .test_neb_calculation import vacancy_hop


def vacancy_hop_221():
    """End points of a vacancy hop in the 16-atom Cu cell the test ensemble was trained on (15 atoms)."""
    return vacancy_hop((2, 2, 1))


@pytest.mark.slow
def test_the_ensemble_path_next_to_the_engine(submit_and_await, train_code, neb_code, label_code, options):
    ensemble, _, _ = ensemble_and_reference(train_code)
    initial, final = vacancy_hop_221()
    builder = NEBWorkChain.get_builder_from_protocol(
        {'neb': neb_code, 'label': label_code},
        ensemble,
        initial,
        final,
        engine='emt',
        protocol='fast',
        overrides={'reference_neb': True, 'parameters': {'steps': 40}},
        options=options,
    )
    assert builder.parameters['n_images'] == 3 and builder.parameters['relax_end_points'] is True
    node = submit_and_await(builder, timeout=600)
    assert node.is_finished_ok, node.exit_message
    comparison = node.outputs.comparison
    rows = comparison['rows']
    assert [r['image'] for r in rows] == [0, 1, 2, 3, 4] and len(node.outputs.labelled) == 5
    # the engine's energies on the MLIP's images are the labels of those images, relative to the first
    energies = node.outputs.labelled.frames.energy
    np.testing.assert_allclose([r['engine_energy'] for r in rows], energies - energies[0], atol=1e-8)
    assert all(r['uce_force_max'] > 0 for r in rows) and all(r['force_mae'] > 0 for r in rows)
    assert comparison['mlip']['barrier'] == pytest.approx(node.outputs.summary['barrier'])
    # EMT's own path: the symmetric hop, converged, its saddle in the middle
    engine = node.outputs.reference.summary
    assert engine['converged'] and engine['highest_image'] == 2 and 0.3 < engine['barrier'] < 1.5
    assert comparison['engine_path']['barrier'] == pytest.approx(engine['barrier'])
    np.testing.assert_allclose(
        comparison['engine_path_energies'], node.outputs.reference.images_data.get_array('energies'), atol=1e-12
    )
    origins = node.outputs.labelled.origins
    assert [o['image'] for o in origins] == [0, 1, 2, 3, 4] and origins[0]['path_uuid'] == node.outputs.path.uuid


def test_bad_input_is_refused_before_any_job(neb_code, label_code):
    from aiida.engine import run_get_node

    ensemble = placeholder_ensemble()
    initial, final = vacancy_hop_221()
    codes = {'neb': neb_code, 'label': label_code}
    with pytest.raises(ValueError, match='unknown override key'):
        NEBWorkChain.get_builder_from_protocol(codes, ensemble, initial, final, engine='emt', overrides={'x': 1})
    builder = NEBWorkChain.get_builder_from_protocol(codes, ensemble, initial, final[:-1], engine='emt')
    with pytest.raises(ValueError, match='15 and 14 atoms'):
        run_get_node(builder)
    builder = NEBWorkChain.get_builder_from_protocol(
        codes, ensemble, initial, final, engine='emt', overrides={'parameters': {'n_images': 'five'}}
    )
    with pytest.raises(ValueError, match='n_images must be an integer'):
        run_get_node(builder)
    builder.parameters = orm.Dict({'n_images': 3})
    silver = initial.copy()
    silver.symbols[:] = 'Ag'
    builder.initial, builder.final = orm.StructureData(ase=silver), orm.StructureData(ase=silver)
    with pytest.raises(ValueError, match=r"elements \['Ag'\]"):
        run_get_node(builder)


@pytest.mark.slow
def test_the_loop_runs_the_neb_with_every_ensemble(
    submit_and_await, train_code, evaluate_code, md_code, label_code, neb_code, tmp_path
):
    """The rare-event tools of the loop on EMT Cu: the engine's own NEB started with the loop, one NEB per ensemble,
    ``neb.acquire`` (images drawn into the training set with their reason), the test set from a ground-truth MD,
    a temperature ladder with the ``uncertainty`` trigger resolved against the test set, the ladder's stopping rule,
    the table of ``anharmal al neb`` and Fig. 7 of ``anharmal al plot``."""
    from click.testing import CliRunner

    from aiida_anharmal.cli import cli
    from aiida_anharmal.workflows import ActiveLearningWorkChain

    from .conftest import emt_cu_frames

    start = emt_cu_frames(1)[0]
    start.calc = None
    initial, final = vacancy_hop_221()
    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code, 'neb': neb_code}
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        start,
        engine='emt',
        protocol='fast',
        overrides={
            'max_iterations': 2,
            'initial': {'parameters': {'random': {'n_train': 10, 'n_test': 4, 'amplitude': 0.08}}},
            'acquisition': {'n_max': 3, 's': 0.01, 'g': 20.0},
            'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 4}},
            'explore': {
                'temperatures': [600.0, 900.0],
                'parameters': {'steps': 40, 'save_stride': 4},
                'trigger': {'kind': 'uncertainty', 's': 0.5, 'patience': 1},
            },
            'test_md': {'steps': 40, 'save_stride': 4, 'equilibration': 40.0, 'stride': 1},
            'convergence': {'rule': 'quiet_ladder'},
            'neb': {'initial': initial, 'final': final, 'parameters': {'steps': 15}, 'acquire': True},
        },
        options={'max_wallclock_seconds': 600},
    )
    assert builder.neb.parameters['n_images'] == 3 and 'ensemble' not in builder.neb and builder.neb.acquire.value
    assert builder.initial.parameters['n_test'] == 0  # the test set comes from the MD
    node = submit_and_await(builder, timeout=900)
    assert node.is_finished_ok, node.exit_message
    iterations = node.outputs.iterations
    # the test set: every saved frame of the 600 K ground-truth run after 40 fs (steps 8, 12, ..., 40 of 5 fs)
    test_set = node.outputs.test_set
    assert [o['kind'] for o in test_set.origins] == ['test_md'] * 9
    assert node.outputs.test_md.get_stepids().tolist() == list(range(0, 41, 4))
    # the trigger of each exploration: mu + 0.5 sigma of that iteration's test set, from a calcfunction
    for k in (1, 2):
        stats = iterations[f'iter_{k:02d}']['statistics']['uce_force_max']
        explore = node.base.links.get_outgoing(link_label_filter=f'explore_{k:02d}').one().node
        assert explore.inputs.trigger['threshold'] == pytest.approx(stats['mean'] + 0.5 * stats['std'])
        assert explore.inputs.trigger.creator.process_label == 'resolve_trigger'
        selection = iterations[f'iter_{k:02d}']['selection']
        assert {run['temperature'] for run in selection['runs']} == {600.0, 900.0}
        # P(U) of each run against the test set's energy statistics at the run's own temperature
        energy = {row['temperature']: row for row in selection['energy_statistics'].values()}
        test_energy = iterations[f'iter_{k:02d}']['statistics']['energy']  # the test set: 600 K, the first rung
        assert energy[600.0]['mu'] == pytest.approx(test_energy['mean'])
        assert energy[900.0]['sigma'] == pytest.approx(1.5 * test_energy['std'])
        assert energy[900.0]['mu'] > energy[600.0]['mu']
    tables = {name: iterations[name]['neb'] for name in ('iter_01', 'iter_02')}
    # one NEB per ensemble; the engine's own path once, started with the loop
    assert all('engine_path' not in table for table in tables.values())
    assert node.outputs.neb_reference.summary['barrier'] > 0
    calls = {link.link_label: link.node for link in node.base.links.get_outgoing().all()}
    nebs = {label: call for label, call in calls.items() if label in ('neb_01', 'neb_02')}
    assert nebs['neb_01'].inputs.ensemble.uuid == iterations['iter_01']['ensemble'].uuid
    assert nebs['neb_02'].inputs.ensemble.uuid == iterations['iter_02']['ensemble'].uuid
    assert not any(call.inputs.reference_neb.value for call in nebs.values())
    assert calls['neb_reference'].process_label == 'NEBCalculation' and 'reference' in calls['neb_reference'].inputs
    # neb.acquire: the drawn images are in the training set, as a priori knowledge, with the engine's labels
    drawn = [o for o in node.outputs.training_set.origins if o.get('reason') == 'neb_image']
    assert drawn and all(o['a_priori'] and o['kind'] == 'neb' and o['label_calc'] for o in drawn)
    chosen = {(k, i) for k in (1, 2) for i in iterations[f'iter_{k:02d}']['neb_selection']['added']}
    assert {(o['iteration'], o['image']) for o in drawn} == chosen
    result = CliRunner().invoke(cli, ['al', 'neb', str(node.pk)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith('iter  labels  defect energy') and [line.split()[0] for line in lines[1:3]] == ['1', '2']
    assert lines[3].startswith("engine's own path: defect energy")
    plots = CliRunner().invoke(cli, ['al', 'plot', str(node.pk), '-o', str(tmp_path)])
    assert plots.exit_code == 0 and (tmp_path / 'neb.png').exists(), plots.output


def test_a_loop_neb_with_foreign_elements_is_refused(train_code, evaluate_code, md_code, label_code, neb_code):
    from aiida.engine import run_get_node

    from aiida_anharmal.workflows import ActiveLearningWorkChain

    from .conftest import emt_cu_frames

    start = emt_cu_frames(1)[0]
    start.calc = None
    initial, final = vacancy_hop_221()
    initial.symbols[:] = 'Ag'
    final.symbols[:] = 'Ag'
    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code, 'neb': neb_code}
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, start, engine='emt', protocol='fast', overrides={'neb': {'initial': initial, 'final': final}}
    )
    with pytest.raises(ValueError, match=r"NEB validation: elements \['Ag'\]"):
        run_get_node(builder)
    with pytest.raises(ValueError, match='needs `initial`, `final`'):
        ActiveLearningWorkChain.get_builder_from_protocol(
            codes, start, engine='emt', protocol='fast', overrides={'neb': {'initial': initial}}
        )
