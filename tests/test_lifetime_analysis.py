"""The lifetimes table and figure of an AL run, from plain rows and arrays (no daemon)."""

import numpy as np

from aiida_anharmal.analysis.lifetimes import lifetime_lines, plot_lifetimes
from aiida_anharmal.functions.lifetimes import lifetime_row

MD = {
    'modes': 24,
    'flags': {'ok': 20, 'no_mode': 3, 'too_fast': 1},
    'median_tau': 0.25,
    'ioffe_regel_fraction': 0.75,
    'bands': {'1-2': {'modes': 8, 'median_tau': 0.4}},
    't_max': 4.0,
}
PERTURBATIVE = {
    **MD,
    'median_tau': None,
    'kappa': {'300': {'xx': 7.7}},
    'temperature': 300.0,
    'mesh': [4, 4, 4],
    'bands': {},
}


def test_the_table_has_a_line_per_run_even_without_lifetimes():
    rows = [
        lifetime_row('md', 'reference', MD, 'finished'),
        lifetime_row('md', 'initial', None, 'LifetimesWorkChain<7> exit 490: the NVE run left the crystal'),
        lifetime_row('perturbative', 'final', PERTURBATIVE, 'finished'),
    ]
    assert rows[0]['resolved'] == 20 and rows[0]['t_max'] == 4.0 and rows[2]['kappa_xx'] == 7.7
    lines = lifetime_lines(rows)
    assert len(lines) == 4 and 'Ioffe-Regel' in lines[0]
    assert '0.250' in lines[1] and '75 %' in lines[1] and '1-2 THz 0.40' in lines[1]
    assert 'no lifetimes: LifetimesWorkChain<7> exit 490' in lines[2]
    assert ' - ' in lines[3] and '7.7' in lines[3]  # no mode resolved: no median, still a row


def test_the_figure_draws_both_routes(tmp_path):
    from matplotlib.image import imread

    rng = np.random.default_rng(0)
    nu = rng.uniform(0.5, 5, 40)
    runs = {
        ('md', 'reference'): {
            'frequency': nu,
            'tau': 1 / rng.uniform(1, 8, 40),
            'flag': np.full(40, 'ok'),
            'weight': np.ones(40),
        },
        ('perturbative', 'reference'): {
            'frequency': nu,
            'tau': rng.uniform(2, 6, 40),
            'flag': np.full(40, 'ok'),
            'weight': np.full(40, 8.0),
        },
    }
    path = plot_lifetimes(runs, tmp_path / 'lifetimes.png')
    image = imread(path)
    assert image.shape[1] > 1.8 * image.shape[0] and image.std() > 0  # two panels side by side
