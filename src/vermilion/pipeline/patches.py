"""Deblend many patches of a data repository, on Dask.

`deblend_patch` is one unit of work: read the coadds of a patch from the
butler, detect (`vermilion.detect.detect_sources`), deblend (`DeblendTask`) and
write ``deepCoadd_deblendedCatalog`` and ``deepCoadd_scarletModelData`` into the
output run, both in one butler transaction. A patch whose two outputs already
exist in the output run is skipped (unless ``redo``), and a patch left with only
one of them is redone, so an interrupted run is resumed by running it again.

`deblend_patches` runs `deblend_patch` for a list of patches on a local Dask
cluster (default), a Dask local scheduler (``"synchronous"``, ``"threads"``,
``"processes"``) or any Dask scheduler given by address, with a progress bar
and a `DeblendSummary` at the end.

The ``vermilion deblend`` command (`vermilion.cli`) calls `deblend_patches`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vermilion.repo.butler import (
    CATALOG_DATASET,
    DEFAULT_COADD_RUN,
    DEFAULT_DEBLEND_RUN,
    EXPOSURE_DATASET,
    MODEL_DATASET,
    band_order_key,
    default_skymap,
    get_skymap,
    repo_bands,
    repo_root,
)
from vermilion.repo.names import check_collection_names, check_run_name

from .arrays import detect_and_deblend
from .config import DeblendConfig
from .pool import sigint_ignored
from .task import default_workers

__all__ = [
    "CATALOG_DATASET",
    "DEFAULT_DEBLEND_RUN",
    "MODEL_DATASET",
    "DeblendSummary",
    "PatchResult",
    "deblend_patch",
    "deblend_patches",
    "detect_and_deblend",
    "patch_bands",
    "sort_bands",
]

_log = logging.getLogger(__name__)

_OUTPUTS = (MODEL_DATASET, CATALOG_DATASET)
_LOCAL_SCHEDULERS = {
    "synchronous": "synchronous",
    "sync": "synchronous",
    "single-threaded": "synchronous",
    "threads": "threads",
    "threading": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
}


@dataclass
class PatchResult:
    """What happened to one patch.

    Attributes
    ----------
    status
        ``"done"`` (deblended and written), ``"skipped"`` (outputs existed) or
        ``"failed"`` (see ``error``; nothing was written).
    n_parents, n_blends, n_sources, n_failed, n_skipped
        Parents detected; parents deblended; children written; parents flagged
        ``deblend_failed``; parents flagged ``deblend_skipped``.
    """

    tract: int
    patch: int
    status: str
    n_parents: int = 0
    n_blends: int = 0
    n_sources: int = 0
    n_failed: int = 0
    n_skipped: int = 0
    read_seconds: float = 0.0
    detect_seconds: float = 0.0
    deblend_seconds: float = 0.0
    write_seconds: float = 0.0
    seconds: float = 0.0
    error: str = ""


@dataclass
class DeblendSummary:
    """Totals of a `deblend_patches` run (``print(summary)`` for a report)."""

    patches: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    blends: int = 0
    sources: int = 0
    failures: int = 0
    skipped_blends: int = 0
    seconds: float = 0.0
    results: list[PatchResult] = field(default_factory=list)
    output: str = ""
    output_run: str = ""

    @property
    def sources_per_second(self) -> float:
        return self.sources / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def from_results(cls, results: Sequence[PatchResult], seconds: float) -> DeblendSummary:
        out = cls(patches=len(results), seconds=seconds, results=list(results))
        for r in results:
            out.done += r.status == "done"
            out.skipped += r.status == "skipped"
            out.failed += r.status == "failed"
            out.blends += r.n_blends
            out.sources += r.n_sources
            out.failures += r.n_failed
            out.skipped_blends += r.n_skipped
        return out

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sources_per_second"] = self.sources_per_second
        return out

    def __str__(self) -> str:
        lines = [
            f"patches: {self.patches} ({self.done} deblended, {self.skipped} already done, "
            f"{self.failed} failed)",
            f"blends: {self.blends} deblended, {self.failures} failed, "
            f"{self.skipped_blends} skipped",
            f"sources: {self.sources}",
            f"time: {self.seconds:.1f} s ({self.sources_per_second:.1f} sources/s)",
        ]
        if self.output:
            run = f"run {self.output_run}" if self.output_run else "unchanged: nothing new"
            lines.append(f"output: {self.output} ({run})")
        elif self.output_run:
            lines.append(f"output run: {self.output_run}")
        for r in self.results:
            if r.status == "failed":
                lines.append(f"  tract {r.tract} patch {r.patch} failed: {r.error}")
        return "\n".join(lines)


# ---- one patch ---------------------------------------------------------------------------


def _repo_root(repo: Any) -> str:
    if isinstance(repo, str | os.PathLike):
        return os.fspath(repo)
    return repo_root(repo)


def sort_bands(bands: Iterable[str]) -> list[str]:
    """Band names, once each, in wavelength order (ugrizy, then others by name).

    The order in which every runner stacks a patch's bands, so that their outputs agree.
    """
    return sorted({str(b) for b in bands}, key=band_order_key)


def patch_bands(butler: Any, data_id: Mapping[str, Any], collections: Sequence[str]) -> list[str]:
    """Bands with a ``deepCoadd_calexp`` of this patch, in wavelength order (ugrizy)."""
    refs = butler.query_datasets(
        EXPOSURE_DATASET, collections=list(collections), data_id=dict(data_id), explain=False
    )
    return sort_bands(ref.dataId["band"] for ref in refs)


def check_patch_bands(
    butler: Any,
    data_id: Mapping[str, Any],
    collections: Sequence[str],
    bands: Sequence[str] | None = None,
) -> list[str]:
    """The bands to deblend a patch in; refuse a patch whose bands differ from those asked for.

    Parameters
    ----------
    butler
        The repository.
    data_id
        ``skymap``, ``tract`` and ``patch``; a tract or patch that is not in the sky
        map is refused with the sky map's tracts (or patches).
    collections
        Where the coadds are searched.
    bands
        The bands asked for; None asks for every band of the repository.

    Returns
    -------
    list of str
        ``bands``, or the repository's bands when None.

    Raises
    ------
    vermilion.repo.DataIdError
        The tract or patch is not in the sky map.
    LookupError
        The patch has no coadd at all, or lacks some of the bands asked for (the
        message names them, and the option that deblends the bands it has).
    """
    get_skymap(butler, data_id["skymap"]).patch(data_id["tract"], data_id["patch"])
    where = f"tract {data_id['tract']} patch {data_id['patch']}"
    have = patch_bands(butler, data_id, collections)
    if not have:
        raise LookupError(f"No {EXPOSURE_DATASET} for {where} in {list(collections)}")
    asked = sort_bands(repo_bands(butler)) if bands is None else [str(b) for b in bands]
    missing = [b for b in asked if b not in have]
    if missing:
        which = "the repository's bands" if bands is None else "the bands asked for"
        raise LookupError(
            f"{where} has coadds in band(s) {_words(have)} only, not in {_words(missing)} "
            f"of {which} ({_words(asked)}) in {list(collections)}: ingest the missing "
            f"band(s), or deblend the bands it has with --bands {_words(have)} "
            f"(bands={have!r})"
        )
    return have if bands is None else asked


def _words(bands: Sequence[str]) -> str:
    """``gri`` for one-letter bands, ``g,r,N921`` otherwise (as ``--bands`` takes them)."""
    return "".join(bands) if all(len(b) == 1 for b in bands) else ",".join(bands)


def _existing_outputs(
    butler: Any, data_id: Mapping[str, Any], collections: str | Sequence[str]
) -> dict[str, Any]:
    out = {}
    for name in _OUTPUTS:
        ref = butler.find_dataset(name, dict(data_id), collections=collections)
        if ref is not None:
            out[name] = ref
    return out


def _all_stored(butler: Any, refs: Mapping[str, Any]) -> bool:
    """Whether the files of ``refs`` are all there (not deleted by hand)."""
    try:
        return all(butler.stored_many(list(refs.values())).values())
    except Exception:  # a datastore that cannot tell: trust the registry
        return True


def deblend_patch(
    repo: Any,
    tract: int,
    patch: int,
    config: DeblendConfig | Mapping | None = None,
    *,
    skymap: str | None = None,
    bands: Sequence[str] | None = None,
    input_collections: str | Sequence[str] | None = None,
    output_run: str = DEFAULT_DEBLEND_RUN,
    redo: bool = False,
    workers: int | None = 1,
    mp_context: str = "spawn",
    detect_kwargs: Mapping[str, Any] | None = None,
    raise_errors: bool = False,
    skip_existing_in: str | Sequence[str] | None = None,
) -> PatchResult:
    """Detect, deblend and write one patch (idempotent).

    Parameters
    ----------
    repo
        Repository path (or a Butler of it).
    tract, patch
        The patch (sequential patch id).
    config
        `DeblendConfig` (or a mapping of its fields); default: the defaults.
    skymap
        Sky map name (default: the repository's only one).
    bands
        Bands to use (default: every band of the repository; a patch that lacks one
        of the bands is refused, naming them: give the bands it has).
    input_collections
        Collections holding the coadds (default `vermilion.repo.DEFAULT_COADD_RUN`).
    output_run
        Run the outputs go to.
    redo
        Deblend again and replace outputs that exist in ``output_run``.
    workers
        Processes for the blends of this patch (None: every core).
    mp_context
        Start method of those processes.
    detect_kwargs
        Keyword arguments of `vermilion.detect.detect_sources` (fields of
        `vermilion.detect.DetectionConfig`); the whole config used is recorded in the
        catalog's ``meta["detect_config"]``.
    raise_errors
        Raise instead of returning a ``"failed"`` result.
    skip_existing_in
        Collection(s) where existing outputs mean the patch is done (default:
        ``output_run``): the output chain, for ``vermilion deblend --output``, as
        ``pipetask run --skip-existing-in``.

    Returns
    -------
    PatchResult
    """
    from vermilion.repo import MultibandExposure, open_repo

    start = time.perf_counter()
    result = PatchResult(int(tract), int(patch), "failed")
    try:
        config = DeblendConfig.coerce(config)
        root = _repo_root(repo)
        if input_collections is None:
            input_collections = [DEFAULT_COADD_RUN]
        elif isinstance(input_collections, str):
            input_collections = [input_collections]
        butler = open_repo(
            root, writeable=True, collections=list(input_collections), run=output_run
        )
        skymap = skymap or default_skymap(butler)
        data_id = {"skymap": skymap, "tract": int(tract), "patch": int(patch)}
        from lsst.daf.butler import CollectionType

        butler.collections.register(output_run, CollectionType.RUN)
        existing = _existing_outputs(butler, data_id, output_run)
        done = (
            existing
            if skip_existing_in is None
            else (_existing_outputs(butler, data_id, skip_existing_in))
        )
        if len(done) == len(_OUTPUTS) and not redo and _all_stored(butler, done):
            result.status = "skipped"
            result.seconds = time.perf_counter() - start
            return result

        t = time.perf_counter()
        bands = check_patch_bands(butler, data_id, input_collections, bands)
        mexp = MultibandExposure.from_butler(butler, list(bands), EXPOSURE_DATASET, **data_id)
        result.read_seconds = time.perf_counter() - t

        t = time.perf_counter()
        # the one path of vermilion.deblend on arrays too: same pixels, same catalog
        parents, catalog, model_data, task = detect_and_deblend(
            mexp,
            config,
            tract=int(tract),
            patch=int(patch),
            skymap=skymap,
            detect_kwargs=detect_kwargs,
            workers=workers,
            mp_context=mp_context,
        )
        result.n_parents = len(parents)
        result.detect_seconds = task.timing.get("detect", 0.0)
        result.deblend_seconds = time.perf_counter() - t - result.detect_seconds
        _count(result, catalog)

        t = time.perf_counter()
        _write(butler, catalog, model_data, data_id, output_run, existing)
        result.write_seconds = time.perf_counter() - t
        result.status = "done"
    except Exception as exc:
        if raise_errors:
            raise
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
        if _lost_race(exc):
            result.status = "skipped"
            result.error = f"another run wrote tract {tract} patch {patch} to {output_run} first"
        _log.warning("tract %s patch %s %s: %s", tract, patch, result.status, result.error)
        _log.debug("%s", traceback.format_exc())
    result.seconds = time.perf_counter() - start
    return result


def _lost_race(exc: BaseException) -> bool:
    """Whether ``exc`` says another run stored the same outputs first."""
    from lsst.daf.butler.registry import ConflictingDefinitionError

    for _ in range(20):  # the chain of causes, bounded
        if exc is None:
            break
        if isinstance(exc, ConflictingDefinitionError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _count(result: PatchResult, catalog: Any) -> None:
    import numpy as np

    parent = np.asarray(catalog["parent"])
    is_parent = parent == 0
    failed = np.asarray(catalog["deblend_failed"]) & is_parent
    skipped = np.asarray(catalog["deblend_skipped"]) & is_parent
    n_child = np.asarray(catalog["deblend_nChild"])
    result.n_sources = int(np.sum(~is_parent))
    result.n_failed = int(failed.sum())
    result.n_skipped = int(skipped.sum())
    result.n_blends = int(np.sum(is_parent & (n_child > 0) & ~failed & ~skipped))


def _write(butler, catalog, model_data, data_id, run: str, existing: Mapping[str, Any]) -> None:
    """Replace any partial outputs and put both outputs in one transaction."""
    with butler.transaction():
        if existing:
            butler.pruneDatasets(
                list(existing.values()), disassociate=True, unstore=True, purge=True
            )
        butler.put(model_data, MODEL_DATASET, data_id, run=run)
        butler.put(catalog, CATALOG_DATASET, data_id, run=run)


# ---- many patches --------------------------------------------------------------------------


def _split_workers(n_patches: int, workers: int | None) -> tuple[int, int]:
    """(Dask workers, blend processes per patch) for ``workers`` cores in all."""
    cores = default_workers() if workers is None else int(workers)
    if cores < 1:
        raise ValueError(f"workers must be >= 1 or None (every core), got {workers}")
    n_dask = max(1, min(n_patches, cores))
    return n_dask, max(1, cores // n_dask)


def deblend_patches(
    repo: Any,
    tract: int,
    patches: Iterable[int],
    config: DeblendConfig | Mapping | str | os.PathLike | None = None,
    scheduler: Any = None,
    redo: bool = False,
    workers: int | None = None,
    *,
    skymap: str | None = None,
    bands: Sequence[str] | None = None,
    input_collections: str | Sequence[str] | None = None,
    output_run: str | None = None,
    output: str | None = None,
    detect_kwargs: Mapping[str, Any] | None = None,
    mp_context: str = "spawn",
    progress: bool = True,
    on_patch_done: Callable[[PatchResult], None] | None = None,
) -> DeblendSummary:
    """Detect, deblend and write every patch in ``patches`` of ``tract``, on Dask.

    Parameters
    ----------
    repo
        Repository path (or a Butler of it); every Dask worker opens it itself.
    tract
        Tract id.
    patches
        Sequential patch ids.
    config
        `DeblendConfig`, a mapping of its fields, or the path of a YAML/TOML file.
    scheduler
        None: a local Dask cluster (``dask.distributed.LocalCluster``, one process
        per patch in flight); ``"synchronous"``, ``"threads"`` or ``"processes"``:
        Dask's local schedulers; a ``dask.distributed.Client``; or the address of
        a Dask scheduler (``"tcp://host:8786"``).
    redo
        Deblend patches whose outputs already exist (and replace them).
    workers
        Cores to use in all (default: every core): the patches in flight share
        them, each patch spreading its blends over ``workers // patches in flight``
        processes. Ignored for the processes of a remote scheduler's workers,
        where each patch uses one process per core its Dask worker has.
    output
        The output collection, made as ``pipetask run -o`` makes it: a CHAINED
        collection of ``[output_run, *input_collections]``; a rerun puts its new run
        in front, and a patch whose outputs the chain already holds is skipped. A rerun
        that writes nothing leaves the chain as it was. Default:
        `DEFAULT_DEBLEND_RUN` (``vermilion/deblend``) when ``output_run`` is not given
        either (in a repository where that name is a RUN, from before chains, the
        outputs go into that run as they did then).
    output_run
        The run the outputs go to. With ``output``: default ``output/<timestamp>``.
        Alone: that run only, no chain (patches done in it are skipped).
    skymap, bands, input_collections, detect_kwargs, mp_context
        See `deblend_patch`.
    progress
        Show a progress bar over the patches (tqdm).
    on_patch_done
        Called in this process with each `PatchResult` as it completes (an
        exception raised there stops the run; finished patches stay written).

    Returns
    -------
    DeblendSummary
    """
    start = time.perf_counter()
    if output_run is not None:
        check_run_name(output_run)
    if output is not None:
        check_run_name(output)  # a chain's name follows the rules of run names
    input_collections = check_collection_names(input_collections)
    patch_ids = [int(p) for p in patches]
    if len(set(patch_ids)) != len(patch_ids):
        raise ValueError(f"patches repeat: {patch_ids}")
    config = DeblendConfig.coerce(config)
    root = _repo_root(repo)
    if not patch_ids:
        return DeblendSummary(seconds=time.perf_counter() - start)
    n_dask, per_patch = _split_workers(len(patch_ids), workers)
    inputs = _as_list(input_collections) or [DEFAULT_COADD_RUN]
    output, output_run, new_run = _prepare_output(
        root, output, output_run, inputs, (tract, patch_ids, skymap)
    )
    kwargs = {
        "config": config,
        "skymap": skymap,
        "bands": None if bands is None else list(bands),
        "input_collections": inputs,
        "output_run": output_run,
        "skip_existing_in": output or output_run,
        "redo": redo,
        "workers": per_patch,
        "mp_context": mp_context,
        "detect_kwargs": None if detect_kwargs is None else dict(detect_kwargs),
    }
    bar = _patch_bar(len(patch_ids), progress)
    results: list[PatchResult] = []

    def done(result: PatchResult) -> None:
        results.append(result)
        bar.update(1)
        bar.set_postfix_str(
            f"{sum(r.n_sources for r in results)} sources, "
            f"{sum(r.status == 'failed' for r in results)} failed patches"
        )
        if on_patch_done is not None:
            on_patch_done(result)

    try:
        if isinstance(scheduler, str) and scheduler.lower() in _LOCAL_SCHEDULERS:
            _run_local(
                root, tract, patch_ids, kwargs, _LOCAL_SCHEDULERS[scheduler.lower()], n_dask, done
            )
        else:
            _run_distributed(root, tract, patch_ids, kwargs, scheduler, n_dask, done)
    finally:
        bar.close()
        dropped = new_run and _drop_if_empty(root, output_run)
    order = {p: i for i, p in enumerate(patch_ids)}
    results.sort(key=lambda r: order[r.patch])
    summary = DeblendSummary.from_results(results, time.perf_counter() - start)
    summary.output, summary.output_run = output or "", "" if dropped else output_run
    return summary


def _as_list(collections: str | Sequence[str] | None) -> list[str]:
    if collections is None:
        return []
    return [collections] if isinstance(collections, str) else list(collections)


def _prepare_output(
    root: str,
    output: str | None,
    output_run: str | None,
    inputs: Sequence[str],
    where: tuple[int, Sequence[int], str | None],
) -> tuple[str | None, str, bool]:
    """Open the repository once here (a clear error early: an unknown tract or patch says
    which exist); register the run and chain.

    ``where`` is ``(tract, patch ids, skymap)``. Returns the output chain (None: a plain
    run), the run and whether the run is new to this call (then removed again if nothing
    was written into it).
    """
    from lsst.daf.butler import CollectionType

    from vermilion.repo import open_repo
    from vermilion.repo.collections import chain_output_run, collection_type

    butler = open_repo(root, writeable=True)
    tract, patch_ids, skymap = where
    tract_info = get_skymap(butler, skymap)[tract]
    for p in patch_ids:
        tract_info.patch(p)
    if output is None and output_run is not None:
        butler.collections.register(output_run, CollectionType.RUN)
        return None, output_run, False
    if output is None:
        output = DEFAULT_DEBLEND_RUN
        if collection_type(butler, output) == "RUN":  # a repository from before chains
            _log.info("%s is a RUN (made before output chains): writing into it", output)
            return None, output, False
    new_run = output_run is None or collection_type(butler, output_run) is None
    run = chain_output_run(butler, output, inputs, output_run)
    return output, run, new_run


def _drop_if_empty(root: str, run: str) -> bool:
    """Remove a run this call made and wrote nothing into (every patch done or failed)."""
    from vermilion.repo import open_repo
    from vermilion.repo.collections import remove_empty_run

    try:
        return remove_empty_run(open_repo(root, writeable=True), run)
    except Exception as exc:  # pragma: no cover - the outputs are whole either way
        _log.warning("could not remove the empty run %s: %s", run, exc)
        return False


def _patch_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="patch", desc="deblend patches", disable=not enabled)


def _key(tract: int, patch: int) -> str:
    return f"deblend_patch-{tract}-{patch}"


def _run_local(
    root: str,
    tract: int,
    patch_ids: Sequence[int],
    kwargs: dict,
    scheduler: str,
    n_dask: int,
    done: Callable[[PatchResult], None],
) -> None:
    import dask
    from dask.callbacks import Callback

    tasks = [
        dask.delayed(deblend_patch, pure=False)(
            root, tract, p, dask_key_name=_key(tract, p), **kwargs
        )
        for p in patch_ids
    ]

    class _Done(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(result, PatchResult):
                done(result)

    with _Done():
        if scheduler == "synchronous":
            dask.compute(*tasks, scheduler="synchronous")
        else:
            dask.compute(*tasks, scheduler=scheduler, num_workers=n_dask)


def _run_distributed(
    root: str,
    tract: int,
    patch_ids: Sequence[int],
    kwargs: dict,
    scheduler: Any,
    n_dask: int,
    done: Callable[[PatchResult], None],
) -> None:
    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    own_client = True
    if scheduler is None:
        # its worker processes start with SIGINT ignored: Ctrl-C stops them through us
        with dask.config.set({"distributed.worker.daemon": False}), sigint_ignored():
            cluster = LocalCluster(
                n_workers=n_dask,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # no dashboard; its HTTP routes on a free port (not 8787, maybe in use)
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            )
        client = Client(cluster)
    elif isinstance(scheduler, Client):
        client, own_client = scheduler, False
    elif isinstance(scheduler, str):
        client = Client(scheduler)
    else:
        raise ValueError(
            "scheduler must be None (a local cluster), 'synchronous', 'threads', 'processes', "
            f"a dask.distributed.Client or a scheduler address, got {scheduler!r}"
        )
    futures = []
    try:
        futures = [
            # Bind our keywords first: Dask's submit takes `workers=` (and others) for itself.
            client.submit(
                functools.partial(deblend_patch, **kwargs),
                root,
                tract,
                p,
                key=_key(tract, p),
                pure=False,
            )
            for p in patch_ids
        ]
        for future in as_completed(futures):
            done(future.result())
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
