"""Reload one stored blend, add sources, refit it (warm restart) and save the refit.

The steps of the seed document "Working with scarlet-lite models", through the
data repository:

>>> from vermilion.pipeline.restart import load_blend, add_source, warm_restart, save_blend
>>> blend, parent = load_blend("repo", tract=0, patch=0, blend_id=pid)  # doctest: +SKIP
>>> add_source(blend, (y, x))  # a missed detection, absolute (y, x)  # doctest: +SKIP
>>> blend = warm_restart(blend, max_iter=100, e_rel=1e-4, min_iter=10)  # doctest: +SKIP
>>> save_blend("repo", blend, pid, 0, 0, run="u/me/refit")  # doctest: +SKIP

`load_blend` reads the catalog, the models of that one blend
(``parameters={"blend_ids": [id]}``), the exposure cutout of the blend's box in every
band (``MultibandExposure.fromButler``) and rebuilds the blend with
`vermilion.io.multiband_data_to_blend` and the parent footprint, i.e. on the very
observation the pipeline fitted, so a fit continues where the pipeline stopped.
`BlendLoader` does the same for many blends of one patch, resolving the datasets
once. `save_blend` writes the refitted blend (with the other blends of a base model
if given) into a new run; the pipeline's outputs are never replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vermilion.io.errors import describe_ids
from vermilion.repo.butler import (
    CATALOG_DATASET,
    EXPOSURE_DATASET,
    MODEL_DATASET,
    butler_errors,
    check_repo,
    default_collections,
    default_skymap,
    get_skymap,
    repo_root,
)

from .config import CONFIG_KEY, DeblendConfig

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DatasetRef

    from vermilion.core import Blend, Source
    from vermilion.detect.catalog import SourceCatalog, SourceRecord
    from vermilion.io import ModelData
    from vermilion.repo import MultibandExposure

__all__ = [
    "BlendLoader",
    "add_source",
    "load_blend",
    "patch_blends",
    "restart_config",
    "save_blend",
    "warm_restart",
]


def _deblend_hint(repo: str = "REPO", tract: Any = "T", patch: Any = "P") -> str:
    """What to run when a patch has no deblender outputs."""
    return (
        f"run `vermilion deblend --repo {repo} --tract {tract} --patch {patch}` "
        "(vermilion.pipeline.deblend_patches) first"
    )


def _collections(collections: str | Sequence[str] | None) -> list[str]:
    if collections is None:
        return default_collections()
    if isinstance(collections, str):
        return [collections]
    return [str(c) for c in collections]


def _open(repo: Any, collections: list[str] | None, writeable: bool = False) -> Butler:
    """A butler of ``repo`` (a path, or a Butler used as it is)."""
    from vermilion.repo import open_repo

    if isinstance(repo, str | os.PathLike):
        from lsst.daf.butler import MissingCollectionError

        kwargs = {} if collections is None else {"collections": collections}
        try:
            return open_repo(repo, writeable=writeable, **kwargs)
        except MissingCollectionError as exc:
            from vermilion.repo.errors import DatasetMissingError

            raise DatasetMissingError(
                f"{exc} in {os.fspath(repo)}: nothing was deblended into it; "
                f"{_deblend_hint(os.fspath(repo))}, or give the collections that hold the outputs"
            ) from exc
    check_repo(repo)
    if writeable and not repo.isWriteable():
        raise ValueError("the butler is read-only: open the repository with writeable=True")
    return repo


class BlendLoader:
    """Rebuild blends of one patch from a repository (datasets resolved once).

    Parameters
    ----------
    repo
        Repository path, or a ``Butler``.
    tract, patch
        The patch.
    collections
        Collections to search, first match wins; default the pipeline's
        ``DEFAULT_DEBLEND_RUN`` and the coadds' ``DEFAULT_COADD_RUN``.
    skymap
        Sky map (default: the butler's, or the repository's only one).

    Examples
    --------
    >>> loader = BlendLoader("repo", 0, 0)  # doctest: +SKIP
    >>> for pid in loader.parent_ids(n_children=5):  # doctest: +SKIP
    ...     blend, parent = loader.load(pid)
    """

    def __init__(
        self,
        repo: Any,
        tract: int,
        patch: int,
        collections: str | Sequence[str] | None = None,
        skymap: str | None = None,
    ) -> None:
        self.collections = _collections(collections)
        self.butler = _open(repo, self.collections)
        self.skymap = skymap or default_skymap(self.butler)
        get_skymap(self.butler, self.skymap).patch(int(tract), int(patch))  # exists, or says so
        self.data_id = {"skymap": self.skymap, "tract": int(tract), "patch": int(patch)}
        self._catalog: SourceCatalog | None = None
        self._refs: dict[str, Any] = {}
        self._next_id: int | None = None

    def _where(self) -> str:
        return (
            f"tract {self.data_id['tract']} patch {self.data_id['patch']} "
            f"(collections {self.collections})"
        )

    def _ref(self, dataset_type: str, **extra: Any) -> Any:
        """The dataset's resolved reference (looked up once), or a clear error."""
        from vermilion.repo.errors import DatasetMissingError

        key = dataset_type + "".join(f"/{v}" for v in extra.values())
        ref = self._refs.get(key)
        if ref is None:
            from lsst.daf.butler import MissingCollectionError

            data_id = {**self.data_id, **extra}
            missing = ""
            try:
                ref = self.butler.find_dataset(dataset_type, data_id, collections=self.collections)
            except MissingCollectionError as exc:  # e.g. the deblender's run, before any deblend
                missing = f" ({exc})"
            if ref is None:
                what = ", ".join(f"{k}={v!r}" for k, v in extra.items())
                hint = ""
                if not extra:
                    where = (repo_root(self.butler), self.data_id["tract"], self.data_id["patch"])
                    hint = f": was it deblended? {_deblend_hint(*where)}"
                raise DatasetMissingError(
                    f"No {dataset_type}{' (' + what + ')' if what else ''} for "
                    f"{self._where()}{missing}{hint}"
                )
            self._refs[key] = ref
        return ref

    @property
    def catalog(self) -> SourceCatalog:
        """The deblended catalog of the patch (read once)."""
        if self._catalog is None:
            self._catalog = self.butler.get(self._ref(CATALOG_DATASET))
        return self._catalog

    def parent_ids(self, n_children: int | None = None) -> list[int]:
        """Ids of the deblended parents (with exactly ``n_children`` children if given)."""
        cat = self.catalog
        n_child = np.asarray(cat["deblend_nChild"])
        keep = (np.asarray(cat["parent"]) == 0) & (n_child > 0)
        for flag in ("deblend_skipped", "deblend_failed"):
            if flag in cat.colnames:
                keep &= ~np.asarray(cat[flag], bool)
        if n_children is not None:
            keep &= n_child == int(n_children)
        return [int(i) for i in np.asarray(cat["id"])[keep]]

    def parent(self, blend_id: int) -> SourceRecord:
        """The parent record of ``blend_id``; a clear error when it is not a deblended parent."""
        bid = int(blend_id)
        record = self.catalog.find(bid)
        if record is None:
            raise ValueError(
                f"blend {bid}: no record with this id in the catalog of {self._where()} "
                f"(deblended parents: {describe_ids(self.parent_ids(), 'parent')})"
            )
        if record.parent != 0:
            raise ValueError(
                f"blend {bid}: this record is a child of parent {record.parent}; "
                "give the parent's id"
            )
        return record

    def model_data(self, blend_id: int) -> ModelData:
        """The stored models of one blend (only that blend is read)."""
        bid = int(blend_id)
        try:
            return self.butler.get(self._ref(MODEL_DATASET), parameters={"blend_ids": [bid]})
        except Exception as exc:
            record = self.catalog.find(bid) if self._catalog is not None else None
            reason = ""
            if record is not None and "deblend_failReason" in record.colnames:
                reason = str(record["deblend_failReason"] or "")
            if record is not None and (reason or int(record["deblend_nChild"]) == 0):
                raise ValueError(
                    f"blend {bid}: the pipeline stored no models for this parent "
                    f"({reason or 'no children'})"
                ) from exc
            if "no blend" in str(exc):
                raise ValueError(
                    f"blend {bid}: not in the model data of {self._where()} "
                    f"({describe_ids(self.parent_ids(), 'parent')})"
                ) from exc
            raise

    def exposure(self, bbox: Any, bands: Sequence[str]) -> MultibandExposure:
        """The cutout of ``bbox`` in every band (one resolved get per band)."""
        from vermilion.repo import MultibandExposure

        exposures = []
        for band in bands:
            ref = self._ref(EXPOSURE_DATASET, band=band)
            with butler_errors(
                self.butler, EXPOSURE_DATASET, {**self.data_id, "band": band}, self.collections
            ):
                exposures.append(self.butler.get(ref, parameters={"bbox": bbox}))
        return MultibandExposure.from_exposures(list(bands), exposures)

    def psfs(self, bands: Sequence[str]) -> list:
        """The PSF model of every band (``deepCoadd_calexp.psf``)."""
        out = []
        for band in bands:
            ref = self._ref(EXPOSURE_DATASET, band=band)
            out.append(self.butler.get(ref.makeComponentRef("psf")))
        return out

    def load(self, blend_id: int, with_exposure: bool = True) -> tuple[Blend, SourceRecord]:
        """Rebuild one blend: ``(blend, parent_record)``.

        With ``with_exposure`` the blend has the observation the pipeline fitted
        (exposure cutout, parent footprint, stored mask planes and weights), ready
        to re-apportion flux and to refit; without it, a render-only blend in the
        observed PSFs (`vermilion.core.NoDataObservation`).
        """
        from vermilion.io import multiband_data_to_blend

        parent = self.parent(blend_id)
        model = self.model_data(parent.id)
        data = model.blends[parent.id]
        bands = list(model.bands or data.bands or ())
        if with_exposure:
            mexp = self.exposure(data.bbox, bands)
            blend = multiband_data_to_blend(
                model, parent.id, mexposure=mexp, footprint=parent.getFootprint()
            )
        else:
            blend = multiband_data_to_blend(model, parent.id, observed_psfs=self.psfs(bands))
        blend.metadata["model_data"] = model
        next_id = self.next_source_id()
        if next_id is not None:
            blend.metadata["next_source_id"] = next_id
        return blend, parent

    def next_source_id(self) -> int | None:
        """The first id after the catalog's (None when its ids are not vermilion ids)."""
        if self._next_id is None:
            try:
                self._next_id = int(self.catalog.next_id())
            except ValueError:
                self._next_id = 0
        return self._next_id or None


