"""aiida-anharmal: active learning of machine-learned interatomic potentials for anharmonic materials.

Pure physics and numerics live in :mod:`aiida_anharmal.core` (no AiiDA import); the programs that
calculation jobs run live in :mod:`aiida_anharmal.engines`; the AiiDA layer (data, calculations,
parsers, functions, workflows, cli) sits on top.
"""

__version__ = '0.2.0'
