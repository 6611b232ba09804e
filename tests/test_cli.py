"""The `anharmal` command and the plugin entry points."""

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from aiida_anharmal import __version__
from aiida_anharmal.cli import cli
from aiida_anharmal.cli.setup import ensure_codes
from aiida_anharmal.data import TrainingSet

from .conftest import cu_structures


def test_codes_created_once_per_program(aiida_localhost):
    first = ensure_codes(aiida_localhost, echo=lambda *_: None)
    again = ensure_codes(aiida_localhost, echo=lambda *_: None)
    assert {k: c.pk for k, c in first.items()} == {k: c.pk for k, c in again.items()}
    assert sorted(first) == [
        'anharmal-evaluate',
        'anharmal-label',
        'anharmal-lifetimes',
        'anharmal-md',
        'anharmal-neb',
        'anharmal-perturbative',
        'anharmal-train',
    ]
    for code in first.values():
        assert Path(code.filepath_executable).exists() and 'OMP_NUM_THREADS=1' in code.prepend_text


def test_dataset_export_and_import(tmp_path, aiida_profile):
    from ase.calculators.emt import EMT

    atoms = cu_structures(3)
    for a in atoms:
        a.calc = EMT()
        a.get_potential_energy(), a.get_forces()
    node = TrainingSet.from_ase(atoms, origins=[{'kind': 'initial', 'frame': k} for k in range(3)])
    node.set_label_provenance('emt', 'toy', 'ASE EMT, a toy')
    node.store()
    runner = CliRunner()
    path = tmp_path / 'out.extxyz'
    result = runner.invoke(cli, ['dataset', 'export', '-p', aiida_profile.name, str(node.pk), str(path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ['dataset', 'import', '-p', aiida_profile.name, str(path)])
    assert result.exit_code == 0, result.output
    assert 'stored TrainingSet' in result.output
    imported = TrainingSet.collection.get(pk=int(result.output.split('TrainingSet<')[1].split('>')[0]))
    attributes = imported.base.attributes  # the label provenance survives the round trip
    assert (attributes.get('label_engine'), attributes.get('ground_truth')) == ('emt', 'toy')
    assert attributes.get('label_description') == 'ASE EMT, a toy' and imported.origins[2]['frame'] == 2
    result = runner.invoke(cli, ['dataset', 'show', '-p', aiida_profile.name, str(node.pk)])
    assert 'frame=2' in result.output


def test_version_and_short_help():
    runner = CliRunner()
    version = runner.invoke(cli, ['--version'])
    assert version.exit_code == 0 and version.output.strip() == f'aiida-anharmal {__version__}'
    for command in ([], ['al'], ['al', 'status'], ['dataset', 'show']):
        result = runner.invoke(cli, [*command, '-h'])
        assert result.exit_code == 0 and result.output.startswith('Usage: '), (command, result.output)


def test_plugins_listed_by_verdi():
    verdi = str(Path(sys.executable).parent / 'verdi')
    for group, names in {
        'aiida.calculations': ['anharmal.label', 'anharmal.train', 'anharmal.evaluate', 'anharmal.md'],
        'aiida.parsers': ['anharmal.label', 'anharmal.train', 'anharmal.evaluate', 'anharmal.md'],
        'aiida.data': ['anharmal.training_set', 'anharmal.mlip_model', 'anharmal.ensemble', 'anharmal.force_constants'],
        'aiida.workflows': [
            'anharmal.label',
            'anharmal.label.base',
            'anharmal.ensemble',
            'anharmal.harmonic',
            'anharmal.md.base',
            'anharmal.explore',
            'anharmal.active_learning',
        ],
    }.items():
        out = subprocess.run([verdi, 'plugin', 'list', group], capture_output=True, text=True, check=True).stdout
        for name in names:
            assert f'* {name}\n' in out


def one_line_error(result, *parts):
    """A user error: a non-zero exit, one line naming it, no traceback."""
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: '), result.output
    assert 'Traceback' not in result.output and isinstance(result.exception, SystemExit)  # click's exit, not a crash
    for part in parts:
        assert part in lines[0], lines[0]


def test_user_errors_get_one_line_and_a_nonzero_exit(tmp_path, aiida_profile):
    from aiida import orm
    from ase.calculators.emt import EMT

    atoms = cu_structures(1)
    atoms[0].calc = EMT()
    atoms[0].get_forces()
    training_set = TrainingSet.from_ase(atoms).store()
    data = orm.Int(3).store()
    workflow = orm.WorkflowNode().store()  # a process that is not an AL run
    runner, p = CliRunner(), aiida_profile.name
    cases = [
        (['al', 'status', '-p', p, '987654321'], "no node with identifier '987654321'"),
        (['al', 'status', '-p', p, str(data.pk)], f'Int<{data.pk}> is not an ActiveLearningWorkChain'),
        (['al', 'status', '-p', p, str(workflow.pk)], 'is not an ActiveLearningWorkChain'),
        (['al', 'plot', '-p', p, str(workflow.pk), '-o', str(tmp_path)], 'is not an ActiveLearningWorkChain'),
        (['al', 'timing', '-p', p, str(training_set.pk)], 'is not an ActiveLearningWorkChain'),
        (['al', 'provenance', '-p', p, str(data.pk), '0'], 'is not a TrainingSet or an ActiveLearningWorkChain'),
        (['al', 'export', '-p', p, str(data.pk), str(tmp_path / 'x.xyz')], 'is not a TrainingSet or an'),
        (['al', 'validate', '-p', p, str(data.pk)], 'is not an ActiveLearningWorkChain or a ValidationMDWorkChain'),
        (['dataset', 'show', '-p', p, str(data.pk)], f'Int<{data.pk}> is not a TrainingSet'),
        (['dataset', 'export', '-p', p, str(training_set.pk), str(tmp_path / 'missing' / 'x.xyz')], 'does not exist'),
        (['dynamic', 'status', '-p', p, str(data.pk)], 'is not a DynamicTrainingWorkChain'),
        (['al', 'status', '-p', 'no-such-profile', '1'], 'cannot load profile no-such-profile'),
    ]
    for arguments, message in cases:
        one_line_error(runner.invoke(cli, arguments), message)
    not_xyz = tmp_path / 'notes.txt'
    not_xyz.write_text('this is not a structure file\n')
    one_line_error(runner.invoke(cli, ['dataset', 'import', '-p', p, str(not_xyz)]), 'is not an extended XYZ file')
