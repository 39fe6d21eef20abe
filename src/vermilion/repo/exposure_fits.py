"""Exposure files: vermilion's FITS layout (written and read), user coadds, and dispatch.

`read_exposure` recognises the layout of a file: vermilion's own (below), or an
``lsst.afw.image`` Exposure / MaskedImage (`vermilion.repo.afw_exposure`); any
other FITS file gets one `CorruptFileError` naming the HDUs it holds.

On-disk layout (FITS, format version 1)
---------------------------------------
=====  ==========  ======================================================================
HDU    EXTNAME     content
=====  ==========  ======================================================================
0      (primary)   no data; ``VMLNTYPE = 'EXPOSURE'``, ``VMLNVER = 1``, ``BAND``
1      IMAGE       float32 (H, W); WCS of the file's pixels; ``LTV1 = -x0``, ``LTV2 = -y0``
2      MASK        int32 (H, W); one card ``MP_<PLANE> = <bit index>`` per mask plane
3      VARIANCE    float32 (H, W)
4      PSF         float32 (ph, pw): a constant PSF image, or (ny, nx, ph, pw): a grid of
                   PSF images with the parent-pixel coordinates of the nodes in cards
                   ``PSFGY<i>`` (row i) and ``PSFGX<j>`` (column j)
=====  ==========  ======================================================================

Images are written uncompressed so that a box of pixels is read without reading
the rest of the image. ``(y0, x0)`` is the parent (tract) pixel of the first pixel.
The WCS held by an `Exposure` maps *parent* pixel coordinates (0-based) to the
sky; the WCS in the file maps the file's own pixels (shifted by the origin), so
that FITS viewers show correct coordinates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vermilion.core.bbox import Box
from vermilion.core.files import atomic_write
from vermilion.core.masks import MASK_PLANES
from vermilion.io.limits import open_fits_checked

from .afw_exposure import is_afw_exposure, read_afw_open
from .errors import CorruptFileError, FormatVersionError, RepoError
from .exposure_parts import (
    ExposureParts,
    cut_pixels,
    find_hdu,
    hdu_summary,
    header_wcs,
    mask_planes_from_header,
    psf_from_hdu,
    read_box,
    shifted_wcs,
    wcs_from_header,
)
from .psf import ImagePsf

__all__ = [
    "COMPONENTS",
    "EXPOSURE_FORMAT_VERSION",
    "exposure_hdulist",
    "read_coadd",
    "read_exposure",
    "read_psf_file",
    "write_exposure",
]

EXPOSURE_FORMAT_VERSION = 1
"""Version of the exposure FITS layout written by `Exposure.write`."""

COMPONENTS = ("image", "mask", "variance", "psf", "wcs", "bbox")
"""Parts of an exposure that can be read on their own."""

_PRIMARY_STD = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY"}


# ---- writing ------------------------------------------------------------------------------


def exposure_hdulist(exposure: Any) -> Any:
    """The ``astropy.io.fits.HDUList`` of an `Exposure` in the layout above."""
    from astropy.io import fits

    y0, x0 = exposure.bbox.origin
    primary = fits.PrimaryHDU()
    ph = primary.header
    ph["VMLNTYPE"] = ("EXPOSURE", "vermilion file type")
    ph["VMLNVER"] = (EXPOSURE_FORMAT_VERSION, "vermilion exposure format version")
    if exposure.band is not None:
        ph["BAND"] = (str(exposure.band), "band of this exposure")
    for key, value in exposure.metadata.items():
        ph[key] = value

    def image_hdu(data: np.ndarray, name: str):
        hdu = fits.ImageHDU(data, name=name)
        hdu.header["LTV1"] = (-x0, "minus the parent x of the first pixel")
        hdu.header["LTV2"] = (-y0, "minus the parent y of the first pixel")
        return hdu

    img = image_hdu(exposure.image, "IMAGE")
    if exposure.wcs is not None:
        img.header.update(shifted_wcs(exposure.wcs, -x0, -y0).to_header(relax=True))
    msk = image_hdu(exposure.mask, "MASK")
    for name, bit in exposure.mask_planes.items():
        index = int(bit).bit_length() - 1
        if bit <= 0 or 1 << index != bit:
            raise ValueError(f"Mask plane {name!r} has value {bit}, not a single bit")
        # names longer than 5 characters need a HIERARCH card (FITS keys have 8)
        key = f"MP_{name}" if len(name) <= 5 else f"HIERARCH MP_{name}"
        msk.header[key] = index
    variance = exposure.variance
    var = image_hdu(
        np.full(exposure.image.shape, np.nan, np.float32) if variance is None else variance,
        "VARIANCE",
    )
    if variance is None:
        var.header["VMLNNOVR"] = (True, "no variance was given")
    hdus = [primary, img, msk, var]
    psf = exposure.psf
    if psf is not None:
        psf_hdu = fits.ImageHDU(psf.image, name="PSF")
        if not psf.is_constant:
            for i, v in enumerate(psf.grid_y):
                psf_hdu.header[f"PSFGY{i}"] = float(v)
            for j, v in enumerate(psf.grid_x):
                psf_hdu.header[f"PSFGX{j}"] = float(v)
        hdus.append(psf_hdu)
    return fits.HDUList(hdus)


def write_exposure(exposure: Any, path: str | os.PathLike) -> None:
    """Write an `Exposure` in the layout above, atomically."""
    hdul = exposure_hdulist(exposure)
    atomic_write(path, lambda tmp: hdul.writeto(tmp, overwrite=True))


# ---- reading ------------------------------------------------------------------------------


def read_exposure(
    path: str | os.PathLike,
    box: Box | None = None,
    component: str | None = None,
    psf: ImagePsf | None = None,
) -> Any:
    """Read a vermilion or afw exposure file: its `ExposureParts`, or one component.

    ``box`` limits the pixels read; ``psf`` replaces the file's PSF (and is required
    for a whole afw exposure, whose PSF vermilion does not evaluate).
    """
    from ._fits import FitsFile, Malformed, Unsupported

    p = os.fspath(path)
    try:
        with FitsFile(p) as f:
            return _read_layout(f, p, box, component, psf)
    except (RepoError, FileNotFoundError):
        raise
    except Malformed as exc:
        raise CorruptFileError(f"{p}: not a readable FITS file ({exc})") from exc
    except Unsupported:
        pass  # not a plain file of ours: let astropy read it
    except Exception as exc:
        raise CorruptFileError(f"{p}: cannot read exposure ({exc})") from exc
    return _read_astropy(p, box, component, psf)


def _read_astropy(path: str, box: Box | None, component: str | None, psf: Any) -> Any:
    from astropy.io import fits

    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
    except Exception as exc:
        raise CorruptFileError(f"{path}: not a readable FITS file ({exc})") from exc
    try:
        return _read_layout(hdul, path, box, component, psf)
    except RepoError:
        raise
    except Exception as exc:
        raise CorruptFileError(f"{path}: cannot read exposure ({exc})") from exc
    finally:
        hdul.close()


def _read_layout(hdul: Any, path: str, box: Box | None, component: str | None, psf: Any) -> Any:
    """Recognise the layout of an open file and read it."""
    primary = hdul[0].header
    if "VMLNTYPE" in primary:
        return _read_open(hdul, path, box, component, psf)
    if is_afw_exposure(hdul):
        return read_afw_open(hdul, path, box, component, psf)
    raise CorruptFileError(
        f"{path}: not a vermilion exposure file (no VMLNTYPE card) nor an lsst.afw.image "
        f"Exposure/MaskedImage (no IMAGE, MASK and VARIANCE HDUs); it holds {hdu_summary(hdul)}"
    )


def _check_version(header: Any, path: str) -> None:
    kind = header.get("VMLNTYPE")
    if kind != "EXPOSURE":
        raise CorruptFileError(f"{path}: not a vermilion exposure file (VMLNTYPE={kind!r})")
    version = header.get("VMLNVER")
    if not isinstance(version, int) or version > EXPOSURE_FORMAT_VERSION or version < 1:
        raise FormatVersionError(
            f"{path}: exposure format version {version!r}; this vermilion reads versions "
            f"1 to {EXPOSURE_FORMAT_VERSION} (upgrade vermilion to read it)"
        )


def _hdu(hdul: Any, name: str, path: str) -> tuple[int, Any]:
    found = find_hdu(hdul, name)
    if found is None:
        raise CorruptFileError(f"{path}: no {name} HDU; it holds {hdu_summary(hdul)}")
    return found


def _read_open(hdul: Any, path: str, box: Box | None, component: str | None, psf: Any) -> Any:
    _check_version(hdul[0].header, path)
    if component == "psf":
        return psf if psf is not None else _read_psf(hdul)
    img_hdu = _hdu(hdul, "IMAGE", path)[1]
    hdr = img_hdu.header
    shape = (int(hdr["NAXIS2"]), int(hdr["NAXIS1"]))
    full = Box(shape, (-int(hdr.get("LTV2", 0)), -int(hdr.get("LTV1", 0))))
    box = read_box(full, box)
    if component == "bbox":
        return box
    if component == "wcs":
        return header_wcs(hdr, full)
    local = box.slices_in(full)

    def pixels(name: str, dtype) -> np.ndarray:
        return cut_pixels(hdul, _hdu(hdul, name, path), path, name, shape, local, dtype)

    if component == "image":
        return pixels("IMAGE", np.float32)
    if component == "mask":
        return pixels("MASK", np.int32)
    if component == "variance":
        return pixels("VARIANCE", np.float32)
    image = pixels("IMAGE", np.float32)
    mask = pixels("MASK", np.int32)
    no_variance = _hdu(hdul, "VARIANCE", path)[1].header.get("VMLNNOVR")
    variance = None if no_variance else pixels("VARIANCE", np.float32)
    primary = hdul[0].header
    meta = {
        k: v
        for k, v in primary.items()
        if k not in _PRIMARY_STD and k not in ("VMLNTYPE", "VMLNVER", "BAND") and k
    }
    return ExposureParts(
        image,
        mask,
        variance,
        psf if psf is not None else _read_psf(hdul),
        box,
        primary.get("BAND"),
        mask_planes_from_header(_hdu(hdul, "MASK", path)[1].header),
        meta,
        wcs_header=(hdr.tostring(), full) if "CTYPE1" in hdr else None,
    )


def _read_psf(hdul: Any) -> ImagePsf | None:
    found = find_hdu(hdul, "PSF")
    if found is None:
        return None
    hdu = found[1]
    return psf_from_hdu(hdu.data, hdu.header)


def read_coadd(
    path: str | os.PathLike,
    band: str | None = None,
    origin: Sequence[int] | None = None,
    psf: ImagePsf | None = None,
) -> ExposureParts:
    """Read a user coadd of one band (see `Exposure.from_fits`) into `ExposureParts`."""

    p = os.fspath(path)
    try:
        with open_fits_checked(p, CorruptFileError, memmap=False) as hdul:
            # a user coadd with a PSF HDU is read as such, even with afw's HDU names
            afw = is_afw_exposure(hdul) and find_hdu(hdul, "PSF") is None
            if "VMLNTYPE" not in hdul[0].header and afw:
                parts = read_afw_open(hdul, p, None, None, psf, origin)
                if band is not None:
                    parts.band = band
                return parts
            return _read_user_coadd(hdul, p, band, origin, psf)
    except (RepoError, FileNotFoundError):
        raise
    except Exception as exc:
        raise CorruptFileError(f"{p}: cannot read the coadd ({exc})") from exc


def _read_user_coadd(
    hdul: Any, p: str, band: str | None, origin: Sequence[int] | None, psf: ImagePsf | None
) -> ExposureParts:
    by_name = {h.name.upper(): h for h in hdul}
    img_hdu = by_name.get("IMAGE")
    if img_hdu is None or img_hdu.data is None:
        if hdul[0].data is None:
            raise CorruptFileError(
                f"{p}: no IMAGE HDU and no data in the primary HDU; it holds {hdu_summary(hdul)}"
            )
        img_hdu = hdul[0]
    image = np.asarray(img_hdu.data, dtype=np.float32)
    if image.ndim != 2:
        raise CorruptFileError(f"{p}: the image is not 2D (shape {image.shape})")
    if "VARIANCE" in by_name or "VAR" in by_name:
        var_hdu = by_name["VARIANCE" if "VARIANCE" in by_name else "VAR"]
        variance = np.asarray(var_hdu.data, dtype=np.float32)
    elif "IVAR" in by_name:
        ivar = np.asarray(by_name["IVAR"].data, dtype=np.float64)
        with np.errstate(divide="ignore"):
            variance = np.where(ivar > 0, 1.0 / ivar, np.inf).astype(np.float32)
    else:
        raise CorruptFileError(f"{p}: no VARIANCE (or VAR, IVAR) HDU")
    mask = None
    planes = dict(MASK_PLANES)
    if "MASK" in by_name:
        mask = np.asarray(by_name["MASK"].data, dtype=np.int32)
        planes.update(mask_planes_from_header(by_name["MASK"].header))
    if psf is None:
        if "PSF" not in by_name:
            raise CorruptFileError(
                f"{p}: no PSF HDU (the PSF must be an image HDU, or be given with psf=)"
            )
        psf = psf_from_hdu(by_name["PSF"].data, by_name["PSF"].header)
    hdr = img_hdu.header
    if "LTV1" in hdr and "LTV2" in hdr:
        yx0 = (-round(float(hdr["LTV2"])), -round(float(hdr["LTV1"])))
    else:
        yx0 = tuple(origin) if origin is not None else (0, 0)
    box = Box(image.shape, yx0)
    wcs = None
    if "CTYPE1" in hdr and "CTYPE2" in hdr:
        wcs = wcs_from_header(hdr.tostring(), box)
    if band is None:
        band = hdul[0].header.get("BAND") or hdr.get("BAND") or hdr.get("FILTER")
    return ExposureParts(image, mask, variance, psf, box, band, planes, wcs=wcs)


def read_psf_file(path: str | os.PathLike) -> ImagePsf:
    """The PSF image in a FITS file: HDU ``PSF`` if there is one, else the first image HDU.

    The image is ``(ph, pw)`` (odd sizes; normalised when evaluated), or a
    ``(ny, nx, ph, pw)`` grid with ``PSFGY<i>``/``PSFGX<j>`` node cards as `write`
    stores it.

    Raises
    ------
    CorruptFileError
        The file cannot be read or holds no image.
    """

    p = os.fspath(path)
    try:
        with open_fits_checked(p, CorruptFileError, memmap=False) as hdul:
            found = find_hdu(hdul, "PSF")
            hdu = (
                found[1]
                if found is not None
                else next((h for h in hdul if h.is_image and h.data is not None), None)
            )
            if hdu is None:
                raise CorruptFileError(f"{p}: no PSF image; it holds {hdu_summary(hdul)}")
            return psf_from_hdu(hdu.data, hdu.header)
    except (RepoError, FileNotFoundError):
        raise
    except Exception as exc:
        raise CorruptFileError(f"{p}: cannot read a PSF image ({exc})") from exc
