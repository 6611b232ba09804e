"""Does an ensemble's MD behave like the ground truth's? Numbers of one validation MD run; no AiiDA import.

The validation of Kang et al. (Fig. 6): NVT MD from the same start with the same seed and length,
driven by the initial ensemble, by the final ensemble and by the labelling engine itself. What a
run is judged by (docs/source/science.rst, section 3):

* the degree of anharmonicity A(t) of every saved frame (its forces against the harmonic
  reference): its mean and standard deviation after an equilibration time, and the fraction of
  frames with A > 1 (a crystal broken or a defect made: in the paper a jump of A from 0.5 to 1.2
  marks a defect);
* sigma_A of the whole run after equilibration (the FHI-vibes definition: std of the anharmonic
  forces over std of the forces, over all frames, atoms and components);
* whether it ran to its last step or a guard stopped it.
"""

from __future__ import annotations

import math

import numpy as np

from ..phonons.anharmonicity import HarmonicReference

#: A above this marks a frame outside the harmonic basin (a defect or a broken crystal).
A_LIMIT = 1.0


def run_summary(
    time, anharmonicity, positions, forces, harmonic: HarmonicReference, equilibration: float = 0.0
) -> dict:
    """Mean, std and maximum of A(t), the fraction of frames with A > :data:`A_LIMIT` and sigma_A.

    :param time: time of every saved frame (fs).
    :param anharmonicity: A of every saved frame (as the MD recorded it).
    :param positions: positions ``(T, N, 3)`` and ``forces`` ``(T, N, 3)`` of the same frames (A, eV/A).
    :param equilibration: frames before this time (fs) are left out.
    """
    time = np.asarray(time, dtype=float)
    a = np.asarray(anharmonicity, dtype=float)
    if not (time.shape == a.shape == (len(positions),) == (len(forces),)):
        raise ValueError(f'{len(time)} times, {len(a)} A values, {len(positions)} and {len(forces)} frames')
    keep = time >= equilibration
    n = int(keep.sum())
    if n == 0:
        return {
            'n_frames': 0,
            'a_mean': None,
            'a_std': None,
            'a_max': None,
            'fraction_a_above_1': None,
            'sigma_a': None,
            'equilibration_fs': float(equilibration),
        }
    a = a[keep]
    sigma = harmonic.sigma(np.asarray(positions, dtype=float)[keep], np.asarray(forces, dtype=float)[keep])
    return {
        'n_frames': n,
        'a_mean': float(np.mean(a)),
        'a_std': float(np.std(a)),
        'a_max': float(np.max(a)),
        'fraction_a_above_1': float(np.mean(a > A_LIMIT)),
        'sigma_a': float(sigma) if math.isfinite(sigma) else None,
        'equilibration_fs': float(equilibration),
    }


def reference_frame_indices(time, equilibration: float, stride: int) -> list[int]:
    """The frames of the ground-truth run that the ensembles are evaluated on: every ``stride``-th after
    the equilibration."""
    if stride < 1:
        raise ValueError(f'the stride must be at least 1, not {stride}')
    time = np.asarray(time, dtype=float)
    return [int(k) for k in np.flatnonzero(time >= equilibration)[::stride]]
