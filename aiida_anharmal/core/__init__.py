"""Pure physics and numerics: numpy, torch, ASE, phonopy and hiphive, never AiiDA.

Subpackages by concern, each importing only those before it in this order (``tests/test_code_shape.py`` checks
it, and that no import circle exists anywhere in the package):

``structures``
    frames (positions, labels, origins), structure checks, splits, sampling, defects: imports nothing of core/.
``phonons``
    harmonic force constants, phonopy io, spectra, normal modes, anharmonicity, lifetimes, perturbative
    theory: imports ``structures``.
``models``
    the NequIP ensemble, its uncertainty, evaluation and calibration, the members' configuration: imports
    ``structures``, ``phonons``.
``md``
    the MD loop and its record, biases, guards and stop triggers, NEB: imports ``structures``, ``phonons``.
``labelling``
    the labelling engines (ASE calculators of the ground truth): imports ``models``.
``learning``
    acquisition, convergence, exploration starts, validation, the rare-event test set: imports the above.
``bayesian``
    the Bayesian force-constant model, dynamic training, retrain rules, its convergence: imports ``md``,
    ``structures``, ``phonons``.

:mod:`~aiida_anharmal.core.registry` (the one module at the top) holds the strategy base and the
:class:`~aiida_anharmal.core.registry.Registry` every strategy family uses; the families' built-in members are
registered through entry-point groups ``anharmal.*`` of the package metadata, never by import side effects.
"""