def load_blend(
    repo: Any,
    tract: int,
    patch: int,
    blend_id: int,
    collections: str | Sequence[str] | None = None,
    with_exposure: bool = True,
    skymap: str | None = None,
) -> tuple[Blend, SourceRecord]:
    """Rebuild one stored blend from a repository, as the seed document does it.

    Reads ``deepCoadd_deblendedCatalog`` (for the parent record and footprint), the
    models of this blend only (``deepCoadd_scarletModelData`` with
    ``parameters={"blend_ids": [blend_id]}``), and, with ``with_exposure``, the
    cutout of the blend's box in every band (``deepCoadd_calexp`` with
    ``parameters={"bbox": box}``); then `vermilion.io.multiband_data_to_blend` with
    the parent footprint.

    Parameters
    ----------
    repo
        Repository path, or a ``Butler``.
    tract, patch
        The patch.
    blend_id
        The parent's id.
    collections
        Default: the pipeline's ``DEFAULT_DEBLEND_RUN`` then ``DEFAULT_COADD_RUN``.
    with_exposure
        Rebuild on the exposure (fit, re-apportion, show the data) or, when False,
        render-only in the observed PSFs (``deepCoadd_calexp.psf``).
    skymap
        Sky map (default: the repository's).

    Returns
    -------
    blend : vermilion.core.Blend
        ``blend.metadata["model_data"]`` holds the one-blend `ModelData` read, and
        ``blend.metadata["next_source_id"]`` the first unused id of the catalog
        (`save_blend` numbers added sources from it).
    parent : vermilion.detect.SourceRecord
        The parent record (``parent.getFootprint()`` is the parent footprint).

    Raises
    ------
    ValueError
        Naming the blend: not in the catalog, a child's id, no models stored for it
        (skipped or failed: the reason is given).
    vermilion.repo.DatasetMissingError
        A dataset is not in the collections searched.
    """
    loader = BlendLoader(repo, tract, patch, collections=collections, skymap=skymap)
    return loader.load(blend_id, with_exposure=with_exposure)


