"""vermilion.detect: detection, footprints and the parent/child source catalog.

Names are loaded lazily: ``import vermilion.detect`` imports nothing heavy;
`SourceCatalog` (astropy) and `detect_sources` (scipy) load their modules on
first use.

Main entry points
-----------------
`detect_sources`
    Multi-band images -> `SourceCatalog` of parents with footprints and peaks.
`chi2_detection_image`
    Inverse-variance weighted coadd of all bands.
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
    from .catalog import FLAG_COLUMNS, STANDARD_COLUMNS, SourceCatalog, SourceRecord
    from .detection import (
        DEFAULT_MASK_PLANES,
        DetectionMaps,
        chi2_detection_image,
        detect_sources,
        detection_maps,
        estimate_background,
        mask_bits,
        psf_sigma_from_images,
        psf_sigmas_from_images,
    )
    from .footprint import PEAK_DTYPE, Footprint, HeavyFootprint, SpanSet, make_peaks
    from .ids import make_source_id, unpack_source_id

__all__ = [
    "DEFAULT_MASK_PLANES",
    "FLAG_COLUMNS",
    "PEAK_DTYPE",
    "STANDARD_COLUMNS",
    "DetectionMaps",
    "Footprint",
    "HeavyFootprint",
    "SourceCatalog",
    "SourceRecord",
    "SpanSet",
    "chi2_detection_image",
    "detect_sources",
    "detection_maps",
    "estimate_background",
    "make_peaks",
    "make_source_id",
    "mask_bits",
    "psf_sigma_from_images",
    "psf_sigmas_from_images",
    "unpack_source_id",
]

#: Submodule -> the names it exports, imported on first access (see `vermilion._lazy`).
_EXPORTS = {
    "detection": (
        "DEFAULT_MASK_PLANES",
        "DetectionMaps",
        "chi2_detection_image",
        "detect_sources",
        "detection_maps",
        "estimate_background",
        "mask_bits",
        "psf_sigma_from_images",
        "psf_sigmas_from_images",
    ),
    "footprint": (
        "PEAK_DTYPE",
        "Footprint",
        "HeavyFootprint",
        "SpanSet",
        "make_peaks",
    ),
    "catalog": (
        "FLAG_COLUMNS",
        "STANDARD_COLUMNS",
        "SourceCatalog",
        "SourceRecord",
    ),
    "ids": (
        "make_source_id",
        "unpack_source_id",
    ),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
