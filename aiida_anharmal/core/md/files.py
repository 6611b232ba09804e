"""The files of an MD run: fixed-size frame records and the checkpoint; numpy only, no AiiDA import.

``frames.bin`` holds one record of :data:`SCALARS`, positions, velocities, mean forces (and per-atom
UCE_F) per saved frame, flushed at once, so a killed run keeps every complete frame;
``frames.json`` says the layout. ``checkpoint.json`` (written atomically) holds what continues the
same trajectory: step, positions, momenta, the state of the random generator and the settings.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from ase import Atoms

# --------------------------------------------------------------------------------------- recorder
#: Scalars of every saved frame, in record order.
SCALARS = (
    'step',
    'time',
    'energy',
    'uce_energy',
    'uce_force_max',
    'anharmonicity',
    'uce_anharmonicity',
    'temperature',
    'kinetic_energy',
    'tau',
    'bias_force',
    'trigger_score',
)
#: The scalars a bias records (NaN without one): tau of the frame's forces and the mean over atoms of
#: |grad sigma| (eV/A per unit tau); ``trigger_score`` is the stop trigger's score (NaN without one).
BIAS_SCALARS = ('tau', 'bias_force')


class FrameRecorder:
    """Append-only binary file of fixed-size frame records (a killed run keeps every complete frame).

    Record: :data:`SCALARS`, positions (3N), velocities (3N, A/fs), mean forces (3N), and per-atom
    UCE_F (N) if ``per_atom``. ``frames.json`` says the layout; :func:`read_frames` reads it back.
    """

    def __init__(
        self,
        directory: str | Path,
        n_atoms: int,
        per_atom: bool = True,
        append_after_step: int | None = None,
        sync_seconds: float = 10.0,
    ):
        self.directory = Path(directory)
        self.n_atoms = n_atoms
        self.per_atom = per_atom
        self.sync_seconds = sync_seconds
        layout = {'n_atoms': n_atoms, 'scalars': list(SCALARS), 'per_atom_uncertainty': per_atom}
        old = self.directory / 'frames.json'
        if append_after_step is not None and old.exists() and json.loads(old.read_text()) != layout:
            raise ValueError(
                f'the frames to continue have the layout {json.loads(old.read_text())}, this version writes {layout}: '
                'start a new run from the last frame (parent_trajectory) instead'
            )
        (self.directory / 'frames.json').write_text(json.dumps(layout))
        path = self.directory / 'frames.bin'
        if append_after_step is not None:
            keep_frames_until(path, record_length(n_atoms, per_atom), append_after_step)
        self._handle = path.open('wb' if append_after_step is None else 'ab')
        self._last_sync = time.monotonic()

    def write(self, scalars: dict, positions, velocities, forces, uce_forces) -> None:
        parts = [
            np.array([scalars[name] for name in SCALARS], dtype=float),
            np.ravel(positions),
            np.ravel(velocities),
            np.ravel(forces),
        ]
        if self.per_atom:
            parts.append(np.ravel(uce_forces))
        self._handle.write(np.concatenate(parts).astype('<f8').tobytes())
        # flushed to the OS at once (a killed process loses nothing); synced to disk every
        # `sync_seconds` (what a crash of the machine could lose), as fsync costs milliseconds
        self._handle.flush()
        if time.monotonic() - self._last_sync > self.sync_seconds:
            os.fsync(self._handle.fileno())
            self._last_sync = time.monotonic()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


def record_length(n_atoms: int, per_atom: bool, n_scalars: int = len(SCALARS)) -> int:
    return n_scalars + 9 * n_atoms + (n_atoms if per_atom else 0)


def keep_frames_until(path: Path, length: int, step: int) -> None:
    """Before continuing from a checkpoint at ``step``: cut a record a kill left half-written, and
    any frame written after the checkpoint (it will be computed again, identically)."""
    if not path.exists():
        return
    raw = np.fromfile(path, dtype='<f8')
    n_whole = len(raw) // length
    steps = raw[: n_whole * length].reshape(n_whole, length)[:, 0] if n_whole else np.zeros(0)
    keep = int(np.searchsorted(steps, step, side='right'))
    if keep * length * 8 != path.stat().st_size:
        with path.open('r+b') as handle:
            handle.truncate(keep * length * 8)


def read_frames(directory: str | Path) -> dict[str, np.ndarray]:
    """Arrays of every complete frame: the scalars, ``positions``/``velocities``/``forces`` (T, N, 3),
    ``uce_forces`` (T, N) if recorded."""
    directory = Path(directory)
    layout = json.loads((directory / 'frames.json').read_text())
    n, per_atom = layout['n_atoms'], layout['per_atom_uncertainty']
    length = record_length(n, per_atom, len(layout['scalars']))  # the layout of the file (older ones have fewer)
    raw = np.fromfile(directory / 'frames.bin', dtype='<f8') if (directory / 'frames.bin').exists() else np.zeros(0)
    raw = raw[: len(raw) - len(raw) % length].reshape(-1, length)
    out = {name: raw[:, k] for k, name in enumerate(layout['scalars'])}
    out['step'] = out['step'].astype(int)
    offset = len(layout['scalars'])
    for name in ('positions', 'velocities', 'forces'):
        out[name] = raw[:, offset : offset + 3 * n].reshape(-1, n, 3)
        offset += 3 * n
    if per_atom:
        out['uce_forces'] = raw[:, offset : offset + n]
    return out


# ------------------------------------------------------------------------------------- checkpoint
def write_checkpoint(
    path: Path, atoms: Atoms, step: int, rng: np.random.Generator, settings, extra: dict | None = None
) -> None:
    """Atomically: what continues the trajectory (``extra``: e.g. the state of a bias)."""
    state = {
        'step': step,
        'positions': atoms.positions.tolist(),
        'momenta': atoms.get_momenta().tolist(),
        'rng_state': rng.bit_generator.state,
        'settings': asdict(settings),
        **(extra or {}),
    }
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict:
    return json.loads(Path(path).read_text())
