"""ActiveLearningWorkChain: protocol builder, refusal of bad input, and two iterations through the daemon.

The end-to-end run makes its initial data itself (random displacements of EMT Cu, labelled by
EMT), runs two iterations, and is then read back from the graph only: the stopping decision, the
summary, a QueryBuilder query for every frame's iteration and selection, the CLI (status,
provenance, export, plot) and an archive imported into a fresh profile.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from aiida import get_profile, orm
from aiida.engine import run_get_node
from click.testing import CliRunner

from aiida_anharmal.cli import cli
from aiida_anharmal.data import TrainingSet
from aiida_anharmal.workflows import ActiveLearningWorkChain
from aiida_anharmal.workflows.initial import InitialDataWorkChain

from .conftest import emt_cu_frames, placeholder_model_bytes


def codes_of(train_code, evaluate_code, md_code, label_code):
    return {'train': train_code, 'evaluate': evaluate_code, 'md': md_code, 'label': label_code}


def test_builder_from_protocol(train_code, evaluate_code, md_code, label_code):
    frames = emt_cu_frames(12)
    codes = codes_of(train_code, evaluate_code, md_code, label_code)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        frames[0],
        engine='emt',
        protocol='fast',
        training_set=TrainingSet.from_ase(frames[:8]),
        test_set=TrainingSet.from_ase(frames[8:]),
        overrides={
            'acquisition': {'n_max': 3},
            'ensemble': {'n_sub': 2, 'seeds': [0]},
            'explore': {'temperatures': [500.0]},
        },
        options={'max_wallclock_seconds': 120},
    )
    assert builder.max_iterations.value == 2
    assert builder.acquisition.get_dict()['n_max'] == 3 and builder.acquisition.get_dict()['kind'] == 'force_max'
    assert builder.convergence.get_dict() == {
        'tolerance': 0.002,
        'patience': 1,
        'max_error_over_uncertainty': 3.0,
        'quiet_explorations': 2,
        'max_mean_p_uncertainty': None,
    }
    assert builder.ensemble.n_sub.value == 2 and builder.ensemble.hyperparameters['l_max'] == 1
    assert builder.ensemble.retrain.value == 'scratch'  # fine-tuning is worse on EMT Cu
    assert builder.explore.temperatures.get_list() == [500.0] and builder.explore.parameters['steps'] == 200
    assert builder.label.engine.value == 'emt' and builder.label.code.pk == label_code.pk
    assert builder.explore.options['max_wallclock_seconds'] == 120
    assert builder.explore.options['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    assert 'mode' not in builder.initial
    # without a training set the protocol's initial data are made: random displacements here
    made = ActiveLearningWorkChain.get_builder_from_protocol(codes, frames[0], engine='emt', protocol='fast')
    assert made.initial.mode.value == 'random' and made.initial.parameters['n_train'] == 20
    # the codes of `anharmal setup` are found: by default, from the computer of one code, or fill a dict
    for code in (None, train_code, {'train': train_code}):
        found = ActiveLearningWorkChain.get_builder_from_protocol(code, frames[0], engine='emt', protocol='fast')
        assert found.ensemble.code.pk == train_code.pk and found.label.code.pk == label_code.pk
        assert found.evaluate_code.pk == evaluate_code.pk and found.explore.code.pk == md_code.pk
    elsewhere = orm.Computer('nowhere', 'localhost', transport_type='core.local', scheduler_type='core.direct').store()
    lonely = orm.InstalledCode(
        label='anharmal-train',
        computer=elsewhere,
        filepath_executable='/bin/true',
        default_calc_job_plugin='anharmal.train',
    ).store()
    with pytest.raises(ValueError, match=r"codes missing for \['evaluate', 'md', 'label'\].*anharmal setup"):
        ActiveLearningWorkChain.get_builder_from_protocol(lonely, frames[0])
    alien = orm.InstalledCode(
        label='pw', computer=elsewhere, filepath_executable='/bin/true', default_calc_job_plugin='core.arithmetic.add'
    ).store()
    with pytest.raises(ValueError, match='not a program of aiida-anharmal'):
        ActiveLearningWorkChain.get_builder_from_protocol(alien, frames[0])
    with pytest.raises(ValueError, match='`structure` is needed'):
        ActiveLearningWorkChain.get_builder_from_protocol(protocol='fast')
    with pytest.raises(ValueError, match='both `training_set` and `test_set`'):
        ActiveLearningWorkChain.get_builder_from_protocol(
            codes, frames[0], protocol='fast', training_set=TrainingSet.from_ase(frames)
        )
    # the moderate protocol makes its test set from a ground-truth MD: a training set alone is enough
    moderate = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, frames[0], training_set=TrainingSet.from_ase(frames)
    )
    assert moderate.test_md.get_dict() == {} and 'test_set' not in moderate


def labelled(frames, engine='emt'):
    node = TrainingSet.from_ase(frames)
    node.set_label_provenance(engine, 'toy', 'ASE EMT')
    return node


def test_bad_input_is_refused_before_any_job(train_code, evaluate_code, md_code, label_code):
    frames = emt_cu_frames(12)
    codes = codes_of(train_code, evaluate_code, md_code, label_code)

    def builder(overrides=None, **kwargs):
        kwargs.setdefault('training_set', labelled(frames[:8]))
        kwargs.setdefault('test_set', labelled(frames[8:]))
        return ActiveLearningWorkChain.get_builder_from_protocol(
            codes, kwargs.pop('structure', frames[0]), engine='emt', protocol='fast', overrides=overrides, **kwargs
        )

    silicon = frames[0].copy()
    silicon.symbols[0] = 'Si'
    cases = [
        (builder({'acquisition': {'n_max': 0}}), '`n_max` must be an integer of at least 1'),
        (builder({'acquisition': {'s': 0.0}}), '`s` must be a positive number'),
        (builder({'acquisition': {'g': -1.0}}), '`g` must be a positive number'),
        (builder({'acquisition': {'kind': 'forces'}}), '`kind` must be one of'),
        (builder({'acquisition': {'kind': 'anharmonicity'}}), 'needs the `harmonic` input'),
        (builder({'convergence': {'tolerance': 0}}), '`tolerance`'),
        (builder(test_set=labelled(frames[6:])), '2 frame\\(s\\) of the test set are also in the training set'),
        (builder(structure=silicon), 'engine `emt` does not support the element\\(s\\) Si'),
        (
            builder({'initial': {'mode': 'harmonic'}}, training_set=None, test_set=None),
            'initialisation mode `harmonic` needs the input `harmonic`',
        ),
        (
            builder(
                {'initial': {'mode': 'random', 'parameters': {'random': {'n_test': 1}}}},
                training_set=None,
                test_set=None,
            ),
            '`n_test` must be 0 \\(the test set comes from elsewhere\\) or at least 2',
        ),
    ]
    cases += [
        (builder({'acquisition': {'kind': 'trigger'}}), 'acquisition kind `trigger` labels the frames where a stop'),
        (builder({'acquisition': {'kind': 'trigger', 'frames_before': -1}}), '`frames_before` must be an integer'),
        (builder({'explore': {'bias': {'kind': 'hal', 'tau_r': 0.0}}}), r'`tau_r` must lie in \(0, 1\]'),
        (builder({'explore': {'trigger': {'kind': 'softmax', 's_tol': 2}}}), r'`s_tol` must lie in \(0, 1\)'),
        (
            builder({'explore': {'trigger': {'kind': 'softmax', 'epsilon': 0.1}}}),
            r"unknown parameter\(s\) \['epsilon'\]",
        ),
        (builder({'explore': {'bias': {'kind': 'hal', 'tau_hist': 0}}}), '`tau_hist` must be an integer of at least 1'),
        (
            builder({'explore': {'bias': {'kind': 'hal', 'tau_hist': 200}}}),
            '`explore.bias` `hal`: tau_hist 200 >= steps 200',
        ),
        (
            builder({'acquisition': {'kind': 'trigger'}, 'explore': {'trigger': {}}}),
            'acquisition kind `trigger` labels',
        ),
    ]
    hal = builder(exploration='hal')  # a valid HAL loop: the trigger acquisition with the protocol's bias and trigger
    assert hal.acquisition['kind'] == 'trigger' and hal.explore.trigger['kind'] == 'softmax'
    assert hal.explore.bias.get_dict() == {'kind': 'hal', 'tau': None, 'tau_r': 0.1, 'tau_hist': 20}
    from aiida_anharmal.workflows.active_learning_checks import validate_active_learning_inputs

    assert validate_active_learning_inputs(hal._inputs(prune=True), ActiveLearningWorkChain.spec().inputs) is None
    with pytest.raises(ValueError, match="`exploration` must be one of \\('md', 'hal'\\)"):
        builder(exploration='metadynamics')
    other = labelled(frames[:8], engine='nequip-reference')
    cases.append((builder(training_set=other), 'labelled by `nequip-reference` but the loop labels with `emt`'))
    both = builder()
    both.initial = {'mode': orm.Str('random')}
    cases.append((both, 'give either `training_set` and `test_set`, or `initial.mode`'))
    for case, match in cases:
        with pytest.raises(ValueError, match=match):
            run_get_node(case)


def test_initial_data_from_a_labelled_trajectory(label_code):
    """Mode `trajectory`: labelled frames are split (spread training frames, disjoint test frames), not relabelled."""
    trajectory = labelled(emt_cu_frames(20))
    builder = InitialDataWorkChain.get_builder()
    builder.mode = orm.Str('trajectory')
    builder.frames = trajectory
    builder.parameters = orm.Dict({'n_train': 6, 'n_test': 4, 'skip': 2, 'seed': 1})
    builder.label = {'code': label_code, 'engine': orm.Str('emt')}
    result, node = run_get_node(builder)
    assert node.is_finished_ok
    train = [o['initial_index'] for o in result['training_set'].origins]
    test = [o['initial_index'] for o in result['test_set'].origins]
    assert train == [2, 5, 9, 12, 16, 19] and len(test) == 4 and not set(train) & set(test) and min(test) >= 2
    assert not [c for c in node.called if c.process_label == 'LabelWorkChain']
    np.testing.assert_allclose(result['test_set'].get_array('energy'), trajectory.get_array('energy')[test])


def archive_status_in_fresh_profile(node, tmp_path) -> list[str]:
    """Export the run, import it into a new profile in another process, and run `anharmal al status` there."""
    from aiida.tools.archive import create_archive

    archive = tmp_path / 'al_run.aiida'
    create_archive([node], filename=archive)
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path / 'fresh_config')}
    bin_dir = os.path.dirname(sys.executable)
    subprocess.run(
        [
            f'{bin_dir}/verdi',
            'profile',
            'setup',
            'core.sqlite_dos',
            '-n',
            '--profile-name',
            'fresh',
            '--email',
            'test@example.org',
            '--filepath',
            str(tmp_path / 'fresh_storage'),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [f'{bin_dir}/verdi', '-p', 'fresh', 'archive', 'import', str(archive)], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [f'{bin_dir}/anharmal', 'al', 'status', '-p', 'fresh', node.uuid],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()


def check_timing(node):
    """The time of each iteration, split into its steps, from the graph (`anharmal al timing`)."""
    from aiida_anharmal.analysis.timing import timing_lines, timing_rows

    rows = timing_rows(node)
    assert [r['iteration'] for r in rows] == [1, 2]
    for r in rows:
        parts = r['training'] + r['evaluation'] + r['md'] + r['labelling']
        assert r['training'] > 0 and r['md'] > 0 and abs(r['total'] - parts - r['other']) < 1e-6
        assert r['other'] > -1.0  # the steps run one after the other inside the iteration
        assert r['member_train'] > 0 and r['member_package'] > 0  # read from the members' metrics
    lines = timing_lines(node)
    assert lines[0].startswith('iter  total (s)') and lines[-1].startswith('whole run')


def check_decision_and_summary(node):
    """Why it stopped, and the summary table, are calcfunction outputs that agree with each other."""
    decision = node.outputs.convergence
    assert decision.creator.process_label == 'check_convergence'
    rows = node.outputs.summary['rows']
    assert [r['iteration'] for r in rows] == [1, 2] and rows[0]['training_frames'] == 16
    assert [r['members'] for r in rows] == [2, 2]
    # frames were selected in iteration 2 as well (P(UCE) ~ 1/2 everywhere). With s = 0.01 any spread of frames is
    # as quiet as the test set (Cantelli's bound is ~1), but six epochs of two tiny members are far from settled:
    # the decision says so, and the cap ends the loop
    assert rows[1]['selected'] > 0
    (run,) = rows[1]['runs']
    assert run['ended_normally'] and run['accepted'] == rows[1]['accepted'] >= rows[1]['selected']
    assert 0.4 < run['p_uncertainty_mean'] < 0.6 and rows[1]['tail_bound'] > 0.999
    assert decision['stop'] and not decision['converged'] and decision['iteration'] == 2
    assert decision['reason'] == 'iteration_cap'
    assert 'quiet but the test force MAE has not settled: it changed by' in decision['message']
    assert [r['decision'] for r in rows] == ['continue', 'iteration_cap']
    assert node.outputs.summary.uuid == node.outputs.iterations['iter_02']['summary'].uuid


def check_calibration(iterations):
    """The calibration's force errors are max_i |F_MD - F_label| of each labelled frame, recomputed here."""
    for name in iterations:
        if 'labelled' not in iterations[name]:
            continue
        labelled, calibration = iterations[name]['labelled'], iterations[name]['calibration']
        assert calibration.creator.process_label == 'calibrate'
        errors = calibration['force_max_error']
        assert len(errors) == len(labelled)
        frames = labelled.frames
        for k, origin in enumerate(frames.origins):
            predicted = orm.load_node(origin['trajectory_uuid']).get_array('forces')[origin['frame']]
            true = frames.forces[frames.atom_slice(k)]
            assert errors[k] == pytest.approx(np.linalg.norm(predicted - true, axis=1).max(), rel=1e-12)
        assert min(errors) > 1e-3  # tiny 6-epoch members at 900 K are far from the EMT forces


