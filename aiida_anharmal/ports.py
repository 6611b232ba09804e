"""Reading optional inputs of a process or of a validator's namespace (AiiDA layer; no process imports here)."""

from __future__ import annotations


def dict_input(namespace, key: str) -> dict:
    """The plain dict of the optional ``Dict`` input ``key`` of ``namespace`` (a process's ``inputs`` or the value
    a validator gets), or ``{}`` where it is not given."""
    return namespace[key].get_dict() if key in namespace else {}
