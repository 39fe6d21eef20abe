"""Model PSF, difference kernels and the model-to-data convolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from core_helpers import gaussian_psf, hsc_observation, radial_morph, synthetic_psfs
from scipy import signal

from vermilion.core import Convolver, Image, NoDataObservation, Observation, integrated_gaussian
from vermilion.core.psf import difference_kernels, stack_psfs


class TestIntegratedGaussian:
    @pytest.mark.parametrize(("sigma", "size"), [(0.8, 11), (0.5, 5), (1.7, 15), (3.0, 31)])
    def test_normalised_and_symmetric(self, sigma, size):
        psf = integrated_gaussian(sigma, size)
        assert psf.dtype == np.float32 and psf.shape == (size, size)
        assert psf.sum(dtype=np.float64) == pytest.approx(1, abs=1e-6)
        np.testing.assert_array_equal(psf, psf[::-1])
        np.testing.assert_array_equal(psf, psf[:, ::-1])
        np.testing.assert_array_equal(psf, psf.T)
        assert np.unravel_index(np.argmax(psf), psf.shape) == (size // 2, size // 2)

    def test_pixel_integral(self):
        # The centre pixel holds erf(0.5 / (sqrt(2) sigma))^2 of a Gaussian on an
        # infinite grid; on 11 px the truncated tails (< 1e-9) do not matter.
        sigma = 0.8
        psf = integrated_gaussian(sigma, 11)
        expected = math.erf(0.5 / (math.sqrt(2) * sigma)) ** 2
        assert psf[5, 5] == pytest.approx(expected, rel=1e-6)
        # Wide Gaussians approach the sampled one.
        wide = integrated_gaussian(4.0, 41).astype(np.float64)
        y, x = np.indices(wide.shape) - 20
        sampled = np.exp(-(x**2 + y**2) / 32)
        sampled /= sampled.sum()
        assert np.abs(wide - sampled).max() < 1e-2 * sampled.max()

    @pytest.mark.parametrize(("sigma", "size"), [(0, 11), (-1, 11), (0.8, 10), (0.8, 0)])
    def test_bad_arguments(self, sigma, size):
        with pytest.raises(ValueError):
            integrated_gaussian(sigma, size)


class TestDifferenceKernels:
    def test_model_psf_times_kernel_is_psf_hsc(self, hsc):
        obs = hsc_observation(hsc)
        kernels = obs.diff_kernel.kernels.astype(np.float64)
        for b in range(obs.n_bands):
            psf = obs.psfs[b].astype(np.float64)
            rebuilt = signal.convolve(kernels[b], obs.model_psf.astype(np.float64), mode="same")
            # Cutting the kernel to the PSF's 43 x 43 px costs < 1e-4 of the peak.
            assert np.abs(rebuilt - psf).max() < 1e-4 * psf.max()
            assert kernels[b].sum() == pytest.approx(1, abs=1e-4)

    def test_rendering_the_model_psf_gives_the_observed_psf(self, hsc):
        obs = hsc_observation(hsc)
        ph = obs.psfs.shape[-1]
        size = ph + 20
        model = np.zeros((obs.n_bands, size, size), dtype=np.float32)
        c, r = size // 2, obs.model_psf.shape[0] // 2
        model[:, c - r : c + r + 1, c - r : c + r + 1] = obs.model_psf
        for mode in ("fft", "real"):
            rendered = obs.convolve(model, mode=mode)
            cut = rendered[:, c - ph // 2 : c + ph // 2 + 1, c - ph // 2 : c + ph // 2 + 1]
            for b in range(obs.n_bands):
                assert np.abs(cut[b] - obs.psfs[b]).max() < 1e-4 * obs.psfs[b].max()

    def test_gaussian_kernels(self):
        # Integrated Gaussians of sigma s1 and s2 convolve to (almost exactly) one of
        # sigma sqrt(s1^2 + s2^2): the kernel is then a Gaussian of the difference.
        model = integrated_gaussian(0.8, 11)
        psf = integrated_gaussian(2.0, 31)
        kernel = difference_kernels(psf[None], model)[0].astype(np.float64)
        rebuilt = signal.convolve(kernel, model.astype(np.float64), mode="same")
        assert np.abs(rebuilt - psf).max() < 1e-5 * psf.max()
        assert np.unravel_index(np.argmax(kernel), kernel.shape) == (15, 15)
        np.testing.assert_allclose(kernel, kernel.T, atol=1e-7)


def random_fields(rng, shape, n=2):
    return [rng.normal(size=shape).astype(np.float32) for _ in range(n)]


def inner(a, b) -> float:
    return float(np.sum(a.astype(np.float64) * b.astype(np.float64)))


class TestConvolution:
    @pytest.fixture(scope="class")
    @classmethod
    def obs(cls):
        psfs = synthetic_psfs(3)
        images = np.zeros((3, 37, 52), dtype=np.float32)
        return Observation(images, np.ones_like(images), psfs=psfs, bands=("g", "r", "i"))

    @pytest.mark.parametrize("mode", ["fft", "real"])
    @pytest.mark.parametrize("shape", [(37, 52), (11, 9), (64, 64)])
    def test_grad_is_the_adjoint(self, obs, mode, shape):
        rng = np.random.default_rng(1)
        x, y = random_fields(rng, (3, *shape))
        ax = obs.convolve(x, mode=mode)
        aty = obs.convolve(y, mode=mode, grad=True)
        assert ax.shape == x.shape and aty.shape == y.shape
        lhs, rhs = inner(ax, y), inner(x, aty)
        assert lhs == pytest.approx(rhs, rel=1e-5)
        # Per band too (the kernels differ per band).
        for b in range(3):
            assert inner(ax[b], y[b]) == pytest.approx(inner(x[b], aty[b]), rel=1e-5)

    def test_adjoint_is_not_the_forward(self, obs):
        # The kernels are not symmetric (an elliptical, off-axis-free PSF is, so
        # shift one): the adjoint must flip them, not reuse them.
        psfs = synthetic_psfs(3)
        psfs = np.roll(psfs, 2, axis=-1)
        images = np.zeros((3, 30, 30), dtype=np.float32)
        shifted = Observation(images, np.ones_like(images), psfs=psfs, bands=("g", "r", "i"))
        rng = np.random.default_rng(2)
        x, y = random_fields(rng, (3, 30, 30))
        fwd, adj = shifted.convolve(x), shifted.convolve(x, grad=True)
        assert np.abs(fwd - adj).max() > 0.1 * np.abs(fwd).max()
        assert inner(shifted.convolve(x), y) == pytest.approx(
            inner(x, shifted.convolve(y, grad=True)), rel=1e-5
        )

    @pytest.mark.parametrize("grad", [False, True])
    def test_fft_matches_real_space(self, obs, grad):
        rng = np.random.default_rng(3)
        model = np.stack(
            [radial_morph((37, 52), (18, 20), 3.0) * s for s in (1.0, 3.0, 0.5)]
        ) + 0.05 * rng.random((3, 37, 52)).astype(np.float32)
        fft = obs.convolve(model, mode="fft", grad=grad)
        real = obs.convolve(model, mode="real", grad=grad)
        assert fft.dtype == real.dtype == np.float32
        assert np.abs(fft - real).max() <= 1e-4 * np.abs(real).max()

    @pytest.mark.parametrize("shape", [(5, 7), (11, 9), (1, 30)])
    def test_images_smaller_than_the_kernel(self, obs, shape):
        # The 21 x 21 px kernels do not fit in these images: the FFT must still be exact.
        rng = np.random.default_rng(5)
        model = rng.random((3, *shape)).astype(np.float32)
        for grad in (False, True):
            fft = obs.convolve(model, mode="fft", grad=grad)
            real = obs.convolve(model, mode="real", grad=grad)
            assert np.abs(fft - real).max() <= 1e-5 * np.abs(real).max()

    def test_fft_matches_real_space_on_hsc(self, hsc):
        obs = hsc_observation(hsc)
        model = np.abs(hsc["images"]).astype(np.float32)
        fft = obs.convolve(model, mode="fft")
        real = obs.convolve(model, mode="real")
        assert np.abs(fft - real).max() <= 1e-4 * np.abs(real).max()

    def test_no_wrap_around(self, obs):
        # A point at one edge must not leak to the opposite edge.
        model = np.zeros((3, 37, 52), dtype=np.float32)
        model[:, 18, 0] = 1
        out = obs.convolve(model)
        assert np.abs(out[:, :, -15:]).max() < 1e-6
        # What stays in the image is the half of the kernel right of (and on) its centre.
        kernels = obs.diff_kernel.kernels
        r = kernels.shape[-1] // 2
        np.testing.assert_allclose(
            out.sum(axis=(1, 2)), kernels[:, :, r:].sum(axis=(1, 2)), rtol=1e-5
        )

    def test_image_in_image_out(self, obs):
        img = Image(np.ones((3, 10, 12), dtype=np.float32), ("g", "r", "i"), yx0=(4, 5))
        out = obs.convolve(img)
        assert isinstance(out, Image) and out.bbox == img.bbox and out.bands == img.bands
        with pytest.raises(ValueError, match="bands"):
            obs.convolve(np.ones((2, 10, 12), dtype=np.float32))
        with pytest.raises(ValueError, match="mode"):
            obs.convolve(img, mode="wavelet")

    def test_float64_input_is_kept_in_float64_by_the_convolver(self, obs):
        conv: Convolver = obs.diff_kernel
        x = np.random.default_rng(4).normal(size=(3, 20, 20))
        assert conv(x).dtype == np.float64
        np.testing.assert_allclose(conv(x), conv(x.astype(np.float32)), atol=1e-5)

    def test_convolve_plane_matches_per_band(self, obs):
        plane = radial_morph((25, 31), (12, 14), 2.0)
        full = obs.diff_kernel.convolve_plane(plane)
        stacked = obs.diff_kernel(np.repeat(plane[None], 3, axis=0))
        np.testing.assert_allclose(full, stacked, atol=1e-6)

    def test_no_data_observation_renders_like_the_data_one(self, obs):
        nodata = NoDataObservation(synthetic_psfs(3), None, bands=("g", "r", "i"), bbox=obs.bbox)
        model = np.stack([radial_morph((37, 52), (18, 20), 3.0)] * 3)
        np.testing.assert_array_equal(nodata.convolve(model), obs.convolve(model))
        np.testing.assert_array_equal(nodata.render(model), obs.render(model))


def test_psf_gaussian_helper_is_normalised():
    assert gaussian_psf(1.5).sum() == pytest.approx(1, rel=1e-6)


def test_stack_psfs_centres_smaller_images():
    small = np.arange(9, dtype=np.float64).reshape(3, 3)
    large = np.ones((5, 7))
    out = stack_psfs([small, large])
    assert out.shape == (2, 5, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], large)
    # the 3 x 3 image sits in the middle, its centre on the stack's centre
    np.testing.assert_array_equal(out[0, 1:4, 2:5], small)
    assert out[0].sum() == small.sum() and out[0, 2, 3] == small[1, 1]
