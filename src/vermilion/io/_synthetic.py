"""Synthetic patches of stored models with realistic sizes, for benchmarks and tests.

Morphologies are smooth elliptical exponential or Gaussian profiles, perturbed at the
1e-3 level (so that they have no exact symmetry a compressor could exploit, as fitted
models have none), normalised to a maximum of 1 and thresholded to zero at the
edges. Box sides follow a power law between 15 and 150 px (most are small, as in a
real patch); sources per blend are 1 to 20, most blends having few.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .data import BlendData, CubeComponentData, FactorizedComponentData, ModelData, SourceData

__all__ = ["gaussian_psf", "iter_synthetic_blends", "synthetic_model_data"]

BANDS = ("u", "g", "r", "i", "z", "y")


def gaussian_psf(sigma: float, size: int) -> np.ndarray:
    """A normalised circular Gaussian of ``sigma`` px on a ``size`` x ``size`` grid."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    psf = np.exp(-0.5 * (x**2 + y**2) / sigma**2)
    return (psf / psf.sum()).astype(np.float32)


def _side(rng: np.random.Generator, lo: int, hi: int, alpha: float = 2.5) -> int:
    return int(min(hi, lo * rng.uniform() ** (-1.0 / alpha)))


def _morph(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, tuple[int, int]]:
    y, x = np.mgrid[:h, :w].astype(np.float64)
    cy = (h - 1) / 2 + rng.uniform(-1.5, 1.5)
    cx = (w - 1) / 2 + rng.uniform(-1.5, 1.5)
    q, theta = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
    dy, dx = y - cy, x - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / q
    r = np.hypot(u, v)
    scale = min(h, w) / rng.uniform(5, 10)
    if rng.uniform() < 0.6:
        m = np.exp(-r / scale)
    else:
        m = np.exp(-0.5 * (r / scale) ** 2)
    m *= 1 + 1e-3 * rng.standard_normal(m.shape)
    m /= m.max()
    m[m < rng.uniform(0.005, 0.05)] = 0
    py, px = np.unravel_index(int(np.argmax(m)), m.shape)
    return m.astype(np.float32), (int(py), int(px))


def _blend(
    rng: np.random.Generator, n_bands: int, max_sources: int, min_box: int, max_box: int
) -> BlendData:
    n_sources = 1 + min(max_sources - 1, int(rng.geometric(0.4)) - 1)
    origin = (int(rng.integers(0, 4000)), int(rng.integers(0, 4000)))
    spread = _side(rng, min_box, max_box)
    sources = {}
    boxes = []
    for _ in range(n_sources):
        comps = []
        centre = (
            origin[0] + int(rng.integers(0, spread)),
            origin[1] + int(rng.integers(0, spread)),
        )
        n_comp = 2 if rng.uniform() < 0.2 else 1
        for _ in range(n_comp):
            h = _side(rng, min_box, max_box)
            w = int(np.clip(h * rng.uniform(0.7, 1.3), min_box, max_box))
            morph, (py, px) = _morph(rng, h, w)
            corigin = (centre[0] - py, centre[1] - px)
            spectrum = rng.uniform(0.05, 5.0, n_bands).astype(np.float32)
            peak = (centre[0], centre[1])
            if rng.uniform() < 0.02:
                comps.append(CubeComponentData(corigin, peak, spectrum[:, None, None] * morph))
            else:
                comps.append(FactorizedComponentData(corigin, peak, spectrum, morph))
            boxes.append((corigin, (h, w)))
        sid = int(rng.integers(1, 2**62))
        sources[sid] = SourceData(comps, peak_id=int(rng.integers(0, 10_000)))
    y0 = min(o[0] for o, _ in boxes)
    x0 = min(o[1] for o, _ in boxes)
    y1 = max(o[0] + s[0] for o, s in boxes)
    x1 = max(o[1] + s[1] for o, s in boxes)
    return BlendData(
        (y0, x0),
        (y1 - y0, x1 - x0),
        sources,
        psf_center=((y0 + y1) / 2, (x0 + x1) / 2),
    )


def iter_synthetic_blends(
    n_blends: int,
    *,
    n_bands: int = 6,
    seed: int = 0,
    max_sources: int = 20,
    min_box: int = 15,
    max_box: int = 150,
) -> Iterator[tuple[int, BlendData]]:
    """Yield ``(parent_id, BlendData)`` one by one (for streaming writes)."""
    rng = np.random.default_rng(seed)
    base = (int(seed) % 1000 + 1) << 40
    for i in range(n_blends):
        yield base + i, _blend(rng, n_bands, max_sources, min_box, max_box)


def synthetic_model_data(
    n_blends: int,
    *,
    n_bands: int = 6,
    seed: int = 0,
    max_sources: int = 20,
    min_box: int = 15,
    max_box: int = 150,
    psf_size: int = 25,
) -> ModelData:
    """A whole synthetic patch: model PSF, a patch-level observed PSF, ``n_blends`` blends."""
    bands = BANDS[:n_bands] if n_bands <= len(BANDS) else tuple(f"b{i}" for i in range(n_bands))
    observed = np.stack([gaussian_psf(1.5 + 0.1 * i, psf_size) for i in range(n_bands)])
    model = ModelData(bands, gaussian_psf(0.8, 15), observed_psf=observed)
    for bid, blend in iter_synthetic_blends(
        n_blends,
        n_bands=n_bands,
        seed=seed,
        max_sources=max_sources,
        min_box=min_box,
        max_box=max_box,
    ):
        model.blends[bid] = blend
    return model
