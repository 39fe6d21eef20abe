"""Exposures written by the Rubin science pipelines (``lsst.afw.image``), read without them.

An afw Exposure or MaskedImage FITS file holds the HDUs ``IMAGE``, ``MASK`` and
``VARIANCE`` (named by ``EXTTYPE``; ``EXTNAME`` is accepted too), then for an
Exposure an archive of binary tables (WCS, PhotoCalib, Detector, PSF, ...).
What is read, and how:

- pixels: image and variance as float32, the mask as int32;
- mask planes: the ``MP_<NAME> = <bit index>`` cards of the MASK header. They are
  remapped by name to `vermilion.core.MASK_PLANES` (BAD, SAT, NO_DATA, EDGE); the
  other named planes (``CR``, ``DETECTED``, ``INTRP``, ``SUSPECT``, ...) are kept
  under their names with free bits from 16 up, in the order of their afw bits;
  mask bits no card names are dropped;
- the pixel origin ``(y0, x0)``: ``-LTV2``, ``-LTV1``, else ``CRVAL2A``, ``CRVAL1A``
  (the ``LINEAR`` alternate WCS afw also writes), else the caller's default, else
  (0, 0); the two must agree when both are present;
- the sky WCS: the primary WCS of the IMAGE header through astropy (TAN, TAN-SIP
  and whatever else astropy reads), shifted to parent pixels;
- the PSF: not read. A calexp's PSF model and a coadd's ``CoaddPsf`` (a sum of the
  visits' PSFs) live in the archive, which vermilion does not evaluate: the PSF is
  given by the caller (``psf=``, or ``vermilion ingest coadd --psf BAND=FILE``), and
  a whole exposure read without one raises `PsfMissingError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vermilion.core.bbox import Box

from .errors import CorruptFileError, PsfMissingError
from .exposure_parts import (
    ExposureParts,
    cut_pixels,
    find_hdu,
    header_wcs,
    mask_planes_from_header,
    read_box,
    standard_mask_planes,
)

__all__ = ["AFW_HDUS", "afw_origin", "is_afw_exposure", "read_afw_open"]

AFW_HDUS = ("IMAGE", "MASK", "VARIANCE")
"""The HDUs (``EXTTYPE``) of an ``lsst.afw.image`` Exposure or MaskedImage file."""


def is_afw_exposure(hdul: Any) -> bool:
    """Whether an open FITS file has the IMAGE, MASK and VARIANCE HDUs of an afw exposure."""
    return all(find_hdu(hdul, name) is not None for name in AFW_HDUS)


def _integer(value: Any, key: str, path: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CorruptFileError(f"{path}: {key} = {value!r} is not a number") from None
    if not np.isfinite(number) or number != round(number):
        raise CorruptFileError(f"{path}: {key} = {value!r} is not a whole pixel")
    return round(number)


def afw_origin(header: Any, path: str, default: Sequence[int] | None = None) -> tuple[int, int]:
    """``(y0, x0)`` of an afw image HDU: ``-LTV2, -LTV1``, else ``CRVAL2A, CRVAL1A``.

    Raises `CorruptFileError` when the values are not whole pixels, or when both
    are present and disagree.
    """
    ltv = crval = None
    if "LTV1" in header and "LTV2" in header:
        ltv = (-_integer(header["LTV2"], "LTV2", path), -_integer(header["LTV1"], "LTV1", path))
    if "CRVAL1A" in header and "CRVAL2A" in header:
        crval = (
            _integer(header["CRVAL2A"], "CRVAL2A", path),
            _integer(header["CRVAL1A"], "CRVAL1A", path),
        )
    if ltv is not None and crval is not None and ltv != crval:
        raise CorruptFileError(
            f"{path}: the pixel origin from LTV1/LTV2 (x0={ltv[1]}, y0={ltv[0]}) differs from "
            f"CRVAL1A/CRVAL2A (x0={crval[1]}, y0={crval[0]})"
        )
    origin = ltv or crval
    if origin is None:
        origin = tuple(int(v) for v in default) if default is not None else (0, 0)
    return origin  # type: ignore[return-value]


def read_afw_open(
    hdul: Any,
    path: str,
    box: Box | None,
    component: str | None,
    psf: Any,
    origin: Sequence[int] | None = None,
) -> Any:
    """Read an open afw exposure file: its `ExposureParts`, or one component.

    Parameters
    ----------
    hdul
        The open file (astropy ``HDUList`` or the fast reader's ``FitsFile``).
    path
        The file's path, for messages.
    box
        Parent-pixel box to read (None: all).
    component
        ``image``, ``mask``, ``variance``, ``psf``, ``wcs``, ``bbox`` or None.
    psf
        The `ImagePsf` to attach (the file's own PSF is not evaluated).
    origin
        ``(y0, x0)`` when the file has neither ``LTV`` nor ``CRVAL*A`` cards.

    Raises
    ------
    CorruptFileError
        The HDUs are not 2D images of one shape, the file is shorter than its headers
        declare, or the origin cards disagree.
    PsfMissingError
        A whole exposure (or its ``psf`` component) is read without ``psf``.
    """
    found = {name: find_hdu(hdul, name) for name in AFW_HDUS}
    img_hdu = found["IMAGE"][1]  # type: ignore[index]
    hdr = img_hdu.header
    if hdr.get("NAXIS") != 2:
        raise CorruptFileError(f"{path}: HDU IMAGE is not a 2D image (NAXIS={hdr.get('NAXIS')!r})")
    shape = (int(hdr["NAXIS2"]), int(hdr["NAXIS1"]))
    full = Box(shape, afw_origin(hdr, path, origin))
    box = read_box(full, box)
    if component == "bbox":
        return box
    if component == "wcs":
        return header_wcs(hdr, full)
    if psf is None and component in (None, "psf"):
        raise PsfMissingError(
            f"{path}: no PSF: the file has no PSF HDU, and the PSF of an lsst.afw.image "
            "exposure (in its archive, e.g. a coadd's CoaddPsf) is not evaluated by vermilion; "
            "give one with psf= (a PSF image array), or to ingest with --psf BAND=FILE"
        )
    if component == "psf":
        return psf
    local = box.slices_in(full)

    def pixels(name: str, dtype: Any) -> np.ndarray:
        return cut_pixels(hdul, found[name], path, name, shape, local, dtype)  # type: ignore[arg-type]

    if component == "image":
        return pixels("IMAGE", np.float32)
    if component == "variance":
        return pixels("VARIANCE", np.float32)
    mask = pixels("MASK", np.int32)
    planes = mask_planes_from_header(found["MASK"][1].header)  # type: ignore[index]
    remapped = standard_mask_planes(mask, planes)
    if remapped is not None:
        mask, planes = remapped
    else:  # already our bits: still drop the bits no plane names
        mask = (mask.astype(np.int64) & sum(planes.values())).astype(np.int32)
    if component == "mask":
        return mask
    primary = hdul[0].header
    band = primary.get("BAND") or primary.get("FILTER")
    return ExposureParts(
        pixels("IMAGE", np.float32),
        mask,
        pixels("VARIANCE", np.float32),
        psf,
        box,
        str(band).strip() if band else None,
        planes,
        wcs_header=(hdr.tostring(), full) if "CTYPE1" in hdr else None,
    )
