"""Create, open and describe vermilion data repositories (Rubin data butler).

``lsst.daf.butler`` is imported inside the functions that need it: importing it
costs about two seconds. Names and lookups shared with the pipeline (dataset
types, runs, `check_repo`, `get_exposures`) live in `vermilion.repo.butler`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .butler import (
    CATALOG_DATASET,
    EXPOSURE_DATASET,
    MODEL_DATASET,
    REPO_VERSION,
    SKYMAP_DATASET,
    SKYMAP_RUN,
    TRUTH_DATASET,
    check_repo,
    get_skymap,
    repo_bands,
    vermilion_version,
)
from .errors import RepoError
from .names import check_collection_names, check_run_name
from .skymap import SkyMap

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

__all__ = [
    "DATASET_TYPES",
    "create_repo",
    "describe_repo",
    "open_repo",
    "register_skymap",
    "repo_config",
]

_EXPOSURE_SC = "VermilionExposure"
_PATCH = ("skymap", "tract", "patch")

DATASET_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    EXPOSURE_DATASET: ((*_PATCH, "band"), _EXPOSURE_SC),
    CATALOG_DATASET: (_PATCH, "VermilionCatalog"),
    MODEL_DATASET: (_PATCH, "VermilionModelData"),
    TRUTH_DATASET: (_PATCH, "VermilionTable"),
    SKYMAP_DATASET: (("skymap",), "VermilionSkyMap"),
}
"""Dataset type name -> (dimensions, storage class) registered in every repository."""

_FORMATTERS = "vermilion.repo.formatters"


def repo_config() -> dict[str, Any]:
    """The configuration vermilion adds to a butler repository (storage classes, formatters)."""
    storage_classes = {
        _EXPOSURE_SC: {
            "pytype": "vermilion.repo.exposure.Exposure",
            "parameters": ["bbox"],
            "delegate": f"{_FORMATTERS}.ExposureDelegate",
            "components": {
                "image": "NumpyArray",
                "mask": "NumpyArray",
                "variance": "NumpyArray",
                "psf": "VermilionImagePsf",
                "wcs": "VermilionWcs",
                "bbox": "VermilionBox",
            },
        },
        "VermilionImagePsf": {"pytype": "vermilion.repo.exposure.ImagePsf"},
        "VermilionWcs": {"pytype": "astropy.wcs.WCS"},
        "VermilionBox": {"pytype": "vermilion.core.bbox.Box"},
        "VermilionCatalog": {"pytype": "vermilion.detect.catalog.SourceCatalog"},
        "VermilionModelData": {
            "pytype": "vermilion.io.data.ModelData",
            "parameters": ["blend_ids", "blend_id"],
        },
        "VermilionTable": {"pytype": "astropy.table.Table"},
        "VermilionSkyMap": {"pytype": "vermilion.repo.skymap.SkyMap"},
    }
    formatters = {
        _EXPOSURE_SC: f"{_FORMATTERS}.ExposureFormatter",
        "VermilionCatalog": f"{_FORMATTERS}.CatalogFormatter",
        "VermilionModelData": f"{_FORMATTERS}.ModelDataFormatter",
        "VermilionTable": f"{_FORMATTERS}.TableFormatter",
        "VermilionSkyMap": f"{_FORMATTERS}.SkyMapFormatter",
    }
    return {
        "storageClasses": storage_classes,
        "datastore": {
            "formatters": formatters,
            # exposures are one FITS file each, never split into component files
            "composites": {"disassembled": {_EXPOSURE_SC: False}},
        },
        "vermilion": {"repo_version": REPO_VERSION, "created_by": vermilion_version()},
    }


def _split_bands(bands: str | Iterable[str]) -> list[str]:
    if isinstance(bands, str):
        if "," in bands or " " in bands.strip():
            out = [b for b in bands.replace(",", " ").split() if b]
        else:
            out = list(bands)
    else:
        out = [str(b) for b in bands]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"Bands must be non-empty and distinct, got {out}")
    return out


def create_repo(
    path: str | os.PathLike,
    skymap: str = "vermilion",
    bands: str | Iterable[str] = "ugrizy",
    tracts: int | Iterable[int] | Mapping[int, Sequence[float]] = 1,
    patches: Sequence[int] = (10, 10),
    patch_shape: Sequence[int] = (4000, 4000),
    pixel_scale: float = 0.2,
    *,
    patch_border: int = 0,
    center: Sequence[float] = (0.0, 0.0),
    instrument: str = "vermilion",
    registry_db: str | None = None,
    namespace: str | None = None,
    exist_ok: bool = False,
) -> Butler:
    """Create a data repository with our storage classes, dimension records and dataset types.

    Parameters
    ----------
    path
        Root directory of the repository (created).
    skymap
        Name of the sky map (the ``skymap`` dimension value users pass to ``Butler``).
    bands
        Band names: ``"ugrizy"`` (one letter each), ``"g,r,i"`` or a list.
    tracts
        Number of tracts, a list of tract ids, or a mapping id -> (ra, dec) centre.
    patches
        ``(nx, ny)`` patches per tract.
    patch_shape
        ``(h, w)`` pixels per patch.
    pixel_scale
        Arcseconds per pixel.
    patch_border
        Overlap border of each patch's outer box, in pixels.
    center
        ``(ra, dec)`` of the first tract when tracts are not given centres.
    instrument
        Name of the ``instrument`` record whose ``physical_filter`` records imply the bands.
    registry_db
        SQLAlchemy URL of the registry database, e.g.
        ``postgresql+psycopg2://user@host:5432/db`` (default: SQLite in ``path``).
    namespace
        Database schema for a PostgreSQL registry.
    exist_ok
        Add the sky map and bands to an existing vermilion repository instead of failing.

    Returns
    -------
    lsst.daf.butler.Butler
        A writeable butler of the new repository, with ``skymap`` as its default.
    """
    from lsst.daf.butler import Butler, Config

    root = os.fspath(path)
    band_list = _split_bands(bands)
    sky = SkyMap.build(skymap, tracts, patches, patch_shape, pixel_scale, patch_border, center)
    exists = os.path.exists(os.path.join(root, "butler.yaml"))
    if exists and not exist_ok:
        raise RepoError(f"{root} is already a data repository (pass exist_ok=True to add to it)")
    if not exists:
        if registry_db is None and os.path.isdir(root) and os.listdir(root):
            raise RepoError(f"{root} exists and is not empty; choose a new directory")
        cfg = repo_config()
        if registry_db is not None:
            cfg["registry"] = {"db": registry_db}
            if namespace is not None:
                cfg["registry"]["namespace"] = namespace
        Butler.makeRepo(root, config=Config(cfg))
    butler = open_repo(root, writeable=True)
    register_skymap(butler, sky, band_list, instrument)
    return butler.clone(dataId={"skymap": sky.name})


def register_skymap(
    butler: Butler,
    skymap: SkyMap,
    bands: str | Iterable[str] = "ugrizy",
    instrument: str = "vermilion",
) -> None:
    """Insert the dimension records, dataset types and ``skyMap`` dataset of a sky map.

    Idempotent: repeating it with the same sky map changes nothing (concurrent
    workers may all call it). A different sky map under an existing name fails.
    """
    from lsst.daf.butler import CollectionType, DatasetType
    from lsst.daf.butler.registry import ConflictingDefinitionError

    check_repo(butler)
    reg = butler.registry
    band_list = _split_bands(bands)
    try:
        reg.syncDimensionData("instrument", {"name": instrument, "class_name": "vermilion"})
        for band in band_list:
            reg.syncDimensionData(
                "physical_filter", {"instrument": instrument, "name": band, "band": band}
            )
        nx, ny = skymap.patches
        reg.syncDimensionData(
            "skymap",
            {
                "name": skymap.name,
                "hash": skymap.sha1,
                "tract_max": max(skymap.tract_ids) + 1,
                "patch_nx_max": nx,
                "patch_ny_max": ny,
            },
        )
    except ConflictingDefinitionError as exc:
        raise RepoError(
            f"The repository already has a different definition of skymap {skymap.name!r}, "
            f"instrument {instrument!r} or one of the bands {band_list}: {exc}"
        ) from exc
    tract_rows, patch_rows = [], []
    for tract in skymap:
        tract_rows.append({"skymap": skymap.name, "id": tract.id, "region": tract.region()})
        for p in tract.patches:
            patch_rows.append(
                {
                    "skymap": skymap.name,
                    "tract": tract.id,
                    "id": p.id,
                    "cell_x": p.index[0],
                    "cell_y": p.index[1],
                    "region": p.region(),
                }
            )
    reg.insertDimensionData("tract", *tract_rows, skip_existing=True)
    reg.insertDimensionData("patch", *patch_rows, skip_existing=True)
    for name, (dims, sc) in DATASET_TYPES.items():
        dt = DatasetType(name, dims, sc, universe=butler.dimensions)
        try:
            reg.registerDatasetType(dt)
        except ConflictingDefinitionError as exc:
            raise RepoError(
                f"Dataset type {name!r} exists in the repository with another definition "
                f"(not {dims} / {sc}): {exc}"
            ) from exc
    butler.collections.register(SKYMAP_RUN, CollectionType.RUN)
    existing = butler.find_dataset(SKYMAP_DATASET, {"skymap": skymap.name}, collections=SKYMAP_RUN)
    if existing is None:
        try:
            butler.put(skymap, SKYMAP_DATASET, {"skymap": skymap.name}, run=SKYMAP_RUN)
        except ConflictingDefinitionError:
            pass  # another worker stored it first


def open_repo(path: str | os.PathLike, *, writeable: bool = False, **kwargs: Any) -> Butler:
    """Open a repository as a ``Butler`` and check that this vermilion can use it.

    Extra keyword arguments go to ``Butler`` (``collections``, ``run``, ``skymap=...``).

    Raises
    ------
    RepoVersionError
        The repository was created by another version of vermilion, or not by vermilion.
    """
    from lsst.daf.butler import Butler

    if kwargs.get("run") is not None:
        check_run_name(kwargs["run"])
    check_collection_names(kwargs.get("collections"))
    root = os.fspath(path)
    if "://" not in root:
        if not os.path.exists(root):
            raise RepoError(f"No data repository at {root}")
        if not os.path.isdir(root) and not root.endswith((".yaml", ".json")):
            raise RepoError(f"{root} is a file, not a data repository folder")
        if os.path.isdir(root) and not os.path.exists(os.path.join(root, "butler.yaml")):
            raise RepoError(f"{root} is not a data repository (it has no butler.yaml)")
    butler = Butler.from_config(root, writeable=writeable, **kwargs)
    check_repo(butler, where=root)
    return butler


def describe_repo(butler: Butler) -> dict[str, Any]:
    """A summary: version, sky maps (with their geometry), bands, runs and dataset counts.

    ``"skymap_geometry"`` gives, per sky map: its tracts (id -> centre ``[ra, dec]``
    in degrees), ``patches`` (nx, ny per tract), ``patch_shape`` (h, w pixels),
    ``pixel_scale`` (arcsec per pixel) and ``patch_border`` (pixels).
    """
    version = check_repo(butler)
    counts = {}
    runs = sorted(butler.collections.query("*"))
    for name in DATASET_TYPES:
        refs = butler.query_datasets(name, collections=runs or "*", find_first=False, explain=False)
        counts[name] = len(refs)
    names = sorted(str(r.name) for r in butler.registry.queryDimensionRecords("skymap"))
    geometry = {}
    for name in names:
        try:
            sky = get_skymap(butler, name)
        except RepoError:  # a sky map registered by another tool
            continue
        geometry[name] = {
            "tracts": {str(t.id): list(t.center) for t in sky},
            "patches": list(sky.patches),
            "patch_shape": list(sky.patch_shape),
            "pixel_scale": sky.pixel_scale,
            "patch_border": sky.patch_border,
        }
    return {
        "repo_version": version,
        "skymaps": names,
        "skymap_geometry": geometry,
        "bands": repo_bands(butler),
        "runs": runs,
        "datasets": counts,
    }
