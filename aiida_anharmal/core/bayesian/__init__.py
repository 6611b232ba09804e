"""The Bayesian linear force-constant force field (Callsen et al.): the model, dynamic training with its
retrain trigger, retrain rules, convergence from the noise estimate.

May import: :mod:`~aiida_anharmal.core.structures`, :mod:`~aiida_anharmal.core.phonons`,
:mod:`~aiida_anharmal.core.md`.
"""