# ---- refitting ----------------------------------------------------------------------------


def restart_config(model_data: Any = None) -> DeblendConfig:
    """The deblender configuration stored with ``model_data`` (the defaults without one)."""
    meta = getattr(model_data, "metadata", None) or {}
    stored = meta.get(CONFIG_KEY) if isinstance(meta, Mapping) else None
    if isinstance(stored, Mapping):
        return DeblendConfig.from_dict(dict(stored))
    return DeblendConfig()


def add_source(
    blend: Blend,
    center: tuple[int, int],
    metadata: Mapping[str, Any] | None = None,
    config: DeblendConfig | Mapping | None = None,
    *,
    min_separation: float = 2.0,
) -> Source:
    """Initialize a source at ``center`` and append it to ``blend.sources``.

    As the seed: ``init_main_source(center, Chi2InitParameters(blend.observation,
    None))``, with the configuration's ``minSNR``, ``morphThresh``, ``sourceModel``
    and ``backgroundThresh`` (the pipeline's defaults without one).

    Parameters
    ----------
    blend
        A blend rebuilt on its exposure (a render-only blend cannot be initialized).
    center
        ``(y, x)`` of the new peak, absolute pixel coordinates inside the blend box.
    metadata
        Source metadata (e.g. ``{"peak_id": ...}``); `save_blend` gives the source a
        new catalog id when it has none.
    config
        A `DeblendConfig` (or mapping of its fields).
    min_separation
        Refuse a new peak closer than this many pixels to an existing source's peak
        (it would duplicate that source); 0 adds it wherever it is.

    Returns
    -------
    vermilion.core.Source
        The new source (not yet parameterized: `warm_restart` does that).

    Raises
    ------
    ValueError
        A render-only blend, a peak outside the blend box, or one within
        ``min_separation`` of an existing peak (the message names that source).
    """
    from vermilion.core import Chi2InitParameters, init_main_source

    config = DeblendConfig.coerce(config)
    obs = blend.observation
    if not getattr(obs, "has_data", True):
        raise ValueError(
            "cannot add a source to a render-only blend: rebuild it with the exposure "
            "(load_blend(..., with_exposure=True))"
        )
    cy, cx = (round(float(c)) for c in center)
    if not obs.bbox.contains((cy, cx)):
        raise ValueError(f"the new peak (y, x)=({cy}, {cx}) lies outside the blend box {obs.bbox}")
    blend.check_new_peak((cy, cx), min_separation)
    init = Chi2InitParameters(obs, None, **config.init_options())
    source = init_main_source((cy, cx), init)
    source.metadata.update(dict(metadata or {}))
    blend.sources.append(source)
    return source


