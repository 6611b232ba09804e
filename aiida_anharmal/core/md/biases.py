"""MD biases: what the integrator sees instead of the ensemble mean (registry :data:`BIASES`); no AiiDA import.

The one MD loop (:mod:`aiida_anharmal.core.md.loop`) calls a bias for the forces of every step, reports every step
to it and keeps its state in the checkpoint. Hyperactive learning (:mod:`aiida_anharmal.core.md.hal`) registers
the ``hal`` bias.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from ase import Atoms

from ..registry import Registry, Strategy


class Bias(Strategy):
    """Base of the MD biases (registry :data:`BIASES`): what the integrator sees instead of the mean.

    ``__call__(atoms, prediction)`` returns the ``(energy, forces)`` that drive the dynamics; the
    frame records keep the unbiased ensemble prediction. The loop calls :meth:`observe` once per MD
    step (step 0 included) after the step's forces, then :meth:`advance` (the bias of the next
    step's forces); :meth:`record` adds scalars to the frame, :meth:`state`/:meth:`restore` go into
    the checkpoint. Hyperactive learning registers its ``E - tau sigma`` bias here
    (:mod:`aiida_anharmal.core.md.hal`).
    """

    #: the committee size the bias needs (the MD calculation refuses a smaller ensemble)
    min_members: ClassVar[int] = 1

    def __call__(self, atoms: Atoms, prediction) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def observe(self, prediction) -> None:
        """One MD step is done; its forces came from the last call."""

    def advance(self) -> None:
        """Set the bias of the next step's forces."""

    def record(self) -> dict:
        """Scalars of the last observed frame (names of :data:`~aiida_anharmal.core.md.files.BIAS_SCALARS`)."""
        return {}

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        """Back to a checkpoint's :meth:`state`: the next call recomputes the checkpoint step's forces."""


BIASES: Registry[type[Bias]] = Registry('MD bias', group='anharmal.md.biases')


def check_bias_settings(settings: dict | None) -> dict | None:
    """``{'kind': ..., parameters}`` checked with the defaults of its class filled in (``None``/``{}``: no bias)."""
    return BIASES.check_settings(settings, 'bias')


def build_bias(settings: dict | None) -> Bias | None:
    """The bias of ``settings`` (see :func:`check_bias_settings`), or ``None``."""
    checked = check_bias_settings(settings)
    if checked is None:
        return None
    kind = checked.pop('kind')
    return BIASES.get(kind)(checked)
