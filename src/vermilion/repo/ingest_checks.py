"""What ingest checks: before it stores (the file's own band, the pixels, mask planes and
PSF of an exposure, what a run already holds, the content of a model file: errors), and
after (a patch still missing some of the repository's bands, a coadd whose WCS is far
from the sky map's: warnings, since both can be legitimate).

Kept apart from `vermilion.repo.ingest` (which stores) so that each rule has one home.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .butler import EXPOSURE_DATASET, band_order_key, repo_bands
from .errors import CorruptFileError, DataIdError, RepoError

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

    from .single_band import Exposure
    from .skymap import PatchInfo

__all__ = [
    "IngestWarning",
    "check_band_card",
    "check_exposure_content",
    "check_model_file",
    "check_same_as_stored",
    "check_wcs",
    "declared_band",
    "warn_missing_bands",
]

_log = logging.getLogger(__name__)


def declared_band(path: str | os.PathLike) -> str | None:
    """The ``BAND`` card of a coadd file (primary HDU, else the image HDU), or None."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the reader that follows says what is wrong
            with fits.open(path, memmap=True) as hdul:
                for hdu in hdul[:2]:
                    band = hdu.header.get("BAND")
                    if isinstance(band, str) and band.strip():
                        return band.strip()
    except (OSError, ValueError, IndexError):
        return None  # the reader that follows says what is wrong with the file
    return None


def check_band_card(path: str | os.PathLike, band: str) -> None:
    """Raise `DataIdError` when the file's ``BAND`` card names another band than ``band``."""
    declared = declared_band(path)
    if declared is not None and declared != band:
        raise DataIdError(
            f"{os.fspath(path)} is a {declared!r}-band file (its BAND card) but was given "
            f"as band {band!r}; give it as {declared}={os.fspath(path)}"
        )


def _same_exposure(a: Any, b: Any) -> bool:
    if a.bbox != b.bbox:
        return False
    for name in ("image", "variance", "mask"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None):
            return False
        if x is not None and not np.array_equal(
            np.asarray(x), np.asarray(y), equal_nan=np.asarray(x).dtype.kind == "f"
        ):
            return False
    px = getattr(a.psf, "image", None)
    py = getattr(b.psf, "image", None)
    return px is None or py is None or np.array_equal(np.asarray(px), np.asarray(py))


def check_same_as_stored(
    butler: Any, existing: Any, obj: Any, dataset_type: str, data_id: Mapping[str, Any], run: str
) -> None:
    """Raise `RepoError` when ``run`` already holds an exposure with other pixels than ``obj``.

    An identical dataset (the same ingest run again) passes: ingest stays idempotent.
    Only exposures are compared; other datasets that exist are kept as before.
    """
    from .single_band import Exposure

    if not isinstance(obj, Exposure):
        return
    stored = butler.get(existing)
    if _same_exposure(stored, obj):
        return
    what = ", ".join(f"{k} {v}" for k, v in data_id.items() if k != "skymap")
    raise RepoError(
        f"{dataset_type} ({what}) already holds other pixels in run {run!r}; nothing was "
        "stored: pass --replace (overwrite=True) to replace it"
    )


def check_model_file(path: str | os.PathLike) -> int:
    """Read every blend of a model file (checksums, sizes, fields); return the blend count.

    Raises
    ------
    CorruptFileError
        The file is not a model file, or is truncated, damaged or crafted; the
        message names the blend at fault.
    """
    from vermilion.io import ModelData, ModelDataError

    try:
        model = ModelData.read(path)
    except ModelDataError as e:
        raise CorruptFileError(f"not ingested: {e}") from e
    except (OSError, ValueError, MemoryError) as e:
        raise CorruptFileError(f"not ingested: {os.fspath(path)}: cannot read: {e}") from e
    return len(model.blends)


def check_exposure_content(exp: Any, where: str | None = None) -> None:
    """Refuse an exposure the deblender cannot use; flag pixels it must not use.

    Raises `RepoError` (nothing is stored) for a mask plane whose bit does not fit a
    32-bit mask (a card ``MP_X = 99``), a variance with no positive finite pixel, and
    a PSF image that sums to zero or less. Pixels whose variance is zero or negative
    (but not all of them) get variance inf and the NO_DATA bit, with a warning:
    they get no weight in the fit. ``where`` names the exposure in messages
    (default: its band).
    """
    from vermilion.core.masks import MASK_PLANES

    where = where or f"band {exp.band!r}"
    for name, value in (exp.mask_planes or {}).items():
        if not isinstance(value, (int, np.integer)) or value <= 0 or value & (value - 1):
            raise RepoError(f"{where}: mask plane {name} has no single bit ({value!r}): not stored")
        if value >= 1 << 31:
            raise RepoError(
                f"{where}: mask plane {name} is bit {int(value).bit_length() - 1} (card "
                f"MP_{name}); a 32-bit mask has bits 0 to 30: not stored"
            )
    psf = getattr(exp.psf, "image", None)
    if psf is not None:
        img = np.asarray(psf, dtype=np.float64)
        sums = img.reshape(-1, *img.shape[-2:]).sum(axis=(1, 2))
        if not np.all(sums > 0):
            raise RepoError(
                f"{where}: the PSF image sums to {float(sums.min()):.4g} (all zero or "
                "negative): not stored"
            )
    if exp.variance is None:
        return
    var = exp.variance
    finite = np.isfinite(var)
    if not np.any(finite & (var > 0)):
        raise RepoError(
            f"{where}: no pixel has a positive variance (all zero, negative or not "
            "finite): not stored"
        )
    bad = finite & (var <= 0)
    n = int(bad.sum())
    if n:
        no_data = exp.mask_planes.setdefault("NO_DATA", MASK_PLANES["NO_DATA"])
        var[bad] = np.inf
        exp.mask[bad] |= no_data
        _log.warning(
            "%s: %d pixel(s) with variance <= 0 stored with the NO_DATA bit (no weight in the fit)",
            where,
            n,
        )


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
