"""vermilion.detect: detection, footprints and the parent/child source catalog.

Names are loaded lazily: ``import vermilion.detect`` imports nothing heavy;
`SourceCatalog` (astropy) and `detect_sources` (scipy) load their modules on
first use.

Main entry points
-----------------
`detect_sources`
    Multi-band images -> `SourceCatalog` of parents with footprints and peaks.
`DetectionConfig`
    Every setting of `detect_sources`, recorded in the catalog's ``meta``.
`inverse_variance_coadd`
    Inverse-variance weighted coadd of all bands (not the engine's
    `vermilion.core.chi2_detection_image`).
`Footprint`, `HeavyFootprint`, `SpanSet`
    Pixel sets as row runs (x1 inclusive) with peaks (and pixel values).
`SourceCatalog`, `SourceRecord`
    astropy-Table catalog with Rubin-style record access; FITS round trip.
`make_source_id`, `unpack_source_id`
    64-bit ids: tract 16 bits, patch 16 bits, sequence 31 bits, sign bit 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vermilion._lazy import lazy_exports

if TYPE_CHECKING:  # the names of _EXPORTS, for type checkers and readers
    from .background import estimate_background
    from .catalog import FLAG_COLUMNS, STANDARD_COLUMNS, SourceCatalog, SourceRecord
    from .config import DETECT_CONFIG_KEY, DetectionConfig
    from .detection import detect_sources
    from .footprint import PEAK_DTYPE, Footprint, HeavyFootprint, SpanSet, make_peaks
    from .ids import make_source_id, unpack_source_id
    from .maps import (
        DetectionMaps,
        detection_maps,
        inverse_variance_coadd,
        psf_sigma_from_images,
        psf_sigmas_from_images,
    )

__all__ = [
    "DETECT_CONFIG_KEY",
    "FLAG_COLUMNS",
    "PEAK_DTYPE",
    "STANDARD_COLUMNS",
    "DetectionConfig",
    "DetectionMaps",
    "Footprint",
    "HeavyFootprint",
    "SourceCatalog",
    "SourceRecord",
    "SpanSet",
    "detect_sources",
    "detection_maps",
    "estimate_background",
    "inverse_variance_coadd",
    "make_peaks",
    "make_source_id",
    "psf_sigma_from_images",
    "psf_sigmas_from_images",
    "unpack_source_id",
]

#: Submodule -> the names it exports, imported on first access (see `vermilion._lazy`).
_EXPORTS = {
    "config": ("DETECT_CONFIG_KEY", "DetectionConfig"),
    "detection": ("detect_sources",),
    "maps": (
        "DetectionMaps",
        "detection_maps",
        "inverse_variance_coadd",
        "psf_sigma_from_images",
        "psf_sigmas_from_images",
    ),
    "background": ("estimate_background",),
    "footprint": ("PEAK_DTYPE", "Footprint", "HeavyFootprint", "SpanSet", "make_peaks"),
    "catalog": ("FLAG_COLUMNS", "STANDARD_COLUMNS", "SourceCatalog", "SourceRecord"),
    "ids": ("make_source_id", "unpack_source_id"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
