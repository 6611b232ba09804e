"""Write the fixture folders of the parser tests: what each program leaves in its job folder, per final state.

Run from the repository root: ``python tests/parsers/make_fixtures.py``. Every case folder holds
``retrieved/`` (the files the calculation retrieves into its FolderData), ``temporary/`` (the files
it retrieves only for the parser) and ``expected.json`` (exit status, exit code label, a piece of
the exit message, and the outputs the parser must create). The files are written by the writers
the programs use (``FrameRecorder``, ``json``, ``numpy``), so they have the programs' formats.
Inputs of the calculation nodes are built by ``test_parsers.py`` (4-atom fcc Cu).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent / 'fixtures'
N_ATOMS = 4


def case(program: str, name: str, expected: dict, retrieved: dict | None = None, temporary: dict | None = None):
    folder = HERE / program / name
    if folder.exists():
        shutil.rmtree(folder)
    for part, files in (('retrieved', retrieved or {}), ('temporary', temporary or {})):
        (folder / part).mkdir(parents=True)
        for filename, content in files.items():
            path = folder / part / filename
            if callable(content):
                content(path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
    (folder / 'expected.json').write_text(json.dumps(expected, indent=1) + '\n')


def status(state: str, message: str = '', **extra) -> dict:
    return {'state': state, 'message': message, **extra, 'seconds': 1.0}


# ------------------------------------------------------------------------------------------- label
def label_record(index: int, state: str = 'ok') -> dict:
    if state != 'ok':
        return {'index': index, 'status': state, 'message': f'{state} in the fixture', 'seconds': 0.1}
    forces = (0.01 * np.arange(3 * N_ATOMS).reshape(N_ATOMS, 3) - 0.05).tolist()
    return {
        'index': index,
        'status': 'ok',
        'energy': -14.0 + 0.1 * index,
        'forces': forces,
        'stress': [0.0] * 6,
        'seconds': 0.1,
        'scf_iterations': None,
    }


def labels(*records, cut: bool = False) -> str:
    text = ''.join(json.dumps(r) + '\n' for r in records)
    return text + ('{"index": 1, "status": "ok", "ene' if cut else '')


def label_cases():
    ok0, ok1 = label_record(0), label_record(1)
    case(
        'label',
        'finished',
        {'exit_status': 0, 'outputs': ['labelled']},
        {'status.json': status('finished', done=2), 'labels.jsonl': labels(ok0, ok1)},
    )
    case(
        'label',
        'setup_failed',
        {'exit_status': 303, 'label': 'ERROR_SETUP_FAILED', 'message': 'no engine', 'outputs': ['failures']},
        {'status.json': status('setup_failed', 'EngineError: no engine')},
    )
    case(
        'label',
        'failed',
        {
            'exit_status': 305,
            'label': 'ERROR_PROGRAM_FAILED',
            'message': 'MemoryError: out of memory; 1 structure(s) not reached',
            'outputs': ['failures', 'labelled'],
        },
        {'status.json': status('failed', 'MemoryError: out of memory'), 'labels.jsonl': labels(ok0)},
    )
    case(
        'label',
        'failed_after_the_last_label',
        {'exit_status': 0, 'outputs': ['labelled']},
        {'status.json': status('failed', 'OSError: disk full'), 'labels.jsonl': labels(ok0, ok1)},
    )
    case(
        'label',
        'time_budget_spent',
        {
            'exit_status': 330,
            'label': 'ERROR_INTERRUPTED',
            'message': '1 structure(s) not reached: time budget',
            'outputs': ['failures', 'labelled'],
        },
        {'status.json': status('time_budget_spent', 'stopped after 9.0 s', done=1), 'labels.jsonl': labels(ok0)},
    )
    case(
        'label',
        'killed',
        {'exit_status': 330, 'label': 'ERROR_INTERRUPTED', 'message': 'killed', 'outputs': ['failures', 'labelled']},
        {'labels.jsonl': labels(ok0, cut=True)},
    )
    case(
        'label',
        'killed_after_the_last_label',
        {'exit_status': 0, 'outputs': ['labelled']},
        {'labels.jsonl': labels(ok0, ok1)},
    )
    case('label', 'killed_before_any_label', {'exit_status': 300, 'label': 'ERROR_NO_OUTPUT', 'outputs': ['failures']})
    case(
        'label',
        'scf_not_converged',
        {
            'exit_status': 310,
            'label': 'ERROR_SCF_NOT_CONVERGED',
            'message': '1 structure(s)',
            'outputs': ['failures', 'labelled'],
        },
        {'status.json': status('finished', done=2), 'labels.jsonl': labels(ok0, label_record(1, 'scf_not_converged'))},
    )
    case(
        'label',
        'structures_failed',
        {'exit_status': 311, 'label': 'ERROR_STRUCTURES_FAILED', 'outputs': ['failures', 'labelled']},
        {'status.json': status('finished', done=2), 'labels.jsonl': labels(ok0, label_record(1, 'error'))},
    )
    case(
        'label',
        'labels_corrupt',
        {'exit_status': 304, 'label': 'ERROR_OUTPUT_CORRUPT', 'message': 'labels.jsonl', 'outputs': []},
        {'status.json': status('finished', done=2), 'labels.jsonl': '{"index": 0, broken\n' + labels(ok1)},
    )
    case(
        'label',
        'status_corrupt',
        {'exit_status': 304, 'label': 'ERROR_OUTPUT_CORRUPT', 'message': 'status.json', 'outputs': ['labelled']},
        {'status.json': '{"state": "fini', 'labels.jsonl': labels(ok0, ok1)},
    )


# ---------------------------------------------------------------------------------------------- md
def md_frames(n_frames: int):
    """``frames.bin`` + ``frames.json`` of ``n_frames`` frames, written by the MD program's recorder."""
    from aiida_anharmal.core.md.files import FrameRecorder

    def write(path: Path):
        recorder = FrameRecorder(path.parent, N_ATOMS, per_atom=True)
        for k in range(n_frames):
            scalars = {
                'step': 10 * k,
                'time': 20.0 * k,
                'energy': -14.0 + 0.01 * k,
                'uce_energy': 0.01,
                'uce_force_max': 0.05 + 0.01 * k,
                'anharmonicity': np.nan,
                'uce_anharmonicity': np.nan,
                'temperature': 300.0,
                'kinetic_energy': 0.1,
                'tau': np.nan,
                'bias_force': np.nan,
                'trigger_score': np.nan,
            }
            positions = 1.8 * np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=float) + 0.01 * k
            recorder.write(scalars, positions, np.zeros((N_ATOMS, 3)), np.zeros((N_ATOMS, 3)), np.full(N_ATOMS, 0.02))
        recorder.close()

    return write


