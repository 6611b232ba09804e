"""The validation of the AL loop through the daemon, tiny: the lifetimes (both routes, the engine and two ensembles)
and the validation MD (the ground-truth run started with the loop, the initial and final ensembles next to it)."""

import pytest
from aiida import get_profile
from aiida.engine import run_get_node
from click.testing import CliRunner

from aiida_anharmal.cli import cli
from aiida_anharmal.data import TrainingSet
from aiida_anharmal.data.force_constants import ForceConstants
from aiida_anharmal.workflows import ActiveLearningWorkChain

from .conftest import emt_cu_frames


@pytest.fixture
def harmonic():
    """EMT Cu's harmonic reference of the cubic cell repeated 2 x 2 x 1 (16 atoms), the loop's cell."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from aiida_anharmal.core.phonons.harmonic import force_constants_with

    return ForceConstants.from_phonopy(force_constants_with(EMT(), bulk('Cu', 'fcc', a=3.6, cubic=True), [2, 2, 1]))


TINY_LIFETIMES = {
    'md': {
        'equilibration': {'steps': 50, 'save_stride': 10},
        'production': {'steps': 500, 'save_stride': 5},  # 101 frames over 2 ps
        'analysis': {'dho': False},
    },
    'perturbative': {'displacements': {'cutoff_pair_distance': 3.0}, 'analysis': {'mesh': [3, 3, 3]}},
}


#: A validation MD of 30 steps of 2 fs, A(t) from 12 fs on.
TINY_VALIDATION = {
    'parameters': {'steps': 30, 'save_stride': 3, 'timestep': 2.0},
    'analysis': {'equilibration': 12.0, 'stride': 2},
}


def loop_builder(codes, harmonic, lifetimes, validation=None, **overrides):
    frames = emt_cu_frames(14)
    training, test = TrainingSet.from_ase(frames[:10]), TrainingSet.from_ase(frames[10:])
    for node in (training, test):
        node.set_label_provenance('emt', 'toy', 'ASE EMT')
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        harmonic.get_supercell(),
        engine='emt',
        protocol='fast',
        training_set=training,
        test_set=test,
        harmonic=harmonic,
        overrides={
            'acquisition': {'n_max': 3, 's': 0.01, 'g': 20.0},  # P(UCE) ~ 1/2: iteration 2 trains again
            'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 6}},
            'explore': {'temperatures': [600.0], 'parameters': {'steps': 60, 'save_stride': 4}},
            'validation': {**(validation or {}), 'lifetimes': lifetimes},
            **overrides,
        },
        options={'max_wallclock_seconds': 600},
    )


@pytest.fixture
def codes(train_code, evaluate_code, md_code, label_code, lifetimes_code, perturbative_code):
    return {
        'train': train_code,
        'evaluate': evaluate_code,
        'md': md_code,
        'label': label_code,
        'lifetimes': lifetimes_code,
        'perturbative': perturbative_code,
    }


@pytest.mark.slow
def test_both_routes_and_the_validation_md_before_and_after_learning(submit_and_await, codes, harmonic, tmp_path):
    builder = loop_builder(codes, harmonic.store(), TINY_LIFETIMES, TINY_VALIDATION)
    assert builder.validation.parameters['steps'] == 30 and builder.validation.parameters['temperature'] == 300.0
    node = submit_and_await(builder, timeout=1500)
    assert node.is_finished_ok, node.exit_message
    check_validation_md(node, tmp_path)
    lifetimes = node.outputs.lifetimes
    table = lifetimes['table']
    assert table.creator.process_label == 'compare_lifetimes'
    rows = {(r['route'], r['source']): r for r in table['rows']}
    assert sorted(rows) == [
        (route, source) for route in ('md', 'perturbative') for source in ('final', 'initial', 'reference')
    ]
    reference = rows[('perturbative', 'reference')]
    assert reference['ended'] == 'finished' and reference['ioffe_regel_fraction'] == 0.0  # EMT Cu: phonons
    assert rows[('md', 'reference')]['ended'] == 'finished' and rows[('md', 'reference')]['t_max'] > 1.9
    assert all(row['ended'] == 'finished' for row in rows.values())  # EMT Cu at 300 K: every ensemble stays put
    ensembles = {s: node.outputs.iterations[f'iter_0{k}'].ensemble for k, s in ((1, 'initial'), (2, 'final'))}
    for source, ensemble in ensembles.items():
        labelled = lifetimes[f'perturbative_{source}']['summary'].creator.caller.outputs.supercells
        assert labelled.ground_truth == 'surrogate' and ensemble.uuid in labelled.base.attributes.get(
            'label_description'
        )
    # the command line: the table, and the figure
    runner = CliRunner()
    profile = get_profile().name
    result = runner.invoke(cli, ['al', 'lifetimes', '-p', profile, str(node.pk)])
    assert result.exit_code == 0, result.output
    assert 'perturbative' in result.output and 'reference' in result.output and 'Ioffe-Regel' in result.output
    result = runner.invoke(cli, ['al', 'plot', '-p', profile, str(node.pk), '-o', str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / 'lifetimes.png').exists()


def check_validation_md(node, tmp_path):
    """The validation MD of the loop: the initial and final ensembles next to the ground-truth run, which started
    with the loop (the test set was given), before any training, and which the validation took over."""
    from aiida import orm

    validation = [c for c in node.called if c.process_label == 'ValidationMDWorkChain']
    assert len(validation) == 1 and sorted(validation[0].inputs.ensembles) == ['final', 'initial']
    assert validation[0].inputs.ensembles['initial'].uuid == node.outputs.iterations['iter_01']['ensemble'].uuid
    assert validation[0].inputs.ensembles['final'].uuid == node.outputs.ensemble.uuid
    assert validation[0].inputs.reference.engine.value == 'emt'
    links = node.base.links
    ground_truth = links.get_outgoing(link_label_filter='validation_ground_truth').one().node
    first_training = links.get_outgoing(link_label_filter='ensemble_01').one().node
    assert ground_truth.ctime < first_training.ctime and ground_truth.is_finished_ok
    assert validation[0].inputs.ground_truth.trajectory.uuid == ground_truth.outputs.trajectory.uuid
    assert validation[0].inputs.ground_truth.ended.value == 'finished'
    assert 'md_reference' not in {link.link_label for link in validation[0].base.links.get_outgoing().all()}
    # a ground truth that did not start from the validation's structure is refused
    restart = validation[0].get_builder_restart()
    moved = validation[0].inputs.structure.get_ase()
    moved.positions[0] += 0.1
    restart.structure = orm.StructureData(ase=moved)
    with pytest.raises(ValueError, match='does not start from `structure`'):
        run_get_node(restart)
    rows = {row['run']: row for row in node.outputs.validation['rows']}
    assert set(rows) == {'reference', 'initial', 'final'}
    result = CliRunner().invoke(cli, ['al', 'validate', str(node.pk)])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.strip().splitlines()[2:]] == ['reference', 'final', 'initial']
    plots = CliRunner().invoke(cli, ['al', 'plot', str(node.pk), '-o', str(tmp_path / 'validation')])
    assert plots.exit_code == 0 and (tmp_path / 'validation' / 'validation_md.png').exists(), plots.output


def test_a_lifetimes_validation_is_checked_before_any_job(codes, harmonic):
    with pytest.raises(ValueError, match='takes the routes'):
        loop_builder(codes, harmonic, {'phono3py': {}})
    with pytest.raises(ValueError, match='labels like the loop'):
        loop_builder(codes, harmonic, {'perturbative': {'label': {'batch_size': 3}}})
    with pytest.raises(ValueError, match=r"needs codes \['perturbative'\]"):
        loop_builder({**codes, 'perturbative': None}, harmonic, {'perturbative': {}})
    cases = [
        ({'md': {'production': {'steps': 100}}}, r'lifetimes validation \(md\): the production saves 20 frames'),
        ({'perturbative': {'analysis': {'meshes': 3}}}, r'lifetimes validation \(perturbative\): unknown `analysis`'),
        ({'perturbative': {'displacements': {'n_random': 3}}}, 'symfc'),
        ({'perturbative': {'analysis': {'mesh': [0, 3, 3]}}}, 'three positive integers'),
        ({'perturbative': {'analysis': {'sigma': -1.0}}}, 'positive smearing width'),
    ]
    for lifetimes, match in cases:
        with pytest.raises(ValueError, match=match):
            run_get_node(loop_builder(codes, harmonic.store(), lifetimes))
