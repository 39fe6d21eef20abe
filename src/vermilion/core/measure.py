"""Measurements on fitted blends: flux re-apportioning."""

from __future__ import annotations

from .blend import Blend

__all__ = ["weight_sources"]


def weight_sources(blend: Blend, mask_footprint: bool = True) -> Blend:
    """Re-apportion the observed flux of a blend between its sources.

    For every source its model is rendered in the observed seeing; the observed
    image is shared in proportion to each source's absolute rendered model over
    the sum of all of them (clipped to [0, 1], 0 where that sum is 0). Pixels of
    zero weight (masked, or outside the parent footprint) are set to 0 first when
    ``mask_footprint``. The results are stored on the sources as ``flux`` (an
    `Image`) and ``flux_box``; the re-apportioned images of a blend add up to the
    masked observed image wherever any model is non-zero.

    Returns the blend, for chaining.
    """
    return blend.conserve_flux(mask_footprint=mask_footprint)
