"""End points of a rare event for the NEB validation: a Frenkel pair in zincblende CuI, relaxation, a minimum check.

Kang et al. (Figs. 7 and 10) follow the path from the pristine crystal to a Cu Frenkel pair in
CuI: one Cu leaves its site for the nearest empty interstitial site tetrahedrally coordinated by I.
In ASE's ``bulk('CuI', 'zincblende', cubic=True)`` (Cu at the origin) that site is (1/2, 0, 0) a,
equivalent to (1/2, 1/2, 1/2) a: 4 I at sqrt(3)/4 a (2.62 A at a = 6.05 A) and 6 Cu at a/2
(3.03 A) around it, a/2 from the Cu at the origin. The functions are general: any supercell, any
atom, any target site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.geometry import find_mic

#: Fractional coordinates (conventional zincblende cell, Cu at the origin) of the tetrahedral
#: interstitial sites coordinated by four I; (1/2, 0, 0) is the one nearest to the Cu at the origin.
CUI_TETRAHEDRAL_I_SITES = ((0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 0.5), (0.5, 0.5, 0.5))


def move_atom(atoms, index: int, position) -> object:
    """A copy of ``atoms`` with atom ``index`` at the Cartesian ``position`` (wrapped into the cell)."""
    if not 0 <= index < len(atoms):
        raise ValueError(f'atom {index} does not exist in {len(atoms)} atoms')
    moved = atoms.copy()
    moved.calc = None
    moved.positions[index] = np.asarray(position, dtype=float)
    moved.wrap()
    return moved


def frenkel_pair(supercell, index: int, site, min_distance: float = 1.5):
    """``supercell`` with atom ``index`` moved to the empty Cartesian ``site`` (a Frenkel pair).

    ``ValueError`` when the site is occupied: an atom closer than ``min_distance`` (A) to it.
    """
    if not 0 <= index < len(supercell):
        raise ValueError(f'atom {index} does not exist in {len(supercell)} atoms')
    others = np.delete(np.arange(len(supercell)), index)
    _, distances = find_mic(supercell.positions[others] - np.asarray(site, dtype=float), supercell.cell, supercell.pbc)
    if distances.min() < min_distance:
        raise ValueError(f'the site {np.round(site, 3).tolist()} is {distances.min():.2f} A from an atom: not empty')
    return move_atom(supercell, index, site)


def cui_frenkel_pair(lattice_constant: float = 6.06, repeat: int = 2, site: int = 0, pristine=None):
    """The pristine CuI supercell and its Cu Frenkel pair: the Cu at the origin on tetrahedral site ``site``.

    :param site: index into :data:`CUI_TETRAHEDRAL_I_SITES` (0: (1/2, 0, 0) a, a/2 from that Cu).
    :param pristine: the supercell to use (e.g. a phonopy supercell, whose atom order differs from ASE's),
        with a Cu at the origin; default ``bulk('CuI', 'zincblende', cubic=True).repeat(repeat)``.
    :returns: ``(pristine, defect)`` ASE Atoms (unrelaxed), the atoms in the same order.
    """
    from ase.build import bulk

    if pristine is None:
        pristine = bulk('CuI', 'zincblende', a=lattice_constant, cubic=True).repeat(repeat)
    pristine = pristine.copy()
    pristine.calc = None
    origin = [k for k, atom in enumerate(pristine) if atom.symbol == 'Cu' and np.allclose(atom.position, 0, atol=1e-6)]
    if not origin:
        raise ValueError('the pristine supercell has no Cu at the origin')
    target = np.asarray(CUI_TETRAHEDRAL_I_SITES[site]) * lattice_constant
    return pristine, frenkel_pair(pristine, origin[0], target)


def cui_interstitial_sites(lattice_constant: float = 6.06, repeat: int = 2) -> np.ndarray:
    """Cartesian positions of every tetrahedral interstitial site coordinated by I in a ``repeat``^3 supercell of the
    conventional zincblende cell (:data:`CUI_TETRAHEDRAL_I_SITES` in each cell), shape ``(4 repeat^3, 3)``."""
    cells = np.array([(i, j, k) for i in range(repeat) for j in range(repeat) for k in range(repeat)], dtype=float)
    sites = np.asarray(CUI_TETRAHEDRAL_I_SITES, dtype=float)
    return ((cells[:, None, :] + sites[None, :, :]) * lattice_constant).reshape(-1, 3)


def interstitials(atoms, lattice_sites, interstitial_sites, indices=None) -> list[tuple[int, int, float]]:
    """The atoms that sit in an interstitial basin: nearer (minimum image) to one of ``interstitial_sites`` than
    to any of ``lattice_sites`` (their own sublattice's sites, e.g. the Cu sites of the crystal).

    The basin of a site is its Voronoi cell among all sites, so an atom counts once it has crossed the midpoint
    between its lattice site and the interstitial (1.5 A for CuI's Cu at (1/2, 0, 0) a). ``indices``: the atoms
    to look at (default all). Returns ``(atom, nearest interstitial site, its distance in A)`` per such atom.
    """
    cell, pbc = atoms.cell, atoms.pbc
    lattice_sites = np.asarray(lattice_sites, dtype=float)
    interstitial_sites = np.asarray(interstitial_sites, dtype=float)
    found = []
    for k in range(len(atoms)) if indices is None else indices:
        position = atoms.positions[k]
        _, to_lattice = find_mic(lattice_sites - position, cell, pbc)
        _, to_interstitial = find_mic(interstitial_sites - position, cell, pbc)
        nearest = int(np.argmin(to_interstitial))
        if to_interstitial[nearest] < to_lattice.min():
            found.append((int(k), nearest, float(to_interstitial[nearest])))
    return found


def cui_frenkel_basin(atoms, pristine, lattice_constant: float = 6.06) -> list[tuple[int, int, float]]:
    """The Cu atoms of a CuI frame (the atoms in the order of ``pristine``, the ideal supercell) that sit in the
    basin of an empty tetrahedral site coordinated by I: a Frenkel pair (:func:`interstitials`)."""
    copper = [k for k, symbol in enumerate(pristine.get_chemical_symbols()) if symbol == 'Cu']
    repeat = round(float(pristine.cell.lengths()[0]) / lattice_constant)
    sites = cui_interstitial_sites(lattice_constant, repeat)
    return interstitials(atoms, pristine.positions[copper], sites, copper)


def vacancy_hop(crystal, index: int = 0):
    """End points (unrelaxed) of a vacancy hop: atom ``index`` removed, then its nearest neighbour moved into the site.

    :returns: ``(initial, final)``, each with one atom fewer than ``crystal``, the atoms in the same order.
    """
    if not 0 <= index < len(crystal):
        raise ValueError(f'atom {index} does not exist in {len(crystal)} atoms')
    others = [k for k in range(len(crystal)) if k != index]
    neighbour = others[int(np.argmin(crystal.get_distances(index, others, mic=True)))]
    initial = crystal.copy()
    initial.calc = None
    del initial[index]
    final = initial.copy()
    final.positions[neighbour - (neighbour > index)] = crystal.positions[index]
    return initial, final


def neighbour_shell(atoms, position, cutoff: float = 3.2) -> dict[str, list[float]]:
    """Distances (A, sorted) from ``position`` to the atoms within ``cutoff``, per element."""
    _, distances = find_mic(atoms.positions - np.asarray(position, dtype=float), atoms.cell, atoms.pbc)
    shell: dict[str, list[float]] = {}
    for symbol, distance in zip(atoms.get_chemical_symbols(), distances, strict=True):
        if 1e-6 < distance <= cutoff:
            shell.setdefault(symbol, []).append(round(float(distance), 3))
    return {symbol: sorted(values) for symbol, values in sorted(shell.items())}


@dataclass
class Relaxation:
    atoms: object
    energy: float
    converged: bool
    steps: int


def relax(atoms, calculator, fmax: float = 0.02, steps: int = 300, optimizer: str = 'BFGS') -> Relaxation:
    """Relax the positions (fixed cell) of a copy of ``atoms`` with ``calculator``."""
    from ase import optimize

    relaxed = atoms.copy()
    relaxed.calc = calculator
    opt = getattr(optimize, optimizer)(relaxed, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    energy = float(relaxed.get_potential_energy())
    return Relaxation(relaxed, energy, converged, int(opt.nsteps))


@dataclass
class MinimumCheck:
    """Does a relaxed structure stay where it is under a rattle and re-relaxation?"""

    is_minimum: bool
    max_displacement: float  # A, largest move of an atom from the relaxed structure
    energy_change: float  # eV, re-relaxed minus relaxed
    moved_atom_displacement: float | None  # A, of the atom that was watched (e.g. the interstitial)


def check_minimum(
    relaxed: Relaxation,
    calculator,
    rattle: float = 0.05,
    seed: int = 0,
    tolerance: float = 0.1,
    watch: int | None = None,
    fmax: float = 0.02,
    steps: int = 300,
) -> MinimumCheck:
    """Rattle ``relaxed`` (Gaussian, ``rattle`` A), relax again; a minimum when no atom ends > ``tolerance`` away."""
    rattled = relaxed.atoms.copy()
    rattled.rattle(stdev=rattle, seed=seed)
    again = relax(rattled, calculator, fmax=fmax, steps=steps)
    _, lengths = find_mic(again.atoms.positions - relaxed.atoms.positions, relaxed.atoms.cell, relaxed.atoms.pbc)
    return MinimumCheck(
        is_minimum=bool(lengths.max() <= tolerance),
        max_displacement=float(lengths.max()),
        energy_change=float(again.energy - relaxed.energy),
        moved_atom_displacement=None if watch is None else float(lengths[watch]),
    )
