"""Bad input: masked pixels, broken PSFs, peaks off the image, diverging fits, no data."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
from core_helpers import hsc_observation, synthetic_psfs

from vermilion.core import (
    Blend,
    Box,
    Chi2InitParameters,
    FitDivergenceError,
    NoDataObservation,
    Observation,
    init_adaprox_component,
    init_all_sources,
    init_main_source,
    weight_sources,
)

BANDS = ("g", "r", "i")


def clean_data(shape=(30, 32), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 1, (3, *shape)).astype(np.float32)
    variance = rng.uniform(0.5, 2, (3, *shape)).astype(np.float32)
    return images, variance


class TestBadPixels:
    def test_non_finite_pixels_and_bad_variance_get_zero_weight(self):
        images, variance = clean_data()
        images[0, 3, 4] = np.nan
        images[1, 5, 6] = np.inf
        images[2, 7, 8] = -np.inf
        variance[0, 10, 10] = 0
        variance[1, 11, 11] = -1
        variance[2, 12, 12] = np.nan
        variance[2, 13, 13] = np.inf
        images[2, 13, 13] = np.nan  # bad twice: counted once
        bad = [(0, 3, 4), (1, 5, 6), (2, 7, 8), (0, 10, 10), (1, 11, 11), (2, 12, 12), (2, 13, 13)]
        with pytest.warns(RuntimeWarning, match=r"^7 pixels") as record:
            obs = Observation(images, variance, psfs=synthetic_psfs(3), bands=BANDS)
        assert "'g': 2" in str(record[0].message) and "'i': 3" in str(record[0].message)
        mask = np.zeros(images.shape, dtype=bool)
        for p in bad:
            mask[p] = True
        assert np.all(obs.weights.data[mask] == 0)
        assert np.all(obs.images.data[mask] == 0)
        np.testing.assert_allclose(obs.weights.data[~mask], 1 / variance[~mask], rtol=1e-6)
        # the noise is estimated from good pixels only and every array is finite
        assert np.all(np.isfinite(obs.noise_rms))
        assert np.all(np.isfinite(obs.images.data)) and np.all(np.isfinite(obs.weights.data))
        assert np.isfinite(obs.log_likelihood(np.zeros(obs.shape, dtype=np.float32)))

    def test_bad_weights(self):
        images, variance = clean_data()
        weights = 1 / variance
        weights[1, 2, 2] = np.nan
        weights[1, 3, 3] = -5
        with pytest.warns(RuntimeWarning, match=r"^2 pixels"):
            obs = Observation(
                images, variance, weights=weights, psfs=synthetic_psfs(3), bands=BANDS
            )
        assert obs.weights.data[1, 2, 2] == 0 and obs.weights.data[1, 3, 3] == 0
        assert obs.weights.data[1, 4, 4] == pytest.approx(weights[1, 4, 4])

    def test_clean_data_does_not_warn(self):
        images, variance = clean_data()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Observation(images, variance, psfs=synthetic_psfs(3), bands=BANDS)

    def test_fit_with_masked_pixels_stays_finite(self, hsc, hsc_centers):
        data = dict(hsc)
        images, variance = data["images"].copy(), data["variance"].copy()
        images[2, 30:34, 10:20] = np.nan
        variance[0, :3] = 0
        data["images"], data["variance"] = images, variance
        with pytest.warns(RuntimeWarning, match=r"^184 pixels"):
            obs = hsc_observation(data)
        blend = Blend(init_all_sources(obs, hsc_centers), obs)
        blend.parameterize(partial(init_adaprox_component, bg_thresh=0.25))
        blend.fit(20, min_iter=20)
        assert np.all(np.isfinite(blend.loss)) and blend.loss[-1] > blend.loss[0]
        weight_sources(blend)
        for source in blend.sources:
            assert np.all(np.isfinite(source.flux.data))

    def test_shape_mismatches(self):
        images, variance = clean_data()
        psfs = synthetic_psfs(3)
        with pytest.raises(ValueError, match="variance"):
            Observation(images, variance[:, :-1], psfs=psfs, bands=BANDS)
        with pytest.raises(ValueError, match="weights"):
            Observation(images, variance, weights=variance[:2], psfs=psfs, bands=BANDS)
        with pytest.raises(ValueError, match="band names"):
            Observation(images, variance, psfs=psfs, bands=("g", "r"))
        with pytest.raises(ValueError, match="bbox"):
            Observation(images, variance, psfs=psfs, bands=BANDS, bbox=Box((3, 3)))


class TestBadPsfs:
    @pytest.mark.parametrize("band", [0, 1, 2])
    @pytest.mark.parametrize("kind", ["missing", "zero", "nan", "inf"])
    def test_a_bad_psf_names_its_band(self, kind, band):
        images, variance = clean_data()
        psfs = list(synthetic_psfs(3))
        if kind == "missing":
            psfs[band] = None
        elif kind == "zero":
            psfs[band] = np.zeros_like(psfs[band])
        else:
            psfs[band] = psfs[band].copy()
            psfs[band][10, 10] = np.nan if kind == "nan" else np.inf
        name = BANDS[band]
        with pytest.raises(ValueError, match=f"band '{name}'"):
            Observation(images, variance, psfs=psfs, bands=BANDS)
        with pytest.raises(ValueError, match=f"band '{name}'"):
            NoDataObservation(psfs, None, BANDS, Box(images.shape[-2:]))

    def test_too_few_psfs_name_the_missing_bands(self):
        images, variance = clean_data()
        with pytest.raises(ValueError, match=r"\('i',\)"):
            Observation(images, variance, psfs=synthetic_psfs(3)[:2], bands=BANDS)
        with pytest.raises(ValueError, match="No PSF"):
            Observation(images, variance, psfs=None, bands=BANDS)

    def test_even_sized_psf(self):
        images, variance = clean_data()
        psfs = list(synthetic_psfs(3))
        psfs[1] = psfs[1][:-1, :-1]
        with pytest.raises(ValueError, match=r"band 'r'.*odd"):
            Observation(images, variance, psfs=psfs, bands=BANDS)

    def test_psfs_of_different_sizes_are_accepted_and_normalised(self):
        images, variance = clean_data()
        psfs = list(synthetic_psfs(3))
        psfs[0] = 3 * psfs[0][2:-2, 2:-2]
        obs = Observation(images, variance, psfs=psfs, bands=BANDS)
        assert obs.psfs.shape == (3, 21, 21)
        np.testing.assert_allclose(obs.psfs.sum(axis=(1, 2)), 1, rtol=1e-6)


class TestPeaksOutside:
    @pytest.fixture(scope="class")
    @classmethod
    def obs(cls, hsc):
        # Put the blend somewhere in a parent image: peaks are in parent coordinates.
        return hsc_observation(hsc, bbox=Box((58, 48), (1000, 2000)))

    @pytest.mark.parametrize(
        "peak", [(999, 2010), (1058, 2010), (1020, 1999), (1020, 2048), (10, 10)]
    )
    def test_init_main_source(self, obs, peak):
        init = Chi2InitParameters(obs)
        with pytest.raises(ValueError, match=rf"\({peak[0]}, {peak[1]}\)"):
            init_main_source(peak, init)

    def test_init_all_sources(self, obs, hsc_centers):
        centers = [(y + 1000, x + 2000) for y, x in hsc_centers]
        sources = init_all_sources(obs, centers)
        assert [s.peak for s in sources] == centers
        with pytest.raises(ValueError, match=r"\(1070, 2003\)"):
            init_all_sources(obs, [*centers[:3], (1070, 2003)])
        with pytest.raises(ValueError, match=r"peak \(nan, 2003\)"):
            init_all_sources(obs, [(float("nan"), 2003)])


class TestDivergence:
    def test_non_finite_model_stops_the_fit_and_names_the_source(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        blend = Blend(init_all_sources(obs, hsc_centers), obs)
        blend.parameterize(partial(init_adaprox_component, bg_thresh=0.25))
        blend.fit(5, min_iter=100)
        assert blend.it == 5
        culprit = 3
        poisoned = blend.sources[culprit].components[0]
        poisoned.spectrum[1] = np.nan
        before = [
            (
                c.bbox,
                c.spectrum.copy(),
                c.morph.copy(),
                [p.helpers["m"].copy() for p in c.parameters],
            )
            for c in blend.components
        ]
        loss = list(blend.loss)
        with pytest.raises(FitDivergenceError) as info:
            blend.fit(10, min_iter=100)
        err = info.value
        assert err.iteration == 5 and err.sources == [culprit]
        assert "iteration 5" in str(err) and f"[{culprit}]" in str(err)
        # The blend keeps its state: no iteration counted, no loss recorded, no array moved.
        assert blend.it == 5 and blend.loss == loss
        for c, (bbox, spectrum, morph, moments) in zip(blend.components, before):
            assert c.bbox == bbox
            np.testing.assert_array_equal(c.spectrum, spectrum)  # NaN == NaN here
            np.testing.assert_array_equal(c.morph, morph)
            for p, m in zip(c.parameters, moments):
                np.testing.assert_array_equal(p.helpers["m"], m)

    @pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
    @pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
    def test_divergence_mid_fit_returns_to_the_best_finite_model(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        blend = Blend(init_all_sources(obs, hsc_centers), obs)
        blend.parameterize(init_adaprox_component)
        blend.fit(6, min_iter=100)
        # An infinite step poisons source 2's morphology at the first update of the next call.
        blend.sources[2].components[0]._morph._step = np.inf
        with pytest.raises(FitDivergenceError) as info:
            blend.fit(10, min_iter=100)
        assert info.value.iteration == 7 and 2 in info.value.sources
        # The blend is back on the model the second call started from: finite, and its
        # likelihood is the one recorded for it.
        for c in blend.components:
            assert np.all(np.isfinite(c.morph)) and np.all(np.isfinite(c.spectrum))
        assert blend.log_likelihood == pytest.approx(blend.loss[6], rel=1e-5)

    @pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
    def test_inf_in_a_morphology(self, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        blend = Blend(init_all_sources(obs, hsc_centers), obs)
        blend.parameterize(init_adaprox_component)
        blend.fit(2, min_iter=100)
        comp = blend.sources[5].components[-1]
        comp.morph[comp.morph.shape[0] // 2, comp.morph.shape[1] // 2] = np.inf
        with pytest.raises(FitDivergenceError, match="iteration 2") as info:
            blend.fit(3)
        assert info.value.sources == [5]
        assert isinstance(info.value, ArithmeticError)


class TestNoData:
    @pytest.fixture(scope="class")
    @classmethod
    def blends(cls, hsc, hsc_centers):
        obs = hsc_observation(hsc)
        sources = init_all_sources(obs, hsc_centers)
        nodata = NoDataObservation(hsc["psfs"], None, tuple(hsc["filters"]), obs.bbox)
        return Blend(sources, obs), Blend(sources, nodata)

    def test_renders_like_the_data_observation(self, blends):
        with_data, without = blends
        np.testing.assert_array_equal(
            without.get_model(convolve=True).data, with_data.get_model(convolve=True).data
        )
        model = with_data.get_model().data
        np.testing.assert_array_equal(
            without.observation.convolve(model, mode="real"),
            with_data.observation.convolve(model, mode="real"),
        )
        assert without.observation.images.data.shape == with_data.observation.shape
        assert np.all(without.observation.noise_rms == 0)

    def test_cannot_be_fitted(self, blends):
        _, blend = blends
        with pytest.raises(ValueError, match="no image data"):
            blend.fit(5)
        with pytest.raises(ValueError, match="no image data"):
            blend.fit_spectra()
        with pytest.raises(ValueError, match="no image data"):
            blend.log_likelihood  # noqa: B018
        with pytest.raises(ValueError, match="no image data"):
            blend.observation.log_likelihood(blend.get_model())
        with pytest.raises(ValueError, match="no image data"):
            weight_sources(blend)
        with pytest.raises(ValueError, match="no image data"):
            blend.observation.weights  # noqa: B018
        with pytest.raises(ValueError, match="without image data"):
            init_all_sources(blend.observation, [(20, 20)])
        assert blend.it == 0 and blend.loss == []
