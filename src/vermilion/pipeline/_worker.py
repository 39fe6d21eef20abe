"""Deblend one blend: the unit of work sent to a worker process.

This module imports only numpy, `vermilion.core` and `vermilion.io` (no astropy,
butler or Dask), so that spawned worker processes start quickly. A job carries
only its cutout of the patch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vermilion.core import (
    BackgroundComponent,
    Blend,
    Box,
    init_all_sources,
    integrated_gaussian,
    observation_from_exposure,
    weight_sources,
)

from .background import LEVEL_ERR_KEY, sky_level
from .config import DeblendConfig
from .measure import BlendMeasures, measure_blend
from .pool import worker_lifeline

__all__ = ["BlendJob", "BlendResult", "Settings", "deblend_blend", "run_chunk"]


@dataclass
class Settings:
    """What every blend of a patch shares (sent once to each worker process)."""

    config: DeblendConfig
    bands: tuple[str, ...]
    psfs: np.ndarray
    model_psf: np.ndarray

    @classmethod
    def build(cls, config: DeblendConfig, bands, psfs) -> Settings:
        model_psf = integrated_gaussian(config.modelPsfSigma, config.modelPsfSize)
        return cls(config, tuple(str(b) for b in bands), np.asarray(psfs, np.float32), model_psf)


@dataclass
class BlendJob:
    """One parent to deblend: its cutout and peaks.

    Attributes
    ----------
    index
        Row of the parent in the input catalog.
    parent_id
        The parent's id.
    bbox
        The blend box (the footprint's box) in patch pixel coordinates.
    images, variance, mask
        ``(bands, h, w)`` cutouts on ``bbox`` (mask may be None).
    footprint
        ``(h, w)`` boolean mask of the parent footprint on ``bbox``.
    peaks
        ``(n, 2)`` integer ``(y, x)`` peaks, absolute.
    peak_ids
        ``(n,)`` ids of those peaks.
    bad_mask
        Mask bits whose pixels get zero weight.
    psf_center
        ``(y, x)`` where the observed PSF was evaluated.
    psfs
        Observed PSFs at ``psf_center``; None when equal to the patch's.
    background
        ``(bands,)`` the patch's sky estimate over the box when the sky is fitted in
        each blend (``DeblendConfig.background="fit"``); None otherwise.
    sky
        With ``background``: ``(images, weights, box)``, the pixels that constrain the
        level (`vermilion.pipeline.background.sky_pixels`).
    """

    index: int
    parent_id: int
    bbox: Box
    images: np.ndarray
    variance: np.ndarray
    mask: np.ndarray | None
    footprint: np.ndarray
    peaks: np.ndarray
    peak_ids: np.ndarray
    bad_mask: int
    psf_center: tuple[float, float]
    psfs: np.ndarray | None = None
    background: np.ndarray | None = None
    sky: tuple[np.ndarray, np.ndarray, Box] | None = None


@dataclass
class BlendResult:
    """What comes back from a worker for one blend.

    Source arrays are in the order of the job's peaks; ``blend_data`` holds the
    sources keyed ``0 .. n-1`` (the caller gives them their catalog ids).
    """

    index: int
    parent_id: int
    failed: bool = False
    reason: str = ""
    iterations: int = 0
    log_likelihood: float = float("nan")
    converged: bool = False
    model_flux: np.ndarray | None = None  # (n, bands) float64
    flux: np.ndarray | None = None  # (n, bands) float64, re-apportioned
    unassigned_flux: np.ndarray | None = None  # (bands,) float64, given to no child
    n_components: np.ndarray | None = None  # (n,)
    flux_masks: list[tuple[tuple[int, int], np.ndarray]] = field(default_factory=list)
    blend_data: Any = None
    measures: BlendMeasures | None = None
    background: np.ndarray | None = None  # (bands,) fitted sky levels, background="fit"
    background_err: np.ndarray | None = None  # (bands,) their errors
    seconds: float = 0.0


class _Cutout:
    """The attributes `observation_from_exposure` reads, over a job's box."""

    def __init__(self, job: BlendJob, settings: Settings, level: np.ndarray | None = None) -> None:
        self.images = job.images
        if level is not None:  # the images as the sources' initialization sees them
            self.images = job.images - np.asarray(level, job.images.dtype)[:, None, None]
        self.variance = job.variance
        self.mask = job.mask
        self.psfs = settings.psfs if job.psfs is None else job.psfs
        self.bands = settings.bands
        self.bbox = job.bbox


class _FootprintMask:
    """A parent footprint as `observation_from_exposure` reads it (a mask on a box)."""

    def __init__(self, mask: np.ndarray, bbox: Box) -> None:
        self.bbox = bbox
        self.spans = self
        self._mask = mask

    def as_array(self) -> np.ndarray:
        return self._mask


def _background(job: BlendJob, bands) -> BackgroundComponent | None:
    """The blend's sky level, on its own pixels, from their weighted mean (or None)."""
    if job.background is None:
        return None
    level = np.asarray(job.background, np.float64)
    if job.sky is None:
        return BackgroundComponent(bands, level.astype(np.float32), job.bbox)
    images, weights, box = job.sky
    mean, _ = sky_level(images, weights)
    level = np.where(np.isfinite(mean), mean, level).astype(np.float32)
    return BackgroundComponent(bands, level, job.bbox).set_sky(images, weights, box)


class BlendFailure(RuntimeError):
    """A blend that cannot be modelled (e.g. every pixel of its footprint is masked)."""


def deblend_blend(job: BlendJob, settings: Settings) -> BlendResult:
    """Initialize, fit and re-apportion one blend; store its models.

    With ``config.catchFailures`` every exception (a diverging fit, bad data) is
    returned as a failed result with the reason; otherwise it is raised.
    """
    from vermilion.io import blend_to_data

    config = settings.config
    start = time.perf_counter()
    try:

        def observation(level: np.ndarray | None = None):
            return observation_from_exposure(
                _Cutout(job, settings, level),
                bbox=job.bbox,
                footprint=_FootprintMask(job.footprint, job.bbox),
                bad_mask=job.bad_mask,
                model_psf=settings.model_psf,
                use_weights=config.useWeights,
                convolution_mode=config.convolutionType,
            )

        obs = observation()
        background = _background(job, settings.bands)
        # with a fitted sky the sources start on the images less its starting level
        init_obs = obs if background is None else observation(background.level)
        if not np.any(obs.weights.data > 0):
            raise BlendFailure("every pixel of the footprint is masked or has no valid variance")
        centers = [(int(y), int(x)) for y, x in job.peaks]
        cutoff = config.maxSpectrumCutoff
        fit_spectra = config.setSpectra and (
            cutoff == 0 or len(centers) * int(job.footprint.sum()) <= cutoff
        )
        sources = init_all_sources(
            init_obs, centers, fit_spectra=fit_spectra, **config.init_options()
        )
        for source, peak_id in zip(sources, job.peak_ids):
            source.metadata["peak_id"] = int(peak_id)
        blend = Blend(sources, obs, metadata={"parent_id": job.parent_id}, background=background)
        blend.parameterize(config.parameterization())
        # a diverging fit is detected and raised by the engine: no warnings needed
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            iterations, log_l = blend.fit(
                config.maxIter,
                e_rel=config.relativeError,
                min_iter=config.minIter,
                resize=config.resizeFrequency or None,
            )
        model_flux = np.array(
            [
                np.sum(s.get_model().data, axis=(1, 2), dtype=np.float64)
                if not s.is_null
                else np.zeros(len(settings.bands))
                for s in blend.sources
            ]
        ).reshape(len(blend.sources), len(settings.bands))
        level = None if blend.background is None else blend.background.level.astype(np.float64)
        if not (np.isfinite(log_l) and np.all(np.isfinite(model_flux))) or (
            level is not None and not np.all(np.isfinite(level))
        ):
            raise FloatingPointError(
                f"the fitted model is not finite after {iterations} iterations (logL={log_l})"
            )
        weight_sources(blend)
        measures = measure_blend(blend)
        flux = np.zeros_like(model_flux)
        masks = []
        for i, s in enumerate(blend.sources):
            if s.flux is None:
                masks.append(((0, 0), np.zeros((0, 0), bool)))
                continue
            flux[i] = np.sum(s.flux.data, axis=(1, 2), dtype=np.float64)
            masks.append((tuple(s.flux_box.origin), s.flux.data.sum(axis=0) > 0))
        data = blend_to_data(blend, psf_center=job.psf_center)
        # what the patch shares is not sent back: ModelData.attach restores it
        data.bands = data.model_psf = None
        if job.psfs is None:
            data.psf = None
        data.footprint = job.footprint
        data.metadata = {
            **(data.metadata or {}),
            "iterations": int(iterations),
            "logL": float(log_l),
            "converged": bool(blend.converged),
        }
        level_err = None
        if level is not None:
            # blend_to_data stored the levels (LEVEL_KEY); their errors beside them
            weight = blend.background.sky_weight
            level_err = np.where(weight > 0, 1 / np.sqrt(np.where(weight > 0, weight, 1)), np.nan)
            data.metadata[LEVEL_ERR_KEY] = {b: float(v) for b, v in zip(settings.bands, level_err)}
        return BlendResult(
            job.index,
            job.parent_id,
            iterations=int(iterations),
            log_likelihood=float(log_l),
            converged=bool(blend.converged),
            model_flux=model_flux,
            flux=flux,
            unassigned_flux=np.asarray(blend.unassigned_flux, np.float64),
            n_components=np.array([len(s.components) for s in blend.sources], np.int32),
            flux_masks=masks,
            blend_data=data,
            measures=measures,
            background=level,
            background_err=level_err,
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:
        if not config.catchFailures:
            raise
        return BlendResult(
            job.index,
            job.parent_id,
            failed=True,
            reason=f"{type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - start,
        )


# ---- process pool plumbing ----------------------------------------------------------

_SETTINGS: Settings | None = None


def init_worker(settings: Settings, parent: int | None = None) -> None:
    """Process-pool initializer: keep the patch's shared settings in this process.

    With ``parent`` (the pid of the process that started the pool) the worker ends
    when that process dies and ignores Ctrl-C (`vermilion.pipeline.pool.worker_lifeline`).
    """
    global _SETTINGS
    if parent is not None:
        worker_lifeline(parent)
    _SETTINGS = settings


def run_chunk(jobs: list[BlendJob]) -> list[BlendResult]:
    """Deblend a list of blends in a worker process (after `init_worker`)."""
    if _SETTINGS is None:
        raise RuntimeError("worker process was not initialized with the patch settings")
    try:
        return [deblend_blend(job, _SETTINGS) for job in jobs]
    except Exception as exc:  # only with catchFailures=False
        raise _portable(exc) from None


def _portable(exc: Exception) -> Exception:
    """The exception itself if it survives pickling (to the parent process), else a copy.

    An exception whose ``__init__`` takes more than its message (such as
    `FitDivergenceError`) cannot be unpickled; it is sent as a RuntimeError
    naming the original type.
    """
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
