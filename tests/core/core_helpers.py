"""Helpers of the engine tests: the real HSC blend and small known models."""

from __future__ import annotations

import numpy as np

import vermilion.data
from vermilion.core import Box, FactorizedComponent, Observation, Parameter, Source

#: The real HSC blends ship with the package (vermilion.data).
HSC_35 = vermilion.data.path("hsc_cosmos_35.npz")
HSC_COSMOS = vermilion.data.path("hsc_cosmos.npz")
BANDS = ("g", "r", "i", "z", "y")


def gaussian_psf(sigma: float, size: int = 21, e: float = 0.0) -> np.ndarray:
    """A centred, normalised (optionally elliptical) Gaussian PSF image."""
    y, x = np.indices((size, size), dtype=np.float64) - size // 2
    r2 = (x * (1 + e)) ** 2 + (y * (1 - e)) ** 2
    psf = np.exp(-r2 / (2 * sigma**2))
    return (psf / psf.sum()).astype(np.float32)


def radial_morph(
    shape: tuple[int, int], peak: tuple[float, float], scale: float, kind: str = "gauss"
) -> np.ndarray:
    """A strictly radially decreasing profile about ``peak`` with maximum 1 (float32)."""
    y, x = np.indices(shape, dtype=np.float64)
    r = np.hypot(y - peak[0], x - peak[1])
    if kind == "gauss":
        m = np.exp(-0.5 * (r / scale) ** 2)
    elif kind == "exp":
        m = np.exp(-r / scale)
    else:
        m = 1 / (1 + (r / scale) ** 2) ** 1.5
    return (m / m.max()).astype(np.float32)


def hsc_observation(data: dict[str, np.ndarray], **kwargs) -> Observation:
    return Observation(
        data["images"], data["variance"], psfs=data["psfs"], bands=data["filters"], **kwargs
    )


def synthetic_psfs(n_bands: int = 3) -> np.ndarray:
    """Observed PSFs wider than the model PSF, different per band, one slightly elliptical."""
    sigmas = np.linspace(1.3, 1.9, n_bands)
    return np.stack([gaussian_psf(s, 21, e=0.1 * (b % 2)) for b, s in enumerate(sigmas)])


def known_sources(bands: tuple[str, ...], origin: tuple[int, int] = (0, 0)) -> list[Source]:
    """Three overlapping factorized sources with known spectra on a 40 x 44 image."""
    oy, ox = origin
    n = len(bands)
    specs = [
        ((18, 20), (oy + 3, ox + 4), (12, 10), 2.5, "gauss"),
        ((16, 16), (oy + 14, ox + 18), (7, 9), 2.0, "exp"),
        ((14, 18), (oy + 22, ox + 5), (6, 8), 3.0, "moffat"),
    ]
    rng = np.random.default_rng(7)
    sources = []
    for shape, box_origin, local_peak, scale, kind in specs:
        morph = radial_morph(shape, local_peak, scale, kind)
        spectrum = (rng.uniform(20, 80, n)).astype(np.float32)
        box = Box(shape, box_origin)
        peak = (box_origin[0] + local_peak[0], box_origin[1] + local_peak[1])
        sources.append(Source([FactorizedComponent(bands, spectrum, morph, box, peak)]))
    return sources


class Recorder(Parameter):
    """A parameter that keeps the gradients it is handed and never moves."""

    def __init__(self, x: np.ndarray) -> None:
        super().__init__(x)
        self.grads: list[np.ndarray] = []

    def update(self, it: int, input_grad: np.ndarray, *args) -> None:
        self.grads.append(np.array(input_grad, dtype=np.float64, copy=True))
