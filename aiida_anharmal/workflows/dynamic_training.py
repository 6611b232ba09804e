"""``DynamicTrainingWorkChain``: dynamic training of a Bayesian force-constant force field (Callsen et al.).

initial data (:class:`InitialDataWorkChain`: training and test frames, labelled) -> fit
(:func:`~aiida_anharmal.functions.bayesian_fc.fit_bayesian_fc`) -> loop { MD with the fit
(:class:`MDBaseWorkChain`, trigger ``retrain``) until the retrain rule fires or the trajectory ends -> the
trigger frame (:func:`~aiida_anharmal.functions.bayesian_fc.trigger_frame`) labelled -> merged -> refit ->
continue the same trajectory from the checkpoint of the stopped run } -> the convergence decision
(:func:`~aiida_anharmal.functions.bayesian_fc.dynamic_decision`, after every fit). The test set is never
fitted: each fit's force RMSE on it (:func:`~aiida_anharmal.functions.bayesian_fc.evaluate_bayesian_fc`) checks
the bracket the decision does not need.

When beta^-1/2 has settled, the next MD run is given at most ``quiet_steps`` steps more: if no refit is
triggered in them the training has converged and stops there.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_

from .. import exit_codes
from ..data.bayesian_fc import BayesianFCModel
from ..data.training_set import TrainingSet
from ..functions.bayesian_fc import dynamic_decision, evaluate_bayesian_fc, fit_bayesian_fc, trigger_frame
from ..functions.datasets import merge_training_sets
from ..protocols import ProtocolMixin
from .common import describe
from .dynamic_training_setup import DynamicTrainingSetup, validate_dynamic_inputs
from .initial import InitialDataWorkChain
from .label import LabelWorkChain
from .md import MDBaseWorkChain, stop_reason


class DynamicTrainingWorkChain(DynamicTrainingSetup, ProtocolMixin, WorkChain):
    """Dynamic training: one trajectory of the current Bayesian fit, refitted where eps_B is unusually high."""

    _protocol_file = 'dynamic_training.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        cls.define_inputs(spec)
        spec.inputs.validator = validate_dynamic_inputs
        spec.outline(
            cls.run_initial,
            cls.inspect_initial,
            cls.initial_fit,
            while_(cls.should_continue)(
                cls.run_md,
                cls.inspect_md,
                if_(cls.triggered)(cls.label_trigger_frame, cls.refit),
            ),
            cls.results,
        )
        spec.output('model', valid_type=BayesianFCModel, help='The last fit.')
        spec.output('training_set', valid_type=TrainingSet, help='Every structure of the last fit, labelled.')
        spec.output(
            'test_set', valid_type=TrainingSet, help='The labelled test frames (never fitted): `test_set` if given.'
        )
        spec.output('trajectory', valid_type=orm.TrajectoryData, help='The whole trajectory, every saved frame.')
        spec.output('frames', valid_type=orm.ArrayData, help='Per saved frame: eps_B (`trigger_score`), ...')
        spec.output('decision', valid_type=orm.Dict, help='The convergence decision and the history of the fits.')
        spec.output_namespace('fits', valid_type=BayesianFCModel, dynamic=True, help='Every fit, `fit_NN`.')
        spec.output_namespace('tests', valid_type=orm.Dict, dynamic=True, help='Each fit on the test set, `fit_NN`.')
        exit_codes.declare(
            spec,
            'ERROR_INITIAL_DATA_FAILED',
            'ERROR_LABELLING_FAILED',
            'ERROR_EXPLORATION_FAILED',
            workchain=True,
        )

    # ------------------------------------------------------------------ initial data and fits
    def run_initial(self):
        inputs = AttributeDict(self.exposed_inputs(InitialDataWorkChain, 'initial'))
        if inputs.mode.value == 'random':  # the other modes bring their frames (trajectory) or force constants
            inputs.structure = self.inputs.supercell
        inputs.label = AttributeDict(self.exposed_inputs(LabelWorkChain, 'label'))
        inputs.metadata = {'call_link_label': 'initial_data'}
        node = self.submit(InitialDataWorkChain, **inputs)
        self.report(f'initial data: {node.process_label}<{node.pk}>')
        return ToContext(initial=node)

    def inspect_initial(self):
        node = self.ctx.initial
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_INITIAL_DATA_FAILED.format(message=describe(node))
        self.ctx.training_set = node.outputs.training_set
        self.out('test_set', self.inputs.test_set if 'test_set' in self.inputs else node.outputs.test_set)
        self.ctx.fits, self.ctx.history = [], []
        self.ctx.step, self.ctx.finished, self.ctx.remote, self.ctx.md = 0, False, None, None
        return None

    def initial_fit(self):
        self.fit_and_decide()

    def fit_and_decide(self, trigger: dict | None = None):
        """Fit on the training set, test it, record the fit, decide."""
        n = len(self.ctx.fits)
        label = f'fit_{n:02d}'
        model = fit_bayesian_fc(
            self.ctx.training_set,
            self.inputs.primitive,
            self.inputs.supercell,
            self.inputs.fit,
            metadata={'call_link_label': label},
        )
        test = evaluate_bayesian_fc(model, self.outputs['test_set'], metadata={'call_link_label': f'test_{n:02d}'})
        self.out(f'fits.{label}', model)
        self.out(f'tests.{label}', test)
        self.ctx.fits.append(model)
        row = {'step': self.ctx.step, 'n_data': model.n_structures, 'noise': model.noise, 'mu_k': None, 'eps_b': None}
        row.update({'test_rmse': test['forces_rmse'], 'test_mae': test['forces_mae'], 'bracket': test['bracket']})
        row.update(trigger or {})
        self.ctx.history.append(row)
        self.decide()
        self.report(
            f'{label}: N_data {model.n_structures}, beta^-1/2 {1000 * model.noise:.2f} meV/A, test RMSE '
            f'{1000 * test["forces_rmse"]:.2f} meV/A; {self.ctx.decision["message"]}'
        )

    def decide(self):
        history = {'fits': self.ctx.history, 'step': self.ctx.step, 'finished': self.ctx.finished}
        node = dynamic_decision(
            self.inputs.convergence,
            self.inputs.max_refits,
            orm.Dict(history),
            metadata={'call_link_label': f'decision_{len(self.ctx.fits) - 1:02d}'},
        )
        self.ctx.decision = node

    def should_continue(self):
        return not self.ctx.decision['stop']

    # ------------------------------------------------------------------ the trajectory
    def run_md(self):
        md = AttributeDict(self.md_inputs())
        md.bayesian_model = self.ctx.fits[-1]
        md.structure = self.inputs.supercell
        parameters = self.inputs.md.parameters.get_dict()
        total = self.total_steps()
        limit = total
        if self.settled():  # the rule's quiet window decides: stop there unless a refit is triggered
            limit = min(total, self.ctx.step + self.quiet_steps())
        md.parameters = orm.Dict({**parameters, 'steps': limit})
        md.trigger = orm.Dict({'kind': 'retrain', **self.inputs.retrain.get_dict()})
        if self.ctx.remote is not None:
            md.parent_folder = self.ctx.remote
        metadata = {'call_link_label': f'md_{len(self.ctx.fits) - 1:02d}'}
        node = self.submit(MDBaseWorkChain, md=md, metadata=metadata)
        where = f'from step {self.ctx.step}' if self.ctx.step else 'from the ideal supercell'
        fit = len(self.ctx.fits) - 1
        self.report(f'MD with fit {fit} {where} to at most step {limit}: {node.process_label}<{node.pk}>')
        return ToContext(md=node)

    def inspect_md(self):
        node = self.ctx.md
        if 'trajectory' not in node.outputs:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=describe(node))
        trajectory, frames = node.outputs.trajectory, node.outputs.frames
        reason = stop_reason(trajectory)
        if reason not in ('finished', 'trigger_retrain'):
            message = f'{describe(trajectory.creator)} (a guard, not the retrain rule: the fit failed there)'
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(message=message)
        self.ctx.trajectory, self.ctx.frames = trajectory, frames
        self.ctx.remote = trajectory.creator.outputs.remote_folder
        self.ctx.step = int(frames.get_array('step')[-1])
        self.ctx.triggered = reason == 'trigger_retrain'
        if not self.ctx.triggered:
            self.ctx.finished = self.ctx.step >= self.total_steps()
            self.decide()
            self.report(f'MD reached step {self.ctx.step} without a refit: {self.ctx.decision["message"]}')
        return None

    def triggered(self):
        return self.ctx.triggered

    def label_trigger_frame(self):
        n = len(self.ctx.fits)
        frame = trigger_frame(
            self.ctx.trajectory, self.ctx.frames, orm.Int(n), metadata={'call_link_label': f'trigger_{n:02d}'}
        )
        self.ctx.trigger = frame
        inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, 'label'))
        inputs.structures = frame
        inputs.metadata = {'call_link_label': f'label_{n:02d}'}
        node = self.submit(LabelWorkChain, **inputs)
        origin = frame.origins[0]
        self.report(
            f'step {origin["step"]}: eps_B {1000 * origin["eps_b"]:.3f} meV/A fired the retrain rule; '
            f'labelling the frame in {node.process_label}<{node.pk}>'
        )
        return ToContext(label=node)

    def refit(self):
        node = self.ctx.label
        if not node.is_finished_ok or 'labelled' not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(message=describe(node))
        self.ctx.training_set = merge_training_sets(
            part_0=self.ctx.training_set,
            part_1=node.outputs.labelled,
            metadata={'call_link_label': f'merge_{len(self.ctx.fits):02d}'},
        )
        summary = self.ctx.frames.base.attributes.get('trigger', {}) or {}
        origin = self.ctx.trigger.origins[0]
        self.fit_and_decide({'mu_k': summary.get('reference'), 'eps_b': origin['eps_b']})
        return None

    def results(self):
        self.out('model', self.ctx.fits[-1])
        self.out('training_set', self.ctx.training_set)
        if self.ctx.md is not None:
            self.out('trajectory', self.ctx.trajectory)
            self.out('frames', self.ctx.frames)
        self.out('decision', self.ctx.decision)
        decision = self.ctx.decision
        self.report(f'{decision["reason"]}: {decision["message"]}')
