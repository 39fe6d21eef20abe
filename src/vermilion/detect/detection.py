"""Source detection on the inverse-variance weighted coadd of all bands.

`detect_sources` runs six steps, each in its own module, with the settings of one
`DetectionConfig` (`vermilion.detect.config`):

1. coadd (`vermilion.detect.maps`): the inverse-variance weighted coadd of the bands,
   unusable pixels at zero weight;
2. background (`vermilion.detect.background`): a smooth sky level per band,
   subtracted before coadding;
3. S/N maps (`vermilion.detect.maps`): the matched-filter S/N and amplitude of the
   coadd, and the S/N of every band (whose peaks are found as each band passes,
   `vermilion.detect.peaks.BandPeaks`);
4. footprints (`vermilion.detect.segment`): pixels above ``thresh`` in some map,
   grown by about the PSF radius, touching footprints merged;
5. peaks (`vermilion.detect.peaks`): culled local maxima of the coadd S/N, band
   peaks, and asymmetry (or residual) peaks on the wings of bright ones;
6. vetting (`vermilion.detect.vetting`): every peak that is not a culled coadd
   maximum must be a significant point source over a local model of the others;

then the catalog of parents (`vermilion.detect.assembly`), with the config recorded
in its ``meta``.

The implementation uses `scipy.ndimage` (separable Gaussian filters, labelling,
binary dilation, ``find_objects``) and numpy: on a 4000 x 4000 6-band patch it
takes about 23 s on the project machine (`bench/bench_detect.py`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .assembly import Parents, make_catalog
from .config import DETECT_CONFIG_KEY, DetectionConfig, ResolvedDetection
from .maps import DetectionMaps, _check_inputs, _detection_pass
from .peaks import BandPeaks, Candidates, find_candidates, footprint_peaks, sharp_snr_map
from .segment import footprint_labels
from .vetting import vet_footprint_peaks

__all__ = ["detect_sources"]


def detect_sources(
    images,
    variance,
    mask=None,
    psfs=None,
    *,
    config: DetectionConfig | Mapping[str, Any] | None = None,
    bands: Sequence[str] | None = None,
    yx0: Sequence[int] = (0, 0),
    tract: int = 0,
    patch: int = 0,
    return_maps: bool = False,
    **settings: Any,
):
    """Detect parents (footprints with peaks) on the weighted coadd of all bands.

    Steps (see `vermilion.detect.detection`): 1. coadd, 2. background, 3. S/N maps,
    4. footprints, 5. peaks, 6. vetting; then the catalog.

    Parameters
    ----------
    images, variance
        ``(bands, H, W)`` arrays (or ``(H, W)`` for one band), or vermilion
        `Image` objects (their ``.data``, ``.bands`` and ``.yx0`` are used).
    mask
        Integer mask, ``(H, W)`` or ``(bands, H, W)``, bits as in ``mask_planes``.
    psfs
        ``(bands, h, w)`` PSF images, used for the smoothing width and ``grow``.
    config
        A `DetectionConfig` or a mapping of its fields (default: the defaults).
    bands
        Band names (default ``"0", "1", ...``); stored in ``catalog.meta``.
    yx0
        Absolute coordinate of pixel ``[0, 0]``; footprints and peaks are absolute.
    tract, patch
        Packed into the 64-bit ids (`vermilion.detect.ids`).
    return_maps
        Also return the `DetectionMaps`.
    **settings
        Fields of `DetectionConfig` (``thresh=4``, ``crowded=True`` ...); they win
        over those of ``config``.

    Returns
    -------
    SourceCatalog or (SourceCatalog, DetectionMaps)
        One parent per footprint, in raster order of the footprints, with
        ``masked_fraction`` added; peak ids are 1, 2, ... over the whole catalog
        (brightest first within each parent). A peak's ``value`` is the coadd's
        matched-filter amplitude there, its ``snr`` the S/N of the map (coadd or
        band) in which it was found. ``meta["detect_config"]`` holds the config.

    Raises
    ------
    ValueError
        On inconsistent shapes, unknown mask planes or invalid settings (TypeError on
        a keyword that is not a field of `DetectionConfig`).
    """
    config = _merge(config, settings)
    data = _Data.check(images, variance, mask, bands, yx0)
    s = config.resolve(data.n_bands, psfs)
    clock = _Clock()
    # 1-3. background-subtracted coadd and its S/N map; each band's map gives band peaks
    band_peaks = BandPeaks(s, data.shape) if s.use_bands else None
    maps, band_found = _coadd_and_maps(data, s, band_peaks)
    clock.lap("maps")
    # 4. footprints, and the peak candidates in them
    has_data = maps.weight > 0
    above_bands = None if band_peaks is None else band_peaks.above
    labels, n, sat_hole = footprint_labels(maps.snr, has_data, above_bands, data.mask_any, s)
    found = band_found if band_peaks is not None else None
    candidates = find_candidates(maps, labels, n, found, sat_hole, s) if n else None
    clock.lap("footprints")
    # 5-6. the peaks of each footprint, vetted
    parents = _parents(data, maps, has_data, labels, candidates, s) if n else None
    clock.lap("peaks")
    cat = make_catalog(parents, tract, patch, data.bands, _meta(config, s, maps, data))
    maps.timings = clock.lap("catalog")
    return (cat, maps) if return_maps else cat


class _Clock:
    """Seconds per stage: `lap` records the time since the previous lap."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.t = time.perf_counter()

    def lap(self, stage: str) -> dict[str, float]:
        now = time.perf_counter()
        self.timings[stage] = now - self.t
        self.t = now
        return self.timings


