"""The NEB core on EMT: a vacancy hop in Cu, against a plain ASE climbing-image NEB on the same images."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.mep import NEB, NEBTools
from ase.optimize import BFGS, FIRE

from aiida_anharmal.core.md.neb import (
    GuardTripped,
    NEBSettings,
    check_images,
    interpolate,
    path_profile,
    run_neb,
)
from aiida_anharmal.core.models.uncertainty import CalculatorAsEnsemble
from aiida_anharmal.core.structures import defects


def relaxed(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=200)
    atoms.calc = None
    return atoms


@pytest.fixture(scope='module')
def vacancy_hop():
    """Cu 2x2x2 (31 atoms): the vacancy at site 0, and its nearest neighbour hopped into it."""
    initial, final = defects.vacancy_hop(bulk('Cu', 'fcc', a=3.6, cubic=True).repeat(2))
    return relaxed(initial), relaxed(final)


SETTINGS = NEBSettings(n_images=3, fmax=0.05, steps=200)


def plain_ase_barrier(images):
    images = [image.copy() for image in images]
    for image in images:
        image.calc = EMT()
    neb = NEB(images, k=0.1, climb=True, method='improvedtangent')
    FIRE(neb, logfile=None).run(fmax=0.05, steps=200)
    return NEBTools(images).get_barrier(fit=False)[0], [image.positions.copy() for image in images]


def test_the_barrier_equals_a_plain_ase_neb(vacancy_hop):
    images = interpolate(*vacancy_hop, SETTINGS)
    expected, positions = plain_ase_barrier(images)
    run = run_neb([image.copy() for image in images], SETTINGS, calculators=[EMT() for _ in images])
    assert run.converged and 0 < run.steps < 200 and len(run.fmax_history) == run.steps + 1
    profile = path_profile(run.images, CalculatorAsEnsemble(EMT()))
    assert abs(profile.barrier - expected) < 1e-3
    np.testing.assert_allclose(np.stack([i.positions for i in run.images]), np.stack(positions), atol=1e-8)
    # a symmetric hop: the saddle in the middle, no reaction energy, a barrier of the EMT vacancy hop
    assert profile.highest_image == 2 and abs(profile.reaction_energy) < 0.01 and 0.3 < profile.barrier < 1.2
    assert abs(profile.fit_barrier - profile.barrier) < 0.05 and profile.fit_energies.shape == profile.fit_path.shape
    assert np.all(profile.uce_force_max == 0) and profile.uce_forces.shape == (5, 31)  # one member: no spread
    summary = profile.summary()
    assert summary['n_images'] == 5 and summary['barrier'] == profile.barrier


def test_a_shared_calculator_gives_the_same_band(vacancy_hop):
    images = interpolate(*vacancy_hop, NEBSettings(n_images=3, steps=5))
    shared = run_neb([i.copy() for i in images], NEBSettings(n_images=3, steps=5), calculator=EMT())
    own = run_neb([i.copy() for i in images], NEBSettings(n_images=3, steps=5), calculators=[EMT() for _ in images])
    assert not shared.converged and shared.steps == 5
    np.testing.assert_allclose(
        np.stack([i.positions for i in shared.images]), np.stack([i.positions for i in own.images]), atol=1e-10
    )
    with pytest.raises(ValueError, match='either one shared'):
        run_neb(images, SETTINGS)


def test_bad_bands_are_refused(vacancy_hop):
    initial, final = vacancy_hop
    with pytest.raises(ValueError, match='31 and 30 atoms'):
        interpolate(initial, final[:-1], SETTINGS)
    swapped = final.copy()
    swapped.symbols[0] = 'Ag'
    with pytest.raises(ValueError, match='species in a different order'):
        interpolate(initial, swapped, SETTINGS)
    stretched = final.copy()
    stretched.set_cell(final.cell * 1.01, scale_atoms=True)
    with pytest.raises(ValueError, match='different cells'):
        interpolate(initial, stretched, SETTINGS)
    with pytest.raises(ValueError, match='at least 3 images'):
        check_images([initial, final], 4.0)
    # the hopping atom jumps its whole 2.5 A between the last two images
    with pytest.raises(ValueError, match=r'moves 2\.\d\d A between images 1 and 2 \(limit 2 A\)'):
        check_images([initial, initial.copy(), final], 2.0)
    check_images(interpolate(initial, final, NEBSettings(n_images=1)), 2.0)  # 1.3 A per interval
    with pytest.raises(ValueError, match='unknown NEB parameter'):
        NEBSettings.from_dict({'images': 3})
    with pytest.raises(ValueError, match='method must be one of'):
        NEBSettings(method='tangent')
    with pytest.raises(ValueError, match='fmax must be a positive number'):
        NEBSettings(fmax=0)


def test_an_image_with_atoms_on_top_of_each_other_trips_the_guard(vacancy_hop):
    images = interpolate(*vacancy_hop, NEBSettings(n_images=1))
    images[1].positions[1] = images[1].positions[2] + 0.1
    with pytest.raises(GuardTripped, match='image 1: two atoms closer than 0.5 A at step 0') as caught:
        run_neb(images, NEBSettings(n_images=1, max_image_step=10.0), calculator=EMT())
    assert caught.value.reason == 'min_distance'


def test_one_call_per_moving_image_and_step(vacancy_hop):
    """The end points once, then each intermediate image once per evaluation: no recomputation for guards or logs."""

    class Counting(EMT):
        calls = 0

        def calculate(self, *args, **kwargs):
            Counting.calls += 1
            super().calculate(*args, **kwargs)

    settings = NEBSettings(n_images=3, steps=6)
    run = run_neb(interpolate(*vacancy_hop, settings), settings, calculator=Counting())
    evaluations = run.steps + 1  # FIRE evaluates the band once before each step and once after the last
    assert Counting.calls == 2 + 3 * evaluations
