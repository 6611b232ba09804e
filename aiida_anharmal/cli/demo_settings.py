"""The settings of the main job (``anharmal demo al``): the overrides of the AL protocols per exploration kind.

Measured choices, each with the benchmark that measured it (docs/source/tutorial_cui.rst,
docs/source/rare_events.rst).
"""

from __future__ import annotations

#: Lattice constant (A) at the minimum of the reference model's energy (scan 5.95-6.20 A, parabola fit).
CUI_LATTICE_CONSTANT = 6.06

#: Settings of the demo on top of the `fast` protocols (3 x 2 tiny members trained towards the validation
#: plateau, at most 400 epochs from scratch, later iterations fine-tuned for at most 150), sized for 2 CPU cores;
#: the measured times are in the tutorial (docs/source/tutorial_cui.rst). Each exploration run has the
#: validation's dynamics and length (Langevin, 5 fs, friction 0.00295/fs, 1 ps). With ``--exploration md`` an
#: anharmonicity guard stops a run where A > 1.5 (the crystal broke; the reference model keeps A at 0.2-0.6 at
#: 300 K); the ladder switches it off. The test set (the yardstick of the acquisition, the trigger and the stopping
#: rule) is the frames of a 0.75 ps ground-truth MD at the temperature after 50 fs of equilibration (29 frames,
#: seed 1), started with the loop from a harmonic sample; the validation MD 1 ps (seed 0) and the reference
#: model's own NEB start once the test set is made.
DEMO_OVERRIDES = {
    'fast': {
        'max_iterations': 3,
        'acquisition': {'n_max': 8},
        'explore': {
            'seeds': [0, 1],
            'parameters': {'steps': 200, 'save_stride': 5, 'timestep': 5.0, 'friction': 0.00295},
            'guards': {'max_anharmonicity': 1.5},
        },
        'label': {'batch_size': 8},
        'test_md': {},
        'validation': {},
        # measured on CuI (docs/source/ensembles.rst): fine-tuned for 150 epochs 1.2-1.8 meV/A worse than
        # from scratch (400), in 40 % of the time; the demo takes that trade to fit in the time
        'ensemble': {'retrain': 'finetune'},
    },
    'moderate': {'explore': {'guards': {'max_anharmonicity': 1.5}}, 'validation': {}},
}

#: ``--exploration ladder`` (the default): each iteration explores at every rung of a temperature ladder (multiples
#: of the target temperature), two seeds each, for the run's full length; P(U) judges each run's frames against the
#: test set's energy statistics carried to the run's temperature and P(UCE) against its uncertainty statistics
#: times (T/T0)^0.5; kept frames of a run at least two saved frames apart; the loop stops when every run of an
#: iteration, at every rung, ran its full length quietly (``quiet_ladder``). Measured reach
#: (benchmarks/results/cui_rare_event_reach_*.md): from the 3-iteration main job's last ensemble, every rung
#: reaches the Frenkel-pair basin, 300 K after a median 638 steps (3.2 ps: beyond a 1 ps run), 600 K after 229,
#: 900 K after 96. ``--trigger`` adds the ``uncertainty`` trigger (a run ends where UCE_F^max stays above mu +
#: 2 sigma of the test set, scaled the same way, for 3 steps); measured in the loop (docs/source/rare_events.rst)
#: it ended the hot runs before their Cu reached the interstitial site, so the main job leaves it off.
LADDER = (1.0, 2.0, 3.0)
UNCERTAINTY_TRIGGER = {'kind': 'uncertainty', 's': 2.0, 'patience': 3, 'exponent': 0.5}
_LADDER = {
    'acquisition': {'uncertainty_exponent': 0.5, 'min_spacing': 2},
    # no anharmonicity guard: a Frenkel pair at 600-900 K has A above 1.5 (measured: the guard stopped every
    # hot run with its Cu 1-1.7 A off its site, short of the interstitial); the uncertainty guard (2 eV/A) stays
    'explore': {'guards': {'max_anharmonicity': None}},
    'convergence': {'rule': 'quiet_ladder'},
}
LADDER_OVERRIDES = {'fast': {**_LADDER, 'max_iterations': 5}, 'moderate': _LADDER, 'precise': _LADDER}

