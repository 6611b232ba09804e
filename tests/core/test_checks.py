"""Checks that refuse bad structures and engine requests before compute (pure, no AiiDA)."""

import pytest
from ase import Atoms
from ase.build import bulk

from aiida_anharmal.core.labelling.labellers import EngineError, check_request, get_labeller
from aiida_anharmal.core.structures.checks import StructureError, check_frames, check_species
from aiida_anharmal.core.structures.frames import Frames


def frames_of(*atoms):
    return Frames.from_atoms(atoms)


def test_good_structure_passes():
    check_frames(frames_of(bulk('Cu', 'fcc', a=3.6)))


def test_empty_batch():
    with pytest.raises(StructureError, match='empty'):
        check_frames(Frames.empty())


def test_close_atoms():
    atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)
    atoms.positions[1] = atoms.positions[0] + [0.2, 0, 0]
    with pytest.raises(StructureError, match=r'atoms 0 and 1 are 0\.200 A apart'):
        check_frames(frames_of(atoms))


def test_non_periodic():
    atoms = bulk('Cu', 'fcc', a=3.6)
    atoms.pbc = [True, True, False]
    with pytest.raises(StructureError, match='not periodic along z'):
        check_frames(frames_of(atoms))


def test_singular_cell():
    atoms = Atoms('Cu', positions=[[0, 0, 0]], cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True)
    with pytest.raises(StructureError, match='singular'):
        check_frames(frames_of(atoms))


def test_unknown_engine():
    with pytest.raises(
        EngineError,
        match="unknown labelling engine 'vasp'; known engines: emt, ensemble, gpaw, nequip-reference, tersoff$",
    ):
        check_request('vasp', {})


def test_element_not_supported_by_emt():
    supported = get_labeller('emt').supported_elements({})
    with pytest.raises(StructureError, match='does not support the element'):
        check_species(['Cu', 'I'], supported, 'engine `emt`')


def test_gpaw_setups_found_offline():
    supported = get_labeller('gpaw').supported_elements({'xc': 'PBE'})
    assert {'Cu', 'I', 'Cs', 'Pb'} <= supported


def test_gpaw_lcao_has_no_stress():
    with pytest.raises(EngineError, match='cannot compute'):
        check_request('gpaw', {'mode': 'lcao'}, ['energy', 'stress'])


def test_gpaw_scf_retry_parameters_escalate():
    gpaw = get_labeller('gpaw')
    first = gpaw.scf_retry_parameters({'maxiter': 3}, 1)
    assert first['maxiter'] == 100 and 'mixer' not in first
    second = gpaw.scf_retry_parameters(first, 2)
    assert second['maxiter'] == 200 and second['mixer']['beta'] == 0.025


def test_the_tersoff_engine_is_silicon_at_its_published_minimum():
    """Tersoff's Si(C): a = 5.432 A, E_c = 4.63 eV/atom (Phys. Rev. B 38, 9902 (1988)); other elements refused."""
    labeller = get_labeller('tersoff')
    energies = []
    for a in (5.40, 5.432, 5.46):
        atoms = bulk('Si', 'diamond', a=a)
        atoms.calc = labeller.make_calculator({})
        energies.append(atoms.get_potential_energy() / len(atoms))
    assert energies[1] == pytest.approx(-4.63, abs=0.005) and energies[1] < min(energies[0], energies[2])
    assert labeller.supported_elements({}) == {'Si'} and labeller.ground_truth == 'toy'
    with pytest.raises(EngineError, match='takes only `skin`'):
        check_request('tersoff', {'cutoff': 3.0}, None)
