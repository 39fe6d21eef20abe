"""Measurements on fitted blends: flux re-apportioning and blendedness.

Blendedness (Bosch et al. 2018) is ``1 - sum(I_k^2) / sum(I_k I_all)``: 0 for a source alone,
towards 1 for one buried in its neighbours' light. It is defined here once; the catalog columns
``deblend_blendedness_<band>`` (per band, on the rendered models) and the simulations' truth
(all bands together, on the true images) both use `blendedness`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bbox import Box
from .blend import DEFAULT_MIN_MODEL, Blend
from .operators import thin_pixels

__all__ = ["blendedness", "scene_blendedness", "tendril_fraction", "weight_sources"]


def weight_sources(
    blend: Blend, mask_footprint: bool = True, min_model: float = DEFAULT_MIN_MODEL
) -> Blend:
    """Re-apportion the observed flux of a blend between its sources.

    For every source its model is rendered in the observed seeing; the observed
    image is shared in proportion to each source's absolute rendered model over
    the sum of all of them (clipped to [0, 1], 0 where that sum is 0); rendered
    models fainter than ``min_model`` times the band's noise rms count as 0. Pixels of
    zero weight (masked, or outside the parent footprint) are set to 0 first when
    ``mask_footprint``. The results are stored on the sources as ``flux`` (an
    `Image`) and ``flux_box``; the re-apportioned images of a blend add up to the
    masked observed image wherever any model is non-zero.

    Parameters
    ----------
    blend
        A fitted blend with image data.
    mask_footprint
        Set pixels of zero weight to 0 before sharing the image.
    min_model
        In units of each band's noise rms (0: every non-zero rendered value counts).

    Returns
    -------
    Blend
        The same blend, for chaining.
    """
    return blend.conserve_flux(mask_footprint=mask_footprint, min_model=min_model)


def blendedness(image: np.ndarray, scene: np.ndarray) -> float:
    """Blendedness ``1 - sum(image^2) / sum(image * scene)`` of one source.

    Parameters
    ----------
    image
        The source's image (any shape; e.g. ``(h, w)`` for one band or ``(bands, h, w)``).
    scene
        The sum of all sources' images (the source included) on the same pixels.

    Returns
    -------
    float
        The blendedness, computed in float64; nan when ``sum(image * scene)`` is not
        positive. Not clipped.
    """
    mine = np.asarray(image).astype(np.float64)
    cross = float(np.sum(mine * scene))
    if not cross > 0:
        return float("nan")
    return 1.0 - float(np.sum(mine * mine)) / cross


def scene_blendedness(
    images: Sequence[np.ndarray], boxes: Sequence[Box], scene: np.ndarray, frame: Box
) -> np.ndarray:
    """`blendedness` of every source of a scene, clipped to [0, 1].

    Parameters
    ----------
    images
        Each source's image ``(bands, h, w)`` on its box.
    boxes
        Each source's 2-d box.
    scene
        The whole scene ``(bands, H, W)`` on ``frame``.
    frame
        The 2-d box of ``scene``; the sums run over the pixels of each source inside it.

    Returns
    -------
    numpy.ndarray
        ``(len(images),)`` float64 in [0, 1]; 0 for a source outside ``frame`` or whose
        blendedness is undefined (no positive overlap with the scene).
    """
    out = np.zeros(len(images))
    for k, (image, box) in enumerate(zip(images, boxes)):
        if not box.overlaps(frame):
            continue
        a, c = frame.overlapped_slices(box)
        b = blendedness(image[(slice(None), *c)], scene[(slice(None), *a)])
        out[k] = b if not np.isnan(b) else 0.0
    return np.clip(out, 0.0, 1.0)


def tendril_fraction(source) -> float:
    """Share of a source's model flux in tendrils: structures one pixel wide, or cut off.

    The model is summed over bands (in model space) and its tendril pixels found by
    `vermilion.core.operators.thin_pixels` (opening of the support with a 2 x 2 square,
    then the piece connected to the peak). A compact, monotonic shape scores ~0; a model
    that grew thin filaments along the noise scores the share of flux it put there.

    Parameters
    ----------
    source
        A `Source` (any object with ``get_model()`` returning an `Image` and ``peak``).

    Returns
    -------
    float
        In [0, 1]; 0 for a source without a model.
    """
    model = source.get_model()
    if not model.data.size:
        return 0.0
    plane = np.maximum(np.asarray(model.data, dtype=np.float64).sum(axis=0), 0.0)
    if not np.any(plane > 0):
        return 0.0
    peak = source.peak
    if peak is not None:
        peak = (peak[0] - model.bbox.origin[0], peak[1] - model.bbox.origin[1])
    thin = thin_pixels(plane, peak)
    return float(plane[thin].sum() / plane.sum())
