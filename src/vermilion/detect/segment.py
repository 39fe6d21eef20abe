"""Step 4 of `detect_sources`: footprints, from the S/N maps.

8-connected pixels with ``snr >= thresh`` in the coadd or in any band, dilated by a
disk of ``grow`` pixels (about the PSF radius), then relabelled so that footprints
that touch are merged. Saturated pixels with no data in any band join the footprint
around them (their peak is placed by `vermilion.detect.peaks`).
"""

from __future__ import annotations

import numpy as np

from .config import ResolvedDetection
from .footprint import disk

__all__ = ["footprint_labels"]


def footprint_labels(
    snr: np.ndarray,
    has_data: np.ndarray,
    above_bands: np.ndarray | None,
    mask_any: np.ndarray | None,
    s: ResolvedDetection,
) -> tuple[np.ndarray | None, int, np.ndarray | None]:
    """Label the footprints of the coadd S/N map ``snr``.

    Parameters
    ----------
    snr, has_data
        The coadd's matched-filter S/N and where it has data.
    above_bands
        Pixels above ``thresh`` in some band's map (`vermilion.detect.peaks.BandPeaks`),
        or None.
    mask_any
        The OR of the band masks, or None.
    s
        The resolved settings (``thresh``, ``min_area``, ``grow``, the SAT plane).

    Returns
    -------
    labels, n, sat_hole
        The ``(H, W)`` footprint labels 1..n (None when no pixel is above the
        threshold), their number, and the saturated pixels without data (None if
        there are none).
    """
    from scipy import ndimage

    structure = np.ones((3, 3), bool)
    above = snr >= s.thresh
    if above_bands is not None:
        above |= above_bands
    if not above.any():
        return None, 0, None
    sat_bit = s.planes.get("SAT", 0)
    sat_hole = None
    if mask_any is not None and sat_bit:
        sat_hole = ((mask_any & sat_bit) != 0) & ~has_data
        if sat_hole.any():
            # saturated cores belong to the footprint around them
            above |= sat_hole & ndimage.binary_dilation(above, structure)
        else:
            sat_hole = None
    labels, n = ndimage.label(above, structure=structure)
    min_area = s.config.min_area
    if min_area > 1:
        areas = np.bincount(labels.ravel(), minlength=n + 1)
        small = areas < min_area
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
            above = labels > 0
    grown = ndimage.binary_dilation(above, structure=disk(s.grow)) if s.grow > 0 else above
    labels, n = ndimage.label(grown, structure=structure)
    return labels, n, sat_hole
