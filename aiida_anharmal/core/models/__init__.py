"""The machine-learned potential: the NequIP ensemble and its calculators, uncertainty (UCE_U, UCE_F, UCE_A),
evaluation on frames, calibration, the members' training configuration.

May import: :mod:`~aiida_anharmal.core.structures`, :mod:`~aiida_anharmal.core.phonons`.
"""
