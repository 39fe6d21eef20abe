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

from vermilion._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MASK_PLANES": "maps",
    "DETECT_CONFIG_KEY": "config",
    "DetectionConfig": "config",
    "DetectionMaps": "maps",
    "detect_sources": "detection",
    "detection_maps": "maps",
    "estimate_background": "background",
    "inverse_variance_coadd": "maps",
    "mask_bits": "maps",
    "psf_sigma_from_images": "maps",
    "psf_sigmas_from_images": "maps",
    "PEAK_DTYPE": "footprint",
    "Footprint": "footprint",
    "HeavyFootprint": "footprint",
    "SpanSet": "footprint",
    "make_peaks": "footprint",
    "FLAG_COLUMNS": "catalog",
    "STANDARD_COLUMNS": "catalog",
    "SourceCatalog": "catalog",
    "SourceRecord": "catalog",
    "make_source_id": "ids",
    "unpack_source_id": "ids",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
