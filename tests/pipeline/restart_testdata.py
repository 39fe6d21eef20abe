"""Test data of the restart tests: a small simulated repository, deblended by the pipeline."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

SKYMAP = "sim"
TRACT = 0
PATCH = 0
BANDS = "ugrizy"
SHAPE = (160, 160)
COADD_RUN = "vermilion/coadd"


def grid_psfs(sim, nodes: int = 3) -> list:
    """One `ImagePsf` per band interpolating the simulation's PSF between grid nodes."""
    from vermilion.repo import ImagePsf

    h, w = sim.shape
    gy = np.linspace(0.15 * h, 0.85 * h, nodes)
    gx = np.linspace(0.15 * w, 0.85 * w, nodes)
    grid = np.stack([np.stack([sim.psf_at(y, x) for x in gx]) for y in gy])  # (ny, nx, B, s, s)
    return [ImagePsf(grid[:, :, b], gy, gx) for b in range(len(sim.bands))]


@contextmanager
def capture_final_blends(store: dict):
    """Record every blend the pipeline fits in this process (its final model and likelihood).

    The worker calls ``vermilion.io.blend_to_data`` on the fitted blend; a wrapper
    keeps what we compare rebuilt blends with: the rendered model, the log-likelihood
    of the final model and the observation's weights.
    """
    import vermilion.io as vio

    original = vio.blend_to_data

    def spy(blend, psf_center=None):
        store[int(blend.metadata["parent_id"])] = {
            "rendered": blend.get_model(convolve=True).data.copy(),
            "logL": blend.log_likelihood,
            "weights": blend.observation.weights.data.copy(),
            "psfs": np.array(blend.observation.psfs),
        }
        return original(blend, psf_center)

    vio.blend_to_data = spy
    try:
        yield store
    finally:
        vio.blend_to_data = original


def make_repo(root: Path, seed: int = 9, density: float = 300.0) -> dict:
    """Simulate a small patch (varying PSF), ingest it, deblend it; return what was captured."""
    from vermilion.pipeline import deblend_patch
    from vermilion.repo import create_repo, ingest_arrays
    from vermilion.sim import simulate_patch

    sim = simulate_patch(SHAPE, bands=BANDS, density=density, seed=seed, psf_variation=0.1)
    butler = create_repo(
        root, skymap=SKYMAP, bands=BANDS, tracts=1, patches=(1, 1), patch_shape=SHAPE
    )
    ingest_arrays(
        butler, sim.images, sim.variance, sim.mask, grid_psfs(sim), sim.bands, TRACT, PATCH
    )
    finals: dict = {}
    with capture_final_blends(finals):
        result = deblend_patch(str(root), TRACT, PATCH, workers=1, raise_errors=True)
    return {"root": str(root), "sim": sim, "finals": finals, "result": result}
