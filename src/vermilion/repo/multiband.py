"""`MultibandExposure`: several bands of the same pixels (images, variance, mask, PSFs).

Read from a repository with `MultibandExposure.from_butler` (through
`vermilion.repo.butler.get_exposures`), or stacked from single-band `Exposure`
objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES
from vermilion.core.notebook import picture_png
from vermilion.core.psf import stack_psfs

from .boxes import as_box, check_inside, is_box
from .butler import EXPOSURE_DATASET, get_exposures
from .psf import ImagePsf, as_psf
from .single_band import Exposure

__all__ = ["MultibandExposure"]


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
            models = [as_psf(p) for p in psfs]
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
        dataset_type: str = EXPOSURE_DATASET,
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

    def compute_psf_kernel_image(self, position: Any = None) -> np.ndarray:
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

    #: Rubin's spelling (``lsst.afw.image.MultibandExposure.computePsfKernelImage``).
    computePsfKernelImage = compute_psf_kernel_image

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
        if isinstance(index, tuple) and len(index) == 2 and is_box(index[1]):
            bands_sel, box = index
        elif is_box(index):
            bands_sel, box = slice(None), index
        else:
            bands_sel = index
        idx = self._band_index(bands_sel)
        if box is None:
            local: tuple[slice, ...] = (slice(None), slice(None))
            new_box = self.bbox
        else:
            new_box = as_box(box)
            check_inside(new_box, self.bbox, "multi-band exposure")
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

    def _repr_png_(self) -> bytes | None:
        """A picture in Jupyter (drawn by `vermilion.display` when asked, see
        `vermilion.core.notebook`)."""
        return picture_png(self)
