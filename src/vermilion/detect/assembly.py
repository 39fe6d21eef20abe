"""The last step of `detect_sources`: parents (footprints with their peaks) and the catalog.

`Parents` collects one `Footprint` per footprint with peaks, its peaks sorted
brightest first with ids 1, 2, ... over the whole catalog, and its flags
(``detect_edge``, ``deblend_masked`` and the ``masked_fraction``); `Parents.catalog`
makes the `SourceCatalog`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import ResolvedDetection
from .footprint import Footprint, SpanSet, make_peaks
from .peaks import FootprintPeaks

__all__ = ["Parents"]


class Parents:
    """The parents of a detection run, in the order they are added.

    Parameters
    ----------
    shape
        ``(H, W)`` of the images.
    yx0
        Absolute coordinate of pixel ``[0, 0]``.
    mask_any
        The OR of the band masks, or None.
    s
        The resolved settings (edge and mask-limit bits).
    """

    def __init__(self, shape, yx0, mask_any, s: ResolvedDetection) -> None:
        self.shape = shape
        self.yx0 = yx0
        self.mask_any = mask_any
        self.s = s
        self.footprints: list[Footprint] = []
        self.edge: list[bool] = []
        self.masked: list[bool] = []
        self.masked_fraction: list[float] = []
        self.next_peak_id = 1

    def add(self, found: FootprintPeaks, slc, sub, amp, has_data) -> None:
        """Add the footprint ``sub`` (pixels of box ``slc``) with the peaks ``found``."""
        k_amp = found.amp
        if np.isinf(k_amp).any():
            # saturated core: report the largest finite amplitude of the footprint
            fin = amp[slc][sub & has_data[slc]]
            k_amp = np.where(np.isinf(k_amp), fin.max() if fin.size else np.nan, k_amp)
        n_k = len(found.y)
        y0, x0 = self.yx0
        peaks = make_peaks(
            np.array(found.y) + y0, np.array(found.x) + x0, value=k_amp, snr=np.array(found.snr)
        )
        peaks = peaks[np.argsort(-peaks["value"], kind="stable")]
        peaks["id"] = np.arange(self.next_peak_id, self.next_peak_id + n_k)
        self.next_peak_id += n_k
        spans = SpanSet.from_mask(sub, (slc[0].start + y0, slc[1].start + x0))
        self.footprints.append(Footprint(spans, peaks))
        self._flag(slc, sub)

    def _flag(self, slc, sub) -> None:
        h, w = self.shape
        touches = slc[0].start == 0 or slc[1].start == 0 or slc[0].stop == h or slc[1].stop == w
        frac = 0.0
        masked = False
        if self.mask_any is not None:
            msub = self.mask_any[slc][sub]
            if self.s.edge_bits:
                touches = touches or bool(np.any(msub & self.s.edge_bits))
            for name, bits in self.s.limit_bits.items():
                f = float(np.count_nonzero(msub & bits)) / msub.size
                frac = max(frac, f)
                masked |= f > self.s.mask_limits[name]
        self.edge.append(bool(touches))
        self.masked.append(masked)
        self.masked_fraction.append(frac)

    def columns(self) -> dict[str, np.ndarray]:
        """The flag columns: ``detect_edge``, ``deblend_masked``, ``masked_fraction``
        and, with ``max_peaks`` / ``max_area``, ``deblend_tooManyPeaks`` /
        ``deblend_parentTooBig``."""
        c = self.s.config
        extra = {
            "detect_edge": np.array(self.edge, bool),
            "deblend_masked": np.array(self.masked, bool),
            "masked_fraction": np.array(self.masked_fraction, np.float32),
        }
        n_peaks = np.array([fp.n_peaks for fp in self.footprints], np.int64)
        areas = np.array([fp.area for fp in self.footprints], np.int64)
        if c.max_peaks is not None:
            extra["deblend_tooManyPeaks"] = n_peaks > int(c.max_peaks)
        if c.max_area is not None:
            extra["deblend_parentTooBig"] = areas > int(c.max_area)
        return extra


def make_catalog(
    parents: Parents | None,
    tract: int,
    patch: int,
    bands: Sequence[str],
    meta: Mapping[str, Any],
):
    """The `SourceCatalog` of ``parents`` (None: no footprint at all), with ``meta``."""
    from .catalog import SourceCatalog

    if parents is None:
        footprints, extra = [], {"masked_fraction": np.zeros(0, np.float32)}
    else:
        footprints, extra = parents.footprints, parents.columns()
    cat = SourceCatalog.from_footprints(footprints, tract, patch, bands, **extra)
    cat.meta.update(meta)
    return cat
