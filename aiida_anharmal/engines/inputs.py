"""Input files the programs share: the ensemble's member files and the harmonic reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HARMONIC_FILE = 'harmonic.npz'


def read_harmonic(path: Path):
    """The :class:`~aiida_anharmal.core.phonons.anharmonicity.HarmonicReference` of a ``harmonic.npz``."""
    from ase.data import chemical_symbols

    from ..core.phonons.anharmonicity import HarmonicReference

    with np.load(path) as data:
        return HarmonicReference(
            positions=data['positions'],
            cell=data['cell'],
            force_constants=data['force_constants'],
            symbols=tuple(chemical_symbols[z] for z in data['numbers']),
        )


def optional_harmonic(directory: Path, config: dict):
    """The harmonic reference named by ``config['harmonic_file']``, or ``None``."""
    name = config.get('harmonic_file')
    return read_harmonic(Path(directory) / name) if name else None


def load_ensemble(directory: Path, config: dict):
    """What predicts energies and forces: the :class:`~aiida_anharmal.core.models.ensemble.EnsembleCalculator` of
    ``config['member_files']``, or with ``config['engine']`` (``{'engine', 'parameters', 'model_file'}``) the
    labelling engine itself as an ensemble of one (:class:`~aiida_anharmal.core.models.uncertainty.CalculatorAsEnsemble`),
    or with ``config['bayesian_file']`` a Bayesian force-constant fit
    (:class:`~aiida_anharmal.core.bayesian.dynamic_training.BayesianPotential`).
    """
    if config.get('bayesian_file'):
        from ..core.bayesian.dynamic_training import BayesianPotential
        from ..core.bayesian.model import model_from_arrays

        with np.load(Path(directory) / config['bayesian_file']) as data:
            model = model_from_arrays({name: data[name] for name in data.files})
        seed = int(config.get('md', {}).get('seed', 0))  # the committee's draw follows the MD seed
        return BayesianPotential(model, int(config.get('posterior_samples') or 0), seed)
    if config.get('engine'):
        from ..core.labelling.labellers import check_request
        from ..core.models.uncertainty import CalculatorAsEnsemble

        engine = config['engine']
        labeller, _ = check_request(engine['engine'], engine.get('parameters', {}), ['energy', 'forces'])
        model = engine.get('model_file')
        calculator = labeller.make_calculator(
            engine.get('parameters', {}), model_path=Path(directory) / model if model else None, directory=directory
        )
        return CalculatorAsEnsemble(calculator, name=labeller.name)
    from ..core.models.ensemble import EnsembleCalculator

    files = [Path(directory) / name for name in config['member_files']]
    return EnsembleCalculator.from_files(files, workers=config.get('workers'))
