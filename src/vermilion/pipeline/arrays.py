"""`deblend`: detect and deblend numpy arrays in memory, no repository needed.

``vermilion.deblend(images, variance, psfs, bands=...)`` is to vermilion what
``sep.extract`` is to SExtractor: arrays in, a catalog out. It runs exactly what
``vermilion deblend`` runs on a repository patch (`detect_and_deblend`: detection
with `vermilion.detect.detect_sources`, then `DeblendTask`), on a
`vermilion.repo.MultibandExposure` made of the arrays, so that the same pixels give
the same catalog either way. Nothing is written; the model data can be stored
later (`vermilion.io.ModelData.write`, `vermilion.repo.ingest_model_data`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import DeblendConfig
from .task import DeblendTask

__all__ = ["deblend", "detect_and_deblend"]


def detect_and_deblend(
    mexposure: Any,
    config: DeblendConfig | Mapping | None = None,
    *,
    tract: int = 0,
    patch: int = 0,
    skymap: str | None = None,
    detect_kwargs: Mapping[str, Any] | None = None,
    workers: int | None = 1,
    mp_context: str = "spawn",
    progress: bool = False,
):
    """Detect the parents of a multi-band exposure and deblend them.

    The one path from exposures to outputs, shared by `deblend` (arrays),
    `vermilion.pipeline.deblend_patch` (``vermilion deblend``) and the ``pipetask`` task
    (`vermilion.pipeline.pipetask`), so that all three give the same catalog and models.

    Parameters
    ----------
    mexposure
        A `vermilion.repo.MultibandExposure` (``images``, ``variance``, ``mask``,
        ``psfs``, ``bands``, ``bbox``, ``mask_planes``, ``wcs``).
    config
        `DeblendConfig`, a mapping of its fields, or None for the defaults.
    tract, patch
        Packed into the 64-bit source ids.
    skymap
        Recorded in the models' metadata (``skymap``) when given.
    detect_kwargs
        Fields of `vermilion.detect.DetectionConfig` for `detect_sources`.
    workers, mp_context, progress
        As `DeblendTask`.

    Returns
    -------
    parents, catalog, model_data, task
        The detected parents, the deblended catalog and model data, and the task
        (its ``timing``, with ``detect`` added, and ``background``).
    """
    import time

    from vermilion.detect.detection import detect_sources

    start = time.perf_counter()
    parents = detect_sources(
        mexposure.images,
        mexposure.variance,
        mexposure.mask,
        mexposure.psfs,
        bands=mexposure.bands,
        yx0=mexposure.bbox.origin,
        mask_planes=mexposure.mask_planes,
        tract=int(tract),
        patch=int(patch),
        **dict(detect_kwargs or {}),
    )
    detect_seconds = time.perf_counter() - start
    task = DeblendTask(config, workers=workers, mp_context=mp_context, progress=progress)
    catalog, model_data = task.run(mexposure, parents)
    task.timing["detect"] = detect_seconds
    if skymap is not None:
        model_data.metadata["skymap"] = skymap
    return parents, catalog, model_data, task


def deblend(
    images: np.ndarray,
    variance: np.ndarray,
    psfs: np.ndarray,
    bands: Sequence[str] | str | None = None,
    wcs: Any = None,
    mask: np.ndarray | None = None,
    config: DeblendConfig | Mapping | str | None = None,
    *,
    mask_planes: Mapping[str, int] | None = None,
    origin: Sequence[int] = (0, 0),
    tract: int = 0,
    patch: int = 0,
    detect: Mapping[str, Any] | None = None,
    flux_unit: str = "nJy",
    workers: int | None = 1,
    progress: bool = False,
):
    """Detect and deblend multi-band images held in memory.

    Parameters
    ----------
    images, variance
        ``(bands, H, W)`` arrays: the coadds and their per-pixel variance (their
        unit, and its square). A sky left in the images is estimated and subtracted
        when significant (`DeblendConfig.background`).
    psfs
        ``(bands, ph, pw)`` PSF images (odd sides, centred, each summing to 1).
    bands
        Band names (a sequence or a string such as ``"gri"``; default ``"0", "1", ...``).
    wcs
        ``astropy.wcs.WCS`` of the pixels (``pixel_to_world_values(x, y)`` with
        0-based ``x, y``); gives ``coord_ra`` / ``coord_dec``. None: those stay NaN.
    mask
        ``(bands, H, W)`` integer bit planes (default: none), named in ``mask_planes``.
    config
        `DeblendConfig`, a mapping of its fields, a config file, or None.
    mask_planes
        Plane name -> bit (default `vermilion.core.MASK_PLANES`).
    origin
        ``(y0, x0)`` of pixel ``[0, 0]``: pixel positions in the catalog (and the
        WCS) are offset by it.
    tract, patch
        Packed into the 64-bit source ids (as a repository patch's).
    detect
        Fields of `vermilion.detect.DetectionConfig` (``{"thresh": 4}``, ...).
    flux_unit
        Unit of the images, recorded on the flux columns.
    workers
        Processes for the blends (1: this process, None: every core).
    progress
        Show a progress bar over the blends.

    Returns
    -------
    catalog : `vermilion.detect.SourceCatalog`
        Parents followed by children, with fluxes, errors, centroids, sky positions,
        moments and flags (every column has a unit and a description).
    model_data : `vermilion.io.ModelData`
        The models of every blend, keyed by parent id (``model_data.write(path)``
        stores them).

    Examples
    --------
    >>> catalog, model_data = vermilion.deblend(images, variance, psfs, bands="gri")
    ... # doctest: +SKIP
    """
    from vermilion.repo.multiband import MultibandExposure

    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (bands, h, w), got shape {images.shape}")
    if bands is None:
        bands = [str(b) for b in range(images.shape[0])]
    bands = list(bands)
    if len(bands) != images.shape[0]:
        raise ValueError(f"{len(bands)} band names for {images.shape[0]} image planes")
    variance = np.asarray(variance)
    if variance.shape != images.shape:
        raise ValueError(f"variance shape {variance.shape} differs from images {images.shape}")
    psfs = np.asarray(psfs, dtype=np.float32)
    if psfs.ndim != 3 or psfs.shape[0] != images.shape[0]:
        raise ValueError(
            f"psfs must be (bands, ph, pw) with {images.shape[0]} bands, got shape {psfs.shape}"
        )
    mexposure = MultibandExposure(
        bands, images, variance, mask, psfs, tuple(origin), wcs, mask_planes
    )
    mexposure.flux_unit = str(flux_unit)
    _, catalog, model_data, _ = detect_and_deblend(
        mexposure,
        DeblendConfig.coerce(config),
        tract=tract,
        patch=patch,
        detect_kwargs=detect,
        workers=workers,
        progress=progress,
    )
    return catalog, model_data
