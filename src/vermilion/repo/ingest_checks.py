"""What ingest checks before it stores: the file's own band, what a run already holds,
and the content of a model file.

Kept apart from `vermilion.repo.ingest` (which stores) so that each rule has one home.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import CorruptFileError, DataIdError, RepoError

__all__ = ["check_band_card", "check_model_file", "check_same_as_stored", "declared_band"]


def declared_band(path: str | os.PathLike) -> str | None:
    """The ``BAND`` card of a coadd file (primary HDU, else the image HDU), or None."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
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