def check_daemon_restarts(node, *interrupted):
    """Counted after two daemon restarts: each interrupted job finished as the same scheduler job (not submitted
    again), no job ran twice, no frame was labelled twice (the labels of all label jobs are the initial frames
    plus the selections, each once)."""
    for job, job_id in interrupted:
        assert job.is_finished_ok and job.get_job_id() == job_id
    jobs = node.called_descendants
    label_jobs = [j for j in jobs if j.process_label == 'LabelCalculation']
    label_chains = [j for j in jobs if j.process_label == 'LabelBaseWorkChain']
    md_chains = [j for j in jobs if j.process_label == 'MDBaseWorkChain']
    assert len(label_jobs) == len(label_chains) and all(j.is_finished_ok for j in label_jobs)
    assert len([j for j in jobs if j.process_label == 'MDCalculation']) == len(md_chains)
    iterations = node.outputs.iterations
    n_selected = sum(len(iterations[i]['selection']['frames']) for i in iterations if 'training_set' in iterations[i])
    labelled = sum(len(j.outputs.labelled) for j in label_jobs)
    assert labelled == 16 + 6 + n_selected  # initial training and test frames, then each selected frame once


def restart_daemon_during(client, node, process_label, after=None, timeout=600):
    """Stop the daemon while a ``process_label`` job of ``node`` is with the scheduler (a job created after a job
    ``after``), start it again; return ``(job, its scheduler job id)``.

    The job's program goes on meanwhile (the direct scheduler), and the restarted daemon's workers take the
    processes up again from their last checkpoints.
    """
    import time

    from aiida.common.datastructures import CalcJobState

    from .conftest import stop_daemon

    def running():
        jobs = sorted(node.called_descendants, key=lambda n: n.ctime)
        if after is not None:
            firsts = [k for k, job in enumerate(jobs) if job.process_label == after]
            jobs = jobs[firsts[0] + 1 :] if firsts else []
        return next(
            (j for j in jobs if j.process_label == process_label and j.get_state() == CalcJobState.WITHSCHEDULER),
            None,
        )

    start = time.monotonic()
    while (job := running()) is None:
        assert not node.is_terminated and time.monotonic() - start < timeout, f'no running {process_label} seen'
        time.sleep(0.2)
    job_id = job.get_job_id()
    if process_label == 'MDCalculation':  # `anharmal al status` shows the running loop down to the job's step
        from aiida_anharmal.analysis.progress import progress_lines

        lines = progress_lines(node)
        assert lines[0].startswith(f'ActiveLearningWorkChain<{node.pk}>'), lines
        assert any(f'MDCalculation<{job.pk}>: st' in line for line in lines), lines  # 'step S of 80' or 'starting'
    stop_daemon(client)
    time.sleep(2)
    client.start_daemon()
    return job, job_id


