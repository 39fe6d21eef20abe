"""`DeblendTask`: deblend every parent of a patch, on all cores, isolating failures.

``DeblendTask(config).run(mexposure, parents) -> (catalog, model_data)``:

1. Every parent is checked against the limits of the config; parents over a limit
   are skipped with the matching flag (``deblend_tooManyPeaks``,
   ``deblend_parentTooBig``, ``deblend_masked``, pseudo-sources) and
   ``deblend_skipped``; isolated parents (one peak) are modelled only with
   ``processSingles``.
2. Every other parent becomes a blend: the exposure is cut out on its
   footprint's box, weights are ``1/variance`` inside the footprint and 0 outside
   and on ``badMask`` pixels; sources are initialized
   (`vermilion.core.init_all_sources`), parameterized with proximal ADAM, fitted
   and their flux re-apportioned (`vermilion.core.weight_sources`); the models
   are stored with `vermilion.io.blend_to_data`.
3. The blends are spread over a process pool (every core by default). Each
   worker receives only its cutouts, in chunks; the results are assembled in
   parent order, so the outputs are identical to a serial run bit for bit.
4. A blend whose fit fails (an exception, a non-finite likelihood, a worker
   process that dies) is flagged ``deblend_failed`` with ``deblend_failReason``
   and the rest of the patch goes on.

Catalog columns added (``<band>`` for every band):

===================================  ========================================================
``deblend_iterations``               iterations of the blend's fit (parents and children)
``deblend_logL``                     log-likelihood of the fitted model (parents and children)
``deblend_converged``                the fit met ``relativeError`` before ``maxIter``
``deblend_nComponents``              components of the child's model
``deblend_scarletFlux_<band>``       flux of the child's model (sum of the model, nJy)
``deblend_reapportionedFlux_<band>`` flux of the re-apportioned observed image of the child
``deblend_unassignedFlux_<band>``    (parents) flux of the observed image given to no child:
                                     pixels where every child's rendered model is below
                                     0.05 noise rms (`vermilion.core.Blend.conserve_flux`)
``deblend_zeroFlux``                 the child's model has no positive flux in any band
===================================  ========================================================
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vermilion.core import Box

# one evaluation of the mask bits and the PSF at a blend, shared with the restart (io)
from vermilion.io.convert import exposure_mask_bits, exposure_psfs

from . import measure
from ._worker import BlendJob, BlendResult, Settings, deblend_blend, init_worker, run_chunk
from .background import (
    BACKGROUND_KEY,
    PatchBackground,
    ensure_level_columns,
    footprint_mask,
    record_level,
    sky_level,
    sky_pixels,
    summarize_levels,
)
from .config import CONFIG_KEY, DeblendConfig
from .pool import check_pool_runs, progress_bar

if TYPE_CHECKING:
    from vermilion.detect.catalog import SourceCatalog
    from vermilion.io import ModelData

__all__ = ["DeblendTask", "default_workers"]


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class DeblendTask:
    """Deblend the parents of one patch.

    Parameters
    ----------
    config
        A `DeblendConfig`, a mapping of field values, a config file, or None for the
        defaults.
    workers
        Processes to use: None for every core, 1 to run in this process.
    mp_context
        Start method of the worker processes: ``"spawn"`` (default: safe in any
        host, including Dask workers and threaded programs) or ``"fork"``
        (faster start on Linux).
    progress
        Show a progress bar over the blends (tqdm).

    Examples
    --------
    >>> task = DeblendTask(DeblendConfig(maxIter=100))  # doctest: +SKIP
    >>> catalog, model_data = task.run(mexposure, parents)  # doctest: +SKIP
    """

    def __init__(
        self,
        config: DeblendConfig | dict | str | os.PathLike | None = None,
        workers: int | None = None,
        mp_context: str = "spawn",
        progress: bool = False,
    ) -> None:
        self.config = DeblendConfig.coerce(config)
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be >= 1 or None (every core), got {workers}")
        self.workers = workers
        if mp_context not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"mp_context {mp_context!r} is not available here; "
                f"use one of {multiprocessing.get_all_start_methods()}"
            )
        self.mp_context = mp_context
        self.progress = progress
        #: Seconds per stage of the last `run` (``prepare``, ``deblend``, ``assemble``).
        self.timing: dict[str, float] = {}

    # -- public --------------------------------------------------------------------------
    def run(
        self,
        mexposure: Any,
        parents: SourceCatalog,
        workers: int | None = None,
    ) -> tuple[SourceCatalog, ModelData]:
        """Deblend every parent of ``parents`` on ``mexposure``.

        Parameters
        ----------
        mexposure
            Anything with ``images``, ``variance`` and ``mask`` ``(B, H, W)`` arrays,
            ``psfs`` ``(B, ph, pw)``, ``bands`` and ``bbox`` (a `Box`), such as a
            `vermilion.repo.MultibandExposure` or a `vermilion.sim.SimulatedPatch`.
            A spatially varying PSF is evaluated at each footprint's centroid when
            the object has ``computePsfKernelImage((y, x))`` or ``psf_at(y, x)``.
        parents
            The parent catalog (`vermilion.detect.detect_sources`): one record
            per footprint, with peaks.
        workers
            Overrides the task's ``workers`` for this call.

        Returns
        -------
        catalog : `vermilion.detect.SourceCatalog`
            The parents (with flags and fit statistics) followed by the children of
            every deblended parent, in parent order.
        model_data : `vermilion.io.ModelData`
            The models of every deblended blend, keyed by parent id; the config
            is recorded in ``metadata["deblend_config"]`` (and in ``catalog.meta``).
        """
        from vermilion.io.data import IsolatedSourceData, ModelData

        config = self.config
        t0 = time.perf_counter()
        images, variance, mask, bands, ebox = _exposure_arrays(mexposure)
        patch_psfs = np.asarray(mexposure.psfs, dtype=np.float32)
        if patch_psfs.ndim != 3 or patch_psfs.shape[0] != len(bands):
            raise ValueError(
                f"mexposure.psfs must be (bands, ph, pw) with {len(bands)} bands, "
                f"got shape {patch_psfs.shape}"
            )
        bad_mask = exposure_mask_bits(mexposure, config.badMask)
        settings = Settings.build(config, bands, patch_psfs)
        catalog = parents.copy()
        if not len(catalog) == 0 and "footprint" not in catalog.colnames:
            raise ValueError("parents has no footprint column: run vermilion.detect first")
        #: the background of each band, subtracted where config.background says so
        self.background = PatchBackground.estimate(
            images, variance, mask, bad_mask, bands, config, footprint_mask(catalog, ebox)
        )
        images = self.background.apply(images)
        _ensure_columns(catalog, bands)
        flux_unit = getattr(mexposure, "flux_unit", None) or measure.DEFAULT_FLUX_UNIT
        measure.ensure_measured_columns(catalog, bands, flux_unit)
        if self.background.fitted:
            ensure_level_columns(catalog, bands, flux_unit)
        plan = _plan(catalog, config, ebox)
        self.timing = {"prepare": time.perf_counter() - t0}

        make_job = _JobMaker(catalog, images, variance, mask, ebox, bad_mask, mexposure, patch_psfs)
        make_job.background = self.background if self.background.fitted else None
        if self.background.fitted:
            make_job.detected, make_job.config = footprint_mask(catalog, ebox), config

        t1 = time.perf_counter()
        n_workers = self.workers if workers is None else workers
        n_workers = default_workers() if n_workers is None else int(n_workers)
        if n_workers < 1:
            raise ValueError(f"workers must be >= 1, got {n_workers}")
        results = self._deblend(plan.blend_rows, make_job, settings, n_workers)
        self.timing["deblend"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        model_data = ModelData(
            bands,
            settings.model_psf,
            observed_psf=patch_psfs,
            metadata={
                CONFIG_KEY: config.to_dict(),
                "tract": int(catalog.meta.get("tract", 0)),
                "patch": int(catalog.meta.get("patch", 0)),
            },
        )
        children = _ChildColumns(bands)
        levels: list = []  # the fitted sky levels and errors of the blends
        for row in plan.blend_rows:
            result = results[row]
            pid = int(catalog["id"][row])
            if result.failed:
                _flag(catalog, row, "deblend_failed", result.reason)
                continue
            catalog["deblend_iterations"][row] = result.iterations
            catalog["deblend_logL"][row] = result.log_likelihood
            catalog["deblend_converged"][row] = result.converged
            if result.unassigned_flux is not None:
                for b, band in enumerate(bands):
                    catalog[f"deblend_unassignedFlux_{band}"][row] = result.unassigned_flux[b]
            if result.background is not None:
                levels.append(
                    record_level(catalog, row, bands, result.background, result.background_err)
                )
            model_data.blends[pid] = model_data.attach(result.blend_data)
            children.add_blend(catalog, row, result)
        for row in plan.isolated_rows:
            level = None  # with a fitted sky, its weighted mean around the parent comes out
            if self.background.fitted:
                levels.append(record_level(catalog, row, bands, *make_job.sky_level(row)))
                level = levels[-1][0]
            children.add_isolated(catalog, row, images, variance, ebox, bad_mask, mask, level)
        out = children.stack(catalog)
        offset = len(catalog)
        for row, key in children.isolated_keys:
            fp = catalog["footprint"][row]
            child_id = int(out["id"][offset + key])
            box = fp.bbox
            model_data.isolated[child_id] = IsolatedSourceData(
                tuple(box.origin),
                (int(catalog["peak_y"][row]), int(catalog["peak_x"][row])),
                fp.spans.as_array().astype(np.float32),
                metadata={"id": child_id, "peak_id": int(catalog["peak_id"][row])},
            )
        _rekey_sources(model_data, np.asarray(out["id"])[offset:], children.blend_keys)
        measure.add_sky_coordinates(out, getattr(mexposure, "wcs", None))
        out.meta[CONFIG_KEY] = config.to_dict()
        summary = self.background.summary()
        if self.background.fitted:
            summary["margin"] = int(config.backgroundMargin)
            summary["levels"] = summarize_levels(
                bands, [v for v, _ in levels], [e for _, e in levels]
            )
        out.meta[BACKGROUND_KEY] = model_data.metadata[BACKGROUND_KEY] = summary
        self.timing["assemble"] = time.perf_counter() - t2
        return out, model_data

    # -- deblending --------------------------------------------------------------------
    def _deblend(
        self, rows: Sequence[int], make_job, settings: Settings, n_workers: int
    ) -> dict[int, BlendResult]:
        bar = progress_bar(len(rows), self.progress)
        try:
            if n_workers == 1 or len(rows) <= 1 or _in_daemon(n_workers):
                results = {}
                for row in rows:
                    results[row] = deblend_blend(make_job(row), settings)
                    bar.update(1)
                return results
            return _run_pool(rows, make_job, settings, n_workers, self.mp_context, bar)
        finally:
            bar.close()


# ---- planning -----------------------------------------------------------------------------


class _Plan:
    def __init__(self) -> None:
        self.blend_rows: list[int] = []
        self.isolated_rows: list[int] = []


def _plan(catalog: SourceCatalog, config: DeblendConfig, ebox: Box) -> _Plan:
    """Decide per parent: deblend, keep as isolated, or skip (with its flag)."""
    plan = _Plan()
    pseudo = [c for c in config.pseudoColumns if c in catalog.colnames]
    parent_col = np.asarray(catalog["parent"])
    for row in range(len(catalog)):
        if parent_col[row] != 0:
            continue
        fp = catalog["footprint"][row]
        if fp is None or fp.area == 0:
            _flag(catalog, row, "deblend_skipped", "no footprint")
            continue
        n_peaks = fp.n_peaks
        area = fp.area
        h, w = fp.bbox.shape
        flagged = [c for c in pseudo if bool(catalog[c][row])]
        if flagged:
            _flag(catalog, row, "deblend_skipped", f"pseudo-source ({', '.join(flagged)})")
        elif n_peaks == 0:
            _flag(catalog, row, "deblend_skipped", "no peaks in the footprint")
        elif (fp.bbox & ebox) != fp.bbox:
            _flag(
                catalog,
                row,
                "deblend_failed",
                f"footprint box {fp.bbox} leaves the exposure {ebox}",
            )
        elif config.maxNumberOfPeaks and n_peaks > config.maxNumberOfPeaks:
            _skip_over_limit(
                catalog,
                row,
                "deblend_tooManyPeaks",
                f"{n_peaks} peaks > maxNumberOfPeaks {config.maxNumberOfPeaks}",
            )
        elif config.maxFootprintArea and area > config.maxFootprintArea:
            _skip_over_limit(
                catalog,
                row,
                "deblend_parentTooBig",
                f"footprint area {area} > maxFootprintArea {config.maxFootprintArea}",
            )
        elif config.maxAreaTimesPeaks and area * n_peaks > config.maxAreaTimesPeaks:
            _skip_over_limit(
                catalog,
                row,
                "deblend_parentTooBig",
                f"area x peaks {area * n_peaks} > maxAreaTimesPeaks {config.maxAreaTimesPeaks:g}",
            )
        elif config.maxFootprintSize and max(h, w) > config.maxFootprintSize:
            _skip_over_limit(
                catalog,
                row,
                "deblend_parentTooBig",
                f"footprint box {h} x {w} > maxFootprintSize {config.maxFootprintSize}",
            )
        elif bool(catalog["deblend_masked"][row]):
            _flag(
                catalog, row, "deblend_skipped", "too large a fraction of the footprint is masked"
            )
        elif bool(catalog["deblend_tooManyPeaks"][row] or catalog["deblend_parentTooBig"][row]):
            _flag(catalog, row, "deblend_skipped", "over the detection's peak or area limit")
        elif n_peaks == 1 and not config.processSingles:
            catalog["deblend_isolatedParent"][row] = True
            plan.isolated_rows.append(row)
        else:
            plan.blend_rows.append(row)
    return plan


def _flag(catalog: SourceCatalog, row: int, flag: str, reason: str) -> None:
    catalog[flag][row] = True
    catalog["deblend_failReason"][row] = reason


def _skip_over_limit(catalog: SourceCatalog, row: int, limit_flag: str, reason: str) -> None:
    """Skip a parent over one of the config's limits: its limit flag and ``deblend_skipped``."""
    catalog[limit_flag][row] = True
    _flag(catalog, row, "deblend_skipped", reason)


