"""Test data of the pipeline tests (imported by conftest and the test modules)."""

from __future__ import annotations

import copy

import numpy as np

BANDS = "gri"
SHAPE = (128, 128)


def simulate(seed: int = 1, shape=SHAPE, density: float = 200.0):
    from vermilion.sim import simulate_patch

    return simulate_patch(shape, bands=BANDS, density=density, seed=seed)


def detect(patch, tract: int = 0, patch_id: int = 0):
    from vermilion.detect.detection import detect_sources

    return detect_sources(
        patch.images,
        patch.variance,
        patch.mask,
        patch.psfs,
        bands=patch.bands,
        tract=tract,
        patch=patch_id,
    )


def with_pixels(patch, rows_cols, images=None, variance=None):
    """A copy of ``patch`` with some pixels of every band replaced."""
    out = copy.copy(patch)
    out.images = patch.images.copy()
    out.variance = patch.variance.copy()
    ys, xs = rows_cols
    if images is not None:
        out.images[:, ys, xs] = images
    if variance is not None:
        out.variance[:, ys, xs] = variance
    return out


def blended_rows(parents) -> np.ndarray:
    """Rows of parents with more than one peak, most peaks first."""
    n = np.asarray(parents["deblend_nPeaks"])
    rows = np.flatnonzero(n > 1)
    return rows[np.argsort(-n[rows], kind="stable")]
