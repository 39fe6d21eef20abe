"""vermilion.sim: simulated LSST-like multi-band patches with known truth, and accuracy metrics.

GalSim, surveycodex and astropy are imported only when a scene is simulated.

>>> from vermilion.sim import simulate_patch
>>> patch = simulate_patch((256, 256), bands="gri", density=100, seed=1)  # doctest: +SKIP
>>> patch.images.shape, len(patch.truth)  # doctest: +SKIP
"""

from .simulate import (
    MASK_PLANES,
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
    "MASK_PLANES",
    "SimConfig",
    "SimulatedPatch",
    "SourceImage",
    "simulate",
    "simulate_blend",
    "simulate_patch",
]