def _ensure_columns(catalog: SourceCatalog, bands: Sequence[str]) -> None:
    catalog.ensure_column("deblend_failReason", object, "")
    catalog.ensure_column(
        "deblend_iterations", np.int32, 0, description="iterations of the blend's fit"
    )
    catalog.ensure_column(
        "deblend_logL", np.float64, np.nan, description="last log-likelihood of the blend's fit"
    )
    catalog.ensure_column(
        "deblend_converged", bool, False, description="the fit met relativeError before maxIter"
    )
    catalog.ensure_column(
        "deblend_nComponents", np.int32, 0, description="components of the child's model"
    )
    catalog.ensure_column(
        "deblend_zeroFlux", bool, False, description="the child's model has no positive flux"
    )
    for band in bands:
        catalog.ensure_column(
            f"deblend_scarletFlux_{band}",
            np.float32,
            np.nan,
            description=f"flux of the child's model in band {band}",
        )
        catalog.ensure_column(
            f"deblend_reapportionedFlux_{band}",
            np.float32,
            np.nan,
            description=f"flux of the child's re-apportioned observed image in band {band}",
        )
        catalog.ensure_column(
            f"deblend_unassignedFlux_{band}",
            np.float32,
            np.nan,
            description=f"flux of the parent's observed image given to no child in band {band}",
        )