def warm_restart(
    blend: Blend,
    config: DeblendConfig | Mapping | None = None,
    max_iter: int = 100,
    e_rel: float = 1e-4,
    min_iter: int = 10,
    resize: int | None = None,
    reapportion: bool = True,
) -> Blend:
    """Parameterize every source as the pipeline does and continue the fit.

    The seed's steps: ``parameterize_sources(blend.sources, blend.observation,
    partial(init_adaprox_component, bg_thresh=config.backgroundThresh,
    max_prox_iter=config.maxProxIter))``, ``Blend(sources, blend.observation)``,
    ``fit(max_iter, e_rel=e_rel, min_iter=min_iter)`` and ``weight_sources``. Faint and
    compact sources prune their tendrils again, as when they were first fitted
    (`vermilion.core.restore_tendril_pruning`).

    Parameters
    ----------
    blend
        A blend rebuilt on its exposure (sources may have been added).
    config
        `DeblendConfig` (or mapping); default the pipeline's defaults.
    max_iter, e_rel, min_iter
        As `vermilion.core.Blend.fit`; ``max_iter=0`` keeps the stored models.
    resize
        Resize component boxes every this many iterations; default the config's
        ``resizeFrequency``.
    reapportion
        Re-apportion the observed flux afterwards (`weight_sources`).

    Returns
    -------
    vermilion.core.Blend
        A new blend on the same observation (metadata kept).
    """
    from vermilion.core import (
        Blend,
        parameterize_sources,
        restore_tendril_pruning,
        weight_sources,
    )

    config = DeblendConfig.coerce(config)
    if not getattr(blend.observation, "has_data", True):
        raise ValueError(
            "cannot refit a render-only blend: rebuild it with the exposure "
            "(load_blend(..., with_exposure=True))"
        )
    # stored models do not keep which sources prune their tendrils: the init's rule again
    restore_tendril_pruning(blend.sources, blend.observation, min_snr=config.init_min_snr)
    sources = parameterize_sources(blend.sources, blend.observation, config.parameterization())
    background = getattr(blend, "background", None)
    if background is not None:  # a fitted sky (background="fit") goes on with the sources
        background = config.parameterization()(background, blend.observation) or background
    out = Blend(sources, blend.observation, metadata=blend.metadata, background=background)
    if resize is None:
        resize = config.resizeFrequency or None
    if max_iter > 0:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out.fit(max_iter, e_rel=e_rel, min_iter=min_iter, resize=resize)
    if reapportion:
        weight_sources(out)
    return out


