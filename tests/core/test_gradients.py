"""Spectrum and morphology gradients against finite differences of 0.5 * chi^2."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import Recorder, radial_morph, synthetic_psfs

from vermilion.core import Blend, Box, FactorizedComponent, Observation, Source
from vermilion.core.bbox import overlapped_slices

BANDS = ("g", "r", "i")
SHAPE = (34, 40)


@pytest.fixture(scope="module")
def problem():
    """Data, non-uniform weights (some zero) and two overlapping components, one
    of whose boxes sticks out of the blend box."""
    rng = np.random.default_rng(11)
    truth = np.zeros((3, *SHAPE))
    truth += np.array([30.0, 50.0, 40.0])[:, None, None] * radial_morph(SHAPE, (15, 18), 3.0)
    truth += np.array([20.0, 10.0, 5.0])[:, None, None] * radial_morph(SHAPE, (22, 28), 2.0)
    psfs = synthetic_psfs(3)
    clean = Observation(np.zeros((3, *SHAPE)), np.ones((3, *SHAPE)), psfs=psfs, bands=BANDS)
    data = clean.diff_kernel(truth) + rng.normal(0, 1, truth.shape)
    weights = rng.uniform(0.5, 2.0, truth.shape)
    weights[:, 3:6, 10:20] = 0
    variance = np.where(weights > 0, 1 / np.maximum(weights, 1e-3), 1.0)
    obs = Observation(data, variance, weights=weights, psfs=psfs, bands=BANDS)
    comps = [
        (Box((20, 22), (5, 7)), (15, 18), 2.5),
        (Box((18, 18), (20, 26)), (24, 30), 1.8),  # rows 34-37, cols 40-43 are outside
    ]
    params = []
    for box, peak, scale in comps:
        local = (peak[0] - box.origin[0], peak[1] - box.origin[1])
        morph = radial_morph(box.shape, local, scale).astype(np.float64)
        morph += rng.uniform(0, 0.1, morph.shape)  # not the truth, not monotonic
        spectrum = rng.uniform(10, 40, 3)
        params.append((box, peak, spectrum, morph))
    return obs, params


def model_of(obs: Observation, params) -> np.ndarray:
    model = np.zeros(obs.shape)
    for box, _, spectrum, morph in params:
        s_blend, s_comp = overlapped_slices(obs.bbox, box)
        model[(slice(None), *s_blend)] += (spectrum[:, None, None] * morph)[(slice(None), *s_comp)]
    return model


def half_chi2(obs: Observation, params) -> float:
    """0.5 * chi^2 in float64 (the convolution of a float64 array stays float64)."""
    residual = obs.diff_kernel(model_of(obs, params)) - obs._images.astype(np.float64)
    return 0.5 * float(np.sum(obs._weights * residual**2))


def analytic_gradients(obs: Observation, params):
    """The FactorizedComponent formulas from G = K^T (w (K model - data)), in float64."""
    residual = obs.diff_kernel(model_of(obs, params)) - obs._images.astype(np.float64)
    g_blend = obs.diff_kernel(obs._weights * residual, grad=True)
    assert g_blend.dtype == np.float64
    out = []
    for box, _, spectrum, morph in params:
        g = np.zeros((obs.n_bands, *box.shape))
        s_blend, s_comp = overlapped_slices(obs.bbox, box)
        g[(slice(None), *s_comp)] = g_blend[(slice(None), *s_blend)]
        flat = g.reshape(obs.n_bands, -1)
        out.append((flat @ morph.ravel(), (spectrum @ flat).reshape(morph.shape)))
    return out


def with_value(params, i, which, index, value):
    box, peak, spectrum, morph = params[i]
    spectrum, morph = spectrum.copy(), morph.copy()
    (spectrum if which == "spectrum" else morph)[index] = value
    return [*params[:i], (box, peak, spectrum, morph), *params[i + 1 :]]


def finite_difference(obs, params, i, which, index, h):
    x = (params[i][2] if which == "spectrum" else params[i][3])[index]
    up = half_chi2(obs, with_value(params, i, which, index, x + h))
    down = half_chi2(obs, with_value(params, i, which, index, x - h))
    # The loss is quadratic in each factor: central differences are exact but for rounding.
    return (up - down) / (2 * h)


def test_spectrum_gradient_matches_finite_differences(problem):
    obs, params = problem
    grads = analytic_gradients(obs, params)
    for i in range(len(params)):
        numeric = [finite_difference(obs, params, i, "spectrum", b, 1e-2) for b in range(3)]
        np.testing.assert_allclose(
            grads[i][0], numeric, rtol=1e-7, atol=1e-7 * np.abs(numeric).max()
        )


def test_morph_gradient_matches_finite_differences(problem):
    obs, params = problem
    grads = analytic_gradients(obs, params)
    rng = np.random.default_rng(3)
    for i, (_, _, _, morph) in enumerate(params):
        pixels = [tuple(rng.integers(0, s) for s in morph.shape) for _ in range(15)]
        # the peak region and a pixel under the zero-weight strip (rows 3-5, cols 10-19)
        pixels += [(10, 11), (0, 5)]
        numeric = np.array([finite_difference(obs, params, i, "morph", p, 1e-2) for p in pixels])
        analytic = np.array([grads[i][1][p] for p in pixels])
        scale = np.abs(grads[i][1]).max()
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7 * scale)


def test_pixels_outside_the_blend_have_zero_gradient(problem):
    obs, params = problem
    box, _, _, _ = params[1]
    g_morph = analytic_gradients(obs, params)[1][1]
    outside = (slice(obs.bbox.shape[0] - box.origin[0], None), slice(None))
    assert np.all(g_morph[outside] == 0)
    assert finite_difference(obs, params, 1, "morph", (box.shape[0] - 1, 3), 1e-2) == 0


def test_component_update_applies_the_formulas(problem):
    """FactorizedComponent.update hands its parameters G @ morph and spectrum @ G."""
    _, params = problem
    box, peak, spectrum, morph = params[0]
    comp = FactorizedComponent(BANDS, Recorder(spectrum.copy()), Recorder(morph.copy()), box, peak)
    g = np.random.default_rng(5).normal(size=(3, *box.shape))
    comp.update(0, g)
    np.testing.assert_allclose(comp._spectrum.grads[0], np.einsum("bhw,hw->b", g, morph))
    np.testing.assert_allclose(comp._morph.grads[0], np.einsum("bhw,b->hw", g, spectrum))


def test_blend_fit_hands_the_float32_gradient(problem):
    """The gradient the fit computes (float32 FFTs) agrees with the float64 one."""
    obs, params = problem
    comps = []
    for box, peak, spectrum, morph in params:
        comps.append(
            FactorizedComponent(
                BANDS,
                Recorder(spectrum.astype(np.float32)),
                Recorder(morph.astype(np.float32)),
                box,
                peak,
            )
        )
    blend = Blend([Source([c]) for c in comps], obs)
    blend.fit(1, min_iter=10, resize=None)
    assert blend.it == 1 and len(blend.loss) == 1
    f32 = [(p[0], p[1], p[2].astype(np.float32), p[3].astype(np.float32)) for p in params]
    assert blend.loss[0] == pytest.approx(-half_chi2(obs, f32), rel=1e-5)
    expected = analytic_gradients(obs, f32)
    for c, (g_spec, g_morph) in zip(comps, expected):
        got_spec, got_morph = c._spectrum.grads[0], c._morph.grads[0]
        np.testing.assert_allclose(got_spec, g_spec, rtol=1e-4, atol=1e-4 * np.abs(g_spec).max())
        err = np.abs(got_morph - g_morph).max()
        assert err <= 1e-4 * np.abs(g_morph).max()
