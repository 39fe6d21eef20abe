"""vermilion.pipeline: deblend whole patches, on all cores, and many patches on Dask.

>>> from vermilion.pipeline import DeblendConfig, DeblendTask  # doctest: +SKIP
>>> catalog, model_data = DeblendTask(DeblendConfig(maxIter=100)).run(mexposure, parents)
>>> summary = deblend_patches("repo", tract=0, patches=[0, 1, 2])  # doctest: +SKIP

Names are loaded on first use: the config alone imports nothing heavy; the task
imports astropy (catalogs) and the patch runner the butler and Dask only when run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vermilion._lazy import lazy_exports

from .config import CONFIG_KEY, DeblendConfig, ScarletDeblendConfig

if TYPE_CHECKING:  # the names of _EXPORTS, for type checkers and readers
    from .arrays import deblend, detect_and_deblend
    from .background import BACKGROUND_KEY, PatchBackground
    from .footprints import update_catalog_footprints, updateCatalogFootprints
    from .patches import (
        DEFAULT_DEBLEND_RUN,
        DeblendSummary,
        PatchResult,
        deblend_patch,
        deblend_patches,
    )
    from .restart import (
        BlendLoader,
        add_source,
        load_blend,
        patch_blends,
        restart_config,
        save_blend,
        warm_restart,
    )
    from .simulated import ingest_simulated_patch
    from .task import DeblendTask

__all__ = [
    "BACKGROUND_KEY",
    "CONFIG_KEY",
    "DEFAULT_DEBLEND_RUN",
    "BlendLoader",
    "DeblendConfig",
    "DeblendSummary",
    "DeblendTask",
    "PatchBackground",
    "PatchResult",
    "ScarletDeblendConfig",
    "add_source",
    "deblend",
    "deblend_patch",
    "deblend_patches",
    "detect_and_deblend",
    "ingest_simulated_patch",
    "load_blend",
    "patch_blends",
    "restart_config",
    "save_blend",
    "updateCatalogFootprints",
    "update_catalog_footprints",
    "warm_restart",
]

#: Submodule -> the names it exports, imported on first access (see `vermilion._lazy`).
_EXPORTS = {
    "arrays": ("deblend", "detect_and_deblend"),
    "background": ("BACKGROUND_KEY", "PatchBackground"),
    "task": ("DeblendTask",),
    "footprints": ("update_catalog_footprints", "updateCatalogFootprints"),
    "simulated": ("ingest_simulated_patch",),
    "patches": (
        "DEFAULT_DEBLEND_RUN",
        "DeblendSummary",
        "PatchResult",
        "deblend_patch",
        "deblend_patches",
    ),
    "restart": (
        "BlendLoader",
        "add_source",
        "load_blend",
        "patch_blends",
        "restart_config",
        "save_blend",
        "warm_restart",
    ),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
