"""``anharmal.neb`` as a CalcJob: the path equals the core's, outputs survive every end, bad bands are refused."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_anharmal.calculations.neb import NEBCalculation
from aiida_anharmal.core.md.neb import NEBSettings, interpolate, path_profile, run_neb
from aiida_anharmal.core.models.uncertainty import CalculatorAsEnsemble
from aiida_anharmal.core.structures import defects
from aiida_anharmal.core.structures.defects import relax

from .conftest import placeholder_ensemble

OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}
PARAMETERS = {'n_images': 3, 'fmax': 0.05, 'steps': 200}


def vacancy_hop(repeat=(2, 2, 2)):
    """Relaxed end points (EMT) of a vacancy hop in fcc Cu."""
    crystal = bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(repeat)
    return [relax(atoms, EMT(), fmax=0.01, steps=200).atoms for atoms in defects.vacancy_hop(crystal)]


def neb_inputs(neb_code, initial, final, driver=None, parameters=PARAMETERS, **extra):
    inputs = {
        'initial': orm.StructureData(ase=initial),
        'final': orm.StructureData(ase=final),
        'code': neb_code,
        'parameters': orm.Dict(parameters),
        'metadata': {'options': OPTIONS},
        **extra,
    }
    inputs.update(driver if driver is not None else {'reference': {'engine': orm.Str('emt')}})
    return inputs


@pytest.mark.slow
def test_the_path_through_the_calcjob_equals_the_core_path(neb_code):
    initial, final = vacancy_hop()
    _, node = run_get_node(NEBCalculation, **neb_inputs(neb_code, initial, final))
    assert node.is_finished_ok, node.exit_message
    settings = NEBSettings(**PARAMETERS)
    run = run_neb(interpolate(initial, final, settings), settings, calculator=EMT())
    profile = path_profile(run.images, CalculatorAsEnsemble(EMT()))
    path = node.outputs.path
    assert path.numsteps == 5
    np.testing.assert_allclose(path.get_positions(), np.stack([i.positions for i in run.images]), atol=1e-6)
    summary = node.outputs.summary
    assert summary['converged'] and summary['steps'] == run.steps
    assert abs(summary['barrier'] - profile.barrier) < 1e-3 and summary['highest_image'] == 2
    arrays = node.outputs.images_data
    np.testing.assert_allclose(arrays.get_array('energies'), profile.energies, atol=1e-6)
    assert arrays.get_array('uce_forces').shape == (5, 31) and len(arrays.get_array('fmax_history')) == run.steps + 1


@pytest.mark.slow
def test_an_unconverged_band_keeps_its_outputs_and_an_interrupted_one_continues(neb_code):
    initial, final = vacancy_hop()
    _, capped = run_get_node(
        NEBCalculation, **neb_inputs(neb_code, initial, final, parameters={**PARAMETERS, 'steps': 3})
    )
    assert capped.exit_status == 315 and 'after 3 steps' in capped.exit_message
    assert capped.outputs.summary['steps'] == 3 and not capped.outputs.summary['converged']
    assert 'images_data' in capped.outputs
    # a time budget spent after the first step: the band so far is the `path`, and a restart continues from it
    _, stopped = run_get_node(
        NEBCalculation, **neb_inputs(neb_code, initial, final, settings=orm.Dict({'max_seconds': 1e-6}))
    )
    assert stopped.exit_status == 330 and stopped.outputs.path.base.attributes.get('optimizer_step') == 1
    restart = {k: v for k, v in neb_inputs(neb_code, initial, final).items() if k not in ('initial', 'final')}
    _, resumed = run_get_node(NEBCalculation, images=stopped.outputs.path, **restart)
    assert resumed.is_finished_ok, resumed.exit_message
    assert resumed.outputs.summary['highest_image'] == 2 and resumed.outputs.summary['barrier'] > 0.3


def test_bad_bands_are_refused_before_any_job(neb_code):
    initial, final = vacancy_hop((2, 2, 1))
    swapped = final.copy()
    swapped.symbols[3] = 'Ag'
    stretched = final.copy()
    stretched.set_cell(final.cell * 1.02, scale_atoms=True)
    silver = initial.copy()
    silver.symbols[:] = 'Ag'
    two = orm.TrajectoryData()
    two.set_trajectory(symbols=initial.get_chemical_symbols(), positions=np.stack([initial.positions, final.positions]))
    cases = [
        ({'final': final[:-1]}, '15 and 14 atoms'),
        ({'final': swapped}, 'species in a different order'),
        ({'final': stretched}, 'different cells'),
        ({'parameters': orm.Dict({**PARAMETERS, 'n_images': 1, 'max_image_step': 1.0})}, r'moves 1\.\d\d A'),
        ({'parameters': orm.Dict({'images': 3})}, 'unknown NEB parameter'),
        ({'parameters': orm.Dict({'method': 'nonsense'})}, 'method must be one of'),
        ({'settings': orm.Dict({'walltime': 5})}, 'unknown `settings` key'),
    ]
    for extra, match in cases:
        ends = {'final': final, **extra}
        with pytest.raises(ValueError, match=match):
            run_get_node(NEBCalculation, **neb_inputs(neb_code, initial, **ends))
    with pytest.raises(ValueError, match='at least 3 images'):
        inputs = {k: v for k, v in neb_inputs(neb_code, initial, final).items() if k not in ('initial', 'final')}
        run_get_node(NEBCalculation, images=two, **inputs)
    ensemble = {'ensemble': placeholder_ensemble()}
    with pytest.raises(ValueError, match=r"elements \['Ag'\]"):
        run_get_node(NEBCalculation, **neb_inputs(neb_code, silver, silver, driver=ensemble))
    both = {'ensemble': placeholder_ensemble(), 'reference': {'engine': orm.Str('emt')}}
    with pytest.raises(ValueError, match='not both'):
        run_get_node(NEBCalculation, **neb_inputs(neb_code, initial, final, driver=both))
