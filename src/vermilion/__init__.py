"""vermilion: fast multi-band astronomical deblending in the scarlet-lite tradition.

The engine (`vermilion.core`) is imported eagerly and needs only numpy. Everything
else (the repository on the Rubin butler, catalogs, stored models, the pipeline,
simulations, pictures) is imported on first use, so ``import vermilion`` stays
light: it never imports the butler, matplotlib, GalSim, Dask or astropy.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core import (
    AdaproxParameter,
    Blend,
    Box,
    Chi2InitParameters,
    Component,
    CubeComponent,
    FactorizedComponent,
    FistaParameter,
    FitDivergenceError,
    FixedParameter,
    Image,
    NoDataObservation,
    Observation,
    Parameter,
    Source,
    chi2_detection_image,
    init_adaprox_component,
    init_all_sources,
    init_fista_component,
    init_main_source,
    integrated_gaussian,
    parameterize_sources,
    relative_step,
    weight_sources,
)

__version__ = "0.1.0"

#: Names imported on first access: name -> module.
_LAZY = {
    # catalogs and detection
    "Footprint": "vermilion.detect",
    "HeavyFootprint": "vermilion.detect",
    "SourceCatalog": "vermilion.detect",
    "SourceRecord": "vermilion.detect",
    "SpanSet": "vermilion.detect",
    "detect_sources": "vermilion.detect",
    "make_source_id": "vermilion.detect",
    "unpack_source_id": "vermilion.detect",
    # stored models
    "ModelData": "vermilion.io",
    "BlendData": "vermilion.io",
    "SourceData": "vermilion.io",
    "ModelDataError": "vermilion.io",
    "ModelDataWriter": "vermilion.io",
    "FactorizedComponentData": "vermilion.io",
    "CubeComponentData": "vermilion.io",
    "IsolatedSourceData": "vermilion.io",
    "blend_to_data": "vermilion.io",
    "multiband_data_to_blend": "vermilion.io",
    "multibandDataToScarlet": "vermilion.io",
    # repository
    "Exposure": "vermilion.repo",
    "MultibandExposure": "vermilion.repo",
    "ImagePsf": "vermilion.repo",
    "create_repo": "vermilion.repo",
    "open_repo": "vermilion.repo",
    "ingest_coadd": "vermilion.repo",
    "ingest_arrays": "vermilion.repo",
    "ingest_model_data": "vermilion.repo",
    "SkyMap": "vermilion.repo",
    "RepoError": "vermilion.repo",
    "MASK_PLANES": "vermilion.repo",
    # pipeline
    "DeblendConfig": "vermilion.pipeline",
    "DeblendTask": "vermilion.pipeline",
    "deblend_patches": "vermilion.pipeline",
    "deblend_patch": "vermilion.pipeline",
    "DeblendSummary": "vermilion.pipeline",
    "PatchResult": "vermilion.pipeline",
    "load_blend": "vermilion.pipeline",
    "save_blend": "vermilion.pipeline",
    "warm_restart": "vermilion.pipeline",
    "add_source": "vermilion.pipeline",
    "BlendLoader": "vermilion.pipeline",
    "update_catalog_footprints": "vermilion.pipeline",
    "updateCatalogFootprints": "vermilion.pipeline",
    # simulations
    "simulate_patch": "vermilion.sim",
    "simulate_blend": "vermilion.sim",
    "SimulatedPatch": "vermilion.sim",
}

#: Rubin names of the same types, resolved lazily.
_ALIASES = {"ScarletModelData": "ModelData", "ScarletDeblendConfig": "DeblendConfig"}


# Rubin / scarlet-lite spellings of the same things.
LiteBlend = Blend
LiteObservation = Observation
DummyObservation = NoDataObservation

__all__ = [
    "AdaproxParameter",
    "Blend",
    "Box",
    "Chi2InitParameters",
    "Component",
    "CubeComponent",
    "DummyObservation",
    "FactorizedComponent",
    "FistaParameter",
    "FitDivergenceError",
    "FixedParameter",
    "Image",
    "LiteBlend",
    "LiteObservation",
    "NoDataObservation",
    "Observation",
    "Parameter",
    "Source",
    "chi2_detection_image",
    "init_adaprox_component",
    "init_all_sources",
    "init_fista_component",
    "init_main_source",
    "integrated_gaussian",
    "parameterize_sources",
    "relative_step",
    "weight_sources",
    *_LAZY,
    *_ALIASES,
]


def __getattr__(name: str) -> Any:
    if name in _ALIASES:
        value = __getattr__(_ALIASES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        if name in ("display", "io", "repo", "detect", "pipeline", "sim", "core", "cli"):
            return importlib.import_module(f"vermilion.{name}")
        raise AttributeError(f"module 'vermilion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_ALIASES))
