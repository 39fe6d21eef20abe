"""The pieces of an exposure read from a FITS file, and helpers shared by the readers.

The readers of each layout (vermilion's own in `vermilion.repo.exposure_fits`,
``lsst.afw.image``'s in `vermilion.repo.afw_exposure`) return an `ExposureParts`;
`vermilion.repo.single_band.Exposure` builds itself from it. HDUs are looked up by
``EXTNAME`` or ``EXTTYPE`` (afw writes only ``EXTTYPE``), in an astropy
``HDUList`` or in the fast reader's `vermilion.repo._fits.FitsFile` alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES

from .boxes import check_inside
from .errors import CorruptFileError
from .psf import ImagePsf

__all__ = [
    "ExposureParts",
    "cut_pixels",
    "find_hdu",
    "hdu_pixels",
    "hdu_summary",
    "header_wcs",
    "mask_planes_from_header",
    "psf_from_hdu",
    "read_box",
    "shifted_wcs",
    "standard_mask_planes",
    "wcs_from_header",
]

_BITPIX = (8, 16, 32, 64, -32, -64)


@dataclass
class ExposureParts:
    """What a reader found in a file: the arguments of `Exposure` plus a lazy WCS.

    ``wcs_header`` is ``(header text, box of the file's pixels)``: the WCS is parsed
    from it on first use (astropy's WCS costs milliseconds to build).
    """

    image: np.ndarray
    mask: np.ndarray | None
    variance: np.ndarray | None
    psf: ImagePsf | None
    bbox: Box
    band: str | None = None
    mask_planes: dict[str, int] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    wcs: Any = None
    wcs_header: tuple[str, Box] | None = None


def _hdus(hdul: Any) -> list[Any]:
    return list(getattr(hdul, "hdus", hdul))


def find_hdu(hdul: Any, name: str) -> tuple[int, Any] | None:
    """``(index, hdu)`` of the first HDU whose ``EXTNAME`` or ``EXTTYPE`` is ``name``."""
    for i, hdu in enumerate(_hdus(hdul)):
        header = hdu.header
        for key in ("EXTNAME", "EXTTYPE"):
            value = header.get(key)
            if isinstance(value, str) and value.strip().upper() == name:
                return i, hdu
    return None


def hdu_summary(hdul: Any) -> str:
    """What a file holds, for error messages: ``[0] PRIMARY (no data), [1] IMAGE (image 10x10)``."""
    parts = []
    for i, hdu in enumerate(_hdus(hdul)):
        header = hdu.header
        name = header.get("EXTNAME") or header.get("EXTTYPE") or ("PRIMARY" if i == 0 else "")
        kind = str(header.get("XTENSION", "IMAGE")).strip()
        naxis = header.get("NAXIS", 0) or 0
        dims = "x".join(str(header.get(f"NAXIS{k}", "?")) for k in range(1, int(naxis) + 1))
        what = "no data" if not naxis else f"{kind.lower()} {dims}"
        parts.append(f"[{i}] {str(name).strip() or '(unnamed)'} ({what})")
    return ", ".join(parts) or "no HDUs"


def hdu_pixels(
    hdul: Any, index: int, hdu: Any, path: str, name: str, shape: tuple[int, int] | None
) -> np.ndarray:
    """The data array of an image HDU, checked against its header and the file's size.

    Raises `CorruptFileError` when the HDU is not a 2D image, when its shape is not
    ``shape`` (None: any), or when the header declares more data than the file holds.
    """
    header = hdu.header
    naxis = header.get("NAXIS")
    if naxis != 2:
        raise CorruptFileError(f"{path}: HDU {name} is not a 2D image (NAXIS={naxis!r})")
    declared = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    if shape is not None and declared != shape:
        raise CorruptFileError(f"{path}: HDU {name} is {declared}, the image is {shape}")
    fileinfo = getattr(hdul, "fileinfo", None)  # astropy; the fast reader checks sizes itself
    if fileinfo is not None and not header.get("ZIMAGE"):
        bitpix = header.get("BITPIX")
        if bitpix not in _BITPIX:
            raise CorruptFileError(f"{path}: HDU {name} has BITPIX {bitpix!r}")
        need = fileinfo(index)["datLoc"] + declared[0] * declared[1] * abs(int(bitpix)) // 8
        size = os.path.getsize(path)
        if need > size:
            raise CorruptFileError(
                f"{path}: HDU {name} declares a {declared[0]}x{declared[1]} image that the "
                f"file ({size} bytes) cannot hold (truncated?)"
            )
    data = hdu.data
    if data is None or data.shape != declared:
        raise CorruptFileError(f"{path}: HDU {name} does not hold a {declared} image")
    return data


def read_box(full: Box, box: Box | None) -> Box:
    """The box a read covers: ``box``, checked inside the file's box ``full``, or all of it."""
    if box is None:
        return full
    check_inside(box, full, "exposure")
    return box


def header_wcs(header: Any, full: Box) -> Any:
    """The sky WCS of an image header (see `wcs_from_header`), None when it has none."""
    return wcs_from_header(header.tostring(), full) if "CTYPE1" in header else None


def cut_pixels(
    hdul: Any, found: tuple[int, Any], path: str, name: str, shape: tuple[int, int], local, dtype
) -> np.ndarray:
    """The pixels of image HDU ``found`` (index, hdu) inside ``local`` slices, as ``dtype``.

    Checked as `hdu_pixels` checks them; only the box is copied, so with a memory map the
    pages outside it are never read.
    """
    index, hdu = found
    data = hdu_pixels(hdul, index, hdu, path, name, shape)
    return np.ascontiguousarray(data[local], dtype=dtype)


def psf_from_hdu(data: Any, header: Mapping[str, Any]) -> ImagePsf:
    """An `ImagePsf` from a PSF HDU: a 2D image, or a 4D grid with ``PSFGY<i>``/``PSFGX<j>``."""
    data = np.array(data, dtype=np.float32)
    if data.ndim == 4:
        ny, nx = data.shape[:2]
        gy = [header[f"PSFGY{i}"] for i in range(ny)]
        gx = [header[f"PSFGX{j}"] for j in range(nx)]
        return ImagePsf(data, gy, gx)
    return ImagePsf(data)


def mask_planes_from_header(header: Any) -> dict[str, int]:
    """Plane name -> bit value from the ``MP_<NAME> = <bit index>`` cards of a MASK header."""
    planes = {}
    for key, value in header.items():
        if key.startswith("MP_"):
            planes[key[3:]] = 1 << int(value)
    return planes


def standard_mask_planes(
    mask: np.ndarray, planes: Mapping[str, int]
) -> tuple[np.ndarray, dict[str, int]] | None:
    """Remap ``mask`` to `vermilion.core.MASK_PLANES` bits by plane name.

    Planes of other names keep their names and get free bits from 16 up (in the
    order of their old bits); bits that no plane names are dropped. Returns
    ``(mask, planes)``, or None when the mask already follows the convention.
    """
    if all(planes.get(k) == v for k, v in MASK_PLANES.items() if k in planes) and all(
        v not in MASK_PLANES.values() or MASK_PLANES.get(k) == v for k, v in planes.items()
    ):
        return None
    new_planes = dict(MASK_PLANES)
    used = set(new_planes.values())
    out = np.zeros_like(mask)
    for name, bit in sorted(planes.items(), key=lambda kv: kv[1]):
        target = new_planes.get(name)
        if target is None:
            target = next((1 << i for i in range(4, 31) if (1 << i) not in used), None)
            if target is None:
                raise ValueError("More than 31 mask planes")
            new_planes[name] = target
            used.add(target)
        out |= np.where((mask & bit) != 0, target, 0).astype(out.dtype)
    return out, new_planes


def shifted_wcs(wcs: Any, dx: float, dy: float) -> Any:
    """A copy of an astropy WCS whose pixel coordinates are shifted by ``(dx, dy)``.

    A SIP distortion keeps its own reference pixel: it is shifted too.
    """
    out = wcs.deepcopy()
    shift = np.array([dx, dy], dtype=float)
    out.wcs.crpix = out.wcs.crpix + shift
    sip = out.sip
    if sip is not None:
        from astropy.wcs import Sip

        out.sip = Sip(sip.a, sip.b, sip.ap, sip.bp, np.asarray(sip.crpix) + shift)
    return out


def wcs_from_header(header_str: str, file_box: Box) -> Any:
    """WCS of parent pixels from the header of a file whose first pixel is ``file_box.origin``.

    The primary WCS of the header (key ``' '``) is read, SIP distortion included;
    alternate WCSs (afw's ``A``: the pixel origin) are ignored.
    """
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    header = fits.Header.fromstring(header_str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    y0, x0 = file_box.origin
    return shifted_wcs(wcs, x0, y0)
