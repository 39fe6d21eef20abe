"""vermilion.repo: data repositories on the Rubin data butler (``lsst-daf-butler``).

Exposures (`Exposure`, `MultibandExposure`, `ImagePsf`; vermilion's FITS files and
``lsst.afw.image`` ones), a simple `SkyMap`, functions that create repositories and
put coadds into them, and `vermilion.repo.butler`: the dataset-type names, default
runs and reads every other part of vermilion uses. Names are loaded on
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
    "repository": (
        "DATASET_TYPES",
        "create_repo",
        "describe_repo",
        "open_repo",
        "register_skymap",
    ),
    "ingest": ("ingest_arrays", "ingest_coadd", "ingest_model_data"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, globals())
