"""Stop rules and biases of the one MD loop: the registries, their validation, and a bias that drives the run."""

import numpy as np
import pytest
from ase import units

from aiida_anharmal.core.md.guards import FiniteGuard
from aiida_anharmal.core.md.loop import Bias, MDSettings, read_frames, run_md
from aiida_anharmal.core.md.stop_rules import GUARDS, Guard, build_stop_rules, check_guard_settings, guard_defaults
from aiida_anharmal.core.registry import Registry

from .test_md import ModelPotential, cu_reference


def test_defaults_come_from_the_guard_classes():
    assert guard_defaults() == {
        'min_distance': 0.5,
        'max_force': 20.0,
        'max_uncertainty': 2.0,
        'temperature_factor': 3.0,
        'max_anharmonicity': None,
    }
    assert check_guard_settings({'max_force': 5.0})['max_force'] == 5.0
    assert sorted(g.exit_status for g in GUARDS) == [320, 321, 322, 323, 324, 325]
    assert len({g.reason for g in GUARDS}) == len({g.exit_label for g in GUARDS}) == len(GUARDS)


@pytest.mark.parametrize(
    'settings, match',
    [
        (
            {'max_forces': 5.0},
            r"unknown `guards` key\(s\) \['max_forces'\]; allowed: \['max_anharmonicity', 'max_force', ",
        ),
        ({'not_finite': None}, r"unknown `guards` key\(s\) \['not_finite'\]"),  # always on, not settable
        ({'min_distance': 0}, 'guard `min_distance` must be positive or null'),
        ({'max_force': 'big'}, 'guard `max_force` must be positive or null'),
        ({'temperature_factor': True}, 'guard `temperature_factor` must be positive or null'),
    ],
)
def test_bad_guard_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        check_guard_settings(settings)


def test_a_null_threshold_switches_a_guard_off_but_the_finite_check_stays():
    rules = build_stop_rules({'min_distance': None, 'max_force': 1.0}, 300.0)
    assert [type(r).__name__ for r in rules] == [
        'FiniteGuard',
        'ForceCapGuard',
        'UncertaintyCapGuard',
        'TemperatureGuard',
    ]
    assert rules[1].threshold == 1.0 and rules[3].target_temperature == 300.0


def test_registry_refuses_a_second_class_with_the_same_key():
    registry = Registry('thing')

    class Same(Guard):
        key = 'not_finite'

    registry.register(FiniteGuard)
    with pytest.raises(ValueError, match='a thing with key `not_finite` is already registered: FiniteGuard'):
        registry.register(Same)
    with pytest.raises(ValueError, match='unknown thing `nope`; known: not_finite'):
        registry.get('nope')


class ConstantPush(Bias):
    """A uniform extra force on every atom: the centre of mass accelerates by exactly F/m."""

    key = 'test_push'

    def __init__(self, force):
        self.force = np.asarray(force, dtype=float)

    def __call__(self, atoms, prediction):
        return prediction.energy, prediction.forces + self.force


def test_a_bias_drives_the_dynamics_and_the_frames_keep_the_unbiased_forces(tmp_path):
    atoms, reference = cu_reference()
    settings = MDSettings(temperature=100, timestep=1.0, steps=20, save_stride=20, dynamics='nve', seed=2)
    push = np.array([0.01, 0.0, 0.0])  # eV/A per atom
    start = atoms.copy()
    run_md(start, ModelPotential(reference), settings, tmp_path, bias=ConstantPush(push))
    frames = read_frames(tmp_path)
    # harmonic springs conserve momentum: only the bias changes it, by N F t
    momentum = frames['velocities'][-1].sum(0) * atoms.get_masses()[0] / units.fs
    initial = frames['velocities'][0].sum(0) * atoms.get_masses()[0] / units.fs
    expected = len(atoms) * push * 20 * units.fs
    assert np.allclose(momentum - initial, expected, rtol=1e-6, atol=1e-9)
    # the recorded forces are the ensemble mean, without the push (they sum to zero for springs)
    assert np.abs(frames['forces'][-1].sum(0)).max() < 1e-9


def test_the_docs_table_of_guards_says_what_the_classes_say():
    from pathlib import Path

    text = (Path(__file__).parents[2] / 'docs' / 'source' / 'exploration.rst').read_text()
    for guard in GUARDS:
        line = next(
            (row for row in text.splitlines() if row.startswith(f'{guard.exit_status}    {guard.exit_label} ')), None
        )
        assert line is not None, guard.key
        if guard.always:
            assert '(always on)' in line
        elif guard.default is None:
            assert f'``{guard.key}``' in line and 'off by default' in line, line
        else:
            assert f'``{guard.key}``' in line and f'{guard.default:g}' in line, line


def test_the_anharmonicity_guard_stops_a_run_that_leaves_the_harmonic_basin(tmp_path):
    atoms, reference = cu_reference()
    settings = MDSettings(temperature=300, timestep=2.0, steps=200, save_stride=5, friction=0.01, seed=1)
    with pytest.raises(ValueError, match=r"guard\(s\) \['max_anharmonicity'\] need the harmonic reference"):
        build_stop_rules({'max_anharmonicity': 0.1}, 300.0)
    rules = build_stop_rules({'max_anharmonicity': 0.1}, 300.0, harmonic=reference)
    (tmp_path / 'h').mkdir()
    (tmp_path / 'q').mkdir()
    # harmonic springs: A = 0 at every step, the guard never fires
    calm = run_md(atoms.copy(), ModelPotential(reference), settings, tmp_path / 'h', guards=rules, harmonic=reference)
    assert calm.state == 'finished'
    # a strong quartic term: A grows past 0.1 and the run stops there, keeping the frame that fired
    result = run_md(
        atoms.copy(),
        ModelPotential(reference, quartic=200.0),
        settings,
        tmp_path / 'q',
        guards=rules,
        harmonic=reference,
    )
    assert result.state == 'anharmonicity_too_large' and 'exceeds 0.1' in result.message
    frames = read_frames(tmp_path / 'q')
    assert frames['step'][-1] == result.last_step and frames['anharmonicity'][-1] > 0.1
    assert np.all(frames['anharmonicity'][:-1][np.isfinite(frames['anharmonicity'][:-1])] <= 0.1)
