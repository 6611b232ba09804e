"""Calcfunction of the perturbative route: the displaced supercells of third-order force constants."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from ..data.force_constants import ForceConstants
from ..data.training_set import TrainingSet

#: ``kind`` of the origin of an fc3 supercell; its index (in the labelled list) is the origin's ``displacement``.
FC3_KIND = 'phono3py_displacement'

#: Keys of the ``parameters`` of :func:`fc3_displacements`, with their defaults.
FC3_DEFAULTS = {
    'distance': 0.03,
    'cutoff_pair_distance': None,
    'n_random': None,
    'seed': 0,
    'supercell_matrix': None,
    'symprec': 1e-5,
}


def fc3_parameters_problem(parameters: dict) -> str | None:
    """Why ``parameters`` cannot make fc3 displacements, else ``None`` (checked before any job)."""
    unknown = sorted(set(parameters) - set(FC3_DEFAULTS))
    if unknown:
        return f'unknown fc3 displacement key(s) {unknown}; allowed: {sorted(FC3_DEFAULTS)}'
    p = {**FC3_DEFAULTS, **parameters}
    for key in ('distance', 'cutoff_pair_distance', 'symprec'):
        value = p[key]
        if value is None and key == 'cutoff_pair_distance':
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            return f'`{key}` must be a positive number (Angstrom), not {value!r}'
    for key, least in (('n_random', 1), ('seed', 0)):
        value = p[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            return f'`{key}` must be an integer of at least {least}, not {value!r}'
    if p['n_random'] is not None and p['cutoff_pair_distance'] is not None:
        return 'give `cutoff_pair_distance` (pairs of displaced atoms) or `n_random` (random supercells), not both'
    if p['supercell_matrix'] is not None:
        from ..core.phonons.phonopy_io import check_supercell_matrix

        try:
            check_supercell_matrix(p['supercell_matrix'])
        except ValueError as error:
            return str(error)
    return None


@calcfunction
def fc3_displacements(harmonic: ForceConstants, parameters: orm.Dict):
    """phono3py's displaced supercells for third-order force constants of the harmonic reference's crystal.

    ``parameters`` (:data:`FC3_DEFAULTS`): ``distance`` (A), ``cutoff_pair_distance`` (A; pairs farther
    apart are skipped and need no label), ``n_random`` (random supercells instead of pairs, fitted with
    symfc) and its ``seed``, ``supercell_matrix`` of fc3 (default: the harmonic one), ``symprec``.

    Outputs ``supercells``, a TrainingSet of the supercells to label (origin ``{'kind':
    'phono3py_displacement', 'displacement': k}``), and ``fc3_displacements``, a Dict of the
    :class:`~aiida_anharmal.core.phonons.perturbative.Fc3DisplacementSet` from which fc3 is built.
    """
    from ..core.phonons.perturbative import make_fc3_displacements

    p = parameters.get_dict()
    message = fc3_parameters_problem(p)
    if message:
        raise ValueError(message)
    p = {**FC3_DEFAULTS, **p}
    displacement_set = make_fc3_displacements(harmonic.get_phonopy(), **p)
    supercells = displacement_set.supercells()
    origins = [{'kind': FC3_KIND, 'displacement': k} for k in range(len(supercells))]
    return {
        'supercells': TrainingSet.from_ase(supercells, origins=origins),
        'fc3_displacements': orm.Dict(displacement_set.to_dict()),
    }
