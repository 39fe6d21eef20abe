"""Create, open and check vermilion data repositories (Rubin data butler).

``lsst.daf.butler`` is imported inside the functions that need it: importing it
costs about two seconds.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptFileError,
    DataIdError,
    DatasetMissingError,
    RepoError,
    RepoVersionError,
)
from .skymap import SkyMap

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

    from .exposure import Exposure

__all__ = [
    "DATASET_TYPES",
    "DEFAULT_COADD_RUN",
    "REPO_VERSION",
    "SKYMAP_RUN",
    "check_repo",
    "create_repo",
    "default_skymap",
    "describe_repo",
    "get_exposures",
    "get_skymap",
    "open_repo",
    "register_skymap",
    "repo_bands",
    "repo_config",
    "repo_root",
]

REPO_VERSION = 1
"""Version of the repository configuration written by `create_repo`.

Recorded in the repository's ``butler.yaml`` (section ``vermilion``); bump it
whenever a storage class, formatter path or dataset type definition changes.
"""

SKYMAP_RUN = "skymaps"
"""Run holding the ``skyMap`` datasets (the Rubin convention)."""

DEFAULT_COADD_RUN = "vermilion/coadd"
"""Default run for ingested coadds and truth catalogs."""

_EXPOSURE_SC = "VermilionExposure"
_PATCH = ("skymap", "tract", "patch")

DATASET_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "deepCoadd_calexp": ((*_PATCH, "band"), _EXPOSURE_SC),
    "deepCoadd_deblendedCatalog": (_PATCH, "VermilionCatalog"),
    "deepCoadd_scarletModelData": (_PATCH, "VermilionModelData"),
    "truth_catalog": (_PATCH, "VermilionTable"),
    "skyMap": (("skymap",), "VermilionSkyMap"),
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
        "vermilion": {"repo_version": REPO_VERSION, "created_by": _vermilion_version()},
    }


def _vermilion_version() -> str:
    try:
        from importlib.metadata import version

        return version("vermilion")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


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
    existing = butler.find_dataset("skyMap", {"skymap": skymap.name}, collections=SKYMAP_RUN)
    if existing is None:
        try:
            butler.put(skymap, "skyMap", {"skymap": skymap.name}, run=SKYMAP_RUN)
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

    root = os.fspath(path)
    if "://" not in root and not os.path.exists(root):
        raise RepoError(f"No data repository at {root}")
    butler = Butler.from_config(root, writeable=writeable, **kwargs)
    check_repo(butler, where=root)
    return butler


def check_repo(butler: Butler, where: str | None = None) -> int:
    """Check the repository's recorded vermilion configuration version; return it."""
    config = getattr(butler, "_config", None)
    section = None
    if config is not None:
        try:
            section = config.get("vermilion")
        except Exception:
            section = None
    where = where or repo_root(butler)
    if section is None:
        raise RepoVersionError(
            f"{where} was not created by vermilion (its butler.yaml has no 'vermilion' "
            "section); create a repository with vermilion.repo.create_repo"
        )
    version = section.get("repo_version")
    if version != REPO_VERSION:
        hint = (
            "upgrade vermilion to use it"
            if isinstance(version, int) and version > REPO_VERSION
            else "it needs migrating to this version"
        )
        raise RepoVersionError(
            f"{where} is a vermilion repository of configuration version {version!r} "
            f"(created by vermilion {section.get('created_by', '?')}); this vermilion "
            f"({_vermilion_version()}) uses version {REPO_VERSION}: {hint}"
        )
    return version


def repo_root(butler: Butler) -> str:
    """Where the butler's repository lives: a local path, or a URI for a remote one."""
    config = getattr(butler, "_config", None)
    root = getattr(config, "configDir", None)
    if root is None:
        return str(butler)
    if getattr(root, "scheme", "") == "file":
        return root.ospath.rstrip("/") or "/"
    return str(root)


def repo_bands(butler: Butler) -> list[str]:
    """Band names known to the repository."""
    return sorted(str(r.name) for r in butler.registry.queryDimensionRecords("band"))


def get_skymap(butler: Butler, skymap: str | None = None) -> SkyMap:
    """The `SkyMap` stored in the repository (the butler's default, or the only one)."""
    from lsst.daf.butler import DatasetNotFoundError

    name = skymap or default_skymap(butler)
    try:
        return butler.get("skyMap", skymap=name, collections=SKYMAP_RUN)
    except (DatasetNotFoundError, LookupError) as exc:
        raise DataIdError(f"Skymap {name!r} is not in the repository {repo_root(butler)}") from exc


def default_skymap(butler: Butler) -> str:
    """The butler's default skymap, or the repository's only one."""
    name = butler.registry.defaults.dataId.get("skymap")
    if name:
        return str(name)
    names = sorted(str(r.name) for r in butler.registry.queryDimensionRecords("skymap"))
    if len(names) == 1:
        return names[0]
    raise DataIdError(
        f"The repository has skymaps {names}; say which one (skymap=...)"
        if names
        else "The repository has no skymap; create it with vermilion.repo.create_repo"
    )


def _describe_data_id(data_id: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in data_id.items())


