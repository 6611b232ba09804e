"""``TrainBaseWorkChain``: one ensemble member's :class:`TrainCalculation`, trained again when its job was killed."""

from __future__ import annotations

from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from ..calculations.train import TrainCalculation


class TrainBaseWorkChain(BaseRestartWorkChain):
    """Train one member, restarting a job that was killed.

    ``handle_killed``: a job that left no status file (``kill -9``, the node lost, the scheduler's walltime:
    exit 300) is trained again from scratch with the same inputs and seed, so the member is the one the first
    job would have made; the reason is in the report (and the failed job stays in the graph). A failure the
    program reported itself (training, packaging or compilation failed: exits 312-314) is not retried: the same
    inputs would fail the same way. ``max_iterations`` (default 3) bounds the attempts.
    """

    _process_class = TrainCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(TrainCalculation, namespace='train')
        spec.expose_outputs(TrainCalculation)
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(TrainCalculation, 'train'))

    @process_handler(priority=500, exit_codes=[TrainCalculation.exit_codes.ERROR_NO_OUTPUT])
    def handle_killed(self, node):
        """The job ended without a status file: train again from scratch (same inputs, same seed)."""
        self.report(
            f'{node.process_label}<{node.pk}> was killed before it could finish ({node.exit_message}): '
            'training the member again from scratch with the same inputs and seed'
        )
        return ProcessHandlerReport(do_break=True)
