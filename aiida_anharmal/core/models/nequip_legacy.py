"""ASE calculator for deployed NequIP 0.5.x TorchScript models (no AiiDA import).

nequip >= 0.7 no longer loads these files, but published reference potentials use them, e.g.
the CuI model of the ALmoMD tutorial that Kang et al. use in place of DFT. The deployed file
carries its metadata as TorchScript extra files (``r_max``, ``type_names``, ``nequip_version``).

Inputs follow the nequip 0.5 ``AtomicDataDict`` convention: ``edge_index[0]`` is the centre
atom ``i``, ``edge_index[1]`` the neighbour ``j``, and the edge vector is
``pos[j] - pos[i] + edge_cell_shift @ cell``, exactly ASE's ``neighbor_list('ijS')``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list

_METADATA_KEYS = ('nequip_version', 'r_max', 'type_names', 'model_dtype', 'default_dtype')


@dataclass(frozen=True)
class LegacyModelInfo:
    """Metadata of a deployed NequIP 0.5 model."""

    nequip_version: str
    r_max: float
    type_names: tuple[str, ...]
    dtype: str


def read_metadata(path: str | Path) -> LegacyModelInfo:
    """Read the metadata of a deployed model; raise ``ValueError`` if it is not one."""
    import torch

    extra = {key: '' for key in _METADATA_KEYS}
    try:
        torch.jit.load(str(path), map_location='cpu', _extra_files=extra)
    except Exception as exc:
        raise ValueError(f'{path} is not a deployed (TorchScript) NequIP model: {exc}') from exc
    meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in extra.items()}
    if not meta['nequip_version'] or not meta['r_max'] or not meta['type_names']:
        raise ValueError(f'{path} is TorchScript but carries no NequIP metadata (r_max, type_names)')
    dtype = meta['model_dtype'] or meta['default_dtype'] or 'float64'
    return LegacyModelInfo(
        nequip_version=meta['nequip_version'],
        r_max=float(meta['r_max']),
        type_names=tuple(meta['type_names'].split()),
        dtype=dtype,
    )


def build_input(atoms, r_max: float, type_names, dtype):
    """Return the input dictionary of a nequip 0.5 model for ``atoms`` (a fresh dict each call)."""
    import torch

    symbols = atoms.get_chemical_symbols()
    type_of = {name: k for k, name in enumerate(type_names)}
    unknown = sorted(set(symbols) - set(type_of))
    if unknown:
        raise ValueError(f'the model knows the species {list(type_names)}, not {unknown}')
    i, j, shift = neighbor_list('ijS', atoms, r_max)
    return {
        'pos': torch.tensor(atoms.positions, dtype=dtype),
        'edge_index': torch.tensor(np.stack([i, j]), dtype=torch.long),
        'edge_cell_shift': torch.tensor(shift, dtype=dtype),
        'cell': torch.tensor(atoms.cell.array, dtype=dtype),
        'pbc': torch.tensor(atoms.pbc, dtype=torch.bool),
        'atom_types': torch.tensor([[type_of[s]] for s in symbols], dtype=torch.long),
    }


class LegacyNequIPCalculator(Calculator):
    """Energy and forces from a deployed NequIP 0.5 TorchScript model."""

    implemented_properties: ClassVar[list[str]] = ['energy', 'free_energy', 'forces', 'energies']

    def __init__(self, model_path: str | Path, device: str = 'cpu', **kwargs):
        super().__init__(**kwargs)
        import torch

        self.info = read_metadata(model_path)
        self.device = torch.device(device)
        self.dtype = getattr(torch, self.info.dtype)
        self.model = torch.jit.load(str(model_path), map_location=self.device)
        self.model.eval()

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        data = build_input(self.atoms, self.info.r_max, self.info.type_names, self.dtype)
        data = {k: v.to(self.device) for k, v in data.items()}
        out = self.model(data)
        energy = float(out['total_energy'].detach().cpu().reshape(-1)[0])
        self.results = {
            'energy': energy,
            'free_energy': energy,
            'forces': out['forces'].detach().cpu().numpy().astype(np.float64),
            'energies': out['atomic_energy'].detach().cpu().numpy().reshape(-1).astype(np.float64),
        }
