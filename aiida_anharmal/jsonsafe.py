"""Values for JSON attributes: JSON has no NaN or infinity (used by parsers and calcfunctions alike)."""

from __future__ import annotations

import math


def finite_or_none(value):
    """JSON has no NaN: a NaN or infinite float (in dicts and lists too) is stored as None (e.g. undefined
    correlations of too few frames)."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
