"""The labelling engines: which ASE calculator computes the ground truth (registry of entry-point group
``anharmal.labellers``).

May import: :mod:`~aiida_anharmal.core.models` (the model-based engines).
"""
