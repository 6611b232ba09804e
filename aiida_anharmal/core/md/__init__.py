"""Molecular dynamics: one MD loop for every variant, its record on disk, the strategies that shape a run
(biases, guards, stop triggers: registries in :mod:`~aiida_anharmal.core.md.biases` and
:mod:`~aiida_anharmal.core.md.stop_rules`), and the nudged elastic band.

May import: :mod:`~aiida_anharmal.core.structures`, :mod:`~aiida_anharmal.core.phonons`.
"""
