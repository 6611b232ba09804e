"""Every final state of every program through its parser, from the fixture folders, without a daemon.

Each case folder of ``fixtures/<program>/<case>/`` holds what the program leaves behind
(``retrieved/``, ``temporary/``) and ``expected.json``; ``make_fixtures.py`` writes them. The
parser runs on a stored CalcJobNode with real inputs, as the engine would run it after a job.
"""

import json
import shutil
from pathlib import Path

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.plugins import CalculationFactory, ParserFactory
from ase.build import bulk

from ..conftest import placeholder_ensemble

FIXTURES = Path(__file__).parent / 'fixtures'
CASES = sorted((p.parent.parent.name, p.parent.name) for p in FIXTURES.glob('*/*/expected.json'))


def cu_frames(n=2):
    from aiida_anharmal.data import TrainingSet

    return TrainingSet.from_ase([bulk('Cu', 'fcc', a=3.6, cubic=True) for _ in range(n)])


def inputs_of(program: str) -> dict:
    """Stored input nodes of a calculation of ``program``, as the parser reads them."""
    if program == 'label':
        return {'structures': cu_frames().store(), 'engine': orm.Str('emt').store()}
    if program == 'md':
        return {
            'ensemble': placeholder_ensemble(),
            'structure': orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6, cubic=True)).store(),
        }
    if program == 'train':
        return {
            'training_set': cu_frames(3).store(),
            'subsample': orm.Dict({'train': [0, 1], 'validation': [2]}).store(),
            'seed': orm.Int(3).store(),
            'hyperparameters': orm.Dict({'r_max': 4.0}).store(),
        }
    return {'ensemble': placeholder_ensemble(), 'structures': cu_frames().store()}


def parse_case(program: str, name: str | Path, computer, tmp_path: Path):
    """Run the parser of ``program`` on the fixture ``name`` (or a folder like it): (outputs, calcfunction node)."""
    folder = name if isinstance(name, Path) else FIXTURES / program / name
    node = orm.CalcJobNode(computer=computer, process_type=f'aiida.calculations:anharmal.{program}')
    node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
    for label, value in inputs_of(program).items():
        node.base.links.add_incoming(value, link_type=LinkType.INPUT_CALC, link_label=label)
    node.store()
    retrieved = orm.FolderData()
    if (folder / 'retrieved').is_dir():
        retrieved.base.repository.put_object_from_tree(str(folder / 'retrieved'))
    retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
    retrieved.store()
    temporary = tmp_path / 'temporary'
    if (folder / 'temporary').is_dir():
        shutil.copytree(folder / 'temporary', temporary)
    else:
        temporary.mkdir()
    parser = ParserFactory(f'anharmal.{program}')
    return parser.parse_from_node(node, store_provenance=False, retrieved_temporary_folder=str(temporary))


@pytest.mark.parametrize('program, name', CASES, ids=[f'{p}-{n}' for p, n in CASES])
def test_every_state_of_every_program(program, name, aiida_localhost, tmp_path):
    expected = json.loads((FIXTURES / program / name / 'expected.json').read_text())
    outputs, calcfunction = parse_case(program, name, aiida_localhost, tmp_path)
    assert calcfunction.exit_status == expected['exit_status'], calcfunction.exit_message
    assert sorted(outputs) == sorted(expected['outputs'])
    if expected['exit_status']:
        codes = CalculationFactory(f'anharmal.{program}').exit_codes
        labels = [label for label, code in codes.items() if code.status == expected['exit_status']]
        assert len(labels) == 1 and labels[0] == expected.get('label', labels[0])
        assert expected.get('message', '') in calcfunction.exit_message


def test_every_program_state_has_a_fixture():
    """The map of each calculation (program state -> exit code) is covered by the fixtures."""
    for program in ('label', 'md', 'train', 'evaluate', 'lifetimes'):
        states = set(CalculationFactory(f'anharmal.{program}').state_exit_codes())
        names = {name for p, name in CASES if p == program}
        missing = sorted(state for state in states if state not in names)
        assert not missing, f'{program}: no fixture for the state(s) {missing}'


def test_label_outputs_keep_every_finished_label(aiida_localhost, tmp_path):
    outputs, _ = parse_case('label', 'time_budget_spent', aiida_localhost, tmp_path)
    assert len(outputs['labelled']) == 1 and outputs['labelled'].frames.energy[0] == pytest.approx(-14.0)
    assert outputs['failures'].get_dict()['1']['reason'] == 'not_attempted'


def test_md_outputs_are_every_saved_frame(aiida_localhost, tmp_path):
    outputs, _ = parse_case('md', 'atoms_too_close', aiida_localhost, tmp_path)
    assert outputs['trajectory'].numsteps == 3 and list(outputs['frames'].get_array('step')) == [0, 10, 20]
    assert outputs['frames'].get_array('uce_force_max')[-1] == pytest.approx(0.07)
