"""vermilion: fast multi-band astronomical deblending in the scarlet-lite tradition.

The engine (`vermilion.core`) is imported eagerly and needs only numpy. Everything
else (the repository on the Rubin butler, catalogs, stored models, the pipeline,
simulations, pictures) is imported on first use, so ``import vermilion`` stays
light: it never imports the butler, matplotlib, GalSim, Dask or astropy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .core import (
    MASK_PLANES,
    AdaproxParameter,
    Blend,
    Box,
    Chi2InitParameters,
    Component,
    CubeComponent,
    DummyObservation,
    FactorizedComponent,
    FistaParameter,
    FitDivergenceError,
    FixedParameter,
    Image,
    LiteBlend,
    LiteObservation,
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
    mask_bits,
    parameterize_sources,
    relative_step,
    weight_sources,
)
from .core import notebook as _core_notebook

__version__ = "0.1.0"


def _notebook_picture(obj):
    """Draw ``obj`` for Jupyter: imports `vermilion.display` (and matplotlib) only now."""
    from .display.notebook import picture_png

    return picture_png(obj)


# Objects of every layer call this hook from their ``_repr_png_`` (core may not import
# display: the drawing is registered from here, above both).
_core_notebook.set_picture_renderer(_notebook_picture)

if TYPE_CHECKING:  # the names of _EXPORTS, for type checkers and readers
    from .detect import (
        Footprint,
        HeavyFootprint,
        SourceCatalog,
        SourceRecord,
        SpanSet,
        detect_sources,
        make_source_id,
        unpack_source_id,
    )
    from .io import (
        BlendData,
        CubeComponentData,
        FactorizedComponentData,
        IsolatedSourceData,
        ModelData,
        ModelDataError,
        ModelDataWriter,
        SourceData,
        blend_to_data,
        multiband_data_to_blend,
        multibandDataToScarlet,
    )
    from .io.data import ScarletModelData
    from .pipeline import (
        BlendLoader,
        DeblendConfig,
        DeblendSummary,
        DeblendTask,
        PatchResult,
        ScarletDeblendConfig,
        add_source,
        deblend,
        deblend_patch,
        deblend_patches,
        load_blend,
        save_blend,
        update_catalog_footprints,
        updateCatalogFootprints,
        warm_restart,
    )
    from .repo import (
        Exposure,
        ImagePsf,
        MultibandExposure,
        RepoError,
        SkyMap,
        create_repo,
        ingest_arrays,
        ingest_coadd,
        ingest_model_data,
        open_repo,
    )
    from .sim import SimulatedPatch, simulate_blend, simulate_patch

__all__ = [
    "MASK_PLANES",
    "AdaproxParameter",
    "Blend",
    "BlendData",
    "BlendLoader",
    "Box",
    "Chi2InitParameters",
    "Component",
    "CubeComponent",
    "CubeComponentData",
    "DeblendConfig",
    "DeblendSummary",
    "DeblendTask",
    "DummyObservation",
    "Exposure",
    "FactorizedComponent",
    "FactorizedComponentData",
    "FistaParameter",
    "FitDivergenceError",
    "FixedParameter",
    "Footprint",
    "HeavyFootprint",
    "Image",
    "ImagePsf",
    "IsolatedSourceData",
    "LiteBlend",
    "LiteObservation",
    "ModelData",
    "ModelDataError",
    "ModelDataWriter",
    "MultibandExposure",
    "NoDataObservation",
    "Observation",
    "Parameter",
    "PatchResult",
    "RepoError",
    "ScarletDeblendConfig",
    "ScarletModelData",
    "SimulatedPatch",
    "SkyMap",
    "Source",
    "SourceCatalog",
    "SourceData",
    "SourceRecord",
    "SpanSet",
    "add_source",
    "blend_to_data",
    "chi2_detection_image",
    "create_repo",
    "deblend",
    "deblend_patch",
    "deblend_patches",
    "detect_sources",
    "ingest_arrays",
    "ingest_coadd",
    "ingest_model_data",
    "init_adaprox_component",
    "init_all_sources",
    "init_fista_component",
    "init_main_source",
    "integrated_gaussian",
    "load_blend",
    "make_source_id",
    "mask_bits",
    "multibandDataToScarlet",
    "multiband_data_to_blend",
    "open_repo",
    "parameterize_sources",
    "relative_step",
    "save_blend",
    "simulate_blend",
    "simulate_patch",
    "unpack_source_id",
    "updateCatalogFootprints",
    "update_catalog_footprints",
    "warm_restart",
    "weight_sources",
]

#: Submodule -> the names it exports, imported on first access (see `vermilion._lazy`).
_EXPORTS = {
    "detect": (
        "Footprint",
        "HeavyFootprint",
        "SourceCatalog",
        "SourceRecord",
        "SpanSet",
        "detect_sources",
        "make_source_id",
        "unpack_source_id",
    ),
    "io": (
        "ModelData",
        "BlendData",
        "SourceData",
        "ModelDataError",
        "ModelDataWriter",
        "FactorizedComponentData",
        "CubeComponentData",
        "IsolatedSourceData",
        "blend_to_data",
        "multiband_data_to_blend",
        "multibandDataToScarlet",
    ),
    "io.data": ("ScarletModelData",),
    "repo": (
        "Exposure",
        "MultibandExposure",
        "ImagePsf",
        "create_repo",
        "open_repo",
        "ingest_coadd",
        "ingest_arrays",
        "ingest_model_data",
        "SkyMap",
        "RepoError",
    ),
    "pipeline": (
        "DeblendConfig",
        "ScarletDeblendConfig",
        "DeblendTask",
        "deblend_patches",
        "deblend_patch",
        "DeblendSummary",
        "PatchResult",
        "load_blend",
        "save_blend",
        "warm_restart",
        "update_catalog_footprints",
        "updateCatalogFootprints",
        "add_source",
        "BlendLoader",
        "deblend",
    ),
    "sim": (
        "simulate_patch",
        "simulate_blend",
        "SimulatedPatch",
    ),
}

#: Subpackages that ``vermilion.<name>`` imports on first access.
_SUBMODULES = ("cli", "core", "data", "detect", "display", "io", "pipeline", "repo", "sim")

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), _SUBMODULES)
