"""The calcfunctions and settings of the rare-event tools: NEB images drawn into the training set, the thermal start of
the test MD, the main job's overrides."""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_anharmal.data import TrainingSet
from aiida_anharmal.functions.neb import uncertain_images

STATS = {'uce_force_max': {'mean': 0.03, 'std': 0.01}, 'energy': {'mean': -10.0, 'std': 0.2}}


def path_outputs(uce):
    """An NEB path's per-image arrays and its images labelled (origins with the image index), as NEBWorkChain has."""
    images = orm.ArrayData()
    images.set_array('uce_force_max', np.asarray(uce, dtype=float))
    images.set_array('energies', np.linspace(0.0, 0.5, len(uce)))
    frames = []
    for k in range(len(uce)):
        atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
        atoms.positions[0, 0] += 0.1 * k
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 + 0.1 * k, forces=np.zeros((4, 3)))
        frames.append(atoms)
    origins = [{'kind': 'neb', 'image': k, 'path_uuid': 'p', 'label_calc': 'c'} for k in range(len(uce))]
    labelled = TrainingSet.from_ase(frames, origins=origins)
    labelled.set_label_provenance('emt', 'toy', 'ASE EMT')
    return images.store(), labelled.store()


def test_uncertain_neb_images_join_with_their_reason_and_nothing_else():
    """Images far above the threshold mu + 2 sigma = 0.05 eV/A are drawn, those far below never; the drawn ones carry
    reason neb_image, a_priori and their UCE; the engine's labels and provenance are kept; same seed, same images."""
    images, labelled = path_outputs([0.0, 0.01, 0.5, 0.9, 0.02])
    parameters = orm.Dict({'kind': 'force_max', 'n_max': 30})
    result = uncertain_images(images, labelled, orm.Dict(STATS), parameters, orm.Int(5), orm.Int(3))
    selection = result['selection']
    assert selection['images'] == [3, 2]  # the most uncertain first
    assert selection['threshold'] == pytest.approx(0.05)
    frames = result['frames']
    assert [o['image'] for o in frames.origins] == [3, 2]
    for origin, uce in zip(frames.origins, (0.9, 0.5), strict=True):
        assert origin['reason'] == 'neb_image' and origin['a_priori'] and origin['iteration'] == 3
        assert origin['uce_force_max'] == pytest.approx(uce) and origin['p_uncertainty'] > 0.999
        assert origin['label_calc'] == 'c'
    np.testing.assert_allclose(frames.frames.energy, [-9.7, -9.8])
    assert frames.base.attributes.get('label_engine') == 'emt'
    again = uncertain_images(images, labelled, orm.Dict(STATS), parameters, orm.Int(5), orm.Int(3))
    assert again['selection']['images'] == [3, 2]
    capped = uncertain_images(images, labelled, orm.Dict(STATS), orm.Dict({'n_max': 1}), orm.Int(5), orm.Int(3))
    assert capped['selection']['images'] == [3]
    quiet_images, quiet_labelled = path_outputs([0.0, 0.01, 0.02])
    quiet = uncertain_images(quiet_images, quiet_labelled, orm.Dict(STATS), parameters, orm.Int(5), orm.Int(3))
    assert quiet['selection']['images'] == [] and 'frames' not in quiet


def test_neb_images_at_the_edge_are_drawn_by_the_seed_and_unlabelled_ones_are_said():
    """Eight images at the threshold (P(UCE) = 1/2): the seed decides which, as for exploration frames; an image the
    engine failed to label is drawn but not added, and the selection says so."""
    images, labelled = path_outputs([0.05] * 8)
    parameters = orm.Dict({'kind': 'force_max'})
    draws = {
        seed: uncertain_images(images, labelled, orm.Dict(STATS), parameters, orm.Int(seed), orm.Int(1))['selection']
        for seed in (0, 1, 2)
    }
    assert all(selection['p_uncertainty'] == pytest.approx([0.5] * 8) for selection in draws.values())
    assert len({tuple(selection['images']) for selection in draws.values()}) > 1
    assert all(0 < len(selection['images']) < 8 for selection in draws.values())
    partial = TrainingSet(frames=labelled.frames.subset([k for k in range(8) if k != 3]))
    partial.set_label_provenance('emt', 'toy', 'ASE EMT')
    everything = orm.Dict({'kind': 'force_max', 's': 0.01, 'g': 0.01})  # every image far above the edge
    result = uncertain_images(images, partial.store(), orm.Dict(STATS), everything, orm.Int(0), orm.Int(1))
    selection = result['selection']
    assert sorted(selection['images']) == list(range(8)) and selection['unlabelled'] == [3]
    assert sorted(selection['added']) == [0, 1, 2, 4, 5, 6, 7] == sorted(o['image'] for o in result['frames'].origins)


