"""`BackgroundComponent`: a flat sky level per band fitted with the sources of a blend.

The gradient of the level is checked against finite differences of ``0.5 chi^2`` (the
sky is added to the model after the convolution), on the blend's observation and on the
level's own sky pixels (`set_sky`, where one update is the exact minimum); a fit
recovers a known level, also a negative one; a fixed level stays; and the re-apportioned
fluxes share the image minus the fitted sky.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from core_helpers import Recorder, radial_morph, synthetic_psfs

from vermilion.core import (
    BackgroundComponent,
    Blend,
    Box,
    FactorizedComponent,
    Observation,
    Source,
    init_adaprox_component,
    init_all_sources,
    init_fista_component,
    weight_sources,
)

BANDS = ("g", "r", "i")
SHAPE = (40, 44)
PEAKS = ((14, 15), (25, 29))
SPECTRA = (np.array([30.0, 50.0, 40.0]), np.array([20.0, 10.0, 5.0]))
SCALES = (3.0, 2.0)


def _truth() -> np.ndarray:
    truth = np.zeros((3, *SHAPE))
    for peak, spectrum, scale in zip(PEAKS, SPECTRA, SCALES):
        truth += spectrum[:, None, None] * radial_morph(SHAPE, peak, scale)
    return truth


def _observation(sky, seed: int = 11, noise: float = 1.0) -> Observation:
    rng = np.random.default_rng(seed)
    psfs = synthetic_psfs(3)
    clean = Observation(np.zeros((3, *SHAPE)), np.ones((3, *SHAPE)), psfs=psfs, bands=BANDS)
    sky = np.asarray(sky, float)[:, None, None]
    data = clean.diff_kernel(_truth()) + sky + rng.normal(0, noise, (3, *SHAPE))
    weights = np.full((3, *SHAPE), 1 / noise**2)
    weights[:, 3:6, 10:20] = 0  # a masked strip
    return Observation(
        data, np.full((3, *SHAPE), noise**2), weights=weights, psfs=psfs, bands=BANDS
    )


def _fixed_sources(bbox: Box) -> list[Source]:
    sources = []
    for peak, spectrum, scale in zip(PEAKS, SPECTRA, SCALES):
        morph = radial_morph(SHAPE, peak, scale * 1.1).astype(np.float32)  # not the truth
        sources.append(Source([FactorizedComponent(BANDS, 0.9 * spectrum, morph, bbox, peak)]))
    return sources


def _half_chi2(obs: Observation, sources, level: np.ndarray) -> float:
    model = np.zeros(obs.shape)
    for s in sources:
        model += s.get_model(obs.bbox).data
    rendered = obs.diff_kernel(model) + np.asarray(level, float)[:, None, None]
    residual = rendered - obs._images.astype(np.float64)
    return 0.5 * float(np.sum(obs._weights * residual**2))


def test_level_gradient_matches_finite_differences():
    obs = _observation([5.0, -3.0, 2.0])
    sources = _fixed_sources(obs.bbox)
    level = np.array([4.0, -2.5, 2.5], np.float32)
    background = BackgroundComponent(BANDS, Recorder(level.copy()), obs.bbox)
    blend = Blend(sources, obs, background=background)
    blend.fit(1, min_iter=10, resize=None)
    assert blend.loss[0] == pytest.approx(-_half_chi2(obs, sources, level), rel=1e-5)
    assert blend.log_likelihood == pytest.approx(-_half_chi2(obs, sources, level), rel=1e-5)
    analytic = background._level.grads[0]
    h = 1e-2
    numeric = []
    for b in range(3):
        up, down = level.astype(float), level.astype(float)
        up[b] += h
        down[b] -= h
        numeric.append((_half_chi2(obs, sources, up) - _half_chi2(obs, sources, down)) / (2 * h))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-4 * np.abs(numeric).max())
    # the gradient is the sum of w * residual over the box: zero-weight pixels add nothing
    assert np.all(np.abs(analytic) > 0)


def test_model_is_flat_over_the_box_and_not_a_source():
    box = Box((5, 7), (10, 20))
    bg = BackgroundComponent(BANDS, [1.0, -2.0, 0.5], box)
    model = bg.get_model()
    assert model.data.shape == (3, 5, 7) and tuple(model.bbox.origin) == (10, 20)
    np.testing.assert_array_equal(model.data[1], -2.0)
    assert bg.peak is None
    with pytest.raises(ValueError, match="level shape"):
        BackgroundComponent(BANDS, [1.0, 2.0], box)
    obs = _observation([0, 0, 0])
    with pytest.raises(ValueError, match="background's box"):
        Blend(_fixed_sources(obs.bbox), obs, background=BackgroundComponent(BANDS, [0, 0, 0], box))


@pytest.mark.parametrize(
    ("sky", "parameterization"),
    [
        ([20.0, 20.0, 20.0], init_adaprox_component),
        ([-4.0, 3.0, 0.0], init_adaprox_component),
        ([20.0, 20.0, 20.0], init_fista_component),
    ],
)
def test_a_fit_recovers_the_sky(sky, parameterization):
    """From a start 10% (or 1 noise sigma) off, the level ends within 3 sigma of the truth.

    The level's error is ``noise / sqrt(unmasked pixels)`` = 0.024 here.
    """
    obs = _observation(sky, seed=3)
    start = np.asarray(sky) * 0.9 + 1.0
    shifted = Observation(
        obs._images - start[:, None, None],
        obs._variance,
        weights=obs._weights,
        psfs=obs.psfs,
        bands=BANDS,
    )
    sources = init_all_sources(shifted, list(PEAKS), min_snr=50)
    blend = Blend(sources, obs, background=BackgroundComponent(BANDS, start, obs.bbox))
    blend.parameterize(functools.partial(parameterization, bg_thresh=0.25))
    blend.fit(300, e_rel=1e-6)
    sigma = 1.0 / np.sqrt(np.sum(obs._weights[0] > 0))
    np.testing.assert_allclose(blend.background.level, sky, atol=3 * sigma + 0.02)
    weight_sources(blend)
    total = sum(s.flux.project(obs.bbox).data for s in blend.sources)
    expected = np.where(obs._weights > 0, obs._images - blend.background.model_array(), 0)
    covered = total != 0
    np.testing.assert_allclose(total[covered], expected[covered], rtol=1e-4, atol=1e-3)
    true_flux = _truth().sum(axis=(1, 2))
    fluxes = sum(s.flux.data.sum(axis=(1, 2)) for s in blend.sources)
    assert np.all(np.abs(fluxes - true_flux) < 0.05 * true_flux)


def _sky_data(obs: Observation, margin: int = 6):
    """The level's own pixels: the box grown by ``margin``, zero weight on the sources."""
    rng = np.random.default_rng(5)
    box = Box((SHAPE[0] + 2 * margin, SHAPE[1] + 2 * margin), (-margin, -margin))
    images = rng.normal(0, 1.0, (3, *box.shape))
    inner = (slice(None), *obs.bbox.slices_in(box))
    images[inner] = obs._images
    weights = np.ones((3, *box.shape))
    core = np.zeros(box.shape, bool)
    core[margin + 8 : margin + 32, margin + 8 : margin + 38] = True  # "the footprint"
    weights[:, core] = 0
    return images, weights, box


