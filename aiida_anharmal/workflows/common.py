"""What the workchains share: how a failed sub-process is described in an exit message."""

from __future__ import annotations


def describe(node) -> str:
    """``Label<pk> exit N: message`` of a finished (or failed) process node."""
    status = node.exit_status if node.exit_status is not None else node.process_state.value
    message = f': {node.exit_message}' if node.exit_message else ''
    return f'{node.process_label}<{node.pk}> exit {status}{message}'
