"""One ASE calculator over the N members of a NequIP ensemble (torch + nequip, no AiiDA import).

The members of an ensemble share species and cutoff, so the input graph (type mapping and
neighbour list) is built once per structure and handed to every member. Members then run
concurrently in a small thread pool: torch releases the GIL inside its kernels, so on a
machine with ``w`` cores ``w`` members progress at the same time (each with its own copy of
the positions and cell, which the models mark for autograd). Results are identical to
evaluating the members one after the other.

Besides the ASE properties of the ensemble mean (``energy``, ``free_energy``, ``forces``,
``stress``), ``results`` holds the member values and the uncertainties of
:mod:`aiida_anharmal.core.models.uncertainty`: ``member_energies`` (N,), ``member_forces``
(N, n_atoms, 3), ``member_stresses`` (N, 6), ``uce_energy``, ``uce_forces`` (n_atoms,),
``uce_force_max``.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .uncertainty import EnsemblePrediction


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_member(path: str | Path, device: str = 'cpu', compile_mode: str = 'eager'):
    """Load a nequip model in eval mode: packaged (``.nequip.zip``), checkpoint (``.ckpt``) or
    AOT-inductor compiled for ASE (``.nequip.pt2`` from ``nequip-compile --target ase``)."""
    from nequip.utils.global_state import set_global_state

    if str(path).endswith('.nequip.pt2'):
        from nequip.integrations.ase import NequIPCalculator
        from nequip.model.inference_models.compiled import load_compiled_model

        target = NequIPCalculator._get_aoti_compile_target()
        model, metadata = load_compiled_model(str(path), device, list(target['input']), list(target['output']))
        model.metadata = metadata
        return model
    from nequip.model.saved_models.load_utils import load_saved_model

    set_global_state()
    model = load_saved_model(str(path), compile_mode=compile_mode)
    model.eval()
    return model.to(device)


def model_species_and_cutoff(model) -> tuple[list[str], float]:
    """Type names (in the model's type order) and r_max (A) from a nequip model's metadata."""
    from nequip.nn import graph_model

    names = model.metadata[graph_model.TYPE_NAMES_KEY]
    names = names.split(' ') if isinstance(names, str) else list(names)
    return names, float(model.metadata[graph_model.R_MAX_KEY])


class EnsembleCalculator(Calculator):
    """ASE calculator for an ensemble of nequip models: ensemble mean plus per-member values and UCE.

    :param models: loaded nequip ``GraphModel`` objects (see :func:`load_member`) or paths to
        packaged models; all must have the same type names and r_max.
    :param workers: members evaluated concurrently (default: as many as there are cores,
        at most the number of members); 1 evaluates them one after the other.
    :param device: torch device of the models and the graph.
    """

    implemented_properties: ClassVar[list[str]] = [
        'energy',
        'free_energy',
        'forces',
        'stress',
        'member_energies',
        'member_forces',
        'member_stresses',
        'uce_energy',
        'uce_forces',
        'uce_force_max',
    ]

    def __init__(self, models, workers: int | None = None, device: str = 'cpu', **kwargs):
        super().__init__(**kwargs)
        from nequip.integrations.utils import basic_transforms, handle_chemical_species_map

        models = [load_member(m, device) if isinstance(m, (str, Path)) else m for m in models]
        if not models:
            raise ValueError('an ensemble needs at least one model')
        species, r_max = model_species_and_cutoff(models[0])
        for k, model in enumerate(models[1:], start=1):
            other = model_species_and_cutoff(model)
            if other != (species, r_max):
                raise ValueError(
                    f'member {k} has types {other[0]} and r_max {other[1]}, member 0 has {species} and {r_max}: '
                    'the members of an ensemble must share both'
                )
        self.models = models
        self.species = species
        self.r_max = r_max
        self.device = device
        self.transforms = basic_transforms(
            models[0].metadata, r_max, species, handle_chemical_species_map(True, species)
        )
        self.workers = max(1, min(len(models), workers or available_cores()))
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        #: seconds spent building graphs (type mapping + neighbour list) and running members
        self.timing = {'graph': 0.0, 'members': 0.0, 'calls': 0}

    @classmethod
    def from_files(cls, paths, **kwargs) -> EnsembleCalculator:
        return cls([Path(p) for p in paths], **kwargs)

    @property
    def n_members(self) -> int:
        return len(self.models)

    def check_atoms(self, atoms) -> None:
        """Raise ``ValueError`` if ``atoms`` holds an element none of the members knows."""
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.species))
        if unknown:
            raise ValueError(f'elements {unknown} are not among the ensemble species {self.species}')

    def graph(self, atoms):
        """The model input (type mapping + neighbour list) of ``atoms``, built once for all members."""
        from nequip.data import AtomicDataDict, from_ase

        self.check_atoms(atoms)
        data = from_ase(atoms)
        for transform in self.transforms:
            data = transform(data)
        return AtomicDataDict.to_(data, self.device)

    @staticmethod
    def _run_member(model, data):
        from nequip.data import AtomicDataDict

        data = dict(data)
        # every member marks positions/cell for autograd: give each its own tensors
        for key in (AtomicDataDict.POSITIONS_KEY, AtomicDataDict.CELL_KEY):
            if key in data:
                data[key] = data[key].clone()
        out = model(data)
        energy = float(out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().cpu().reshape(()))
        forces = out[AtomicDataDict.FORCE_KEY].detach().cpu().numpy()
        stress = None
        if AtomicDataDict.STRESS_KEY in out:
            stress = full_3x3_to_voigt_6_stress(out[AtomicDataDict.STRESS_KEY].detach().cpu().numpy().reshape(3, 3))
        return energy, forces, stress

    def predict(self, atoms) -> EnsemblePrediction:
        """Evaluate every member on ``atoms`` (one neighbour list for all)."""
        t0 = time.perf_counter()
        data = self.graph(atoms)
        t1 = time.perf_counter()
        if self._pool is None:
            outputs = [self._run_member(model, data) for model in self.models]
        else:
            outputs = list(self._pool.map(lambda model: self._run_member(model, data), self.models))
        self.timing['graph'] += t1 - t0
        self.timing['members'] += time.perf_counter() - t1
        self.timing['calls'] += 1
        stresses = [o[2] for o in outputs]
        return EnsemblePrediction(
            member_energies=np.array([o[0] for o in outputs]),
            member_forces=np.stack([o[1] for o in outputs]),
            member_stresses=None if any(s is None for s in stresses) else np.stack(stresses),
        )

    def calculate(self, atoms=None, properties=('energy',), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        prediction = self.predict(self.atoms)
        self.results = {
            'energy': prediction.energy,
            'free_energy': prediction.energy,
            'forces': prediction.forces,
            'member_energies': prediction.member_energies,
            'member_forces': prediction.member_forces,
            'uce_energy': prediction.uce_energy,
            'uce_forces': prediction.uce_forces,
            'uce_force_max': prediction.uce_force_max,
        }
        if prediction.member_stresses is not None:
            self.results['stress'] = prediction.stress
            self.results['member_stresses'] = prediction.member_stresses

    def __del__(self):
        pool = getattr(self, '_pool', None)
        if pool is not None:
            pool.shutdown(wait=False)
