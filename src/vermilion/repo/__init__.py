"""vermilion.repo: data repositories on the Rubin data butler (``lsst-daf-butler``).

Exposures (`Exposure`, `MultibandExposure`, `ImagePsf`), a simple `SkyMap`, and
functions that create repositories and put coadds into them. Names are loaded on
first use, so that ``import vermilion.repo`` imports neither the butler nor astropy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vermilion._lazy import lazy_exports

if TYPE_CHECKING:  # the names of _EXPORTS, for type checkers and readers
    from .errors import (
        BBoxError,
        CorruptFileError,
        DataIdError,
        DatasetMissingError,
        FormatVersionError,
        RepoError,
        RepoVersionError,
    )
    from .exposure import MASK_PLANES, Exposure, ImagePsf, MultibandExposure
    from .ingest import ingest_arrays, ingest_coadd, ingest_model_data
    from .repository import (
        DATASET_TYPES,
        DEFAULT_COADD_RUN,
        REPO_VERSION,
        SKYMAP_RUN,
        check_repo,
        create_repo,
        default_skymap,
        describe_repo,
        get_exposures,
        get_skymap,
        open_repo,
        register_skymap,
        repo_bands,
        repo_root,
    )
    from .skymap import PatchInfo, SkyMap, TractInfo

__all__ = [
    "DATASET_TYPES",
    "DEFAULT_COADD_RUN",
    "MASK_PLANES",
    "REPO_VERSION",
    "SKYMAP_RUN",
    "BBoxError",
    "CorruptFileError",
    "DataIdError",
    "DatasetMissingError",
    "Exposure",
    "FormatVersionError",
    "ImagePsf",
    "MultibandExposure",
    "PatchInfo",
    "RepoError",
    "RepoVersionError",
    "SkyMap",
    "TractInfo",
    "check_repo",
    "create_repo",
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
        "CorruptFileError",
        "DataIdError",
        "DatasetMissingError",
        "FormatVersionError",
        "RepoError",
        "RepoVersionError",
    ),
    "exposure": (
        "MASK_PLANES",
        "Exposure",
        "ImagePsf",
        "MultibandExposure",
    ),
    "skymap": (
        "PatchInfo",
        "SkyMap",
        "TractInfo",
    ),
    "repository": (
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
        "repo_root",
    ),
    "ingest": (
        "ingest_arrays",
        "ingest_coadd",
        "ingest_model_data",
    ),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