def _coadd_and_maps(data: _Data, s: ResolvedDetection, band_peaks: BandPeaks | None):
    """Steps 1-3: `vermilion.detect.maps._detection_pass` with the resolved settings."""
    return _detection_pass(
        data.images,
        data.variance,
        data.mask,
        s.bad,
        s.smooth_sigma,
        s.config.background,
        s.config.background_cell,
        band_peaks,
        s.band_sigmas,
    )


def _merge(config, settings: Mapping[str, Any]) -> DetectionConfig:
    """``config`` (a `DetectionConfig`, a mapping or None) with ``settings`` applied."""
    unknown = sorted(set(settings) - set(DetectionConfig.field_names()))
    if unknown:
        raise TypeError(f"detect_sources() got unexpected keyword argument(s) {unknown}")
    return DetectionConfig.coerce(config).override(settings)


@dataclass
class _Data:
    """The checked inputs of `detect_sources`."""

    images: np.ndarray
    variance: np.ndarray
    mask: np.ndarray | None
    mask_any: np.ndarray | None
    bands: list[str]
    yx0: tuple[int, int]

    @property
    def n_bands(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.images.shape[1:]

    @classmethod
    def check(cls, images, variance, mask, bands, yx0) -> _Data:
        if hasattr(images, "bands") and bands is None:
            bands = getattr(images, "bands", None)
        if hasattr(images, "yx0") and tuple(yx0) == (0, 0):
            yx0 = tuple(images.yx0)
        img, var, mask = _check_inputs(images, variance, mask)
        n_bands = img.shape[0]
        if bands is None:
            bands = [str(i) for i in range(n_bands)]
        bands = [str(b) for b in bands]
        if len(bands) != n_bands:
            raise ValueError(f"{len(bands)} band names for {n_bands} image planes")
        if len(yx0) != 2:
            raise ValueError(f"yx0 must be (y0, x0), got {yx0!r}")
        mask_any = None
        if mask is not None:
            mask_any = np.bitwise_or.reduce(mask, axis=0) if mask.ndim == 3 else mask
        return cls(img, var, mask, mask_any, bands, (int(yx0[0]), int(yx0[1])))


def _parents(
    data: _Data, maps: DetectionMaps, has_data, labels, candidates: Candidates, s
) -> Parents:
    """Steps 5 and 6 for every footprint of ``labels`` that has a candidate."""
    from scipy import ndimage

    rsnr = sharp_snr_map(maps, s)
    parents = Parents(data.shape, data.yx0, data.mask_any, s)
    for lab, slc in enumerate(ndimage.find_objects(labels), start=1):
        if slc is None or not candidates.any(lab):
            continue  # no peak: not a detection at peak_snr
        sub = labels[slc] == lab
        found = footprint_peaks(lab, slc, sub, maps, has_data, rsnr, candidates, s)
        if found is None:
            continue
        found = vet_footprint_peaks(found, data.images, data.variance, data.mask, slc, s)
        parents.add(found, slc, sub, maps.amplitude, has_data)
    return parents


def _meta(config: DetectionConfig, s: ResolvedDetection, maps: DetectionMaps, data: _Data):
    """What the catalog's ``meta`` records of the run (the config under ``detect_config``)."""
    h, w = data.shape
    return {
        "detect_thresh": float(s.thresh),
        "detect_peak_snr": float(s.peak_snr),
        "detect_psf_sigma": float(maps.psf_sigma),
        "detect_grow": int(s.grow),
        "yx0": list(data.yx0),
        "shape": [int(h), int(w)],
        DETECT_CONFIG_KEY: config.to_dict(),
    }
