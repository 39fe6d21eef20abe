"""Small hand-made blends with known colours and positions for the display tests."""

from __future__ import annotations

import numpy as np

import vermilion.data
from vermilion.core import Blend, Box, FactorizedComponent, Observation, Source
from vermilion.core.psf import integrated_gaussian

#: Real data shipped with the package (the HSC blends).
DATA = vermilion.data.path("hsc_cosmos_35.npz").parent
BAND_NAMES = ("u", "g", "r", "i", "z", "y")


def gaussian_morph(shape: tuple[int, int], center: tuple[float, float], sigma: float) -> np.ndarray:
    y, x = np.indices(shape, dtype=np.float64)
    morph = np.exp(-((y - center[0]) ** 2 + (x - center[1]) ** 2) / (2 * sigma**2))
    return (morph / morph.max()).astype(np.float32)


def red_spectrum(n_bands: int, amplitude: float = 10.0) -> np.ndarray:
    """Flux only in the reddest band(s): shows red (grey for one band)."""
    s = np.zeros(n_bands, dtype=np.float32)
    s[-1] = amplitude
    return s + 1e-3


def blue_spectrum(n_bands: int, amplitude: float = 10.0) -> np.ndarray:
    s = np.zeros(n_bands, dtype=np.float32)
    s[0] = amplitude
    return s + 1e-3


def make_blend(
    n_bands: int = 3,
    centers: tuple[tuple[int, int], ...] = ((20, 15), (20, 45)),
    spectra: tuple[np.ndarray, ...] | None = None,
    shape: tuple[int, int] = (40, 60),
    origin: tuple[int, int] = (100, 200),
    sigma: float = 2.5,
    noise: float = 0.01,
    seed: int = 0,
) -> Blend:
    """A blend whose images are exactly its rendered model plus Gaussian noise.

    ``centers`` are relative to ``origin``; by default the left source is red and the
    right one blue.
    """
    rng = np.random.default_rng(seed)
    bands = (
        BAND_NAMES[-n_bands:]
        if n_bands <= len(BAND_NAMES)
        else tuple(f"b{i}" for i in range(n_bands))
    )
    if spectra is None:
        spectra = (red_spectrum(n_bands), blue_spectrum(n_bands))
    psfs = np.stack([integrated_gaussian(1.2 + 0.1 * b, 15) for b in range(n_bands)])
    bbox = Box(shape, origin)
    half = int(4 * sigma) + 1
    sources = []
    for (cy, cx), spectrum in zip(centers, spectra):
        sbox = Box((2 * half + 1, 2 * half + 1), (origin[0] + cy - half, origin[1] + cx - half))
        sbox = sbox & bbox
        peak = (origin[0] + cy, origin[1] + cx)
        local = (peak[0] - sbox.origin[0], peak[1] - sbox.origin[1])
        morph = gaussian_morph(sbox.shape, local, sigma)
        comp = FactorizedComponent(bands, np.asarray(spectrum, np.float32), morph, sbox, peak)
        sources.append(Source([comp], metadata={"id": len(sources) + 1}))
    truth = np.zeros((n_bands, *shape), dtype=np.float32)
    tmp_obs = Observation(truth + 1, np.ones_like(truth), psfs=psfs, bands=bands, bbox=bbox)
    blend = Blend(sources, tmp_obs)
    rendered = blend.get_model(convolve=True).data
    images = rendered + rng.normal(0, noise, rendered.shape).astype(np.float32)
    variance = np.full_like(images, noise**2)
    observation = Observation(images, variance, psfs=psfs, bands=bands, bbox=bbox)
    return Blend(sources, observation)
