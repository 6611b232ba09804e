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
