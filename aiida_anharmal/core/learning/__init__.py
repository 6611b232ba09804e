"""Active learning decisions: acquisition kinds and probabilities, convergence rules, exploration starts,
validation of a potential, the rare-event test set.

May import: :mod:`~aiida_anharmal.core.structures`, :mod:`~aiida_anharmal.core.phonons`,
:mod:`~aiida_anharmal.core.models`, :mod:`~aiida_anharmal.core.md`.
"""
