"""What ingest checks before it stores: the file's own band, the pixels, mask planes and
PSF of an exposure, what a run already holds, and the content of a model file.

Kept apart from `vermilion.repo.ingest` (which stores) so that each rule has one home.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import CorruptFileError, DataIdError, RepoError

__all__ = [
    "check_band_card",
    "check_exposure_content",
    "check_model_file",
    "check_same_as_stored",
    "declared_band",
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
