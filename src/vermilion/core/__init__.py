"""The model engine: observations, components, sources, blends and their fit.

Imports only numpy here; scipy's FFT is loaded at the first convolution.
"""

from .background import BackgroundComponent
from .bbox import Box, overlapped_slices
from .blend import Blend, FitDivergenceError, LiteBlend
from .component import Component, CubeComponent, FactorizedComponent
from .image import Image
from .initialization import (
    Chi2InitParameters,
    chi2_detection_image,
    init_adaprox_component,
    init_all_sources,
    init_compact_source,
    init_fista_component,
    init_main_source,
    parameterize_sources,
    restore_tendril_pruning,
)
from .masks import MASK_PLANES, mask_bits
from .measure import tendril_fraction, weight_sources
from .observation import (
    Convolver,
    DummyObservation,
    LiteObservation,
    NoDataObservation,
    Observation,
    estimate_noise_rms,
    observation_from_exposure,
)
from .operators import prox_connected, prox_monotonic, prox_sparsity
from .parameters import (
    AdaproxParameter,
    FistaParameter,
    FixedParameter,
    Parameter,
    parameter,
    relative_step,
)
from .psf import difference_kernels, integrated_gaussian
from .source import Source

__all__ = [
    "MASK_PLANES",
    "AdaproxParameter",
    "BackgroundComponent",
    "Blend",
    "Box",
    "Chi2InitParameters",
    "Component",
    "Convolver",
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
    "difference_kernels",
    "estimate_noise_rms",
    "init_adaprox_component",
    "init_all_sources",
    "init_compact_source",
    "init_fista_component",
    "init_main_source",
    "integrated_gaussian",
    "mask_bits",
    "observation_from_exposure",
    "overlapped_slices",
    "parameter",
    "parameterize_sources",
    "prox_connected",
    "prox_monotonic",
    "prox_sparsity",
    "relative_step",
    "restore_tendril_pruning",
    "tendril_fraction",
    "weight_sources",
]