# ---- saving ------------------------------------------------------------------------------


def _new_ids(
    blend: Blend, tract: int, patch: int, base: ModelData | None, catalog: SourceCatalog | None
) -> None:
    """Give catalog ids to the sources that have none (added sources), after every known id."""
    from vermilion.detect.ids import make_source_id, unpack_source_id

    missing = [s for s in blend.sources if s.metadata.get("id") is None]
    if not missing:
        return
    next_id = blend.metadata.get("next_source_id")
    if catalog is None and base is None and next_id is None:
        raise ValueError(
            f"{len(missing)} added source(s) need new catalog ids: pass catalog= (the "
            "patch's deblended catalog) or base_model_data= (its whole model data)"
        )
    used = {int(s.metadata["id"]) for s in blend.sources if s.metadata.get("id") is not None}
    if next_id is not None:
        used.add(int(next_id) - 1)
    if base is not None:
        used.update(int(b) for b in base.blends)
        for data in base.blends.values():
            used.update(int(i) for i in data.sources)
        used.update(int(i) for i in base.isolated)
    if catalog is not None and len(catalog):
        used.update(int(i) for i in np.asarray(catalog["id"]))
    seq = 0
    if used:
        t, p, s = unpack_source_id(np.fromiter(used, np.int64, len(used)))
        mine = (np.asarray(t) == tract) & (np.asarray(p) == patch)
        if np.any(mine):
            seq = int(np.max(np.asarray(s)[mine]))
    for source in missing:
        seq += 1
        source.metadata["id"] = int(make_source_id(tract, patch, seq))


def save_blend(
    butler_or_path: Any,
    blend: Blend,
    blend_id: int,
    tract: int,
    patch: int,
    run: str,
    base_model_data: ModelData | None = None,
    *,
    skymap: str | None = None,
    catalog: SourceCatalog | None = None,
    overwrite: bool = False,
) -> DatasetRef:
    """Write a refitted blend into a new run as ``deepCoadd_scarletModelData``.

    Parameters
    ----------
    butler_or_path
        Repository path, or a writeable ``Butler``.
    blend
        The refitted blend (`warm_restart`).
    blend_id
        Its parent id.
    tract, patch
        The patch.
    run
        The output run (created when missing). It must not hold this patch's
        models already (the pipeline's run never does get replaced), unless
        ``overwrite``.
    base_model_data
        The models of the patch the refit started from (e.g. the whole model data
        of the pipeline's run): its other blends and isolated sources are written
        unchanged beside the refitted blend, with its metadata. Without it the new
        model data holds this blend only.
    skymap
        Sky map (default: the repository's).
    catalog
        The patch's catalog: sources added to the blend (no ``metadata["id"]``) get
        ids after its largest (and after every id of ``base_model_data`` and
        ``blend.metadata["next_source_id"]``, set by `load_blend`). Added sources
        with none of these to go by are an error (their ids could collide).
    overwrite
        Replace this patch's models in ``run`` if they exist.

    Returns
    -------
    lsst.daf.butler.DatasetRef
        Read it back with ``collections=[run, ...]``.
    """
    from lsst.daf.butler import CollectionType

    from vermilion.io import ModelData, blend_to_data

    bid = int(blend_id)
    butler = _open(butler_or_path, None, writeable=True)
    skymap = skymap or default_skymap(butler)
    data_id = {"skymap": skymap, "tract": int(tract), "patch": int(patch)}
    base = base_model_data
    if base is not None and not isinstance(base, ModelData):
        base = base.read()  # a lazy reader
    _new_ids(blend, int(tract), int(patch), base, catalog)
    obs = blend.observation
    data = blend_to_data(blend)
    old = base.blends.get(bid) if base is not None else None
    if old is not None:
        data.footprint = old.footprint
        if old.psf_center is not None and getattr(blend.observation, "psf_center", None) is None:
            data.psf_center = old.psf_center
    if blend.loss:
        log_l = float(blend.loss[-1])
    else:
        log_l = float(blend.log_likelihood) if getattr(obs, "has_data", True) else float("nan")
    data.metadata = {
        **((old.metadata or {}) if old is not None else {}),
        **(data.metadata or {}),  # the fitted sky's levels, from the blend
        "iterations": int(blend.it),
        "logL": log_l,
        "converged": bool(getattr(blend, "converged", False)),
        "refit": True,
    }
    if base is not None:
        model = ModelData(
            base.bands,
            base.psf,
            dict(base.blends),
            observed_psf=base.observed_psf,
            isolated=dict(base.isolated),
            metadata=dict(base.metadata),
        )
    else:
        model = ModelData(obs.bands, obs.model_psf)
    refits = list(model.metadata.get("refit_blends", []))
    if bid not in refits:
        refits.append(bid)
    model.metadata["refit_blends"] = refits
    data.bands = tuple(obs.bands)
    model.blends[bid] = data
    model.validate()
    butler.collections.register(run, CollectionType.RUN)
    existing = butler.find_dataset(MODEL_DATASET, data_id, collections=run)
    if existing is not None and not overwrite:
        raise ValueError(
            f"run {run!r} already holds {MODEL_DATASET} for tract {tract} patch {patch}: "
            "save a refit into a new run (or pass overwrite=True to replace it)"
        )
    with butler.transaction():
        if existing is not None:
            butler.pruneDatasets([existing], disassociate=True, unstore=True, purge=True)
        return butler.put(model, MODEL_DATASET, data_id, run=run)


