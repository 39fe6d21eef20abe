"""Exposures: image, mask, variance and PSF of one band (and of several bands) of a coadd.

Only numpy and astropy are used here (astropy imported inside functions), so that
this module can be used without a data repository.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from vermilion.core.bbox import Box
from vermilion.core.files import atomic_write
from vermilion.core.masks import MASK_PLANES
from vermilion.core.psf import stack_psfs

from .errors import BBoxError, CorruptFileError, FormatVersionError

__all__ = [
    "EXPOSURE_FORMAT_VERSION",
    "MASK_PLANES",
    "Exposure",
    "ImagePsf",
    "MultibandExposure",
    "as_box",
]

EXPOSURE_FORMAT_VERSION = 1
"""Version of the exposure FITS layout written by `Exposure.write`."""

"""Mask plane bit values shared with `vermilion.sim` and `vermilion.detect`."""

COMPONENTS = ("image", "mask", "variance", "psf", "wcs", "bbox")
"""Parts of an exposure that can be read on their own."""


def as_box(bbox: Any) -> Box:
    """Convert a box to a `Box` in parent ``(y, x)`` pixel coordinates.

    Accepts a `Box`, an ``lsst.geom.Box2I``-like object (``getMinX``, ``getMinY``,
    ``getWidth``, ``getHeight``) or a pair of slices ``(y_slice, x_slice)`` with
    explicit starts and stops.
    """
    if isinstance(bbox, Box):
        if bbox.ndim != 2:
            raise ValueError(f"Expected a 2D box, got {bbox}")
        return bbox
    if all(hasattr(bbox, n) for n in ("getMinX", "getMinY", "getWidth", "getHeight")):
        return Box(
            (int(bbox.getHeight()), int(bbox.getWidth())),
            (int(bbox.getMinY()), int(bbox.getMinX())),
        )
    if (
        isinstance(bbox, tuple)
        and len(bbox) == 2
        and all(isinstance(s, slice) and s.start is not None and s.stop is not None for s in bbox)
    ):
        return Box.from_bounds((bbox[0].start, bbox[0].stop), (bbox[1].start, bbox[1].stop))
    raise TypeError(
        f"Cannot use {bbox!r} as a box: give a vermilion Box(shape=(h, w), origin=(y0, x0))"
    )


def _is_box(obj: Any) -> bool:
    return isinstance(obj, Box) or hasattr(obj, "getMinX")


def _position_yx(position: Any) -> tuple[float, float] | None:
    """A position as ``(y, x)``; objects with ``getX``/``getY`` (lsst.geom points) are x-first."""
    if position is None:
        return None
    if hasattr(position, "getX") and hasattr(position, "getY"):
        return float(position.getY()), float(position.getX())
    y, x = position
    return float(y), float(x)


class ImagePsf:
    """A PSF model made of images: one constant image, or a grid interpolated by position.

    Parameters
    ----------
    image
        ``(ph, pw)`` for a constant PSF, or ``(ny, nx, ph, pw)`` for a grid of PSF
        images whose nodes sit at rows ``grid_y`` and columns ``grid_x``.
        ``ph`` and ``pw`` must be odd (the PSF centre is the central pixel).
    grid_y, grid_x
        Parent-pixel coordinates of the grid nodes (increasing), required for a grid.

    Notes
    -----
    Between nodes the kernel is interpolated bilinearly; outside the grid the nearest
    node's kernel is used. Kernels are returned normalised to a sum of 1.
    """

    __slots__ = ("_image", "_kernel", "grid_x", "grid_y")

    def __init__(
        self,
        image: np.ndarray,
        grid_y: Sequence[float] | None = None,
        grid_x: Sequence[float] | None = None,
    ) -> None:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim not in (2, 4):
            raise ValueError(
                f"A PSF image must be (ph, pw) or a grid (ny, nx, ph, pw), got shape {image.shape}"
            )
        ph, pw = image.shape[-2:]
        if ph % 2 == 0 or pw % 2 == 0:
            raise ValueError(f"PSF images must have odd height and width, got {(ph, pw)}")
        if not np.all(np.isfinite(image)):
            raise ValueError("PSF image holds NaN or inf values")
        self._image = image
        self._kernel: np.ndarray | None = None
        if image.ndim == 4:
            if grid_y is None or grid_x is None:
                raise ValueError("A grid of PSF images needs grid_y and grid_x node coordinates")
            gy = np.asarray(grid_y, dtype=float)
            gx = np.asarray(grid_x, dtype=float)
            if gy.shape != (image.shape[0],) or gx.shape != (image.shape[1],):
                raise ValueError(
                    f"PSF grid of {image.shape[:2]} nodes needs {image.shape[0]} grid_y and "
                    f"{image.shape[1]} grid_x values, got {gy.size} and {gx.size}"
                )
            if np.any(np.diff(gy) <= 0) or np.any(np.diff(gx) <= 0):
                raise ValueError("PSF grid node coordinates must increase strictly")
            self.grid_y: np.ndarray | None = gy
            self.grid_x: np.ndarray | None = gx
        else:
            if grid_y is not None or grid_x is not None:
                raise ValueError("grid_y/grid_x are only used with a 4D grid of PSF images")
            self.grid_y = self.grid_x = None

    @property
    def is_constant(self) -> bool:
        return self._image.ndim == 2

    @property
    def shape(self) -> tuple[int, int]:
        """``(ph, pw)`` of one kernel image."""
        return tuple(self._image.shape[-2:])  # type: ignore[return-value]

    @property
    def image(self) -> np.ndarray:
        """The stored image(s): ``(ph, pw)`` or ``(ny, nx, ph, pw)``."""
        return self._image

    @property
    def center(self) -> tuple[float, float] | None:
        """Centre of the grid (None for a constant PSF)."""
        if self.is_constant:
            return None
        return float(self.grid_y.mean()), float(self.grid_x.mean())  # type: ignore[union-attr]

    def computeKernelImage(self, position: Any = None) -> np.ndarray:
        """The PSF kernel at ``position``, normalised to sum to 1 (float32, (ph, pw)).

        Parameters
        ----------
        position
            ``(y, x)`` in parent pixels, or an object with ``getX()``/``getY()``
            (an ``lsst.geom.Point2D``). Ignored by a constant PSF; for a grid, None
            means the grid centre.
        """
        if self.is_constant:
            if self._kernel is None:
                self._kernel = _normalized(self._image)
            return self._kernel.copy()
        yx = _position_yx(position) or self.center
        wy = _interp_weights(self.grid_y, yx[0])  # type: ignore[arg-type]
        wx = _interp_weights(self.grid_x, yx[1])  # type: ignore[arg-type]
        kernel = np.zeros(self.shape, dtype=np.float64)
        for iy, fy in wy:
            for ix, fx in wx:
                if fy * fx > 0:
                    kernel += fy * fx * self._image[iy, ix]
        return _normalized(kernel)

    compute_kernel_image = computeKernelImage

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        kernel = self.computeKernelImage()
        return kernel if dtype is None else kernel.astype(dtype)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImagePsf) or self.is_constant != other.is_constant:
            return False
        if self._image.shape != other._image.shape or not np.array_equal(self._image, other._image):
            return False
        if self.is_constant:
            return True
        return np.array_equal(self.grid_y, other.grid_y) and np.array_equal(
            self.grid_x, other.grid_x
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.is_constant:
            return f"ImagePsf(shape={self.shape})"
        return f"ImagePsf(shape={self.shape}, grid={self._image.shape[:2]})"


def _normalized(kernel: np.ndarray) -> np.ndarray:
    total = float(kernel.sum())
    if total <= 0 or not np.isfinite(total):
        raise ValueError(f"PSF kernel sums to {total}; it cannot be normalised")
    return (kernel / total).astype(np.float32)


def _interp_weights(nodes: np.ndarray, value: float) -> list[tuple[int, float]]:
    """Linear-interpolation (index, weight) pairs, clamped to the end nodes."""
    if nodes.size == 1 or value <= nodes[0]:
        return [(0, 1.0)]
    if value >= nodes[-1]:
        return [(nodes.size - 1, 1.0)]
    i = int(np.searchsorted(nodes, value, side="right")) - 1
    f = (value - nodes[i]) / (nodes[i + 1] - nodes[i])
    return [(i, 1.0 - f), (i + 1, f)]


def _as_psf(psf: Any) -> ImagePsf | None:
    if psf is None or isinstance(psf, ImagePsf):
        return psf
    return ImagePsf(np.asarray(psf))


class Exposure:
    """One band of a coadd: image, mask, variance, PSF, origin, WCS and band.

    Parameters
    ----------
    image
        ``(H, W)`` pixel values (stored as float32).
    mask
        ``(H, W)`` integer mask (int32); zeros when omitted.
    variance
        ``(H, W)`` per-pixel variance (float32); required to fit, optional here.
    psf
        `ImagePsf`, or a ``(ph, pw)`` array for a constant PSF.
    bbox
        Where the pixels sit in the parent image: a `Box` (its shape must be
        ``image.shape``) or an origin ``(y0, x0)``. Defaults to origin (0, 0).
    wcs
        ``astropy.wcs.WCS`` of *parent* pixel coordinates (0-based), or None.
    band
        Name of the band.
    mask_planes
        Mask plane name -> bit value; defaults to `MASK_PLANES`.
    metadata
        Extra FITS-safe header values (short upper-case keys, scalar values).
    """

    def __init__(
        self,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        variance: np.ndarray | None = None,
        psf: ImagePsf | np.ndarray | None = None,
        bbox: Box | Sequence[int] | None = None,
        wcs: Any = None,
        band: str | None = None,
        mask_planes: Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        image = np.asarray(image)
        if image.ndim != 2:
            raise ValueError(f"An exposure image must be 2D, got shape {image.shape}")
        self.image = np.asarray(image, dtype=np.float32)
        shape = self.image.shape
        self.mask = (
            np.zeros(shape, dtype=np.int32) if mask is None else np.asarray(mask, dtype=np.int32)
        )
        self.variance = None if variance is None else np.asarray(variance, dtype=np.float32)
        for name, arr in (("mask", self.mask), ("variance", self.variance)):
            if arr is not None and arr.shape != shape:
                raise ValueError(f"Exposure {name} has shape {arr.shape}, image has {shape}")
        if bbox is None:
            bbox = Box(shape)
        elif not isinstance(bbox, Box):
            bbox = Box(shape, tuple(bbox))
        if tuple(bbox.shape) != shape:
            raise ValueError(f"Exposure bbox {bbox} does not match the image shape {shape}")
        self.bbox: Box = bbox
        self.psf = _as_psf(psf)
        self._wcs = wcs
        # (header text, box of the file's pixels), parsed on first use of .wcs
        self._wcs_header: tuple[str, Box] | None = None
        self.band = band
        self.mask_planes: dict[str, int] = dict(MASK_PLANES if mask_planes is None else mask_planes)
        self.metadata: dict[str, Any] = dict(metadata or {})

    # --- WCS, parsed lazily when read from a file -----------------------------------------
    @property
    def wcs(self) -> Any:
        """``astropy.wcs.WCS`` of parent pixel coordinates, or None."""
        if self._wcs is None and self._wcs_header is not None:
            self._wcs = _wcs_from_header(*self._wcs_header)
            self._wcs_header = None
        return self._wcs

    @wcs.setter
    def wcs(self, value: Any) -> None:
        self._wcs = value
        self._wcs_header = None

    # --- Rubin-style accessors -------------------------------------------------------------
    def getBBox(self) -> Box:
        return self.bbox

    def getPsf(self) -> ImagePsf | None:
        return self.psf

    def getWcs(self) -> Any:
        return self.wcs

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape  # type: ignore[return-value]

    def mask_plane(self, name: str) -> np.ndarray:
        """Boolean array of the pixels that have mask plane ``name`` set."""
        try:
            bit = self.mask_planes[name]
        except KeyError:
            raise KeyError(
                f"No mask plane {name!r}; this exposure has {sorted(self.mask_planes)}"
            ) from None
        return (self.mask & bit) != 0

    def subset(self, bbox: Any) -> Exposure:
        """The part of the exposure inside ``bbox`` (parent coordinates), copied."""
        box = as_box(bbox)
        _check_inside(box, self.bbox, "exposure")
        local = box.slices_in(self.bbox)
        out = Exposure(
            self.image[local].copy(),
            self.mask[local].copy(),
            None if self.variance is None else self.variance[local].copy(),
            self.psf,
            box,
            None,
            self.band,
            self.mask_planes,
            self.metadata,
        )
        out._wcs, out._wcs_header = self._wcs, self._wcs_header
        return out

    def __getitem__(self, bbox: Any) -> Exposure:
        return self.subset(bbox)

    def with_standard_mask_planes(self) -> Exposure:
        """Remap the mask to the `MASK_PLANES` bits (BAD=1, SAT=2, NO_DATA=4, EDGE=8).

        Planes of other names keep their names and get free bits from 16 up. Returns
        self when the mask already follows the convention.
        """
        planes = self.mask_planes
        if all(planes.get(k) == v for k, v in MASK_PLANES.items() if k in planes) and all(
            v not in MASK_PLANES.values() or MASK_PLANES.get(k) == v for k, v in planes.items()
        ):
            return self
        new_planes = dict(MASK_PLANES)
        used = set(new_planes.values())
        mask = np.zeros_like(self.mask)
        for name, bit in sorted(planes.items(), key=lambda kv: kv[1]):
            target = new_planes.get(name)
            if target is None:
                target = next((1 << i for i in range(4, 31) if (1 << i) not in used), None)
                if target is None:
                    raise ValueError("More than 31 mask planes")
                new_planes[name] = target
                used.add(target)
            mask |= np.where((self.mask & bit) != 0, target, 0).astype(mask.dtype)
        self.mask = mask
        self.mask_planes = new_planes
        return self

    def __repr__(self) -> str:
        return f"Exposure(band={self.band!r}, bbox={self.bbox}, psf={self.psf!r})"

    # --- files -----------------------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> None:
        """Write the exposure as FITS (layout in the module docstring), atomically."""
        hdul = self._to_hdulist()
        atomic_write(path, lambda tmp: hdul.writeto(tmp, overwrite=True))

    def _to_hdulist(self):
        from astropy.io import fits

        y0, x0 = self.bbox.origin
        primary = fits.PrimaryHDU()
        ph = primary.header
        ph["VMLNTYPE"] = ("EXPOSURE", "vermilion file type")
        ph["VMLNVER"] = (EXPOSURE_FORMAT_VERSION, "vermilion exposure format version")
        if self.band is not None:
            ph["BAND"] = (str(self.band), "band of this exposure")
        for key, value in self.metadata.items():
            ph[key] = value

        def image_hdu(data: np.ndarray, name: str):
            hdu = fits.ImageHDU(data, name=name)
            hdu.header["LTV1"] = (-x0, "minus the parent x of the first pixel")
            hdu.header["LTV2"] = (-y0, "minus the parent y of the first pixel")
            return hdu

        img = image_hdu(self.image, "IMAGE")
        if self.wcs is not None:
            img.header.update(_shifted_wcs(self.wcs, -x0, -y0).to_header(relax=True))
        msk = image_hdu(self.mask, "MASK")
        for name, bit in self.mask_planes.items():
            index = int(bit).bit_length() - 1
            if bit <= 0 or 1 << index != bit:
                raise ValueError(f"Mask plane {name!r} has value {bit}, not a single bit")
            # names longer than 5 characters need a HIERARCH card (FITS keys have 8)
            key = f"MP_{name}" if len(name) <= 5 else f"HIERARCH MP_{name}"
            msk.header[key] = index
        var = image_hdu(
            np.full(self.image.shape, np.nan, np.float32)
            if self.variance is None
            else self.variance,
            "VARIANCE",
        )
        if self.variance is None:
            var.header["VMLNNOVR"] = (True, "no variance was given")
        hdus = [primary, img, msk, var]
        if self.psf is not None:
            psf = fits.ImageHDU(self.psf.image, name="PSF")
            if not self.psf.is_constant:
                for i, v in enumerate(self.psf.grid_y):  # type: ignore[arg-type]
                    psf.header[f"PSFGY{i}"] = float(v)
                for j, v in enumerate(self.psf.grid_x):  # type: ignore[arg-type]
                    psf.header[f"PSFGX{j}"] = float(v)
            hdus.append(psf)
        return fits.HDUList(hdus)

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        bbox: Any = None,
        component: str | None = None,
    ) -> Any:
        """Read an exposure written by `write`, or one of its components.

        Parameters
        ----------
        path
            The FITS file.
        bbox
            Read only the pixels in this box (parent coordinates); only those pixels
            are read from disk.
        component
            One of ``image``, ``mask``, ``variance``, ``psf``, ``wcs``, ``bbox``, or
            None for the whole `Exposure`.

        Raises
        ------
        CorruptFileError
            The file is not a readable vermilion exposure.
        FormatVersionError
            The file was written by a newer vermilion.
        BBoxError
            ``bbox`` is not inside the exposure (a ValueError).
        ValueError
            ``component`` is unknown.
        """
        if component is not None and component not in COMPONENTS:
            raise ValueError(f"Unknown exposure component {component!r}; known: {COMPONENTS}")
        box = None if bbox is None else as_box(bbox)
        from ._fits import FitsFile, Malformed, Unsupported

        p = os.fspath(path)
        try:
            with FitsFile(p) as f:
                return _read_open(cls, f, p, box, component)
        except (FormatVersionError, CorruptFileError, BBoxError, FileNotFoundError):
            raise
        except Malformed as exc:
            raise CorruptFileError(f"{p}: not a readable FITS file ({exc})") from exc
        except Unsupported:
            pass  # not a plain file of ours: let astropy read it
        except Exception as exc:
            raise CorruptFileError(f"{p}: cannot read exposure ({exc})") from exc
        return cls._read_astropy(p, box, component)

    @classmethod
    def _read_astropy(cls, path: str, box: Box | None, component: str | None) -> Any:
        from astropy.io import fits

        try:
            hdul = fits.open(os.fspath(path), memmap=True, lazy_load_hdus=True)
        except Exception as exc:
            raise CorruptFileError(f"{os.fspath(path)}: not a readable FITS file ({exc})") from exc
        try:
            return _read_open(cls, hdul, os.fspath(path), box, component)
        except (FormatVersionError, CorruptFileError, BBoxError):
            raise
        except Exception as exc:
            raise CorruptFileError(f"{os.fspath(path)}: cannot read exposure ({exc})") from exc
        finally:
            hdul.close()

    @classmethod
    def from_fits(
        cls,
        path: str | os.PathLike,
        band: str | None = None,
        origin: Sequence[int] | None = None,
    ) -> Exposure:
        """Read a user coadd of one band, in the documented layout or close to it.

        The image comes from HDU ``IMAGE`` (or the primary HDU when it has data),
        the variance from ``VARIANCE``/``VAR`` (or ``IVAR``, an inverse variance),
        the mask from ``MASK`` (optional, mask-plane cards ``MP_*`` kept), the PSF
        from ``PSF`` (2D image, or a 4D grid as written by `write`). Compressed HDUs
        are fine. The origin comes from ``LTV1``/``LTV2`` when present (else
        ``origin``, else (0, 0)), the WCS from the image header when it has one.
        """
        from astropy.io import fits

        p = os.fspath(path)
        try:
            with fits.open(p, memmap=False) as hdul:
                by_name = {h.name.upper(): h for h in hdul}
                img_hdu = by_name.get("IMAGE")
                if img_hdu is None or img_hdu.data is None:
                    if hdul[0].data is None:
                        raise CorruptFileError(f"{p}: no IMAGE HDU and no data in the primary HDU")
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
                    planes.update(_mask_planes_from_header(by_name["MASK"].header))
                if "PSF" not in by_name:
                    raise CorruptFileError(f"{p}: no PSF HDU (the PSF must be an image HDU)")
                psf = _psf_from_hdu(by_name["PSF"].data, by_name["PSF"].header)
                hdr = img_hdu.header
                if "LTV1" in hdr and "LTV2" in hdr:
                    yx0 = (-round(float(hdr["LTV2"])), -round(float(hdr["LTV1"])))
                else:
                    yx0 = tuple(origin) if origin is not None else (0, 0)
                box = Box(image.shape, yx0)
                wcs = None
                if "CTYPE1" in hdr and "CTYPE2" in hdr:
                    wcs = _wcs_from_header(hdr.tostring(), box)
                if band is None:
                    band = hdul[0].header.get("BAND") or hdr.get("BAND") or hdr.get("FILTER")
        except (CorruptFileError, FormatVersionError, FileNotFoundError):
            raise
        except Exception as exc:
            raise CorruptFileError(f"{p}: cannot read the coadd ({exc})") from exc
        return cls(image, mask, variance, psf, box, wcs, band, planes)


def _check_inside(box: Box, full: Box, what: str) -> None:
    if box.is_empty or (box & full) != box:
        raise BBoxError(f"Requested bbox {box} is not inside the {what} bbox {full}")


def _check_version(header, path: str) -> None:
    kind = header.get("VMLNTYPE")
    if kind != "EXPOSURE":
        raise CorruptFileError(f"{path}: not a vermilion exposure file (VMLNTYPE={kind!r})")
    version = header.get("VMLNVER")
    if not isinstance(version, int) or version > EXPOSURE_FORMAT_VERSION or version < 1:
        raise FormatVersionError(
            f"{path}: exposure format version {version!r}; this vermilion reads versions "
            f"1 to {EXPOSURE_FORMAT_VERSION} (upgrade vermilion to read it)"
        )


def _read_open(cls, hdul, path: str, box: Box | None, component: str | None) -> Any:
    _check_version(hdul[0].header, path)
    if component == "psf":
        return _read_psf(hdul)
    img_hdu = hdul["IMAGE"]
    hdr = img_hdu.header
    shape = (int(hdr["NAXIS2"]), int(hdr["NAXIS1"]))
    full = Box(shape, (-int(hdr.get("LTV2", 0)), -int(hdr.get("LTV1", 0))))
    if box is not None:
        _check_inside(box, full, "exposure")
    else:
        box = full
    if component == "bbox":
        return box
    if component == "wcs":
        return _wcs_from_header(hdr.tostring(), full) if "CTYPE1" in hdr else None
    local = box.slices_in(full)

    def pixels(name: str, dtype) -> np.ndarray:
        data = hdul[name].data
        if data is None or data.shape != shape:
            raise CorruptFileError(f"{path}: HDU {name} does not hold a {shape} image")
        # a copy of the box only: with memmap the pages outside it are never read
        return np.ascontiguousarray(data[local], dtype=dtype)

    if component == "image":
        return pixels("IMAGE", np.float32)
    if component == "mask":
        return pixels("MASK", np.int32)
    if component == "variance":
        return pixels("VARIANCE", np.float32)
    image = pixels("IMAGE", np.float32)
    mask = pixels("MASK", np.int32)
    variance = None if hdul["VARIANCE"].header.get("VMLNNOVR") else pixels("VARIANCE", np.float32)
    planes = _mask_planes_from_header(hdul["MASK"].header)
    psf = _read_psf(hdul)
    meta = {
        k: v
        for k, v in hdul[0].header.items()
        if k not in _PRIMARY_STD and k not in ("VMLNTYPE", "VMLNVER", "BAND") and k
    }
    exp = cls(image, mask, variance, psf, box, None, hdul[0].header.get("BAND"), planes, meta)
    if "CTYPE1" in hdr:
        exp._wcs_header = (hdr.tostring(), full)
    return exp


_PRIMARY_STD = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY"}


def _read_psf(hdul) -> ImagePsf | None:
    try:
        hdu = hdul["PSF"]
    except KeyError:
        return None
    return _psf_from_hdu(hdu.data, hdu.header)


def _psf_from_hdu(data, header) -> ImagePsf:
    data = np.array(data, dtype=np.float32)
    if data.ndim == 4:
        ny, nx = data.shape[:2]
        gy = [header[f"PSFGY{i}"] for i in range(ny)]
        gx = [header[f"PSFGX{j}"] for j in range(nx)]
        return ImagePsf(data, gy, gx)
    return ImagePsf(data)


def _mask_planes_from_header(header) -> dict[str, int]:
    planes = {}
    for key, value in header.items():
        if key.startswith("MP_"):
            planes[key[3:]] = 1 << int(value)
    return planes


def _shifted_wcs(wcs, dx: float, dy: float):
    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix + np.array([dx, dy])
    return out


def _wcs_from_header(header_str: str, file_box: Box):
    """WCS of parent pixels from the header of a file whose first pixel is ``file_box.origin``."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    header = fits.Header.fromstring(header_str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2)
    y0, x0 = file_box.origin
    return _shifted_wcs(wcs, x0, y0)


