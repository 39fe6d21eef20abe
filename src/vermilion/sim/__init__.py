"""vermilion.sim: simulated LSST-like multi-band patches with known truth, and accuracy metrics.

GalSim, surveycodex and astropy are imported only when a scene is simulated.

>>> from vermilion.sim import simulate_patch
>>> patch = simulate_patch((512, 512), bands="ugrizy", density=100, seed=0)  # doctest: +SKIP
>>> patch.images.shape, patch.psfs.shape, len(patch.truth)  # doctest: +SKIP
((6, 512, 512), (6, 41, 41), 298)

A `SimulatedPatch` has ``images``, ``variance``, ``mask``, ``psfs``, ``bands`` and ``bbox``, so
it can stand in for a multi-band exposure (mask bits: `vermilion.core.MASK_PLANES`), e.g.
``vermilion.core.observation_from_exposure(patch, bbox, bad_mask=MASK_PLANES["BAD"] |
MASK_PLANES["NO_DATA"])``. Accuracy against the truth: `vermilion.sim.metrics`.
"""

from .simulate import (
    SimConfig,
    SimulatedPatch,
    SourceImage,
    simulate,
    simulate_blend,
    simulate_patch,
)
from .survey import FLUX_ZERO_POINT, LSST_BANDS

__all__ = [
    "FLUX_ZERO_POINT",
    "LSST_BANDS",
    "SimConfig",
    "SimulatedPatch",
    "SourceImage",
    "simulate",
    "simulate_blend",
    "simulate_patch",
]