def loop_builder(codes, overrides=None, **kwargs):
    """The fast AL builder on EMT Cu with given training and test sets (unless set to None)."""
    from aiida_anharmal.workflows import ActiveLearningWorkChain

    from .conftest import emt_cu_frames

    frames = emt_cu_frames(12)
    for name, part in (('training_set', frames[:8]), ('test_set', frames[8:])):
        if name not in kwargs:
            node = TrainingSet.from_ase(part)
            node.set_label_provenance('emt', 'toy', 'ASE EMT')
            kwargs[name] = node
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes, frames[0], engine='emt', protocol='fast', overrides=overrides, **kwargs
    )


def test_bad_rare_event_inputs_are_refused_before_any_job(train_code, evaluate_code, md_code, label_code):
    from aiida.engine import run_get_node

    codes = {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}

    def builder(overrides=None, **kwargs):
        return loop_builder(codes, overrides, **kwargs)

    cases = [
        (
            builder({'initial': {'parameters': {'random': {'n_test': 0}}}}, training_set=None, test_set=None),
            'asks for no initial test frames: give `test_md`',
        ),
        (builder({'test_md': {'steps': 10}}, test_set=None), 'gives 0 test frame\\(s\\)'),
        (builder({'test_md': {'stride': 0}}, test_set=None), '`test_md.stride` must be an integer'),
        (builder({'test_md': {'seeed': 3}}, test_set=None), "unknown `test_md` parameter\\(s\\) \\['seeed'\\]"),
        (builder({'test_md': {'temperature': -5.0}}, test_set=None), 'bad `test_md`'),
        (builder({'test_md': {'start': 'harmonic'}}, test_set=None), "`harmonic` needs the loop's `harmonic` input"),
        (builder({'test_md': {'start': 'hot'}}, test_set=None), '`test_md.start` must be one of'),
        (builder({'explore': {'trigger': {'kind': 'uncertainty'}}}), '`threshold` \\(eV/A\\) or `s`'),
        (
            builder({'explore': {'trigger': {'kind': 'uncertainty', 's': 2.0, 'exponent': 0.5}}}),
            "`exponent` \\(0.5\\) and the acquisition's `uncertainty_exponent` \\(0\\) must be equal",
        ),
        (builder({'convergence': {'rule': 'quiet_ladder', 'min_temperatures': 0}}), '`min_temperatures` must be'),
        (builder({'acquisition': {'energy_reference': 'hot'}}), '`energy_reference` must be one of'),
        (builder({'acquisition': {'uncertainty_exponent': 3}}), '`uncertainty_exponent` must be a number'),
    ]
    both_test_sets = builder()
    both_test_sets.test_md = orm.Dict({})
    cases.append((both_test_sets, 'give the test set as `test_set` or make it with `test_md`, not both'))
    wasted = builder({'test_md': {}}, training_set=None, test_set=None)
    assert wasted.initial.parameters['n_test'] == 0  # the builder asks for no initial test frame
    wasted.initial.parameters = orm.Dict({**wasted.initial.parameters.get_dict(), 'n_test': 4})
    cases.append((wasted, 'set `initial.parameters.n_test` to 0'))
    with pytest.raises(ValueError, match='give `test_set` or make it with `test_md`'):
        builder({'test_md': {}})
    for case, match in cases:
        with pytest.raises(ValueError, match=match):
            run_get_node(case)
    matched = builder(
        {
            'explore': {'trigger': {'kind': 'uncertainty', 's': 2.0, 'exponent': 0.5}},
            'acquisition': {'uncertainty_exponent': 0.5},
        }
    )
    from aiida_anharmal.workflows import ActiveLearningWorkChain
    from aiida_anharmal.workflows.active_learning_checks import validate_active_learning_inputs

    assert validate_active_learning_inputs(matched._inputs(prune=True), ActiveLearningWorkChain.spec().inputs) is None


