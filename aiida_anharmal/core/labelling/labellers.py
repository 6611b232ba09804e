"""Labelling engines: which ASE calculator computes the ground-truth labels (no AiiDA import).

A :class:`Labeller` knows how to check its parameters and the elements it supports before any
compute, how to build its ASE calculator, whether a failure is an SCF failure, and what to
change in its parameters to recover from one. The ``anharmal-label`` program and the AiiDA
layer both use this registry, so validation and execution cannot drift apart.

Engines:

``gpaw``
    Real DFT with GPAW (plane waves or LCAO). Parameters are passed to ``gpaw.GPAW``. PAW
    setups come from the ``gpaw-data`` package and load offline.
``emt``
    ASE's effective-medium theory: a toy for fast tests of the machinery (not DFT).
``tersoff``
    ASE's Tersoff potential with the Si(C) parameters of Tersoff (1988): silicon only, anharmonic enough for
    third- and fourth-order force constants; a cheap ground truth of dynamic training (not DFT).
``nequip-reference``
    A NequIP model used as a stand-in for DFT (Kang et al. validate this way). Provenance
    marks its labels as ``ground_truth = 'stand-in'``.
``ensemble``
    The mean of a trained ensemble (its members' files). Not a ground truth
    (``ground_truth = 'surrogate'``): for quantities *of the model*, such as its third-order
    force constants, computed through the same labelling machinery as the ground truth's.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ..registry import Registry

#: Properties a labeller may compute.
ALL_PROPERTIES = ('energy', 'forces', 'stress')


class EngineError(ValueError):
    """Engine name or engine parameters are not usable."""


class Labeller(ABC):
    """One labelling engine."""

    #: the engine's name in the inputs (and of its entry point in ``anharmal.labellers``)
    key: str = ''
    #: 'dft' for real electronic structure, 'stand-in' for a model used in place of DFT,
    #: 'toy' for a cheap empirical potential used to test machinery.
    ground_truth: str = 'dft'
    description: str = ''
    needs_model: bool = False
    #: The engine evaluates the members of an ensemble (``member_paths`` of :meth:`make_calculator`).
    needs_ensemble: bool = False

    #: The parameters the engine takes (``None``: it checks them itself in :meth:`check_parameters`).
    parameter_names: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self.key

    def check_parameters(self, parameters: dict) -> None:
        """Raise :class:`EngineError` for parameters the engine cannot use (by default: any not in
        :attr:`parameter_names`)."""
        if self.parameter_names is None:
            return
        unknown = set(parameters) - set(self.parameter_names)
        if unknown:
            names = [f'`{name}`' for name in self.parameter_names]
            listed = names[0] if len(names) == 1 else f'{", ".join(names[:-1])} and {names[-1]}'
            raise EngineError(f'engine `{self.name}` takes only {listed}, not {sorted(unknown)}')

    def supported_elements(self, parameters: dict, model_species=None) -> set[str] | None:
        """Elements this engine can label with these parameters (``None``: unknown, do not check)."""
        return None

    def default_properties(self, parameters: dict) -> tuple[str, ...]:
        return ALL_PROPERTIES

    @abstractmethod
    def make_calculator(
        self, parameters: dict, model_path: str | Path | None = None, directory: str | Path = '.', member_paths=None
    ):
        """Return an ASE calculator."""

    def is_scf_failure(self, exception: BaseException) -> bool:
        return False

    def scf_retry_parameters(self, parameters: dict, attempt: int) -> dict | None:
        """Parameters for retry number ``attempt`` (1, 2, ...) after an SCF failure; ``None``: no fix."""
        return None

    def scf_iterations(self, calculator) -> int | None:
        return None


class EMTLabeller(Labeller):
    key = 'emt'
    ground_truth = 'toy'
    description = "ASE's effective-medium theory (toy potential for tests, not DFT)"

    parameter_names = ('asap_cutoff',)

    def supported_elements(self, parameters: dict, model_species=None) -> set[str]:
        from ase.calculators.emt import parameters as emt_parameters

        return set(emt_parameters)

    def make_calculator(self, parameters: dict, model_path=None, directory='.', member_paths=None):
        from ase.calculators.emt import EMT

        return EMT(**parameters)


class GPAWLabeller(Labeller):
    key = 'gpaw'
    ground_truth = 'dft'
    description = 'GPAW density-functional theory (PW or LCAO; PAW setups from gpaw-data)'
    #: GPAW's default maximum number of SCF iterations.
    default_maxiter = 333

    def check_parameters(self, parameters: dict) -> None:
        if self.mode_name(parameters) not in ('pw', 'lcao', 'fd'):
            raise EngineError(
                "engine `gpaw`: mode must be 'pw', 'lcao' or 'fd' (or a dict with `name`), "
                f'not {parameters.get("mode")!r}'
            )
        if 'txt' in parameters or 'directory' in parameters:
            raise EngineError('engine `gpaw`: `txt` and `directory` are set by aiida-anharmal, do not pass them')
        maxiter = parameters.get('maxiter', self.default_maxiter)
        if not isinstance(maxiter, int) or maxiter < 1:
            raise EngineError(f'engine `gpaw`: `maxiter` must be a positive integer, not {maxiter!r}')
        known = self.keywords()
        unknown = sorted(set(parameters) - known) if known is not None else []
        if unknown:
            raise EngineError(f'engine `gpaw`: unknown keyword(s) {unknown}; GPAW takes {sorted(known)}')
        self.check_xc(parameters.get('xc'))

    @staticmethod
    def keywords() -> set[str] | None:
        """The keywords of this GPAW's calculator (``None`` where GPAW is not installed: checked by the job)."""
        try:
            import inspect

            from gpaw.dft import GPAW
        except ImportError:
            return None
        signature = inspect.signature(GPAW).parameters.values()
        return {p.name for p in signature if p.kind == p.KEYWORD_ONLY} - {'txt', 'communicator', 'object_hooks'}

    @staticmethod
    def check_xc(xc) -> None:
        """An ``xc`` name GPAW does not know is refused (dicts and a missing GPAW are left to the job)."""
        if not isinstance(xc, str):
            return
        try:
            from gpaw.xc import XC
        except ImportError:
            return
        try:
            XC(xc)
        except Exception as exc:  # noqa: BLE001 - GPAW raises NameError, KeyError or ValueError for a bad name
            raise EngineError(f'engine `gpaw`: unknown exchange-correlation functional `xc` {xc!r} ({exc})') from None

    @staticmethod
    def mode_name(parameters: dict) -> str:
        mode = parameters.get('mode', 'fd')
        return mode.get('name') if isinstance(mode, dict) else mode

    def default_properties(self, parameters: dict) -> tuple[str, ...]:
        # GPAW computes stress in plane-wave mode only.
        return ALL_PROPERTIES if self.mode_name(parameters) == 'pw' else ('energy', 'forces')

    def supported_elements(self, parameters: dict, model_species=None) -> set[str] | None:
        """Elements with a PAW setup for the chosen functional in GPAW's setup paths."""
        try:
            import gpaw
        except ImportError:
            return None  # checked on the machine that runs the job
        xc = parameters.get('xc', 'LDA')
        xc_name = xc if isinstance(xc, str) else xc.get('name', 'LDA')
        setup_name = parameters.get('setups', 'paw')
        if not isinstance(setup_name, str):
            return None
        wanted = xc_name if setup_name == 'paw' else f'{setup_name}.{xc_name}'
        found = set()
        for path in map(Path, gpaw.setup_paths):
            if not path.is_dir():
                continue
            for file in path.iterdir():
                # e.g. Cu.PBE.gz (default setup), Ag.11.PBE.gz (setup name '11')
                name = file.name.removesuffix('.gz')
                symbol, _, rest = name.partition('.')
                if rest == wanted:
                    found.add(symbol)
        return found or None

    def make_calculator(self, parameters: dict, model_path=None, directory='.', member_paths=None):
        from gpaw import GPAW

        kwargs = copy.deepcopy(parameters)
        kwargs.setdefault('txt', str(Path(directory) / 'gpaw.txt'))
        if 'kpts' in kwargs and isinstance(kwargs['kpts'], list):
            kwargs['kpts'] = tuple(kwargs['kpts'])
        return GPAW(**kwargs)

    def is_scf_failure(self, exception: BaseException) -> bool:
        try:
            from gpaw import ConvergenceError
        except ImportError:  # pragma: no cover - only without gpaw
            return 'Convergence' in type(exception).__name__
        return isinstance(exception, ConvergenceError)

    def scf_retry_parameters(self, parameters: dict, attempt: int) -> dict:
        """First retry: twice the iterations (at least 100). Later: also a gentler density mixer.

        Charge sloshing in metals and distorted cells is what usually stops GPAW's SCF; a smaller
        mixing fraction ``beta`` with a longer history damps it at the cost of more iterations.
        """
        new = copy.deepcopy(parameters)
        new['maxiter'] = max(2 * int(parameters.get('maxiter', self.default_maxiter)), 100)
        if attempt >= 2:
            mixer = dict(new.get('mixer') or {})
            mixer['beta'] = min(float(mixer.get('beta', 0.05)) / 2, 0.025)
            mixer['nmaxold'] = max(int(mixer.get('nmaxold', 5)), 8)
            mixer['weight'] = float(mixer.get('weight', 50.0))
            new['mixer'] = mixer
        return new

    def scf_iterations(self, calculator) -> int | None:
        try:
            return int(calculator.get_number_of_iterations())
        except Exception:  # noqa: BLE001 - older GPAW versions lack it or raise before a run
            return None


