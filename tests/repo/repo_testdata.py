"""Test data shared by the repository tests (imported by conftest and the test modules)."""

from __future__ import annotations

import numpy as np

SKYMAP = "sim"
BANDS = ("g", "r", "i")
PATCH_SHAPE = (60, 80)


def gaussian_psf(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return (psf / psf.sum()).astype(np.float32)


def patch_arrays(tract: int, patch: int, bands=BANDS, shape=PATCH_SHAPE, seed: int = 0):
    """Arrays whose values say which tract, patch and band they belong to."""
    rng = np.random.default_rng(seed + 100 * tract + patch)
    n = len(bands)
    images = rng.normal(size=(n, *shape)).astype(np.float32)
    images += (1000 * tract + 10 * patch + np.arange(n))[:, None, None]
    variance = rng.uniform(0.5, 1.5, size=(n, *shape)).astype(np.float32)
    mask = np.zeros((n, *shape), np.int32)
    mask[:, 0, :] = 8  # EDGE
    psfs = np.stack([gaussian_psf(11, 1.2 + 0.2 * i) for i in range(n)])
    return images, variance, mask, psfs


def make_repo(path, **kwargs):
    from vermilion.repo import create_repo

    args = {
        "skymap": SKYMAP,
        "bands": "".join(BANDS),
        "tracts": 2,
        "patches": (2, 2),
        "patch_shape": PATCH_SHAPE,
        "pixel_scale": 0.2,
    }
    args.update(kwargs)
    return create_repo(path, **args)