def test_sky_loss_gradient_and_exact_update():
    """On its own pixels the level's gradient is that of its loss (finite differences),
    and one update lands on the loss's minimum given the sources' rendered model."""
    obs = _observation([5.0, -3.0, 2.0])
    sources = _fixed_sources(obs.bbox)
    images, weights, box = _sky_data(obs)
    background = BackgroundComponent(BANDS, [4.0, -2.5, 2.5], obs.bbox)
    background.set_sky(images, weights, box)
    rendered = obs.diff_kernel(sum(s.get_model(obs.bbox).data for s in sources))
    grad, loss = background.sky_terms(rendered)

    def loss_at(level):
        full = np.asarray(level, float)[:, None, None] - images
        full[(slice(None), *obs.bbox.slices_in(box))] += rendered
        return 0.5 * float(np.sum(weights * full**2))

    level = background.level.astype(float)
    assert loss == pytest.approx(loss_at(level), rel=1e-9)
    h = 1e-3
    numeric = [
        (loss_at(level + h * np.eye(3)[b]) - loss_at(level - h * np.eye(3)[b])) / (2 * h)
        for b in range(3)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6)
    np.testing.assert_allclose(background.sky_weight, weights.sum(axis=(1, 2)))
    background.update(0, np.zeros((3, *SHAPE)), rendered)
    after, _ = background.sky_terms(rendered)
    np.testing.assert_allclose(after, 0, atol=1e-3 * np.abs(grad).max())
    with pytest.raises(ValueError, match="does not contain"):
        background.set_sky(images[:, :20, :20], weights[:, :20, :20], Box((20, 20), (0, 0)))


def test_a_fixed_level_stays_and_a_sky_level_is_fitted_with_the_sources():
    obs = _observation([20.0, 20.0, 20.0], seed=4)
    fixed = BackgroundComponent(BANDS, [19.0, 19.0, 19.0], obs.bbox, fixed=True)
    blend = Blend(_fixed_sources(obs.bbox), obs, background=fixed)
    blend.parameterize(functools.partial(init_adaprox_component, bg_thresh=0.25))
    blend.fit(5, min_iter=5)
    np.testing.assert_array_equal(blend.background.level, 19.0)
    # only the masked strip and a border are sky: the level is pinned there
    sky_w = obs._weights.astype(float).copy()
    sky_w[:, 4:36, 4:40] = 0
    start = np.full(3, 19.0)
    shifted = Observation(
        obs._images - start[:, None, None], obs._variance, weights=obs._weights,
        psfs=obs.psfs, bands=BANDS,
    )  # fmt: skip
    sources = init_all_sources(shifted, list(PEAKS), min_snr=50)
    background = BackgroundComponent(BANDS, start, obs.bbox).set_sky(obs._images, sky_w)
    blend = Blend(sources, obs, background=background)
    blend.parameterize(functools.partial(init_adaprox_component, bg_thresh=0.25))
    blend.fit(200, e_rel=1e-6)
    sigma = 1 / np.sqrt(sky_w[0].sum())
    np.testing.assert_allclose(blend.background.level, 20.0, atol=4 * sigma)