@pytest.mark.slow
def test_two_iterations_from_random_initial_data(
    started_daemon_client, submit_and_await, train_code, evaluate_code, md_code, label_code, tmp_path
):
    start = emt_cu_frames(1)[0]
    start.calc = None
    codes = codes_of(train_code, evaluate_code, md_code, label_code)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        start,
        engine='emt',
        protocol='fast',
        overrides={
            'initial': {'parameters': {'random': {'n_train': 16, 'n_test': 6, 'amplitude': 0.08}}},
            'acquisition': {'n_max': 4, 's': 0.01, 'g': 20.0},  # P(UCE) ~ 1/2 for every frame
            'ensemble': {'n_sub': 2, 'seeds': [0], 'hyperparameters': {'max_epochs': 6}, 'retrain': 'finetune'},
            'explore': {'temperatures': [900.0], 'parameters': {'steps': 80, 'save_stride': 4}},
        },
        options={'max_wallclock_seconds': 600},
    )
    from aiida.engine import submit

    node = submit(builder)
    # the daemon stopped and started again while iteration 1's MD runs, then while its label job runs
    md_job = restart_daemon_during(started_daemon_client, node, 'MDCalculation')
    label_job = restart_daemon_during(started_daemon_client, node, 'LabelCalculation', after='MDCalculation')
    node = submit_and_await(node, timeout=900)
    assert node.is_finished_ok, node.exit_message
    iterations = node.outputs.iterations
    assert sorted(iterations) == ['iter_01', 'iter_02']
    check_daemon_restarts(node, md_job, label_job)
    test_set = node.outputs.test_set  # made and labelled by InitialDataWorkChain, never trained on
    assert test_set.creator.process_label == 'collect_labels' and len(test_set) == 6
    test_indices = {o['initial_index'] for o in test_set.origins}
    final = node.outputs.training_set
    added = [o for o in final.origins if o.get('kind') == 'exploration']
    n_selected = sum(len(iterations[i]['selection']['frames']) for i in iterations if 'training_set' in iterations[i])
    assert len(final) == 16 + n_selected and len(added) == n_selected > 0
    assert len(iterations['iter_01']['selection']['frames']) > 0  # so that iteration 2 trains again
    initial_frames = [o for o in final.origins if o.get('kind') != 'exploration']
    assert all(o['kind'] == 'random' for o in initial_frames)
    assert not test_indices & {o['initial_index'] for o in initial_frames}

    check_decision_and_summary(node)
    check_calibration(iterations)
    check_timing(node)

    # for every training frame, its iteration and selection node by a QueryBuilder query
    qb = orm.QueryBuilder()
    qb.append(ActiveLearningWorkChain, filters={'id': node.pk}, tag='al')
    qb.append(
        orm.Dict,
        with_incoming='al',
        edge_filters={'label': {'like': 'iterations__iter_%__selection'}},
        edge_project='label',
        project=['uuid'],
    )
    selections = {uuid: int(label.split('__')[1].split('_')[1]) for uuid, label in qb.all()}
    assert len(selections) == 2
    for origin in final.origins:
        if origin['kind'] == 'exploration':
            assert selections[origin['selection_uuid']] == origin['iteration']
            assert orm.load_node(origin['label_calc']).process_label == 'LabelCalculation'

    # the command line
    runner = CliRunner()
    profile = get_profile().name
    status = runner.invoke(cli, ['al', 'status', '-p', profile, str(node.pk)])
    assert status.exit_code == 0, status.output
    lines = status.output.strip().splitlines()
    assert 'finished, exit 0' in lines[0] and len(lines) == 5 and lines[-1].startswith('stopped: ')
    index = final.origins.index(added[0])
    why = runner.invoke(cli, ['al', 'provenance', '-p', profile, str(node.pk), str(index)])
    assert why.exit_code == 0, why.output
    assert f'iteration {added[0]["iteration"]}, selected by acquire' in why.output
    assert 'EvaluateCalculation' in why.output and 'MDCalculation' in why.output and 'LabelCalculation' in why.output
    exported = tmp_path / 'training.extxyz'
    result = runner.invoke(cli, ['al', 'export', '-p', profile, str(node.pk), str(exported)])
    assert result.exit_code == 0, result.output
    back = TrainingSet.from_extxyz(exported)
    assert len(back) == len(final) and back.origins[index]['selection_uuid'] == added[0]['selection_uuid']
    result = runner.invoke(cli, ['al', 'plot', '-p', profile, str(node.pk), '-o', str(tmp_path / 'plots')])
    assert result.exit_code == 0, result.output
    from matplotlib.image import imread

    pngs = sorted(p.name for p in (tmp_path / 'plots').iterdir())
    assert pngs == [
        'acquisition_iter_01.png',
        'acquisition_iter_02.png',
        'exploration_iter_01.png',
        'exploration_iter_02.png',
        'learning_curve.png',
    ]
    for name in pngs:
        image = imread(tmp_path / 'plots' / name)
        assert image.shape[0] > 100 and image.std() > 0

    # the second ensemble was fine-tuned from the first (fast protocol)
    second = iterations['iter_02']['ensemble'].members['sub0_seed0']
    first = iterations['iter_01']['ensemble'].members['sub0_seed0']
    assert second.creator.inputs.parent_model.uuid == first.uuid

    # initialisation mode (d): a pretrained ensemble is used by the first iteration instead of training one
    again = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        start,
        engine='emt',
        protocol='fast',
        training_set=final,
        test_set=test_set,
        initial_ensemble=node.outputs.ensemble,
        overrides={
            'max_iterations': 1,
            'acquisition': {'n_max': 2, 's': 0.01, 'g': 20.0},
            'explore': {'temperatures': [900.0], 'parameters': {'steps': 40, 'save_stride': 4}},
        },
        options={'max_wallclock_seconds': 600},
    )
    pretrained = submit_and_await(again, timeout=600)
    assert pretrained.is_finished_ok, pretrained.exit_message
    assert not [c for c in pretrained.called if c.process_label == 'EnsembleWorkChain']
    assert pretrained.outputs.iterations['iter_01']['ensemble'].uuid == node.outputs.ensemble.uuid
    # one iteration cannot show a settled MAE (patience 1 needs a change between two): the cap ends it
    assert pretrained.outputs.convergence['reason'] == 'iteration_cap'
    assert pretrained.outputs.convergence['message'].startswith('iteration cap 1 reached, not converged')

    # an archive of the run, imported into a fresh profile, gives the same table
    fresh = archive_status_in_fresh_profile(node, tmp_path)
    assert fresh[1:] == lines[1:] and node.uuid in fresh[0]