def md_case(name: str, expected: dict, state_status: dict | str | None, n_frames: int = 3):
    retrieved, temporary = {}, {}
    if n_frames:
        temporary['frames.bin'] = md_frames(n_frames)  # also writes frames.json next to it; moved below
    if state_status is not None:
        retrieved['status.json'] = state_status
    case('md', name, expected, retrieved, temporary)
    layout = HERE / 'md' / name / 'temporary' / 'frames.json'
    if layout.exists():
        layout.rename(HERE / 'md' / name / 'retrieved' / 'frames.json')


def md_cases():
    frames = ['frames', 'trajectory']
    md_case('finished', {'exit_status': 0, 'outputs': frames}, status('finished', last_step=20, frames_written=3))
    guards = {
        'atoms_too_close': 320,
        'force_too_large': 321,
        'uncertainty_too_large': 322,
        'temperature_runaway': 323,
        'not_finite': 324,
        'anharmonicity_too_large': 325,
    }
    from aiida_anharmal.core.md.stop_rules import TRIGGERS

    guards.update({rule.reason: rule.exit_status for rule in TRIGGERS})  # a trigger ends a run like a guard
    for reason, code in guards.items():
        md_case(
            reason,
            {'exit_status': code, 'message': f'{reason} in the fixture', 'outputs': frames},
            status(reason, f'{reason} in the fixture', last_step=20, frames_written=3),
        )
    md_case(
        'time_budget_spent',
        {'exit_status': 330, 'label': 'ERROR_INTERRUPTED', 'message': 'after 60 s', 'outputs': frames},
        status('time_budget_spent', 'stopped at step 20 after 60 s'),
    )
    md_case('killed', {'exit_status': 330, 'label': 'ERROR_INTERRUPTED', 'message': 'killed', 'outputs': frames}, None)
    md_case(
        'killed_before_any_frame', {'exit_status': 300, 'label': 'ERROR_NO_OUTPUT', 'outputs': []}, None, n_frames=0
    )
    md_case(
        'setup_failed',
        {'exit_status': 303, 'label': 'ERROR_SETUP_FAILED', 'message': 'species', 'outputs': []},
        status('setup_failed', 'ValueError: species I not in the ensemble'),
        n_frames=0,
    )
    md_case(
        'failed',
        {'exit_status': 305, 'label': 'ERROR_PROGRAM_FAILED', 'message': 'RuntimeError', 'outputs': frames},
        status('failed', 'RuntimeError: CUDA error'),
    )
    md_case(
        'status_corrupt',
        {'exit_status': 304, 'label': 'ERROR_OUTPUT_CORRUPT', 'message': 'status.json', 'outputs': frames},
        '{"state": "finis',
    )
    md_case(
        'unknown_state',
        {'exit_status': 305, 'label': 'ERROR_PROGRAM_FAILED', 'message': 'unknown final state', 'outputs': frames},
        status('tilted', 'a state no stop rule has'),
    )


