"""Phonons: harmonic force constants, phonopy io, spectra, normal modes, the anharmonicity measure A,
lifetimes from MD and from perturbation theory.

May import: :mod:`~aiida_anharmal.core.structures`.
"""
