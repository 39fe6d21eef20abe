"""vermilion.repo: data repositories on the Rubin data butler (``lsst-daf-butler``).

Exposures (`Exposure`, `MultibandExposure`, `ImagePsf`), a simple `SkyMap`, and
functions that create repositories and put coadds into them. Names are loaded on
first use, so that ``import vermilion.repo`` imports neither the butler nor astropy.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_WHERE = {
    "errors": (
        "BBoxError",
        "CorruptFileError",
        "DataIdError",
        "DatasetMissingError",
        "FormatVersionError",
        "RepoError",
        "RepoVersionError",
    ),
    "exposure": ("MASK_PLANES", "Exposure", "ImagePsf", "MultibandExposure"),
    "skymap": ("PatchInfo", "SkyMap", "TractInfo"),
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
    "ingest": ("ingest_arrays", "ingest_coadd", "ingest_model_data"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'vermilion.repo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