#: ``--exploration hal`` (hyperactive learning): four biased runs per iteration (adaptive tau, tau_r 0.25, no bias
#: in the first 10 steps: measured 1.5 times faster to the first uncertain frame than plain MD on the main job's
#: last ensemble, where the protocol's tau_r 0.1 after 20 steps gave 1.1), each ended by its trigger; the trigger frame and the saved frame before it are
#: labelled, so an iteration labels at most 8 frames, as the soft acquisition of the `md` demo does. The
#: trigger is the max relative force uncertainty at 0.065: measured (benchmarks/hal_vs_md.py on the main
#: job's last ensemble), max_i f_i reaches 0.066-0.069 where UCE_F^max passes the acquisition threshold,
#: while the published softmax score stays near 1/64 (s_tol 0.5 would ask for one atom 4.1 above the rest).
HAL_OVERRIDES = {
    'fast': {
        'acquisition': {'kind': 'trigger', 'frames_before': 1},
        'explore': {
            'seeds': [0, 1, 2, 3],
            'hal': {'bias': {'tau_r': 0.25, 'tau_hist': 10}},
            'trigger': {'kind': 'max_relative', 'tol': 0.065},
        },
    },
}

#: ``--lifetimes``: the routes of the lifetimes validation, as in docs/source/lifetimes.rst (CuI, 300 K):
#: MD 0.5 ps Langevin then 4 ps NVE at 5 fs, a frame every 10 fs (the reference model: ~1 s per step);
#: perturbative: every pair of the 222 fc3 supercells, an 11x11x11 mesh.
LIFETIME_OVERRIDES = {
    'md': {
        'equilibration': {'steps': 100, 'timestep': 5.0, 'save_stride': 10, 'friction': 0.00295},
        'production': {'steps': 800, 'timestep': 5.0, 'save_stride': 2},
    },
    'perturbative': {'analysis': {'mesh': [11, 11, 11]}},  # labelled like the loop's frames (its label inputs)
}
LIFETIME_CHOICES = {'none': (), 'perturbative': ('perturbative',), 'md': ('md',), 'both': ('md', 'perturbative')}


#: What ``--exploration`` adds to the demo's settings.
EXPLORATIONS = {'ladder': LADDER_OVERRIDES, 'md': {}, 'hal': HAL_OVERRIDES}


def demo_overrides(
    protocol: str,
    temperature: float,
    iterations: int | None,
    engine: str,
    routes,
    exploration: str = 'ladder',
    neb: dict | None = None,
    test_set: str = 'md',
    ladder: tuple | None = None,
    trigger: bool | None = None,
) -> dict:
    """The overrides of the AL protocol for the demo: its settings, the exploration, the temperature, the NEB
    validation (``neb``: ``initial``, ``final`` and optionally ``acquire``), the test set (``md``: from a
    ground-truth MD; ``harmonic``: harmonic samples), the lifetimes routes; ``ladder`` (multiples of the
    temperature) and ``trigger`` (the ``uncertainty`` trigger on or off) replace the exploration's own."""
    from ..protocols import recursive_merge

    base = recursive_merge(DEMO_OVERRIDES.get(protocol, {}), EXPLORATIONS[exploration].get(protocol, {}))
    if trigger is not None:
        base.setdefault('explore', {}).pop('trigger', None)
        if trigger:  # the trigger and the acquisition judge a run at T against the same scaled yardstick
            base['explore']['trigger'] = dict(UNCERTAINTY_TRIGGER)
            base.setdefault('acquisition', {})['uncertainty_exponent'] = UNCERTAINTY_TRIGGER['exponent']
    factors = ladder or (LADDER if exploration == 'ladder' else (1.0,))
    temperatures = [round(factor * temperature, 6) for factor in factors]
    overrides = recursive_merge(
        base,
        {
            'initial': {'parameters': {'harmonic': {'temperature': temperature}}},
            'explore': {'temperatures': temperatures},
            'validation': {'parameters': {'temperature': temperature}},
        },
    )
    if test_set == 'harmonic':
        overrides['test_md'] = None  # also over a protocol's own test MD (moderate, precise)
    elif 'test_md' in overrides:
        overrides['test_md'] = {**overrides['test_md'], 'temperature': temperature}
    if neb:
        overrides['neb'] = dict(neb)
    if iterations is not None:
        overrides['max_iterations'] = iterations
    if routes:
        lifetime_overrides = {route: LIFETIME_OVERRIDES[route] for route in routes}
        if 'md' in lifetime_overrides:
            lifetime_overrides['md'] = recursive_merge(
                lifetime_overrides['md'],
                {key: {'temperature': temperature} for key in ('equilibration', 'production')},
            )
        overrides.setdefault('validation', {})['lifetimes'] = lifetime_overrides
    if engine == 'gpaw':  # a DFT calculation per MD step: hours; run ValidationMDWorkChain apart
        overrides.pop('validation', None)
    return overrides