class ModelLabeller(Labeller):
    """An engine that is a machine-learned model: the model's species, energy and forces (no stress)."""

    def supported_elements(self, parameters: dict, model_species=None) -> set[str] | None:
        return set(model_species) if model_species is not None else None

    def default_properties(self, parameters: dict) -> tuple[str, ...]:
        return ('energy', 'forces')


class NequIPReferenceLabeller(ModelLabeller):
    key = 'nequip-reference'
    ground_truth = 'stand-in'
    description = 'a NequIP model used as a stand-in for DFT (not DFT)'
    needs_model = True

    parameter_names = ('device',)

    def make_calculator(self, parameters: dict, model_path=None, directory='.', member_paths=None):
        from ..models.nequip_legacy import LegacyNequIPCalculator

        if model_path is None:
            raise EngineError('engine `nequip-reference` needs a model file')
        return LegacyNequIPCalculator(model_path, device=parameters.get('device', 'cpu'))


class EnsembleLabeller(ModelLabeller):
    key = 'ensemble'
    ground_truth = 'surrogate'
    description = 'the mean of an ensemble of MLIPs (a model, not a ground truth)'
    needs_ensemble = True

    parameter_names = ('device', 'workers')

    def check_parameters(self, parameters: dict) -> None:
        super().check_parameters(parameters)
        workers = parameters.get('workers')
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise EngineError(f'engine `ensemble`: `workers` must be a positive integer, not {workers!r}')

    def make_calculator(self, parameters: dict, model_path=None, directory='.', member_paths=None):
        from ..models.ensemble import EnsembleCalculator

        if not member_paths:
            raise EngineError('engine `ensemble` needs the files of the ensemble members')
        return EnsembleCalculator.from_files(
            [str(path) for path in member_paths],
            device=parameters.get('device', 'cpu'),
            workers=parameters.get('workers'),
        )


