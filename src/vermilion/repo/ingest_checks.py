"""Checks made while ingesting coadds, which warn rather than refuse.

A patch may be ingested one band at a time, and a coadd may carry its own WCS: both
are legitimate, but they are where a user's wrong input would otherwise pass in
silence. `warn_missing_bands` says which of the repository's bands a patch still
lacks after an ingest; `check_wcs` compares a coadd's WCS with the sky map's.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from .butler import EXPOSURE_DATASET, band_order_key, repo_bands

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

    from .single_band import Exposure
    from .skymap import PatchInfo

__all__ = ["IngestWarning", "check_wcs", "warn_missing_bands"]


class IngestWarning(UserWarning):
    """An ingest that succeeded but stored something the user should know about."""


def _patch_where(info: PatchInfo) -> str:
    return f"patch {info.id} of tract {info.tract.id}"


def warn_missing_bands(butler: Butler, info: PatchInfo, run: str) -> list[str]:
    """Warn when ``run`` holds no coadd of the patch in some of the repository's bands.

    Parameters
    ----------
    butler
        The repository.
    info
        The patch.
    run
        The run the coadds went to.

    Returns
    -------
    list of str
        The repository's bands without a coadd of this patch in ``run`` (warned
        about when not empty).
    """
    data_id = {"skymap": info.tract.skymap.name, "tract": info.tract.id, "patch": info.id}
    refs = butler.query_datasets(
        EXPOSURE_DATASET, collections=[run], data_id=data_id, explain=False
    )
    present = {str(ref.dataId["band"]) for ref in refs}
    bands = sorted(repo_bands(butler), key=band_order_key)
    missing = [b for b in bands if b not in present]
    if missing:
        have = "".join(b for b in bands if b in present)
        warnings.warn(
            f"{_patch_where(info)} now has coadds in band(s) {have or 'none'} of run {run!r}, "
            f"but the repository's bands are {''.join(bands)}: band(s) {''.join(missing)} "
            f"are missing. Ingest them, or deblend this patch with the bands it has "
            f"(--bands {have}, or bands={list(have)!r}).",
            IngestWarning,
            stacklevel=3,
        )
    return missing


def _sky(wcs: Any, y: float, x: float) -> tuple[float, float]:
    ra, dec = wcs.all_pix2world(np.array([x]), np.array([y]), 0)
    return float(ra[0]) % 360.0, float(dec[0])


def _separation_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    ra1, dec1, ra2, dec2 = np.deg2rad([a[0], a[1], b[0], b[1]])
    cos = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(ra1 - ra2)
    return float(np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0))))


def check_wcs(exposure: Exposure, info: PatchInfo, where: str, tolerance_px: float = 1.0) -> float:
    """Warn when a coadd's own WCS puts its centre elsewhere on the sky than the sky map.

    The file's WCS is kept with the exposure (sky positions measured on it use it);
    the sky map decides only where the exposure is filed (its tract and patch).

    Parameters
    ----------
    exposure
        The coadd read from the file (``exposure.wcs`` maps tract pixels; None: no check).
    info
        The patch it is ingested into.
    where
        The file and band, for the message.
    tolerance_px
        Separations up to this many sky-map pixels are accepted in silence.

    Returns
    -------
    float
        The separation in degrees between the two positions of the coadd's centre.
    """
    if exposure.wcs is None:
        return 0.0
    y, x = exposure.bbox.center
    file_pos = _sky(exposure.wcs, y, x)
    ra, dec = info.tract.pixel_to_sky(y, x)
    map_pos = (float(ra), float(dec))
    sep = _separation_deg(file_pos, map_pos)
    if sep * 3600.0 > tolerance_px * info.tract.skymap.pixel_scale:
        warnings.warn(
            f"{where}: the file's WCS puts the coadd's centre (pixel y={y:.1f}, x={x:.1f}) at "
            f"RA {file_pos[0]:.4f}, Dec {file_pos[1]:.4f} deg, but sky map "
            f"{info.tract.skymap.name!r} puts {_patch_where(info)} there at RA {map_pos[0]:.4f}, "
            f"Dec {map_pos[1]:.4f} deg ({sep:.4g} deg apart). The file's WCS is used (stored "
            "with the exposure, for every sky position measured on it); the sky map only "
            "files it under this tract and patch. Check the tract, or the file's WCS.",
            IngestWarning,
            stacklevel=3,
        )
    return sep