# ------------------------------------------------------------------------------------------- train
def stand_in_model() -> bytes:
    """A zip archive (what every model format is; the same bytes on every run) that is never loaded."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        info = zipfile.ZipInfo('fixture.txt', date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(info, 'fixture stand-in for a packaged model')
    return buffer.getvalue()


def train_case(
    name: str, expected: dict, state_status: dict | None, model: bool, compiled: bool = False, metrics: bool = True
):
    retrieved = {} if state_status is None else {'status.json': state_status}
    if metrics:
        retrieved['metrics.json'] = {
            'train': {'forces_mae': 0.02},
            'validation': {'forces_mae': 0.03},
            'epochs': 3,
            'seconds': 12.0,
        }
        retrieved['learning_curve.csv'] = 'epoch,forces_mae,weighted_sum\n0,0.2,0.3\n1,0.1,0.15\n2,0.03,0.05\n'
    temporary = {}
    if model:  # the parser stores the file as it is; what is inside a package is nequip's business
        temporary['model.nequip.zip'] = stand_in_model()
    if compiled:
        temporary['model.nequip.pt2'] = stand_in_model()  # a PT2 package is a zip archive too
    case('train', name, expected, retrieved, temporary)


def train_cases():
    everything = ['learning_curve', 'metrics', 'model']
    train_case('finished', {'exit_status': 0, 'outputs': everything}, status('finished'), model=True)
    train_case(
        'finished_and_compiled',
        {'exit_status': 0, 'outputs': ['compiled_model', *everything]},
        status('finished'),
        model=True,
        compiled=True,
    )
    train_case(
        'setup_failed',
        {'exit_status': 303, 'label': 'ERROR_SETUP_FAILED', 'message': 'stress', 'outputs': []},
        status('setup_failed', 'ValueError: no stress labels'),
        model=False,
        metrics=False,
    )
    train_case(
        'training_failed',
        {
            'exit_status': 312,
            'label': 'ERROR_TRAINING_FAILED',
            'message': 'exited with 1',
            'outputs': ['learning_curve', 'metrics'],
        },
        status('training_failed', 'nequip-train exited with 1: CUDA out of memory'),
        model=False,
    )
    train_case(
        'packaging_failed',
        {'exit_status': 313, 'label': 'ERROR_PACKAGING_FAILED', 'outputs': ['learning_curve', 'metrics']},
        status('packaging_failed', 'nequip-package exited with 1'),
        model=False,
    )
    train_case(
        'compile_failed',
        {'exit_status': 314, 'label': 'ERROR_COMPILE_FAILED', 'outputs': everything},
        status('compile_failed', 'nequip-compile exited with 1'),
        model=True,
    )
    train_case(
        'failed',
        {'exit_status': 305, 'label': 'ERROR_PROGRAM_FAILED', 'outputs': ['learning_curve', 'metrics']},
        status('failed', 'KeyError: epoch'),
        model=False,
    )
    train_case(
        'killed',
        {'exit_status': 300, 'label': 'ERROR_NO_OUTPUT', 'outputs': ['learning_curve', 'metrics']},
        None,
        model=False,
    )
    train_case(
        'finished_without_model',
        {
            'exit_status': 304,
            'label': 'ERROR_OUTPUT_CORRUPT',
            'message': 'model.nequip.zip',
            'outputs': ['learning_curve', 'metrics'],
        },
        status('finished'),
        model=False,
    )


# ---------------------------------------------------------------------------------------- evaluate
def evaluation_npz(path: Path):
    np.savez(
        path, energy=np.array([-14.0, -13.9]), uce_energy=np.array([0.01, 0.02]), uce_force_max=np.array([0.05, 0.06])
    )


def evaluate_cases():
    statistics = {
        'uce_force_max': {'mean': 0.055, 'std': 0.005},
        'energy': {'mean': -13.95, 'std': 0.05},
        'errors': {'forces_mae': 0.02},
        'seconds': 1.0,
    }
    finished = {'status.json': status('finished'), 'statistics.json': statistics}
    case(
        'evaluate',
        'finished',
        {'exit_status': 0, 'outputs': ['evaluation', 'statistics']},
        finished,
        {'evaluation.npz': evaluation_npz},
    )
    case(
        'evaluate',
        'setup_failed',
        {'exit_status': 303, 'label': 'ERROR_SETUP_FAILED', 'message': 'zip', 'outputs': []},
        {'status.json': status('setup_failed', 'BadZipFile: not a zip')},
    )
    case(
        'evaluate',
        'failed',
        {'exit_status': 305, 'label': 'ERROR_PROGRAM_FAILED', 'message': 'RuntimeError', 'outputs': []},
        {'status.json': status('failed', 'RuntimeError: shape mismatch')},
    )
    case('evaluate', 'killed', {'exit_status': 300, 'label': 'ERROR_NO_OUTPUT', 'outputs': []})
    case(
        'evaluate',
        'finished_without_arrays',
        {'exit_status': 304, 'label': 'ERROR_OUTPUT_CORRUPT', 'message': 'evaluation.npz', 'outputs': []},
        finished,
    )


# --------------------------------------------------------------------------------------- lifetimes
def lifetimes_npz(path: Path):
    flags = np.array(['no_mode', 'ok', 'beyond_run'])
    np.savez(path, frequency=np.array([0.0, 3.1, 4.2]), tau=np.array([np.nan, 2.5, np.inf]), flag=flags)


def lifetimes_cases():
    summary = {'frames': 500, 'modes': 3, 'flags': {'no_mode': 1, 'ok': 1, 'beyond_run': 1}, 'seconds': 1.0}
    finished = {'status.json': status('finished'), 'summary.json': summary}
    ok = {'exit_status': 0, 'outputs': ['modes', 'summary']}
    case('lifetimes', 'finished', ok, finished, {'lifetimes.npz': lifetimes_npz})
    for name, code, label, message in (
        ('setup_failed', 303, 'ERROR_SETUP_FAILED', 'ValueError: the trajectory has no velocities'),
        ('failed', 305, 'ERROR_PROGRAM_FAILED', 'MemoryError'),
    ):
        expected = {'exit_status': code, 'label': label, 'message': message, 'outputs': []}
        case('lifetimes', name, expected, {'status.json': status(name, message)})
    case('lifetimes', 'killed', {'exit_status': 300, 'label': 'ERROR_NO_OUTPUT', 'outputs': []})
    corrupt = {'exit_status': 304, 'label': 'ERROR_OUTPUT_CORRUPT', 'message': 'lifetimes', 'outputs': []}
    case('lifetimes', 'finished_without_arrays', corrupt, finished)


if __name__ == '__main__':
    for program in ('label', 'md', 'train', 'evaluate', 'lifetimes'):
        if (HERE / program).exists():
            shutil.rmtree(HERE / program)
    label_cases()
    md_cases()
    train_cases()
    evaluate_cases()
    lifetimes_cases()
    print('\n'.join(sorted(str(p.parent.relative_to(HERE)) for p in HERE.rglob('expected.json'))))