def test_the_test_md_starts_from_a_harmonic_sample_at_the_temperature(aiida_profile):
    """thermal_start: thermal displacements (mean square displacement growing like T), the same for the same seed."""
    from ase.calculators.emt import EMT

    from aiida_anharmal.core.phonons.harmonic import force_constants_with
    from aiida_anharmal.data.force_constants import ForceConstants
    from aiida_anharmal.functions.initial import thermal_start

    fc = ForceConstants.from_phonopy(force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6), [2, 2, 2])).store()
    ideal = fc.get_supercell().positions
    msd = {}
    for temperature in (100.0, 400.0):
        starts = [thermal_start(fc, orm.Float(temperature), orm.Int(seed)) for seed in range(6)]
        msd[temperature] = np.mean([((s.get_ase().positions - ideal) ** 2).sum(axis=1).mean() for s in starts])
    assert 3.0 < msd[400.0] / msd[100.0] < 5.5
    again = thermal_start(fc, orm.Float(100.0), orm.Int(0)).get_ase().positions
    np.testing.assert_array_equal(again, thermal_start(fc, orm.Float(100.0), orm.Int(0)).get_ase().positions)


def test_the_main_job_settings():
    from aiida_anharmal.cli.demo_settings import demo_overrides

    ladder = demo_overrides('fast', 300.0, None, 'nequip-reference', ())
    assert ladder['explore']['temperatures'] == [300.0, 600.0, 900.0]
    assert ladder['explore']['guards'] == {'max_anharmonicity': None}  # over the md exploration's 1.5
    assert ladder['acquisition'] == {'n_max': 8, 'uncertainty_exponent': 0.5, 'min_spacing': 2}
    assert 'trigger' not in ladder['explore'] and ladder['max_iterations'] == 5  # measured better without (docs)
    triggered = demo_overrides('fast', 300.0, None, 'nequip-reference', (), trigger=True)
    assert triggered['explore']['trigger'] == {'kind': 'uncertainty', 's': 2.0, 'patience': 3, 'exponent': 0.5}
    assert ladder['convergence'] == {'rule': 'quiet_ladder'} and ladder['test_md'] == {'temperature': 300.0}
    plain = demo_overrides('fast', 300.0, 3, 'nequip-reference', (), exploration='md', test_set='harmonic')
    assert plain['explore']['temperatures'] == [300.0] and 'trigger' not in plain['explore']
    assert plain['test_md'] is None and plain['max_iterations'] == 3
    assert plain['explore']['guards'] == {'max_anharmonicity': 1.5}
    moderate = demo_overrides('moderate', 300.0, None, 'nequip-reference', (), test_set='harmonic')
    assert moderate['test_md'] is None  # also over the moderate protocol's own test MD
    # the ladder's settings hold for every protocol; only the fast one caps the iterations at 5
    assert moderate['convergence'] == {'rule': 'quiet_ladder'} and 'max_iterations' not in moderate
    assert moderate['explore']['guards'] == {'max_anharmonicity': None}
    triggered_md = demo_overrides('fast', 300.0, None, 'nequip-reference', (), exploration='md', trigger=True)
    assert triggered_md['acquisition']['uncertainty_exponent'] == triggered_md['explore']['trigger']['exponent']
    custom = demo_overrides('fast', 400.0, None, 'nequip-reference', (), ladder=(1.0, 1.5), trigger=False)
    assert custom['explore']['temperatures'] == [400.0, 600.0] and 'trigger' not in custom['explore']
    hal = demo_overrides('fast', 300.0, None, 'nequip-reference', (), exploration='hal', trigger=True)
    assert hal['explore']['trigger']['kind'] == 'uncertainty'
    ends = {'initial': 'a', 'final': 'b', 'acquire': True}
    assert demo_overrides('fast', 300.0, None, 'gpaw', (), neb=ends)['neb'] == ends
