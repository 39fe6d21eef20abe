"""The real HSC blend (5 bands, 58 x 48 px, 7 peaks) with the reference settings.

Reference figures (docs/peer-figures.md, the Rubin pipelines' engine on
the same blend): e_rel 1e-2 stops after 31 iterations with a final logL of -9680;
e_rel 1e-4 runs to 300 iterations (not converged) and returns logL -8224.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from core_helpers import hsc_observation

from vermilion.core import (
    Blend,
    Observation,
    init_adaprox_component,
    init_all_sources,
    weight_sources,
)


def reference_fit(hsc, centers, e_rel: float) -> Blend:
    obs = hsc_observation(hsc)
    sources = init_all_sources(obs, centers)
    blend = Blend(sources, obs)
    blend.parameterize(partial(init_adaprox_component, bg_thresh=0.25, max_prox_iter=1))
    blend.fit(300, e_rel=e_rel, min_iter=15, resize=10)
    return blend


@pytest.fixture(scope="module")
def fit_1e2(hsc, hsc_centers) -> Blend:
    return reference_fit(hsc, hsc_centers, 1e-2)


def test_reference_settings_e_rel_1e2(fit_1e2):
    blend = fit_1e2
    # Measured (minSNR 10, non-negative spectra, slack 0.75 with faint sources' tendrils
    # pruned, sub-pixel symmetric start, bulge fraction 0.2): converged after 25 iterations
    # with logL -8938 (integer-pixel start, bulge fraction 0.5: 23, -9604; minSNR 50,
    # slack 0.5: 28, -9092; the peer engine: 31 iterations, -9680). Where a 1e-2 fit stops
    # is partly chance: over the blend's 8 grid orientations 5 of 8 meet both goals
    # (bench_engine.py --orientations; the others stop after 19-23 iterations).
    assert blend.converged
    assert blend.it <= 40
    assert blend.log_likelihood >= -9680
    assert len(blend.loss) == blend.it
    # The fit improved a lot on the initialization and the last steps were small
    # (measured: -17480 -> -8938; from the integer-pixel start -23683 -> -9604).
    assert blend.log_likelihood - blend.loss[0] > 0.4 * abs(blend.loss[0])
    assert abs(blend.loss[-1] - blend.loss[-2]) < 1e-2 * abs(blend.loss[-1])


def test_reference_settings_e_rel_1e4(hsc, hsc_centers):
    blend = reference_fit(hsc, hsc_centers, 1e-4)
    # Measured (as above): converged after 80 iterations with logL -7753 (integer-pixel
    # start: 94, -7785; minSNR 50, slack 0.5: 94, -7906; the peer engine did not converge
    # in 300 iterations and returned -8224); over the 8 grid orientations the median is
    # -7766 and 6 of 8 reach -8000 (the others: -9012 and 300 iterations at -7578).
    assert blend.converged
    assert blend.it <= 300
    assert blend.log_likelihood >= -8000
    chi2_per_pixel = -2 * blend.log_likelihood / blend.observation.images.data.size
    assert chi2_per_pixel < 1.15


def test_every_source_is_fitted(fit_1e2, hsc_centers):
    blend = fit_1e2
    obs = blend.observation
    assert len(blend.sources) == len(hsc_centers) == 7
    for source, (y, x) in zip(blend.sources, hsc_centers):
        assert not source.is_null
        # Peaks may move by at most fit_radius = 1 px.
        py, px = source.peak
        assert abs(py - y) <= 1 and abs(px - x) <= 1
        for c in source.components:
            assert np.all(c.spectrum > 0) and c.morph.max() == pytest.approx(1)
            assert np.all(c.morph >= 0) and np.all(np.isfinite(c.morph))
            assert obs.bbox.contains(c.peak) and c.bbox.contains(c.peak)


def test_reapportioned_fluxes_add_up(fit_1e2):
    # min_model=0: every non-zero rendered value takes its share, so nothing is left over
    blend = weight_sources(fit_1e2, min_model=0)
    obs = blend.observation
    total = blend.get_model(use_flux=True).data.astype(np.float64)
    data = np.where(obs.weights.data > 0, obs.images.data, 0)
    # Every pixel lies within the PSF radius of some source box here.
    assert np.abs(total - data).max() <= 1e-4 * np.abs(data).max()


def _cosmos_blend() -> tuple[Observation, list[tuple[int, int]]]:
    """The other real HSC blend (no variance plane: the noise is each band's robust rms)."""
    from core_helpers import HSC_COSMOS

    with np.load(HSC_COSMOS) as f:
        images, psfs, catalog = f["images"], f["psfs"].astype(np.float32), f["catalog"]
        bands = tuple(str(b) for b in f["filters"])
    rms = [1.4826 * np.median(np.abs(b - np.median(b))) for b in images]
    variance = np.ones_like(images) * np.square(rms)[:, None, None]
    centers = [(int(y), int(x)) for y, x in zip(catalog["ypeak"], catalog["xpeak"])]
    return Observation(images, variance, psfs=psfs, bands=bands), centers


@pytest.mark.parametrize("blend_name", ["hsc_cosmos_35", "hsc_cosmos"])
def test_looser_monotonicity_fits_real_galaxies_better(blend_name, hsc, hsc_centers):
    """The default slack (0.5) reaches a higher likelihood than scarlet's rule (0) on both
    real blends, and path monotonicity (1) higher still: real galaxies are not radially
    monotonic about one pixel. 300 iterations, no stopping test, so chance plays no part."""
    if blend_name == "hsc_cosmos":
        obs, centers = _cosmos_blend()
    else:
        obs, centers = hsc_observation(hsc), hsc_centers
    log_l = {}
    for slack in (0.0, 0.5, 1.0):
        blend = Blend(init_all_sources(obs, centers, monotonic_slack=slack), obs)
        blend.parameterize(partial(init_adaprox_component, bg_thresh=0.25))
        log_l[slack] = blend.fit(300, e_rel=0, resize=10)[1]
    # measured: hsc_cosmos_35 -7961 / -7593 / -7544; hsc_cosmos -6503 / -6427 / -6351
    assert log_l[0.0] < log_l[0.5] < log_l[1.0]
    assert log_l[0.5] - log_l[0.0] > 50
