"""vermilion.repo: data repositories on the Rubin data butler (``lsst-daf-butler``).

Exposures (`Exposure`, `MultibandExposure`, `ImagePsf`; vermilion's FITS files and
``lsst.afw.image`` ones), a simple `SkyMap`, functions that create repositories and
put coadds into them, and `vermilion.repo.butler`: the dataset-type names, default
runs and reads every other part of vermilion uses. Names are loaded on
first use, so that ``import vermilion.repo`` imports neither the butler nor astropy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vermilion._lazy import lazy_exports

if TYPE_CHECKING:  # the names of _EXPORTS, for type checkers and readers
    from .butler import (
        CATALOG_DATASET,
        DEFAULT_COADD_RUN,
        DEFAULT_DEBLEND_RUN,
        EXPOSURE_DATASET,
        MODEL_DATASET,
        REPO_VERSION,
        SKYMAP_RUN,
        check_repo,
        default_collections,
        default_skymap,
        get_exposures,
        get_skymap,
        repo_bands,
        repo_root,
    )
    from .errors import (
        BBoxError,
        CollectionNameError,
        CorruptFileError,
        DataIdError,
        DatasetMissingError,
        FormatVersionError,
        PsfMissingError,
        RepoError,
        RepoVersionError,
    )
    from .ingest import ingest_arrays, ingest_coadd, ingest_model_data
    from .ingest_checks import IngestWarning
    from .multiband import MultibandExposure
    from .names import check_collection_names, check_run_name
    from .psf import ImagePsf
    from .repository import DATASET_TYPES, create_repo, describe_repo, open_repo, register_skymap
    from .single_band import Exposure
    from .skymap import PatchInfo, SkyMap, TractInfo

__all__ = [
    "CATALOG_DATASET",
    "DATASET_TYPES",
    "DEFAULT_COADD_RUN",
    "DEFAULT_DEBLEND_RUN",
    "EXPOSURE_DATASET",
    "MODEL_DATASET",
    "REPO_VERSION",
    "SKYMAP_RUN",
    "BBoxError",
    "CollectionNameError",
    "CorruptFileError",
    "DataIdError",
    "DatasetMissingError",
    "Exposure",
    "FormatVersionError",
    "ImagePsf",
    "IngestWarning",
    "MultibandExposure",
    "PatchInfo",
    "PsfMissingError",
    "RepoError",
    "RepoVersionError",
    "SkyMap",
    "TractInfo",
    "check_collection_names",
    "check_repo",
    "check_run_name",
    "create_repo",
    "default_collections",
    "default_skymap",
    "describe_repo",
    "get_exposures",
    "get_skymap",
    "ingest_arrays",
    "ingest_coadd",
    "ingest_model_data",
    "open_repo",
    "register_skymap",
    "repo_bands",
    "repo_root",
]

#: Submodule -> the names it exports, imported on first access (see `vermilion._lazy`).
_EXPORTS = {
    "errors": (
        "BBoxError",
        "CollectionNameError",
        "CorruptFileError",
        "DataIdError",
        "DatasetMissingError",
        "FormatVersionError",
        "PsfMissingError",
        "RepoError",
        "RepoVersionError",
    ),
    "psf": ("ImagePsf",),
    "single_band": ("Exposure",),
    "multiband": ("MultibandExposure",),
    "skymap": ("PatchInfo", "SkyMap", "TractInfo"),
    "butler": (
        "CATALOG_DATASET",
        "DEFAULT_COADD_RUN",
        "DEFAULT_DEBLEND_RUN",
        "EXPOSURE_DATASET",
        "MODEL_DATASET",
        "REPO_VERSION",
        "SKYMAP_RUN",
        "check_repo",
        "default_collections",
        "default_skymap",
        "get_exposures",
        "get_skymap",
        "repo_bands",
        "repo_root",
    ),
    "repository": ("DATASET_TYPES", "create_repo", "describe_repo", "open_repo", "register_skymap"),
    "ingest": ("ingest_arrays", "ingest_coadd", "ingest_model_data"),
    "ingest_checks": ("IngestWarning",),
    "names": ("check_collection_names", "check_run_name"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
