"""The plotting functions of ``aiida_anharmal.analysis.plots`` on synthetic data (no AiiDA needed)."""

import numpy as np
import pytest

from aiida_anharmal.analysis.acquisition_plot import plot_acquisition
from aiida_anharmal.analysis.plots import plot_exploration, plot_learning_curve

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def check_png(path):
    """``path`` is a readable, non-uniform PNG larger than 100 x 100 pixels; returns the image array."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert float(np.std(image)) > 0
    return image


def learning_rows():
    """Four AL iterations; the last one not trained yet (no training_frames), one without statistics."""
    return [
        {'iteration': 0, 'training_frames': 10, 'test_forces_mae': 0.120, 'uce_force_max': (0.300, 0.080)},
        {'iteration': 1, 'training_frames': 25, 'test_forces_mae': 0.080, 'uce_force_max': [0.200, 0.050]},
        {'iteration': 2, 'training_frames': 40, 'test_forces_mae': None, 'uce_force_max': None},
        {'iteration': 3, 'training_frames': 60, 'test_forces_mae': 0.050, 'uce_force_max': (0.120, 0.030)},
        {'iteration': 4, 'test_forces_mae': 0.045, 'uce_force_max': (0.100, 0.020)},
    ]


def exploration_runs(anharmonicity=True):
    """Two synthetic MD runs of different lengths, with selected frames."""
    rng = np.random.default_rng(0)
    runs = {}
    for name, n in (('300 K', 200), ('600 K', 150)):
        time = np.arange(n) * 10.0  # fs
        run = {
            'time': time,
            'uce_energy': 0.01 + 0.005 * rng.random(n),
            'uce_force_max': 0.2 + 0.1 * rng.random(n),
            'selected': [5, 50, n - 1],
        }
        if anharmonicity:
            a = 0.2 + 0.1 * rng.random(n)
            a[::7] = np.nan
            run['anharmonicity'] = a
        runs[name] = run
    return runs


def acquisition_data(n=300):
    rng = np.random.default_rng(1)
    uncertainty = 0.1 + 0.3 * rng.random(n)
    p_uncertainty = 0.5 * (1 + np.tanh((uncertainty - 0.25) / 0.03))
    p_energy = np.clip(1.2 - rng.random(n), 0.2, 1.0)
    p = p_uncertainty * p_energy
    selected = rng.random(n) < p
    return uncertainty, p_uncertainty, p_energy, p, selected


def test_learning_curve(tmp_path):
    path = plot_learning_curve(learning_rows(), tmp_path / 'learning.png')
    assert path == tmp_path / 'learning.png'
    check_png(path)


def test_learning_curve_without_uncertainty(tmp_path):
    rows = [{'iteration': 0, 'training_frames': 10, 'test_forces_mae': 0.1}]
    check_png(plot_learning_curve(rows, str(tmp_path / 'sub' / 'learning.png')))


@pytest.mark.parametrize(
    'rows, match',
    [
        ([], 'no rows'),
        (
            [
                {'iteration': 0, 'training_frames': 10, 'test_forces_mae': None},
                {'iteration': 1, 'test_forces_mae': 0.1},
            ],
            'both training_frames and test_forces_mae',
        ),
        (
            [{'iteration': 0, 'training_frames': 10, 'test_forces_mae': 0.1, 'uce_force_max': (0.1, 0.02, 3)}],
            r'\(mean, std\) pair',
        ),
    ],
)
def test_learning_curve_invalid(tmp_path, rows, match):
    with pytest.raises(ValueError, match=match):
        plot_learning_curve(rows, tmp_path / 'learning.png')
    assert not (tmp_path / 'learning.png').exists()


def test_exploration(tmp_path):
    thresholds = {'uce_energy': 0.013, 'uce_force_max': 0.27}
    path = plot_exploration(exploration_runs(), tmp_path / 'exploration.png', thresholds=thresholds)
    assert path == tmp_path / 'exploration.png'
    with_a = check_png(path)

    without_a = check_png(plot_exploration(exploration_runs(anharmonicity=False), tmp_path / 'no_a.png'))
    assert without_a.shape[0] < with_a.shape[0]  # the A panel is left out


@pytest.mark.parametrize(
    'change, match',
    [
        ('empty', 'no runs'),
        ('length', 'uce_force_max has 199 values but time has 200'),
        ('missing', "has no 'uce_energy'"),
        ('selected', 'out of range'),
        ('threshold', 'unknown thresholds'),
    ],
)
def test_exploration_invalid(tmp_path, change, match):
    runs = exploration_runs()
    thresholds = None
    if change == 'empty':
        runs = {}
    elif change == 'length':
        runs['300 K']['uce_force_max'] = runs['300 K']['uce_force_max'][:-1]
    elif change == 'missing':
        del runs['600 K']['uce_energy']
    elif change == 'selected':
        runs['600 K']['selected'] = [3, 150]
    elif change == 'threshold':
        thresholds = {'uce_forces': 0.1}
    with pytest.raises(ValueError, match=match):
        plot_exploration(runs, tmp_path / 'exploration.png', thresholds=thresholds)


def test_acquisition(tmp_path):
    path = plot_acquisition(*acquisition_data(), tmp_path / 'acquisition.png')
    assert path == tmp_path / 'acquisition.png'
    check_png(path)


def test_acquisition_nothing_selected(tmp_path):
    uncertainty, p_uncertainty, p_energy, p, _ = acquisition_data(50)
    path = plot_acquisition(
        uncertainty,
        p_uncertainty,
        p_energy,
        p,
        np.zeros(50, dtype=bool),
        tmp_path / 'acquisition.png',
        label='UCE_U (meV)',
    )
    check_png(path)


def test_acquisition_invalid(tmp_path):
    uncertainty, p_uncertainty, p_energy, p, selected = acquisition_data()
    with pytest.raises(ValueError, match='same length'):
        plot_acquisition(uncertainty, p_uncertainty[:-1], p_energy, p, selected, tmp_path / 'a.png')
    with pytest.raises(ValueError, match='same length'):
        plot_acquisition(uncertainty, p_uncertainty, p_energy, p, selected[:10], tmp_path / 'a.png')
    with pytest.raises(ValueError, match='boolean'):
        plot_acquisition(uncertainty, p_uncertainty, p_energy, p, np.flatnonzero(selected), tmp_path / 'a.png')
    with pytest.raises(ValueError, match='no candidate frames'):
        plot_acquisition([], [], [], [], np.zeros(0, dtype=bool), tmp_path / 'a.png')
    assert not (tmp_path / 'a.png').exists()


def test_plot_hal_draws_tau_bias_and_trigger(tmp_path):
    from matplotlib.image import imread

    from aiida_anharmal.analysis.hal import plot_hal

    t = np.arange(0.0, 200.0, 4.0)
    tau = np.where(t > 40, 0.3, 0.0)
    runs = {
        'T300_seed0': {
            'time': t,
            'tau': tau,
            'bias_force': np.full(len(t), 0.02),
            'trigger_score': np.linspace(0.01, 0.07, len(t)),
            'selected': [len(t) - 1],
            'trigger': ('max_relative', 0.065),
        },
        'T300_seed1': {
            'time': t,
            'tau': tau,
            'bias_force': np.full(len(t), 0.01),
            'trigger_score': t * 0,
            'selected': [],
        },
    }
    path = plot_hal(runs, tmp_path / 'hal.png')
    image = imread(path)
    assert image.shape[0] > 100 and image.std() > 0
    with pytest.raises(ValueError, match='no HAL runs'):
        plot_hal({}, tmp_path / 'none.png')


def test_exploration_marks_a_run_a_stop_rule_ended(tmp_path):
    from aiida_anharmal.analysis.plots import _exploration_run

    runs = exploration_runs()
    runs['600 K']['stopped'] = 'Stopped: A = 1.62 exceeds 1.5.'
    assert _exploration_run('600 K', runs['600 K'])['stopped'] == 'Stopped: A = 1.62 exceeds 1.5.'
    assert _exploration_run('300 K', runs['300 K'])['stopped'] is None
    check_png(plot_exploration(runs, tmp_path / 'stopped.png'))


def test_acquisition_marks_uncertain_frames_rejected_by_their_energy(tmp_path):
    from aiida_anharmal.analysis.acquisition_plot import REJECTED_P_ENERGY

    uncertainty, p_uncertainty, p_energy, p, selected = acquisition_data()
    hot = uncertainty > 0.35
    p_energy[hot] = REJECTED_P_ENERGY / 2
    p = p_uncertainty * p_energy
    check_png(plot_acquisition(uncertainty, p_uncertainty, p_energy, p, selected & ~hot, tmp_path / 'rejected.png'))
