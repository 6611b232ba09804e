"""Fine-tuning a member is not worse than training it from scratch on the same data (EMT Cu, two seeds).

The retraining of the loop in small, with the ``fast`` protocol's recipe (at most 400 epochs from
scratch, early stopping, fine-tuning for at most 150): parents trained on 12 frames; then, on those
12 plus 8 new frames of a hotter crystal, members trained from scratch against members fine-tuned
from the parents, both scored on 8 held-out hot frames. The programs run as a
TrainCalculation runs them (``anharmal-train`` in a folder).

Fine-tuning needs parents near their plateau: with parents of 80 epochs, fine-tuning (30 or 80
epochs at the fine-tuning learning rate) was 1.6-2.3 times worse than 80 epochs from scratch
(53-98 against 33-42 meV/A). The protocol's recipe was chosen on CuI with such parents
(``docs/source/ensembles.rst``).

Measured with these parents (400 epochs, 40-52 meV/A on the hot frames), 2026-12-01: scratch 17.4 / 18.0
meV/A; fine-tuned at learning rate 0.002, 0.005 or 0.01 36-41 (early stopping after 49-69 epochs: the
validation loss plateaus at 1.7 times that of scratch), the same with a cap of 400; with the parent put on
the new data's energy and force scale (the scale changes by 1.26) unchanged; shrunk and perturbed (Ash and
Adams 2020: 0.6 theta + 0.1 N(0, 1)) at learning rate 0.01, 150 epochs 34.5 / 34.8. Fine-tuning is
therefore not the default of any protocol (``retrain: scratch``); the CuI demo takes it, measured there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aiida_anharmal.core.frames import Frames

from .conftest import emt_cu_frames


def fast_recipe() -> dict:
    """The ``fast`` protocol's member recipe, as the loop trains members (EnsembleWorkChain's protocol file)."""
    from aiida_anharmal.workflows.ensemble import EnsembleWorkChain

    return dict(EnsembleWorkChain.get_protocol_inputs('fast')['hyperparameters'])


RECIPE = fast_recipe()


def hot_frames(n, seed):
    """Frames rattled twice as much as the parents' (what an exploration adds)."""
    frames = emt_cu_frames(n, seed=seed)
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    for atoms in frames:
        atoms.rattle(0.1, seed=seed + 100)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return frames


def train(folder: Path, frames, train, validation, seed, parent=None) -> Path:
    folder.mkdir(parents=True)
    (folder / 'structures.npz').write_bytes(frames.to_npz_bytes())
    config = {
        'species': ['Cu'],
        'seed': seed,
        'train_indices': list(train),
        'validation_indices': list(validation),
        'hyperparameters': RECIPE,
        'parent_file': None,
    }
    if parent is not None:
        (folder / 'parent.nequip.zip').write_bytes(parent.read_bytes())
        config['parent_file'] = 'parent.nequip.zip'
    (folder / 'aiida.json').write_text(json.dumps(config))
    program = Path(sys.executable).parent / 'anharmal-train'
    subprocess.run([str(program), '.'], cwd=folder, env={**os.environ, 'OMP_NUM_THREADS': '1'}, check=False)
    status = json.loads((folder / 'status.json').read_text())
    assert status['state'] == 'finished', status
    return folder / 'model.nequip.zip'


def force_mae(model: Path, frames) -> float:
    from aiida_anharmal.core.ensemble import EnsembleCalculator

    calculator = EnsembleCalculator.from_files([model], workers=1)
    errors = []
    for k in range(len(frames)):
        prediction = calculator.predict(frames.get_atoms(k, with_labels=False))
        errors.append(np.abs(prediction.forces - frames.forces[frames.atom_slice(k)]).mean())
    return float(np.mean(errors))


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason='measured 2026-12-01: on EMT Cu, fine-tuned members are about twice as bad as members trained from scratch '
    '(36-41 against 17-18 meV/A), unlike on CuI (docs/source/ensembles.rst); hence no protocol fine-tunes by default',
)
def test_finetuning_is_not_worse_than_scratch(tmp_path):
    base = Frames.from_atoms(emt_cu_frames(12, seed=0))
    enlarged = Frames.from_atoms(emt_cu_frames(12, seed=0) + hot_frames(8, seed=50))
    test = Frames.from_atoms(hot_frames(8, seed=80))
    train_idx, val_idx = [*range(10), *range(12, 18)], [10, 11, 18, 19]
    scratch, tuned = [], []
    for seed in (0, 1):
        parent = train(tmp_path / f'parent{seed}', base, range(10), [10, 11], seed)
        scratch.append(force_mae(train(tmp_path / f'scratch{seed}', enlarged, train_idx, val_idx, seed), test))
        tuned.append(
            force_mae(train(tmp_path / f'tuned{seed}', enlarged, train_idx, val_idx, seed, parent=parent), test)
        )
        metrics = json.loads((tmp_path / f'tuned{seed}' / 'metrics.json').read_text())
        assert metrics['epochs'] <= RECIPE['finetune_max_epochs']  # fine-tuning has its own, smaller cap
    noise = max(abs(scratch[0] - scratch[1]), 0.1 * np.mean(scratch))
    print(
        f'force MAE on held-out hot frames (meV/A): scratch {np.round(1000 * np.array(scratch), 1)}, '
        f'fine-tuned {np.round(1000 * np.array(tuned), 1)}'
    )
    assert np.mean(tuned) <= np.mean(scratch) + noise
