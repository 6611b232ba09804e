"""Reading optional inputs of a process or of a validator's namespace (AiiDA layer; no process imports here)."""

from __future__ import annotations


def dict_input(namespace, key: str) -> dict:
    """The plain dict of the optional ``Dict`` input ``key`` of ``namespace`` (a process's ``inputs`` or the value
    a validator gets), or ``{}`` where it is not given."""
    return namespace[key].get_dict() if key in namespace else {}


def input_value(namespace, key: str, ports):
    """The Python value of input ``key`` of ``namespace``, or where it is not given the default of that port of
    ``ports`` (a process class, or the port namespace a validator gets as ``ctx``; read from the spec, never a
    copy of it): a list, a dict or a plain value."""
    if key in namespace:
        node = namespace[key]
    else:
        ports = ports.spec().inputs if hasattr(ports, 'spec') else ports
        default = ports[key].default
        node = default() if callable(default) else default
    if hasattr(node, 'get_list'):
        return node.get_list()
    if hasattr(node, 'get_dict'):
        return node.get_dict()
    return getattr(node, 'value', node)