def test_a_pretrained_ensemble_to_fine_tune_is_checked_before_any_job(train_code, evaluate_code, md_code, label_code):
    import io

    from aiida_anharmal.data import Ensemble, MLIPModel

    def ensemble(r_max, labels):
        members = {
            label: MLIPModel(
                io.BytesIO(placeholder_model_bytes()),
                filename='m.nequip.zip',
                architecture='NequIP',
                model_format='nequip-package',
                species=['Cu'],
                r_max=r_max,
                seed=0,
            ).store()
            for label in labels
        }
        return Ensemble(members=members).store()

    frames = emt_cu_frames(12)
    codes = codes_of(train_code, evaluate_code, md_code, label_code)
    all_six = [f'sub{k}_seed{s}' for k in range(3) for s in (0, 1)]
    cases = [
        (ensemble(5.0, all_six), r'member sub0_seed0: the parent model has r_max 5 A but the hyperparameters say 4 A'),
        (ensemble(4.0, all_six[:2]), r"the initial ensemble has no member\(s\) \['sub1_seed0'"),
    ]
    for pretrained, match in cases:
        builder = ActiveLearningWorkChain.get_builder_from_protocol(
            codes,
            frames[0],
            engine='emt',
            protocol='fast',
            training_set=labelled(frames[:8]),
            test_set=labelled(frames[8:]),
            initial_ensemble=pretrained,
            overrides={'ensemble': {'retrain': 'finetune'}},
        )
        assert builder.ensemble.retrain.value == 'finetune'
        with pytest.raises(ValueError, match=match):
            run_get_node(builder)