# ---- exposures and jobs --------------------------------------------------------------------


def _exposure_arrays(mexposure: Any):
    for name in ("images", "variance", "psfs", "bands", "bbox"):
        if getattr(mexposure, name, None) is None:
            raise ValueError(
                f"mexposure has no {name!r}: it needs images, variance, mask, psfs, bands and bbox"
            )
    images = np.asarray(mexposure.images)
    variance = np.asarray(mexposure.variance)
    mask = getattr(mexposure, "mask", None)
    mask = None if mask is None else np.asarray(mask)
    bands = tuple(str(b) for b in mexposure.bands)
    if images.ndim != 3 or images.shape[0] != len(bands):
        raise ValueError(
            f"mexposure.images must be (bands, H, W) with {len(bands)} bands, got {images.shape}"
        )
    if variance.shape != images.shape or (mask is not None and mask.shape != images.shape):
        raise ValueError(
            f"mexposure variance {variance.shape} and mask "
            f"{None if mask is None else mask.shape} must match images {images.shape}"
        )
    ebox = mexposure.bbox
    if not isinstance(ebox, Box):
        ebox = Box(images.shape[1:], tuple(ebox))
    if tuple(ebox.shape) != images.shape[1:]:
        raise ValueError(f"mexposure.bbox {ebox} does not match the images {images.shape[1:]}")
    return images, variance, mask, bands, ebox


