"""How vermilion talks to a butler: dataset-type names, runs, lookups and error mapping.

The one home of the names every part of vermilion uses to find data in a
repository (``deepCoadd_calexp``, ``deepCoadd_deblendedCatalog``,
``deepCoadd_scarletModelData``, the default runs and `default_collections`), of the
check that a butler's repository is vermilion's (`check_repo`), and of the reads
that map the butler's errors to ours (`get_exposures`, `butler_errors`). The
pipeline, the warm restart and the demo use these; nothing here imports the
butler (or anything heavy) at module level.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptFileError,
    DataIdError,
    DatasetMissingError,
    RepoError,
    RepoVersionError,
)

if TYPE_CHECKING:
    from lsst.daf.butler import Butler

__all__ = [
    "CATALOG_DATASET",
    "DEFAULT_COADD_RUN",
    "DEFAULT_DEBLEND_RUN",
    "EXPOSURE_DATASET",
    "MODEL_DATASET",
    "REPO_VERSION",
    "SKYMAP_DATASET",
    "SKYMAP_RUN",
    "TRUTH_DATASET",
    "band_order_key",
    "butler_errors",
    "check_data_id",
    "check_repo",
    "default_collections",
    "default_skymap",
    "describe_data_id",
    "get_exposures",
    "get_skymap",
    "repo_bands",
    "repo_root",
    "vermilion_version",
]

REPO_VERSION = 1
"""Version of the repository configuration written by `create_repo`.

Recorded in the repository's ``butler.yaml`` (section ``vermilion``); bump it
whenever a storage class, formatter path or dataset type definition changes.
"""

EXPOSURE_DATASET = "deepCoadd_calexp"
"""Dataset type of a coadd exposure of one band (dimensions skymap, tract, patch, band)."""

CATALOG_DATASET = "deepCoadd_deblendedCatalog"
"""Dataset type of the deblender's catalog of a patch."""

MODEL_DATASET = "deepCoadd_scarletModelData"
"""Dataset type of the deblender's models of a patch."""

TRUTH_DATASET = "truth_catalog"
"""Dataset type of the truth table of a simulated patch."""

SKYMAP_DATASET = "skyMap"
"""Dataset type of a sky map (the Rubin name)."""

SKYMAP_RUN = "skymaps"
"""Run holding the ``skyMap`` datasets (the Rubin convention)."""

DEFAULT_COADD_RUN = "vermilion/coadd"
"""Default run for ingested coadds and truth catalogs."""

DEFAULT_DEBLEND_RUN = "vermilion/deblend"
"""Default output collection of the deblender.

A CHAINED collection ``[vermilion/deblend/<timestamp>, ..., vermilion/coadd]``, newest
run first, as ``pipetask run -o`` makes it (`vermilion.repo.collections`); a RUN in
repositories deblended before output chains.
"""


def default_collections() -> list[str]:
    """Where the deblender's outputs and the coadds are: its output chain, then the coadds.

    The chain holds the coadds too; naming them again keeps repositories whose
    ``vermilion/deblend`` is a RUN (from before chains) readable.
    """
    return [DEFAULT_DEBLEND_RUN, DEFAULT_COADD_RUN]


def vermilion_version() -> str:
    """The installed vermilion version (``unknown`` when not installed)."""
    try:
        from importlib.metadata import version

        return version("vermilion")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


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
            f"({vermilion_version()}) uses version {REPO_VERSION}: {hint}"
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


#: The wavelength order of the usual bands; other bands sort after them, by name.
BAND_ORDER = "ugrizyUGRIZY"


def band_order_key(band: str) -> tuple[int, str]:
    """Sort key putting bands in wavelength order (``ugrizy``), other bands after them."""
    return (BAND_ORDER.index(band) if band in BAND_ORDER else len(BAND_ORDER), band)


def repo_bands(butler: Butler) -> list[str]:
    """Band names known to the repository."""
    return sorted(str(r.name) for r in butler.registry.queryDimensionRecords("band"))


def get_skymap(butler: Butler, skymap: str | None = None) -> Any:
    """The `SkyMap` stored in the repository (the butler's default, or the only one)."""
    from lsst.daf.butler import DatasetNotFoundError

    name = skymap or default_skymap(butler)
    try:
        return butler.get(SKYMAP_DATASET, skymap=name, collections=SKYMAP_RUN)
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


def describe_data_id(data_id: Mapping[str, Any]) -> str:
    """``key=value, ...`` of a data id, for messages."""
    return ", ".join(f"{k}={v!r}" for k, v in data_id.items())


def get_exposures(
    butler: Butler,
    bands: Sequence[str],
    dataset_type: str = EXPOSURE_DATASET,
    parameters: Mapping[str, Any] | None = None,
    collections: Any = None,
    **data_id: Any,
) -> list[Any]:
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
        with butler_errors(butler, dataset_type, did, collections):
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
def butler_errors(
    butler: Butler, dataset_type: str, did: Mapping[str, Any], collections: Any
) -> Iterator[None]:
    """Turn the butler's errors on a get into ours, naming the dataset and data id."""
    from lsst.daf.butler import DataIdValueError, DatasetNotFoundError, MissingDatasetTypeError

    try:
        yield
    except DataIdValueError as exc:
        raise DataIdError(
            f"{dataset_type}: {describe_data_id(did)} is not a valid data id in this "
            f"repository ({exc})"
        ) from exc
    except MissingDatasetTypeError as exc:
        raise DatasetMissingError(f"The repository has no dataset type {dataset_type!r}") from exc
    except DatasetNotFoundError as exc:
        check_data_id(butler, did, dataset_type)
        searched = list(butler.collections.defaults) if collections is None else collections
        raise DatasetMissingError(
            f"No {dataset_type} for {describe_data_id(did)} in collections {searched}"
        ) from exc
    except RepoError:
        raise
    except Exception as exc:
        # the butler wraps formatter errors in a ValueError: give back our own type
        cause = exc.__cause__
        if isinstance(cause, RepoError):  # its message names the dataset and data id
            raise type(cause)(str(cause)) from exc
        raise CorruptFileError(
            f"{dataset_type} for {describe_data_id(did)} cannot be read: {exc}"
        ) from exc


def check_data_id(butler: Butler, data_id: Mapping[str, Any], dataset_type: str) -> None:
    """Raise `DataIdError` when the band, tract or patch of ``data_id`` is not in the repository."""
    where = f"{dataset_type} for {describe_data_id(data_id)}"
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
