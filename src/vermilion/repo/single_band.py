"""`Exposure`: image, mask, variance and PSF of one band of a coadd.

Only numpy is imported here (astropy inside the functions that parse a WCS or
read a file), so that exposures are usable without a data repository. The file
layouts are described in `vermilion.repo.exposure_fits` (vermilion's own) and
`vermilion.repo.afw_exposure` (the Rubin pipelines' ``lsst.afw.image`` files).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES
from vermilion.core.notebook import picture_png

from .boxes import as_box, check_inside
from .exposure_fits import COMPONENTS, read_coadd, read_exposure, write_exposure
from .exposure_parts import ExposureParts, standard_mask_planes, wcs_from_header
from .psf import ImagePsf, as_psf

__all__ = ["Exposure"]


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
        self.psf = as_psf(psf)
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
            self._wcs = wcs_from_header(*self._wcs_header)
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
        check_inside(box, self.bbox, "exposure")
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
        remapped = standard_mask_planes(self.mask, self.mask_planes)
        if remapped is not None:
            self.mask, self.mask_planes = remapped
        return self

    def __repr__(self) -> str:
        return f"Exposure(band={self.band!r}, bbox={self.bbox}, psf={self.psf!r})"

    def _repr_png_(self) -> bytes | None:
        """A picture in Jupyter (drawn by `vermilion.display` when asked, see
        `vermilion.core.notebook`)."""
        return picture_png(self)

    # --- files -----------------------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> None:
        """Write the exposure as FITS (layout in `vermilion.repo.exposure_fits`), atomically."""
        write_exposure(self, path)

    @classmethod
    def _from_parts(cls, parts: ExposureParts) -> Exposure:
        exp = cls(
            parts.image,
            parts.mask,
            parts.variance,
            parts.psf,
            parts.bbox,
            parts.wcs,
            parts.band,
            parts.mask_planes,
            parts.metadata,
        )
        exp._wcs_header = parts.wcs_header
        return exp

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        bbox: Any = None,
        component: str | None = None,
        psf: ImagePsf | np.ndarray | None = None,
    ) -> Any:
        """Read an exposure file (vermilion's, or an ``lsst.afw.image`` one), or a component.

        Parameters
        ----------
        path
            The FITS file: written by `write`, or an ``lsst.afw.image`` Exposure or
            MaskedImage (HDUs ``IMAGE``, ``MASK``, ``VARIANCE``; see
            `vermilion.repo.afw_exposure`: mask planes remapped by name to
            `vermilion.core.MASK_PLANES`, other named planes kept with bits from 16
            up, unnamed bits dropped; origin from ``LTV1``/``LTV2`` or
            ``CRVAL1A``/``CRVAL2A``; WCS from the IMAGE header, TAN-SIP included).
        bbox
            Read only the pixels in this box (parent coordinates); only those pixels
            are read from disk.
        component
            One of ``image``, ``mask``, ``variance``, ``psf``, ``wcs``, ``bbox``, or
            None for the whole `Exposure`.
        psf
            The PSF (`ImagePsf`, or a ``(ph, pw)`` image): replaces the file's. An
            afw file's PSF (in its archive) is not evaluated, so reading a whole
            afw exposure needs it.

        Raises
        ------
        CorruptFileError
            The file is neither a readable vermilion exposure nor an afw one (the
            message names the HDUs found), or is shorter than its headers declare.
        FormatVersionError
            The file was written by a newer vermilion.
        PsfMissingError
            A whole afw exposure is read without ``psf``.
        BBoxError
            ``bbox`` is not inside the exposure (a ValueError).
        ValueError
            ``component`` is unknown.
        """
        if component is not None and component not in COMPONENTS:
            raise ValueError(f"Unknown exposure component {component!r}; known: {COMPONENTS}")
        box = None if bbox is None else as_box(bbox)
        out = read_exposure(path, box, component, as_psf(psf))
        return cls._from_parts(out) if isinstance(out, ExposureParts) else out

    @classmethod
    def from_fits(
        cls,
        path: str | os.PathLike,
        band: str | None = None,
        origin: Sequence[int] | None = None,
        psf: ImagePsf | np.ndarray | None = None,
    ) -> Exposure:
        """Read a user coadd of one band, in the documented layout or close to it.

        The image comes from HDU ``IMAGE`` (or the primary HDU when it has data),
        the variance from ``VARIANCE``/``VAR`` (or ``IVAR``, an inverse variance),
        the mask from ``MASK`` (optional, mask-plane cards ``MP_*`` kept), the PSF
        from ``psf``, else from HDU ``PSF`` (2D image, or a 4D grid as written by
        `write`). Compressed HDUs are fine. The origin comes from ``LTV1``/``LTV2``
        when present (else ``origin``, else (0, 0)), the WCS from the image header
        when it has one. An ``lsst.afw.image`` Exposure or MaskedImage file is read
        as `read` reads it (mask remapped to `MASK_PLANES`); it needs ``psf``.

        Raises
        ------
        CorruptFileError
            The file lacks an image, a variance or (without ``psf``) a PSF HDU.
        PsfMissingError
            An afw file is read without ``psf``.
        """
        return cls._from_parts(read_coadd(path, band, origin, as_psf(psf)))
