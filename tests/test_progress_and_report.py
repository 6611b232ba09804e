"""What a running job reports of its progress (read from the files its program writes), and the HTML report."""

import json

from aiida.common import AttributeDict

from aiida_anharmal.analysis.progress import label_progress, md_progress, train_progress
from aiida_anharmal.analysis.report import decision_words


def test_train_progress_reads_the_epoch_of_the_trainer_log_against_the_cap(tmp_path):
    (tmp_path / 'aiida.json').write_text(
        json.dumps({'hyperparameters': {'max_epochs': 400, 'finetune_max_epochs': 60}})
    )
    assert train_progress(tmp_path) == 'epoch 0 of 400'
    log = tmp_path / 'run' / 'csvlog'
    log.mkdir(parents=True)
    (log / 'metrics.csv').write_text('epoch,step,forces_mae\n0,0,0.1\n41,671,0.02\n')
    assert train_progress(tmp_path) == 'epoch 42 of 400'
    (tmp_path / 'aiida.json').write_text(
        json.dumps({'hyperparameters': {'max_epochs': 400, 'finetune_max_epochs': 60}, 'parent_file': 'p.zip'})
    )
    assert train_progress(tmp_path) == 'epoch 42 of 60'  # fine-tuning: its own cap


def test_md_and_label_progress(tmp_path):
    (tmp_path / 'aiida.json').write_text(json.dumps({'md': {'steps': 200}}))
    assert md_progress(tmp_path) == 'starting'
    (tmp_path / 'checkpoint.json').write_text(json.dumps({'step': 120, 'positions': []}))
    assert md_progress(tmp_path) == 'step 120 of 200'
    (tmp_path / 'checkpoint.json').write_text('{"step": 12')  # being written: not an error
    assert md_progress(tmp_path) == 'starting'
    assert label_progress(tmp_path) == 'labelling the first structure'
    (tmp_path / 'labels.jsonl').write_text('{}\n{}\n{}\n')
    assert label_progress(tmp_path) == '3 structure(s) labelled'


class FakeRun:
    """The attributes :func:`decision_words` reads of a process node."""

    def __init__(self, ok=True, convergence=None, rows=2):
        self.is_terminated = True
        self.is_finished = True
        self.is_finished_ok = ok
        self.exit_status = 0 if ok else 401
        self.exit_message = None if ok else 'the exploration failed'
        self.outputs = AttributeDict()
        if convergence is not None:
            self.outputs = AttributeDict({'convergence': convergence, 'summary': {'rows': [{}] * rows}})


def test_the_decision_in_plain_words():
    words, kind = decision_words(FakeRun(convergence={'converged': True, 'reason': 'converged', 'message': 'quiet'}))
    assert (words, kind) == ('Converged after 2 iteration(s): quiet.', 'converged')
    words, kind = decision_words(
        FakeRun(convergence={'converged': False, 'reason': 'iteration_cap', 'message': 'cap 3 reached'}, rows=3)
    )
    assert words == 'Not converged after 3 iteration(s) (iteration_cap): cap 3 reached.' and kind == 'not-converged'
    words, kind = decision_words(FakeRun(ok=False))
    assert words == 'The run failed (401): the exploration failed.' and kind == 'failed'