class _JobMaker:
    """Cuts one blend's job out of the patch, when it is about to be sent."""

    def __init__(
        self,
        catalog: SourceCatalog,
        images: np.ndarray,
        variance: np.ndarray,
        mask: np.ndarray | None,
        ebox: Box,
        bad_mask: int,
        mexposure: Any,
        patch_psfs: np.ndarray,
    ) -> None:
        self.catalog = catalog
        self.images, self.variance, self.mask = images, variance, mask
        self.ebox = ebox
        self.bad_mask = bad_mask
        self.mexposure = mexposure
        self.patch_psfs = patch_psfs
        #: the patch background where the sky is fitted in each blend (else None), with
        #: the parents' footprints and the config (``backgroundMargin``, ``useWeights``)
        self.background: PatchBackground | None = None
        self.detected: np.ndarray | None = None
        self.config: DeblendConfig | None = None

    def cost(self, row: int) -> float:
        """Rough relative cost of a blend: box pixels times (peaks + 1)."""
        fp = self.catalog["footprint"][row]
        return float(fp.bbox.area) * (fp.n_peaks + 1)

    def __call__(self, row: int) -> BlendJob:
        fp = self.catalog["footprint"][row]
        bbox = fp.bbox
        cut = (slice(None), *bbox.slices_in(self.ebox))
        center = fp.centroid
        # evaluated as the restart does (vermilion.io rebuilds the blend at psf_center)
        psfs = exposure_psfs(self.mexposure, center)
        if psfs.shape == self.patch_psfs.shape and np.array_equal(psfs, self.patch_psfs):
            psfs = None
        peaks = fp.peaks
        return BlendJob(
            index=row,
            parent_id=int(self.catalog["id"][row]),
            bbox=bbox,
            images=np.ascontiguousarray(self.images[cut]),
            variance=np.ascontiguousarray(self.variance[cut]),
            mask=None if self.mask is None else np.ascontiguousarray(self.mask[cut]),
            footprint=fp.spans.as_mask(bbox),
            peaks=np.stack([peaks["y"], peaks["x"]], axis=1).astype(np.int64),
            peak_ids=np.asarray(peaks["id"], np.int64),
            bad_mask=self.bad_mask,
            psf_center=(float(center[0]), float(center[1])),
            psfs=psfs,
            background=None if self.background is None else self.background.level_in(cut[1:]),
            sky=None if self.background is None else self._sky(bbox),
        )

    def sky_level(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """An isolated parent's sky level and its error (`sky_level`; the patch's
        estimate, without error, in a band without a sky pixel)."""
        bbox = self.catalog["footprint"][row].bbox
        level, err = sky_level(*self._sky(bbox)[:2])
        start = self.background.level_in(bbox.slices_in(self.ebox))
        return np.where(np.isfinite(level), level, start), err

    def _sky(self, bbox: Box) -> tuple:
        """The pixels constraining the blend's fitted sky level (`sky_pixels`)."""
        config = self.config
        return sky_pixels(
            (self.images, self.variance, self.mask),
            self.ebox,
            bbox,
            self.detected,
            self.bad_mask,
            config.backgroundMargin,
            config.useWeights,
        )


# ---- process pool ---------------------------------------------------------------------------


def _in_daemon(n_workers: int) -> bool:
    if multiprocessing.current_process().daemon:
        warnings.warn(
            f"Running in a daemonic process (e.g. a Dask worker started with daemon=True): "
            f"cannot start {n_workers} worker processes; deblending serially",
            RuntimeWarning,
            stacklevel=3,
        )
        return True
    return False


def _chunks(rows: Sequence[int], costs: dict[int, float], n_workers: int) -> list[list[int]]:
    """Group blends, largest first, into chunks of similar cost (about 16 per worker)."""
    order = sorted(rows, key=lambda r: (-costs[r], r))
    target = sum(costs.values()) / max(1, n_workers * 16)
    chunks: list[list[int]] = []
    current: list[int] = []
    acc = 0.0
    for row in order:
        current.append(row)
        acc += costs[row]
        if acc >= target or len(current) >= 64:
            chunks.append(current)
            current, acc = [], 0.0
    if current:
        chunks.append(current)
    return chunks


def _run_pool(
    rows: Sequence[int], make_job, settings: Settings, n_workers: int, mp_context: str, bar
) -> dict[int, BlendResult]:
    """Deblend in a process pool with a bounded number of chunks in flight.

    A worker process that dies (a crash, the out-of-memory killer) breaks the pool:
    the chunks that were in flight are then rerun one blend at a time in a new
    pool, and a blend that breaks the pool on its own is flagged as failed.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context(mp_context)
    results: dict[int, BlendResult] = {}
    costs = {row: make_job.cost(row) for row in rows}
    queue: collections.deque[list[int]] = collections.deque(_chunks(rows, costs, n_workers))
    suspects: collections.deque[list[int]] = collections.deque()
    max_in_flight = 2 * n_workers

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=n_workers,
            mp_context=ctx,
            initializer=init_worker,
            # forkserver workers are the server's children: no parent to watch
            initargs=(settings, None if mp_context == "forkserver" else os.getpid()),
        )

    pool = new_pool()
    in_flight: dict[Any, list[int]] = {}
    solo: set[Any] = set()  # futures that ran alone: a broken pool is their fault
    try:
        while queue or suspects or in_flight:
            # suspects (in flight when a pool broke) run one at a time to find the culprit
            while len(in_flight) < (1 if suspects else max_in_flight) and (suspects or queue):
                alone = bool(suspects)
                chunk = suspects.popleft() if alone else queue.popleft()
                future = pool.submit(run_chunk, [make_job(r) for r in chunk])
                in_flight[future] = chunk
                if alone:
                    solo.add(future)
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                chunk = in_flight.pop(future)
                try:
                    for result in future.result():
                        results[result.index] = result
                    bar.update(len(chunk))
                except BrokenProcessPool:
                    broken = True
                    if future in solo:
                        check_pool_runs(new_pool, chunk[0])
                        results[chunk[0]] = BlendResult(
                            chunk[0],
                            0,
                            failed=True,
                            reason="the worker process died (crash or out of memory) "
                            "while deblending this blend",
                        )
                        bar.update(1)
                    else:
                        suspects.extend([r] for r in chunk)
            if broken:
                for future, chunk in in_flight.items():
                    future.cancel()
                    suspects.extend([r] for r in chunk)
                in_flight.clear()
                solo.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
    except BaseException:
        for future in in_flight:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


# ---- children -----------------------------------------------------------------------------


class _ChildColumns:
    """Collects the children of all parents, then appends them in one go (fast)."""

    def __init__(self, bands: Sequence[str]) -> None:
        self.bands = tuple(bands)
        self.footprints: list = []
        self.parent: list[int] = []
        self.parent_rows: list[int] = []
        self.iterations: list[int] = []
        self.log_l: list[float] = []
        self.converged: list[bool] = []
        self.n_components: list[int] = []
        self.model_flux: list[np.ndarray] = []
        self.flux: list[np.ndarray] = []
        self.measured = measure.MeasuredColumns(bands)
        #: (parent id, first child position, count) of every deblended blend
        self.blend_keys: list[tuple[int, int, int]] = []
        #: (parent row, child position) of isolated parents
        self.isolated_keys: list[tuple[int, int]] = []

    def _child_footprint(self, peak, origin, mask: np.ndarray):
        from vermilion.detect.footprint import Footprint, SpanSet

        # re-apportioned flux is zero wherever the weight is zero, so these pixels
        # already lie inside the parent footprint
        spans = SpanSet.from_mask(mask, origin) if mask.size else SpanSet()
        return Footprint(spans, peak)

    def add_blend(self, catalog: SourceCatalog, row: int, result: BlendResult) -> None:
        fp = catalog["footprint"][row]
        peaks = fp.peaks
        n = len(peaks)
        start = len(self.parent)
        pid = int(catalog["id"][row])
        for i in range(n):
            origin, mask = result.flux_masks[i]
            self.footprints.append(self._child_footprint(peaks[i : i + 1], origin, mask))
        self.parent.extend([pid] * n)
        self.parent_rows.extend([row] * n)
        self.iterations.extend([result.iterations] * n)
        self.log_l.extend([result.log_likelihood] * n)
        self.converged.extend([result.converged] * n)
        self.n_components.extend(result.n_components.tolist())
        self.model_flux.extend(result.model_flux)
        self.flux.extend(result.flux)
        self.blend_keys.append((pid, start, n))
        self.measured.add_blend(result.measures, n)
        if result.measures is not None:
            measure.set_parent_centroid(catalog, row, result.measures.parent_centroid)
        catalog["deblend_nComponents"][row] = int(result.n_components.sum())

    def add_isolated(
        self,
        catalog: SourceCatalog,
        row: int,
        images: np.ndarray,
        variance: np.ndarray,
        ebox: Box,
        bad_mask: int,
        mask: np.ndarray | None,
        level: np.ndarray | None = None,
    ) -> None:
        """An isolated parent kept as it is: one child, the image inside the footprint
        (less the sky ``level`` per band, ``background="fit"``)."""
        from vermilion.detect.footprint import Footprint

        fp = catalog["footprint"][row]
        box = fp.bbox
        cut = (slice(None), *box.slices_in(ebox))
        image = images[cut] if level is None else images[cut] - level[:, None, None]
        inside = fp.spans.as_mask(box)[None]
        if mask is not None and bad_mask:
            inside = inside & ((mask[cut] & bad_mask) == 0)
        pixels = np.where(inside & np.isfinite(image), image, 0)
        flux = pixels.sum(axis=(1, 2), dtype=np.float64)
        inside = np.broadcast_to(inside & np.isfinite(image), pixels.shape)
        flux_err, centroid, moments = measure.measure_image(
            pixels, variance[cut], inside, box.origin
        )
        self.measured.add_isolated(flux_err, centroid, moments)
        measure.set_parent_centroid(catalog, row, centroid)
        self.isolated_keys.append((row, len(self.parent)))
        self.footprints.append(Footprint(fp.spans, fp.peaks[:1]))
        self.parent.append(int(catalog["id"][row]))
        self.parent_rows.append(row)
        self.iterations.append(0)
        self.log_l.append(np.nan)
        self.converged.append(False)
        self.n_components.append(0)
        self.model_flux.append(np.full(len(self.bands), np.nan))
        self.flux.append(flux)

    def stack(self, catalog: SourceCatalog) -> SourceCatalog:
        """Parents followed by all children (ids after the parents'), ``nChild`` set."""
        from astropy.table import vstack

        from vermilion.detect.catalog import SourceCatalog
        from vermilion.detect.ids import unpack_source_id

        n = len(self.parent)
        parent_rows = np.asarray(self.parent_rows, dtype=np.int64)
        counts = np.bincount(parent_rows, minlength=len(catalog)) if n else np.zeros(len(catalog))
        catalog["deblend_nChild"] = np.asarray(catalog["deblend_nChild"]) + counts.astype(np.int32)
        if n == 0:
            return catalog
        first_seq = 1
        if len(catalog):
            first_seq = int(np.max(unpack_source_id(np.asarray(catalog["id"]))[2])) + 1
        model_flux = np.asarray(self.model_flux, dtype=np.float32).reshape(n, len(self.bands))
        flux = np.asarray(self.flux, dtype=np.float32).reshape(n, len(self.bands))
        columns: dict[str, Any] = {
            "parent": np.asarray(self.parent, np.int64),
            "deblend_isolatedParent": np.zeros(n, bool),
            "deblend_iterations": np.asarray(self.iterations, np.int32),
            "deblend_logL": np.asarray(self.log_l, np.float64),
            "deblend_converged": np.asarray(self.converged, bool),
            "deblend_nComponents": np.asarray(self.n_components, np.int32),
            "deblend_zeroFlux": ~np.any(model_flux > 0, axis=1)
            & np.all(np.isfinite(model_flux), axis=1),
        }
        if "detect_edge" in catalog.colnames:
            columns["detect_edge"] = np.asarray(catalog["detect_edge"])[parent_rows]
        for b, band in enumerate(self.bands):
            columns[f"deblend_scarletFlux_{band}"] = model_flux[:, b]
            columns[f"deblend_reapportionedFlux_{band}"] = flux[:, b]
        columns.update(self.measured.columns())
        meta = dict(catalog.meta)
        children = SourceCatalog.from_footprints(
            self.footprints,
            tract=int(meta.get("tract", 0)),
            patch=int(meta.get("patch", 0)),
            bands=self.bands,
            first_seq=first_seq,
            **columns,
        )
        for name in catalog.colnames:  # the parents' extra columns, at their defaults
            col = catalog[name]
            children.ensure_column(name, col.dtype, shape=col.shape[1:])
        children = children[catalog.colnames]
        out = vstack([catalog, children], join_type="exact", metadata_conflicts="silent")
        out.meta.clear()
        out.meta.update(meta)
        return out


def _rekey_sources(model_data, child_ids: np.ndarray, blend_keys) -> None:
    """Key every stored source by its child's catalog id."""
    for pid, start, n in blend_keys:
        blend = model_data.blends[pid]
        ids = child_ids[start : start + n].tolist()
        blend.sources = dict(zip(ids, blend.sources.values()))
