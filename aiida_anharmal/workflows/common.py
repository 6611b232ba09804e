"""What the workchains share: the scheduler options of their jobs, and how a failed sub-process is described."""

from __future__ import annotations

from aiida import orm


def describe(node) -> str:
    """``Label<pk> exit N: message`` of a finished (or failed) process node."""
    status = node.exit_status if node.exit_status is not None else node.process_state.value
    message = f': {node.exit_message}' if node.exit_message else ''
    return f'{node.process_label}<{node.pk}> exit {status}{message}'


def engine_reference(label) -> dict:
    """The ``reference`` namespace (the labelling engine drives MD or a NEB) from a workchain's ``label`` inputs."""
    return {'engine': label['engine'], **{name: label[name] for name in ('parameters', 'model') if name in label}}


def set_reference(builder, engine: str | None, model=None, engine_parameters: dict | None = None) -> None:
    """The ``reference`` namespace of a builder: the labelling engine that drives MD instead of an ensemble."""
    if engine is not None:
        builder.reference.engine = orm.Str(engine)
        builder.reference.parameters = orm.Dict(engine_parameters or {})
    if model is not None:
        builder.reference.model = model


#: The resources of a job when a workchain is given none.
DEFAULT_RESOURCES = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}


def add_options_input(spec, what: str) -> None:
    """The ``options`` input: the ``metadata.options`` of every job a workchain submits (``what``)."""
    spec.input(
        'options',
        valid_type=dict,
        non_db=True,
        default=lambda: {'resources': dict(DEFAULT_RESOURCES)},
        help=f'`metadata.options` of every {what} (resources, max_wallclock_seconds, ...).',
    )


def options_message(value, where: str = 'options') -> str | None:
    """Why the ``options`` of a workchain's inputs cannot submit a job (no resources), else ``None``."""
    options = value.get('options') or {}
    if not options.get('resources'):
        return f'input `{where}.resources` is required, e.g. {DEFAULT_RESOURCES}'
    return None