class MultibandExposure:
    """Several bands of the same pixels: images, variance, mask ``(B, H, W)`` and PSFs.

    Parameters
    ----------
    bands
        Band names, in the order of the first axis.
    images, variance, mask
        ``(B, H, W)`` arrays (variance and mask optional).
    psfs
        One PSF per band: `ImagePsf` objects, or a ``(B, ph, pw)`` array.
    bbox
        `Box` of the pixels in parent coordinates, or an origin ``(y0, x0)``.
    wcs
        ``astropy.wcs.WCS`` of parent pixels (shared by all bands), or None.
    mask_planes
        Mask plane name -> bit value.
    """

    def __init__(
        self,
        bands: Sequence[str],
        images: np.ndarray,
        variance: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        psfs: Sequence[ImagePsf] | np.ndarray | None = None,
        bbox: Box | Sequence[int] | None = None,
        wcs: Any = None,
        mask_planes: Mapping[str, int] | None = None,
    ) -> None:
        self.bands = tuple(str(b) for b in bands)
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or images.shape[0] != len(self.bands):
            raise ValueError(
                f"images must be (bands, height, width) with {len(self.bands)} bands, "
                f"got shape {images.shape}"
            )
        self.images = images
        shape = images.shape
        self.variance = None if variance is None else np.asarray(variance, dtype=np.float32)
        self.mask = np.zeros(shape, np.int32) if mask is None else np.asarray(mask, np.int32)
        for name, arr in (("variance", self.variance), ("mask", self.mask)):
            if arr is not None and arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, images have {shape}")
        if bbox is None:
            bbox = Box(shape[1:])
        elif not isinstance(bbox, Box):
            bbox = Box(shape[1:], tuple(bbox))
        if tuple(bbox.shape) != shape[1:]:
            raise ValueError(f"bbox {bbox} does not match the image shape {shape[1:]}")
        self.bbox: Box = bbox
        if psfs is None:
            self.psf_models: list[ImagePsf | None] = [None] * len(self.bands)
        else:
            models = [_as_psf(p) for p in psfs]
            if len(models) != len(self.bands):
                raise ValueError(f"{len(models)} PSFs for {len(self.bands)} bands")
            self.psf_models = models
        self._wcs = wcs
        self._wcs_from: Exposure | None = None  # parse the WCS of this exposure on first use
        self.mask_planes = dict(MASK_PLANES if mask_planes is None else mask_planes)

    @property
    def wcs(self) -> Any:
        """``astropy.wcs.WCS`` of parent pixels (shared by all bands), or None."""
        if self._wcs is None and self._wcs_from is not None:
            self._wcs = self._wcs_from.wcs
            self._wcs_from = None
        return self._wcs

    @wcs.setter
    def wcs(self, value: Any) -> None:
        self._wcs, self._wcs_from = value, None

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_exposures(
        cls, bands: Sequence[str], exposures: Sequence[Exposure]
    ) -> MultibandExposure:
        """Stack single-band exposures of the same box."""
        exposures = list(exposures)
        if len(exposures) != len(bands) or not exposures:
            raise ValueError(f"{len(exposures)} exposures for {len(bands)} bands")
        box = exposures[0].bbox
        for band, exp in zip(bands, exposures):
            if exp.bbox != box:
                raise ValueError(f"Exposure of band {band!r} covers {exp.bbox}, not {box}")
        variance = None
        if all(e.variance is not None for e in exposures):
            variance = np.stack([e.variance for e in exposures])
        planes: dict[str, int] = {}
        for e in exposures:
            planes.update(e.mask_planes)
        out = cls(
            bands,
            np.stack([e.image for e in exposures]),
            variance,
            np.stack([e.mask for e in exposures]),
            [e.psf for e in exposures] if all(e.psf is not None for e in exposures) else None,
            box,
            None,
            planes,
        )
        out._wcs_from = exposures[0]
        return out

    fromExposures = from_exposures

    @classmethod
    def from_butler(
        cls,
        butler: Any,
        bands: Iterable[str],
        dataset_type: str = "deepCoadd_calexp",
        parameters: Mapping[str, Any] | None = None,
        collections: Any = None,
        **data_id: Any,
    ) -> MultibandExposure:
        """Read one exposure per band from a data repository and stack them.

        Parameters
        ----------
        butler
            An ``lsst.daf.butler.Butler`` of a vermilion repository.
        bands
            Bands to read, in the order wanted.
        dataset_type
            The exposure dataset type (``deepCoadd_calexp``).
        parameters
            Read parameters, e.g. ``{"bbox": box}`` to read only that box.
        collections
            Collections to search (default: the butler's).
        **data_id
            The rest of the data id (``tract=..., patch=...``; ``skymap`` too unless
            the butler has a default).

        Raises
        ------
        vermilion.repo.errors.DatasetMissingError
            A band has no exposure (the message names the band and data id).
        """
        from .repository import get_exposures

        bands = [str(b) for b in bands]
        exposures = get_exposures(butler, bands, dataset_type, parameters, collections, **data_id)
        return cls.from_exposures(bands, exposures)

    fromButler = from_butler

    # --- views -----------------------------------------------------------------------------
    @property
    def filters(self) -> tuple[str, ...]:
        """The bands (Rubin name)."""
        return self.bands

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.images.shape  # type: ignore[return-value]

    def getBBox(self) -> Box:
        return self.bbox

    @property
    def psfs(self) -> np.ndarray:
        """``(B, ph, pw)`` PSF kernels at the centre of the box (padded to one size)."""
        return self.computePsfKernelImage(None)

    def computePsfKernelImage(self, position: Any = None) -> np.ndarray:
        """PSF kernels of every band at ``position`` (``(y, x)`` parent pixels or a Point2D).

        Returns a ``(B, ph, pw)`` float32 array, each kernel normalised to sum 1;
        kernels of different sizes are zero-padded to the largest. None means the
        centre of the box.
        """
        if any(p is None for p in self.psf_models):
            missing = [b for b, p in zip(self.bands, self.psf_models) if p is None]
            raise ValueError(f"No PSF for band(s) {missing}")
        if position is None:
            position = self.bbox.center
        models = self.psf_models
        return stack_psfs([p.computeKernelImage(position) for p in models])  # type: ignore[union-attr]

    compute_psf_kernel_image = computePsfKernelImage

    def _band_index(self, band: Any) -> list[int]:
        if isinstance(band, str):
            if band not in self.bands:
                raise KeyError(f"No band {band!r}; bands are {self.bands}")
            return [self.bands.index(band)]
        if isinstance(band, slice):
            if band == slice(None):
                return list(range(len(self.bands)))
            start = 0 if band.start is None else self._band_index(band.start)[0]
            stop = len(self.bands) if band.stop is None else self._band_index(band.stop)[0] + 1
            if band.step is not None:
                raise ValueError("Band slices take no step")
            return list(range(start, stop))
        if isinstance(band, int):
            return [range(len(self.bands))[band]]
        return [self._band_index(b)[0] for b in band]

    def __getitem__(self, index: Any) -> Exposure | MultibandExposure:
        """Select bands and/or a box.

        ``mexp["r"]`` is an `Exposure`; ``mexp[["g", "r"]]`` and ``mexp["g":"i"]``
        (inclusive, by name) are `MultibandExposure`; ``mexp[box]`` and
        ``mexp[bands, box]`` cut a box in parent coordinates.
        """
        box = None
        if isinstance(index, tuple) and len(index) == 2 and _is_box(index[1]):
            bands_sel, box = index
        elif _is_box(index):
            bands_sel, box = slice(None), index
        else:
            bands_sel = index
        idx = self._band_index(bands_sel)
        if box is None:
            local: tuple[slice, ...] = (slice(None), slice(None))
            new_box = self.bbox
        else:
            new_box = as_box(box)
            _check_inside(new_box, self.bbox, "multi-band exposure")
            local = new_box.slices_in(self.bbox)
        if isinstance(bands_sel, str):
            i = idx[0]
            return Exposure(
                self.images[i][local],
                self.mask[i][local],
                None if self.variance is None else self.variance[i][local],
                self.psf_models[i],
                new_box,
                self.wcs,
                self.bands[i],
                self.mask_planes,
            )
        out = MultibandExposure(
            [self.bands[i] for i in idx],
            self.images[idx][(slice(None), *local)],
            None if self.variance is None else self.variance[idx][(slice(None), *local)],
            self.mask[idx][(slice(None), *local)],
            [self.psf_models[i] for i in idx],
            new_box,
            self._wcs,
            self.mask_planes,
        )
        out._wcs_from = self._wcs_from
        return out

    def to_observation(
        self,
        bbox: Box | None = None,
        footprint: Any = None,
        bad_mask: int | None = None,
        **kwargs: Any,
    ):
        """A `vermilion.core.Observation` of these pixels (or of ``bbox`` inside them).

        Calls `vermilion.core.observation_from_exposure`; ``bad_mask`` defaults to the
        BAD, SAT and NO_DATA planes. Other keyword arguments (``model_psf``,
        ``use_weights``, ``convolution_mode``) go to it.
        """
        from vermilion.core import observation_from_exposure

        if self.variance is None:
            raise ValueError("An observation needs the variance")
        if bad_mask is None:
            bad_mask = 0
            for name in ("BAD", "SAT", "NO_DATA"):
                bad_mask |= self.mask_planes.get(name, 0)
        return observation_from_exposure(
            self, bbox=bbox, footprint=footprint, bad_mask=bad_mask, **kwargs
        )

    def __repr__(self) -> str:
        return f"MultibandExposure(bands={self.bands}, bbox={self.bbox})"
