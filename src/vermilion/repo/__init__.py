"""vermilion.repo: data repositories on the Rubin data butler (``lsst-daf-butler``).

Exposures (`Exposure`, `MultibandExposure`, `ImagePsf`), a simple `SkyMap`, and
functions that create repositories and put coadds into them. Names are loaded on
first use, so that ``import vermilion.repo`` imports neither the butler nor astropy.
"""

from __future__ import annotations

from vermilion._lazy import lazy_exports

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
__all__ = sorted(_MODULE_OF)


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, globals())
