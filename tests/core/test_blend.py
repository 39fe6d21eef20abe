"""Blends: models, likelihood, spectrum fit, resumable fits and flux re-apportioning."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from core_helpers import hsc_observation, known_sources, radial_morph, synthetic_psfs

from vermilion.core import (
    Blend,
    Box,
    CubeComponent,
    FactorizedComponent,
    NoDataObservation,
    Observation,
    Source,
    init_adaprox_component,
    init_all_sources,
    init_fista_component,
    weight_sources,
)
from vermilion.core.blend import DEFAULT_MIN_MODEL

BANDS = ("g", "r", "i")
ORIGIN = (100, 200)  # parent coordinates of the blend box: nothing may assume 0
BOX = Box((40, 44), ORIGIN)


def cube_source() -> Source:
    """A non-factorized source: a blob with a colour gradient across it."""
    shape = (10, 12)
    morph = radial_morph(shape, (5, 6), 2.0)
    ramp = np.linspace(0.5, 1.5, shape[1], dtype=np.float32)
    model = np.stack([15 * morph * ramp, 25 * morph, 10 * morph * ramp[::-1]])
    box = Box(shape, (ORIGIN[0] + 27, ORIGIN[1] + 30))
    return Source([CubeComponent(BANDS, model, box, (box.origin[0] + 5, box.origin[1] + 6))])


def noiseless(mode: str = "fft") -> tuple[Observation, list[Source]]:
    """An observation whose images are exactly the render of known sources (variance 1)."""
    psfs = synthetic_psfs(3)
    sources = [*known_sources(BANDS, ORIGIN), cube_source()]
    renderer = NoDataObservation(psfs, None, BANDS, BOX)
    model = Blend(sources, renderer).get_model().data
    images = renderer.convolve(model, mode=mode)
    obs = Observation(images, np.ones_like(images), psfs=psfs, bands=BANDS, bbox=BOX)
    return obs, sources


class TestTrueModel:
    def test_blend_of_the_true_components_reproduces_the_image(self):
        obs, sources = noiseless()
        blend = Blend(sources, obs)
        # compact (model-PSF) starts for every source: an initial model far from the data
        init = Blend(init_all_sources(obs, [s.peak for s in sources], min_snr=np.inf), obs)
        assert init.log_likelihood < -1e4
        assert abs(blend.log_likelihood) <= 1e-12 * abs(init.log_likelihood)
        np.testing.assert_allclose(blend.get_model(convolve=True).data, obs.images.data, atol=1e-5)

    def test_real_space_data_and_fft_model(self):
        # Data rendered by direct summation, model by FFT: they agree to float32 precision.
        obs, sources = noiseless(mode="real")
        blend = Blend(sources, obs)
        init = Blend(init_all_sources(obs, [s.peak for s in sources]), obs)
        assert abs(blend.log_likelihood) <= 1e-10 * abs(init.log_likelihood)

    def test_model_is_the_sum_of_components_in_parent_coordinates(self):
        obs, sources = noiseless()
        blend = Blend(sources, obs)
        model = blend.get_model()
        assert model.bbox == BOX and model.bands == BANDS
        total = sum(float(c.model_array().sum()) for c in blend.components)
        assert model.data.sum(dtype=np.float64) == pytest.approx(total, rel=1e-6)
        comp = sources[1].components[0]
        peak_local = (comp.peak[0] - ORIGIN[0], comp.peak[1] - ORIGIN[1])
        # at the second source's peak its morphology is 1: model >= its spectrum
        assert np.all(model.data[:, peak_local[0], peak_local[1]] >= comp.spectrum)
        src_model = sources[1].get_model()
        assert src_model.bbox == comp.bbox
        np.testing.assert_array_equal(src_model.data, comp.model_array())
        on_blend = sources[1].get_model(bbox=BOX)
        assert on_blend.data.sum() == pytest.approx(src_model.data.sum(), rel=1e-6)

    def test_fit_spectra_recovers_the_true_spectra(self):
        obs, sources = noiseless()
        factorized = [
            c for s in sources for c in s.components if isinstance(c, FactorizedComponent)
        ]
        truth = [c.spectrum.copy() for c in factorized]
        for c in factorized:
            c.set_spectrum(c.spectrum * 1.7 + 3)
        Blend(sources, obs).fit_spectra()  # with the cube source held fixed
        for c, t in zip(factorized, truth):
            np.testing.assert_allclose(c.spectrum, t, rtol=1e-5)

    def test_a_fit_from_the_truth_stays_there(self):
        obs, sources = noiseless()
        blend = Blend(sources, obs).parameterize(init_adaprox_component)
        blend.fit(20, min_iter=1, e_rel=1e-6)
        init = Blend(init_all_sources(obs, [s.peak for s in sources]), obs)
        # The sparsity threshold trims the faint wings of the true morphologies, so
        # the fit moves a little away from logL = 0, but stays close.
        assert abs(blend.log_likelihood) <= 5e-3 * abs(init.log_likelihood)


def fitted_hsc(hsc, hsc_centers, n_iter=20, **obs_kwargs) -> Blend:
    obs = hsc_observation(hsc, **obs_kwargs)
    blend = Blend(init_all_sources(obs, hsc_centers), obs)
    blend.parameterize(partial(init_adaprox_component, bg_thresh=0.25, max_prox_iter=1))
    blend.fit(n_iter, min_iter=n_iter)
    return blend


class TestWeightSources:
    @pytest.fixture(scope="class")
    @classmethod
    def blend(cls, hsc, hsc_centers):
        data = dict(hsc)
        images = data["images"].copy()
        images[:, 20:24, 30:33] = np.nan  # masked pixels inside a source
        data["images"] = images
        with pytest.warns(RuntimeWarning, match="60 pixels"):
            blend = fitted_hsc(data, hsc_centers)
        return weight_sources(blend)

    def test_fluxes_sum_to_the_masked_image(self, blend):
        obs = blend.observation
        masked = np.where(obs.weights.data > 0, obs.images.data, 0).astype(np.float64)
        cut = DEFAULT_MIN_MODEL * np.asarray(obs.noise_rms)[:, None, None]
        total = np.zeros(obs.shape)
        models = np.zeros(obs.shape)
        for source in blend.sources:
            assert source.flux.bbox == source.flux_box
            total[(slice(None), *source.flux_box.slices_in(blend.bbox))] += source.flux.data
            grown = source.get_model(source.flux_box)
            rendered = np.abs(obs.convolve(grown).data)
            # rendered models fainter than DEFAULT_MIN_MODEL noise rms take no share
            rendered[rendered < cut] = 0
            models[(slice(None), *source.flux_box.slices_in(blend.bbox))] += rendered
        covered = models > 0
        assert covered.mean() > 0.8  # 0.86 measured (0.05 rms cut); every pixel without it
        err = np.abs(total - masked)[covered]
        assert err.max() <= 1e-4 * np.abs(masked).max()
        assert np.all(err <= 1e-4 * np.abs(masked[covered]) + 1e-6)
        assert np.all(total[~covered] == 0)
        np.testing.assert_allclose(
            blend.get_model(use_flux=True).data, total.astype(np.float32), rtol=1e-6, atol=1e-6
        )
        # masked pixels carry no flux
        assert np.all(total[:, 20:24, 30:33] == 0)

    def test_each_flux_lies_between_zero_and_the_data(self, blend):
        obs = blend.observation
        masked = np.where(obs.weights.data > 0, obs.images.data, 0)
        for source in blend.sources:
            data = masked[(slice(None), *source.flux_box.slices_in(blend.bbox))]
            flux = source.flux.data
            tol = 1e-6 * np.abs(data).max()
            assert np.all(flux >= np.minimum(data, 0) - tol)
            assert np.all(flux <= np.maximum(data, 0) + tol)
            # Every source owns a large share of the flux at its own peak.
            y, x = (
                source.peak[0] - source.flux_box.origin[0],
                source.peak[1] - source.flux_box.origin[1],
            )
            assert np.all(flux[:, y, x] >= 0.4 * data[:, y, x])
            np.testing.assert_array_equal(source.get_model(use_flux=True).data, flux)
            assert source.flux_weighted_image is source.flux

    def test_flux_before_weighting_raises(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        sources = init_all_sources(obs, hsc_centers)
        with pytest.raises(ValueError, match="weight_sources"):
            sources[0].get_model(use_flux=True)
        with pytest.raises(ValueError, match="weight_sources"):
            Blend(sources, obs).get_model(use_flux=True)


class TestFitBookkeeping:
    def test_fit_is_resumable(self, hsc, hsc_centers):
        """fit(n) twice continues the optimizer: identical to fit(2n) in one call."""

        def fresh() -> Blend:
            obs = hsc_observation(hsc)
            blend = Blend(init_all_sources(obs, hsc_centers), obs)
            return blend.parameterize(partial(init_adaprox_component, bg_thresh=0.25))

        once = fresh()
        it, log_l = once.fit(24, min_iter=100, keep_best=False)
        assert it == 24 and len(once.loss) == 24
        assert log_l == pytest.approx(once.log_likelihood, rel=1e-6)
        twice = fresh()
        assert twice.fit(12, min_iter=100, keep_best=False)[0] == 12
        log_l_after_12 = twice.log_likelihood
        assert twice.fit(12, min_iter=100, keep_best=False)[0] == 24
        assert twice.it == 24 and len(twice.loss) == 24
        # The first loss of the second call is the likelihood of the model left by the first.
        assert twice.loss[12] == pytest.approx(log_l_after_12, rel=1e-5)
        np.testing.assert_allclose(twice.loss, once.loss, rtol=1e-6)
        np.testing.assert_allclose(
            twice.get_model().data, once.get_model().data, rtol=1e-5, atol=1e-6
        )
        # The fit improved on the start and the last step is recorded.
        assert twice.loss[-1] > twice.loss[0]

    def test_fit_returns_the_best_model_it_passed_through(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)

        def fresh() -> Blend:
            blend = Blend(init_all_sources(obs, hsc_centers), obs)
            return blend.parameterize(init_adaprox_component)

        # loss[n] is the likelihood of the model left by n steps: find an n where that
        # model is worse than one passed through before (proximal ADAM is not monotonic).
        reference = fresh()
        reference.fit(30, min_iter=100, keep_best=False)
        loss = np.array(reference.loss)
        worse = [n for n in range(2, 30) if loss[n] < loss[:n].max()]
        assert worse, "the test needs a non-monotonic fit"
        n = worse[0]
        blend = fresh()
        it, log_l = blend.fit(n, min_iter=100)
        assert it == n
        np.testing.assert_allclose(blend.loss, loss[:n], rtol=1e-6)
        assert log_l == pytest.approx(loss[:n].max(), rel=1e-5)
        assert log_l == pytest.approx(blend.log_likelihood, rel=1e-5)
        # Without keeping the best, the same fit ends on the worse model.
        last = fresh()
        assert last.fit(n, min_iter=100, keep_best=False)[1] == pytest.approx(loss[n], rel=1e-5)
        # A warm restart from the restored model goes on improving.
        blend.fit(20, min_iter=100)
        assert blend.log_likelihood >= log_l

    def test_loss_history_records_the_model_before_each_step(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        blend = Blend(init_all_sources(obs, hsc_centers), obs).parameterize(init_adaprox_component)
        start = blend.log_likelihood
        blend.fit(3, min_iter=100)
        assert blend.loss[0] == pytest.approx(start, rel=1e-5)
        before = blend.log_likelihood
        blend.fit(1, min_iter=100)
        assert blend.loss[-1] == pytest.approx(before, rel=1e-5)

    def test_stopping_rule(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        blend = Blend(init_all_sources(obs, hsc_centers), obs).parameterize(init_adaprox_component)
        it, _ = blend.fit(200, e_rel=1e-2, min_iter=5)
        assert blend.converged and it < 200
        loss = blend.loss
        assert abs(loss[-1] - loss[-2]) < 1e-2 * abs(loss[-1])
        # ... and it did not stop earlier (after min_iter).
        for k in range(6, len(loss) - 1):
            assert abs(loss[k] - loss[k - 1]) >= 1e-2 * abs(loss[k])
        # max_iter reached without convergence (the logL still moves by more than 1e-2
        # between iterations 3 and 5 of this fit)
        again = Blend(init_all_sources(obs, hsc_centers), obs).parameterize(init_adaprox_component)
        assert again.fit(5, e_rel=1e-2, min_iter=3)[0] == 5 and not again.converged

    def test_fista_parameterization_fits(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        blend = Blend(init_all_sources(obs, hsc_centers), obs).parameterize(init_fista_component)
        start = blend.log_likelihood
        blend.fit(30, min_iter=30)
        assert blend.log_likelihood > start + 0.1 * abs(start)

    def test_resize_grows_and_shrinks_boxes(self):
        box = Box((10, 10), (50, 60))
        morph = np.zeros((10, 10), dtype=np.float32)
        morph[4:6, 4:9] = 1  # flux reaching col 8 of 10
        comp = FactorizedComponent(
            BANDS, np.ones(3, dtype=np.float32), morph, box, (55, 65), padding=3
        )
        model_box = Box((100, 70), (0, 0))  # the blend box stops at x = 70
        assert comp.resize(model_box)
        # non-zero rows 54-55, cols 64-68, grown by 3 and cut at x = 70
        assert comp.bbox == Box((8, 9), (51, 61))
        assert comp.morph.shape == (8, 9) and comp.morph.sum() == 10
        assert comp.morph[54 - 51, 64 - 61] == 1 and comp.morph[55 - 51, 68 - 61] == 1
        assert not comp.resize(model_box)  # stable


def test_blend_properties(hsc, hsc_centers):
    obs = hsc_observation(hsc)
    sources = init_all_sources(obs, hsc_centers)
    blend = Blend(sources, obs, metadata={"parent_id": 7})
    assert blend.bbox == obs.bbox and blend.bands == tuple(hsc["filters"])
    assert len(blend.components) == sum(s.n_components for s in sources)
    assert blend.metadata == {"parent_id": 7} and blend.it == 0 and blend.loss == []
    # every source starts at its catalogue peak
    assert [s.peak for s in sources] == hsc_centers
    assert not any(s.is_null for s in sources)
    assert Source([]).is_null and Source([]).bbox.is_empty


def test_component_validation():
    morph = radial_morph((5, 5), (2, 2), 1.0)
    comp = FactorizedComponent(("g",), np.ones(1, dtype=np.float32), morph, Box((5, 5), (3, 4)))
    assert comp.peak == (5, 6)  # defaults to the box centre
    with pytest.raises(ValueError, match="spectrum"):
        FactorizedComponent(("g", "r"), np.ones(1), morph, Box((5, 5)))
    with pytest.raises(ValueError, match="morph"):
        FactorizedComponent(("g",), np.ones(1), morph, Box((4, 5)))


def test_fit_spectra_with_clip_is_the_nonnegative_least_squares_solution():
    # Data = source A minus 0.3 x a broad component B: unconstrained least squares gives
    # B a negative spectrum; the non-negative solution (scipy's NNLS on the dense design
    # matrix, the reference) lowers A's flux instead of keeping the flux it had cancelled.
    from scipy.optimize import nnls

    psfs = synthetic_psfs(3)
    renderer = NoDataObservation(psfs, None, BANDS, BOX)
    a = FactorizedComponent(
        BANDS,
        np.array([20.0, 30.0, 25.0]),
        radial_morph((15, 15), (7, 7), 1.5),
        Box((15, 15), (ORIGIN[0] + 10, ORIGIN[1] + 12)),
        (ORIGIN[0] + 17, ORIGIN[1] + 19),
    )
    b = FactorizedComponent(
        BANDS,
        np.array([8.0, 6.0, 4.0]),
        radial_morph((25, 25), (12, 12), 5.0),
        Box((25, 25), (ORIGIN[0] + 8, ORIGIN[1] + 10)),
        (ORIGIN[0] + 20, ORIGIN[1] + 22),
    )
    true_a = a.spectrum.copy()
    rendered = [Blend([Source([c])], renderer).get_model(convolve=True).data for c in (a, b)]
    images = (rendered[0] - 0.3 * rendered[1]).astype(np.float32)
    obs = Observation(images, np.ones_like(images), psfs=psfs, bands=BANDS, bbox=BOX)
    design = [r / c.spectrum[:, None, None] for r, c in zip(rendered, (a, b))]
    sources = [Source([a]), Source([b])]
    Blend(sources, obs).fit_spectra(clip=False)
    assert np.all(b.spectrum < 0)  # the unconstrained solution the old clip started from
    Blend(sources, obs).fit_spectra(clip=True)
    for k in range(len(BANDS)):
        matrix = np.stack([d[k].ravel() for d in design], axis=1).astype(np.float64)
        expected = nnls(matrix, images[k].ravel().astype(np.float64))[0]
        assert expected[1] == 0 and 0 < expected[0] < 0.99 * true_a[k]
        np.testing.assert_allclose(a.spectrum[k], expected[0], rtol=1e-4)
        assert b.spectrum[k] <= b.floor * 1.0001