class TersoffLabeller(Labeller):
    key = 'tersoff'
    ground_truth = 'toy'
    description = "ASE's Tersoff potential, Si(C) parameters of Tersoff, Phys. Rev. B 38, 9902 (1988) (not DFT)"

    parameter_names = ('skin',)  # the neighbour-list skin, A

    def supported_elements(self, parameters: dict, model_species=None) -> set[str]:
        return {'Si'}

    def make_calculator(self, parameters: dict, model_path=None, directory='.', member_paths=None):
        from importlib.resources import as_file, files

        from ase.calculators.tersoff import Tersoff

        with as_file(files('aiida_anharmal.resources') / 'tersoff' / 'Si.tersoff') as path:
            return Tersoff.from_lammps(path, skin=float(parameters.get('skin', 0.3)))


LABELLERS: Registry[type[Labeller]] = Registry('labelling engine', group='anharmal.labellers')


def get_labeller(name: str) -> Labeller:
    """Return the labeller called ``name``; raise :class:`EngineError` listing the known ones."""
    if not isinstance(name, str) or name not in LABELLERS:
        raise EngineError(f'unknown labelling engine {name!r}; known engines: {", ".join(sorted(LABELLERS.keys()))}')
    return LABELLERS.get(name)()


def check_request(engine: str, parameters: dict, properties: Any = None) -> tuple[Labeller, tuple[str, ...]]:
    """Validate an engine request; return the labeller and the properties to compute."""
    labeller = get_labeller(engine)
    if not isinstance(parameters, dict):
        raise EngineError(f'engine parameters must be a dictionary, not {type(parameters).__name__}')
    labeller.check_parameters(parameters)
    default = labeller.default_properties(parameters)
    if properties is None:
        return labeller, default
    properties = tuple(properties)
    wrong = [p for p in properties if p not in ALL_PROPERTIES]
    if wrong or not properties:
        raise EngineError(f'properties must be a non-empty subset of {ALL_PROPERTIES}, got {list(properties)}')
    unsupported = [p for p in properties if p not in default]
    if unsupported:
        raise EngineError(f'engine `{engine}` with these parameters cannot compute {unsupported}')
    return labeller, properties