#: Catalog flags a patch report shows for a blend.
REPORT_FLAGS = (
    "deblend_failed",
    "deblend_skipped",
    "deblend_tooManyPeaks",
    "deblend_parentTooBig",
    "deblend_masked",
)


def _models_skipping_damaged(butler: Any, tract: int, patch: int) -> Any:
    """The patch's models; when some blends are damaged, the others (``.errors``: the damaged)."""
    from vermilion.io import ModelData

    try:
        return butler.get(MODEL_DATASET, tract=tract, patch=patch)
    except Exception as first:
        ref = butler.find_dataset(MODEL_DATASET, tract=tract, patch=patch)
        if ref is None:
            raise
        try:
            with butler.getURI(ref).as_local() as local:
                model = ModelData.read(local.ospath, on_error="skip")
        except Exception:
            raise first from None
        if not model.errors:
            raise
        return model


def patch_blends(
    repo: Any,
    tract: int,
    patch: int,
    collections: str | Sequence[str] | None = None,
    max_blends: int | None = None,
) -> Iterator[tuple[int, Blend, dict[str, Any]]]:
    """Every stored blend of one patch, rebuilt on the patch's exposure as the pipeline fitted it.

    Parameters
    ----------
    repo
        Repository path or ``Butler``.
    tract, patch
        The patch.
    collections
        Where to look (default: `default_collections`).
    max_blends
        Only the first this many blends.

    Returns
    -------
    iterator of (int, Blend, dict)
        ``(parent id, blend, info)`` with ``info`` holding ``n_children``, the set
        ``flags`` of `REPORT_FLAGS` and ``sources``: per child id, its catalog columns
        (``{name: value}``, the footprint left out), as `vermilion.display.write_report`
        takes them (each source row of the report shows its id, fluxes and flags).
        A blend whose stored models cannot be read is given as its `ModelDataError`
        (the report shows it as unreadable).
    """
    from vermilion.io import ModelDataError, multiband_data_to_blend
    from vermilion.repo import MultibandExposure

    loader = BlendLoader(repo, tract, patch, collections)
    butler = loader.butler
    catalog = loader.catalog
    reader = _models_skipping_damaged(butler, tract, patch)
    mexposure = MultibandExposure.from_butler(
        butler, reader.bands, EXPOSURE_DATASET, tract=tract, patch=patch
    )
    ids = sorted(int(i) for i in [*reader.blends, *reader.errors])
    if max_blends is not None:
        ids = ids[:max_blends]
    for blend_id in ids:
        record = catalog.find(blend_id)
        try:
            blend = reader.errors.get(blend_id) or multiband_data_to_blend(
                reader, blend_id, mexposure=mexposure, footprint=record.getFootprint()
            )
        except ModelDataError as exc:  # one damaged blend: shown as unreadable, others go on
            blend = exc
        flags = [name for name in REPORT_FLAGS if name in record.colnames and bool(record[name])]
        children = catalog.children(blend_id)
        columns = [c for c in children.colnames if c != "footprint"]
        sources = {int(child["id"]): {c: child[c] for c in columns} for child in children}
        info = {"n_children": int(record["deblend_nChild"]), "flags": flags, "sources": sources}
        yield blend_id, blend, info
