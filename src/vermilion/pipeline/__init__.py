"""vermilion.pipeline: deblend whole patches, on all cores, and many patches on Dask.

>>> from vermilion.pipeline import DeblendConfig, DeblendTask  # doctest: +SKIP
>>> catalog, model_data = DeblendTask(DeblendConfig(maxIter=100)).run(mexposure, parents)
>>> summary = deblend_patches("repo", tract=0, patches=[0, 1, 2])  # doctest: +SKIP

Names are loaded on first use: the config alone imports nothing heavy; the task
imports astropy (catalogs) and the patch runner the butler and Dask only when run.
"""

from __future__ import annotations

from vermilion._lazy import lazy_exports

from .config import CONFIG_KEY, DeblendConfig

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_DEBLEND_RUN",
    "BlendLoader",
    "DeblendConfig",
    "DeblendSummary",
    "DeblendTask",
    "PatchResult",
    "add_deblend_arguments",
    "add_source",
    "deblend_patch",
    "deblend_patches",
    "load_blend",
    "main_deblend",
    "restart_config",
    "save_blend",
    "updateCatalogFootprints",
    "update_catalog_footprints",
    "warm_restart",
]

_MODULE_OF = {
    "DeblendTask": "task",
    "DEFAULT_DEBLEND_RUN": "patches",
    "DeblendSummary": "patches",
    "PatchResult": "patches",
    "add_deblend_arguments": "patches",
    "deblend_patch": "patches",
    "deblend_patches": "patches",
    "main_deblend": "patches",
    "BlendLoader": "restart",
    "add_source": "restart",
    "load_blend": "restart",
    "restart_config": "restart",
    "save_blend": "restart",
    "warm_restart": "restart",
    "update_catalog_footprints": "footprints",
    "updateCatalogFootprints": "footprints",
}


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, globals())