def get_exposures(
    butler: Butler,
    bands: Sequence[str],
    dataset_type: str = "deepCoadd_calexp",
    parameters: Mapping[str, Any] | None = None,
    collections: Any = None,
    **data_id: Any,
) -> list[Exposure]:
    """Read one exposure per band (with read ``parameters`` such as ``bbox``).

    The datasets of all bands are found with one registry query, then read by
    reference (a lookup per band would cost more than reading a small cutout).

    Raises
    ------
    DataIdError
        A band, tract, patch or skymap is not in the repository.
    DatasetMissingError
        No exposure for a band and data id in the collections searched.
    CorruptFileError, BBoxError
        A file cannot be read, or the box is not inside the exposure.
    """
    check_repo(butler)
    key = (dataset_type, tuple(bands), repr(collections), tuple(sorted(data_id.items())))
    cache = _REF_CACHE.setdefault(butler, {})
    cached = key in cache
    refs = (
        cache[key] if cached else _find_band_refs(butler, dataset_type, bands, collections, data_id)
    )
    try:
        out = _get_by_band(butler, refs, dataset_type, bands, parameters, collections, data_id)
    except Exception:
        if not cached:
            raise
        # A cached reference went stale (the dataset was replaced): look up again.
        cache.pop(key, None)
        return get_exposures(butler, bands, dataset_type, parameters, collections, **data_id)
    if refs:
        if len(cache) > 256:
            cache.clear()
        cache[key] = refs
    return out


#: Resolved references per butler, so that reading many cutouts of one patch (one
#: blend after another) pays the registry query once.
_REF_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _get_by_band(butler, refs, dataset_type, bands, parameters, collections, data_id):
    out = []
    for band in bands:
        did = {**data_id, "band": band}
        target = refs.get(band) or dataset_type
        kwargs = {} if band in refs else {**did, "collections": collections}
        with _butler_errors(butler, dataset_type, did, collections):
            out.append(butler.get(target, parameters=parameters, **kwargs))
    return out


def _find_band_refs(
    butler: Butler,
    dataset_type: str,
    bands: Sequence[str],
    collections: Any,
    data_id: Mapping[str, Any],
) -> dict[str, Any]:
    """Band -> resolved ref, from one query; {} when the query cannot be made."""
    try:
        refs = butler.query_datasets(
            dataset_type,
            collections=collections,
            find_first=True,
            data_id=dict(data_id),
            where="band IN (bands)",
            bind={"bands": list(bands)},
            explain=False,
        )
    except Exception:
        return {}  # let the per-band get report what is wrong
    by_band: dict[str, Any] = {}
    for ref in refs:
        band = ref.dataId["band"]
        if band in by_band:  # the data id does not pin one dataset per band
            return {}
        by_band[str(band)] = ref
    return by_band


@contextmanager
def _butler_errors(
    butler: Butler, dataset_type: str, did: Mapping[str, Any], collections: Any
) -> Iterator[None]:
    """Turn the butler's errors on a get into ours, naming the dataset and data id."""
    from lsst.daf.butler import DataIdValueError, DatasetNotFoundError, MissingDatasetTypeError

    try:
        yield
    except DataIdValueError as exc:
        raise DataIdError(
            f"{dataset_type}: {_describe_data_id(did)} is not a valid data id in this "
            f"repository ({exc})"
        ) from exc
    except MissingDatasetTypeError as exc:
        raise DatasetMissingError(f"The repository has no dataset type {dataset_type!r}") from exc
    except DatasetNotFoundError as exc:
        _check_data_id(butler, did, dataset_type)
        searched = list(butler.collections.defaults) if collections is None else collections
        raise DatasetMissingError(
            f"No {dataset_type} for {_describe_data_id(did)} in collections {searched}"
        ) from exc
    except RepoError:
        raise
    except Exception as exc:
        # the butler wraps formatter errors in a ValueError: give back our own type
        cause = exc.__cause__
        if isinstance(cause, RepoError):  # its message names the dataset and data id
            raise type(cause)(str(cause)) from exc
        raise CorruptFileError(
            f"{dataset_type} for {_describe_data_id(did)} cannot be read: {exc}"
        ) from exc


def _check_data_id(butler: Butler, data_id: Mapping[str, Any], dataset_type: str) -> None:
    """Raise `DataIdError` when the band, tract or patch of ``data_id`` is not in the repository."""
    where = f"{dataset_type} for {_describe_data_id(data_id)}"
    band = data_id.get("band")
    if band is not None:
        bands = repo_bands(butler)
        if band not in bands:
            raise DataIdError(f"{where}: band {band!r} is not in the repository (bands {bands})")
    if "tract" in data_id:
        try:
            sky = get_skymap(butler, data_id.get("skymap"))
            tract = sky[data_id["tract"]]
            if "patch" in data_id:
                tract.patch(data_id["patch"])
        except DataIdError as exc:
            raise DataIdError(f"{where}: {exc}") from exc


def describe_repo(butler: Butler) -> dict[str, Any]:
    """A summary: version, sky maps, bands, runs and dataset counts per dataset type."""
    version = check_repo(butler)
    counts = {}
    runs = sorted(butler.collections.query("*"))
    for name in DATASET_TYPES:
        refs = butler.query_datasets(name, collections=runs or "*", find_first=False, explain=False)
        counts[name] = len(refs)
    return {
        "repo_version": version,
        "skymaps": sorted(str(r.name) for r in butler.registry.queryDimensionRecords("skymap")),
        "bands": repo_bands(butler),
        "runs": runs,
        "datasets": counts,
    }
