"""Tests of vermilion.sim: simulated patches and their truth."""

import subprocess
import sys

import numpy as np
import pytest

from vermilion.core import MASK_PLANES
from vermilion.sim import simulate_blend, simulate_patch
from vermilion.sim.survey import FLUX_ZERO_POINT, band_parameters


@pytest.fixture(scope="module")
def noiseless():
    # border keeps every stamp inside the patch for this seed (checked in the test)
    return simulate_patch(
        (200, 200), density=100, seed=0, noise=False, border=60, return_source_images=True
    )


@pytest.fixture(scope="module")
def noisy():
    return simulate_patch((160, 160), density=100, seed=5, return_source_images=True)


def flux_matrix(patch):
    return np.stack([patch.truth_array[f"flux_{b}"] for b in patch.bands], axis=1)


def test_noiseless_total_flux_equals_truth(noiseless):
    patch = noiseless
    assert patch.n_sources > 20
    assert all(s.box & patch.bbox == s.box for s in patch.source_images)
    total = patch.images.sum(axis=(1, 2), dtype=np.float64)
    truth = flux_matrix(patch).sum(axis=0)
    np.testing.assert_allclose(total, truth, rtol=1e-4)


def test_each_stamp_holds_its_truth_flux(noisy):
    sums = np.array([s.image.sum(axis=(1, 2), dtype=np.float64) for s in noisy.source_images])
    np.testing.assert_allclose(sums, flux_matrix(noisy), rtol=1e-5)
    ids = [s.id for s in noisy.source_images]
    assert ids == list(noisy.truth_array["id"])


def test_image_is_sum_of_clipped_stamps():
    # sources straddle the edges here: the image holds exactly the in-image part of each stamp
    patch = simulate_patch(
        (96, 96), bands="gr", density=200, seed=3, noise=False, return_source_images=True
    )
    np.testing.assert_array_equal(patch.images, patch.noiseless_image())


def test_seed_reproduces_bit_for_bit():
    kw = dict(bands="gri", density=100, bad_pixel_fraction=0.01, no_data=True, psf_variation=True)
    a = simulate_patch((128, 96), seed=11, **kw)
    b = simulate_patch((128, 96), seed=11, **kw)
    for name in ("images", "variance", "mask", "psfs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.truth_array.tobytes() == b.truth_array.tobytes()
    c = simulate_patch((128, 96), seed=12, **kw)
    assert not np.array_equal(a.images, c.images)


def test_band_subset_is_the_same_scene():
    full = simulate_patch((96, 96), bands="ugrizy", density=120, seed=4)
    sub = simulate_patch((96, 96), bands="gri", density=120, seed=4)
    idx = [full.bands.index(b) for b in "gri"]
    np.testing.assert_array_equal(sub.images, full.images[idx])
    np.testing.assert_array_equal(sub.truth_array["x"], full.truth_array["x"])
    np.testing.assert_array_equal(sub.truth_array["flux_r"], full.truth_array["flux_r"])


def test_density_zero_is_empty_and_pure_noise():
    patch = simulate_patch((256, 256), density=0, seed=1, return_source_images=True)
    assert patch.n_sources == 0
    assert len(patch.truth) == 0
    assert patch.source_images == []
    std = patch.images.std(axis=(1, 2))
    np.testing.assert_allclose(std, patch.noise_rms, rtol=0.02)
    np.testing.assert_allclose(patch.variance[:, 0, 0], patch.noise_rms**2, rtol=1e-5)
    assert np.all(patch.mask == 0)


def test_units_and_noise_follow_surveycodex():
    patch = simulate_patch((64, 64), bands="i", density=0, seed=0, depth="10yr")
    p = band_parameters("i", 10)[0]
    assert patch.pixel_scale == pytest.approx(0.2)
    assert patch.zero_points[0] == FLUX_ZERO_POINT
    assert patch.noise_rms[0] == pytest.approx(p.sky_rms)
    # i-band 10-year point-source depth close to the LSST design figure (26.8)
    assert 26.3 < patch.depth_5sigma[0] < 27.2
    # one year is shallower by 2.5 log10(sqrt(10)) = 1.25 mag
    one = simulate_patch((64, 64), bands="i", density=0, seed=0, depth=1)
    assert patch.depth_5sigma[0] - one.depth_5sigma[0] == pytest.approx(1.25, abs=1e-6)


def test_psfs_normalised_centred_and_narrower_in_red():
    patch = simulate_patch((64, 64), density=0, seed=0)
    psfs = patch.psfs
    assert psfs.shape == (6, 41, 41) and psfs.dtype == np.float32
    np.testing.assert_allclose(psfs.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    yy, xx = np.mgrid[:41, :41]
    for p in psfs:
        assert np.unravel_index(p.argmax(), p.shape) == (20, 20)
        assert (p * yy).sum() == pytest.approx(20, abs=1e-4)
        assert (p * xx).sum() == pytest.approx(20, abs=1e-4)
    peaks = psfs.max(axis=(1, 2))
    assert np.all(np.diff(patch.psf_fwhm) < 0) and np.all(np.diff(peaks) > 0)


def test_psf_variation_is_slow_and_reproducible():
    patch = simulate_patch((400, 400), bands="r", density=0, seed=2, psf_variation=0.1)
    corner = patch.psf_at(0, 0)
    other = patch.psf_at(399, 399)
    centre = patch.psf_at(200, 200)
    assert corner.shape == (1, 41, 41)
    assert not np.allclose(corner, other)
    ratio = corner.max() / centre.max()
    assert 0.7 < ratio < 1.4
    np.testing.assert_allclose(corner.sum(), 1.0, rtol=1e-6)
    const = simulate_patch((400, 400), bands="r", density=0, seed=2)
    np.testing.assert_array_equal(const.psf_at(0, 0), const.psfs)


def test_mask_planes():
    patch = simulate_patch(
        (200, 200), bands="gr", density=50, seed=7, bad_pixel_fraction=0.01, no_data=0.2
    )
    bad = (patch.mask & MASK_PLANES["BAD"]) != 0
    nod = (patch.mask & MASK_PLANES["NO_DATA"]) != 0
    edge = (patch.mask & MASK_PLANES["EDGE"]) != 0
    assert bad[0].mean() == pytest.approx(0.01, abs=0.002)
    assert nod[0].mean() == pytest.approx(0.2, abs=0.01)
    assert np.all(patch.images[nod] == 0) and np.all(np.isinf(patch.variance[nod]))
    assert np.all(np.isfinite(patch.variance[~nod]))
    assert edge.any() and not (edge & nod).any()
    bad_only = bad & ~nod
    assert np.allclose(patch.images[0][bad_only[0]], 100 * patch.noise_rms[0])
    assert set(MASK_PLANES.values()) == {1, 2, 4, 8}
    # sources whose centre has no data are flagged
    t = patch.truth_array
    iy, ix = np.round(t["y"]).astype(int), np.round(t["x"]).astype(int)
    np.testing.assert_array_equal(t["in_no_data"], nod[0][iy.clip(0, 199), ix.clip(0, 199)])


def test_bright_star_saturates():
    patch = simulate_blend(1, bands="r", mags=[14.0], is_star=[True], seed=0)
    sat = (patch.mask[0] & MASK_PLANES["SAT"]) != 0
    y, x = np.round(patch.truth_array["y"][0]), np.round(patch.truth_array["x"][0])
    assert sat[int(y), int(x)]
    faint = simulate_blend(1, bands="r", mags=[20.0], is_star=[True], seed=0)
    assert not (faint.mask & MASK_PLANES["SAT"]).any()


def test_population_is_realistic():
    patch = simulate_patch((600, 600), bands="gi", density=100, seed=9)
    t = patch.truth_array
    area = (600 * 0.2 / 60) ** 2
    assert abs(len(t) - 100 * area) < 5 * np.sqrt(100 * area)
    gal = t[~t["is_star"]]
    assert 0.05 < t["is_star"].mean() < 0.15
    # counts rise towards the depth; sizes shrink with magnitude
    mid = np.median(gal["mag_i"])
    assert (gal["mag_i"] > 24).sum() > 3 * (gal["mag_i"] < 23).sum()
    bright = gal[gal["mag_i"] < mid]
    faint = gal[gal["mag_i"] >= mid]
    assert np.median(bright["disk_hlr"]) > np.median(faint["disk_hlr"])
    # bulges redder than disks (g - i)
    bulge_gi = -2.5 * np.log10(gal["bulge_flux_g"] / gal["bulge_flux_i"])
    disk_gi = -2.5 * np.log10(
        (gal["flux_g"] - gal["bulge_flux_g"]) / (gal["flux_i"] - gal["bulge_flux_i"])
    )
    assert np.median(bulge_gi - disk_gi) > 0.3
    assert np.all(gal["bulge_n"] >= 3.5) and np.all(gal["bulge_n"] <= 4.5)
    assert np.all(np.hypot(gal["e1"], gal["e2"]) < 0.8)
    # truth columns the metrics use
    for c in ("snr", "snr_g", "blendedness", "in_no_data"):
        assert c in t.dtype.names
    assert np.all((t["blendedness"] >= 0) & (t["blendedness"] <= 1))


def test_blend_separations():
    seps = [5.0, 12.0]
    patch = simulate_blend(3, separations=seps, seed=3, noise=False)
    t = patch.truth_array
    d = np.hypot(t["x"][1:] - t["x"][0], t["y"][1:] - t["y"][0])
    np.testing.assert_allclose(d, seps)
    assert abs(t["x"][0] - 31.5) <= 0.5 and abs(t["y"][0] - 31.5) <= 0.5
    assert patch.images.shape == (6, 64, 64)
    assert len(patch.source_images) == 3
    assert t["blendedness"][1] > t["blendedness"][2]
    explicit = simulate_blend(
        2, positions=[(10.0, 10.0), (40.0, 50.0)], mags=[21, 22], is_star=[False, True], seed=1
    )
    np.testing.assert_allclose(explicit.truth_array["mag_i"], [21, 22])
    assert list(explicit.truth_array["is_star"]) == [False, True]
    assert simulate_blend(0, seed=1).n_sources == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"shape": (-64, 64)}, "shape"),
        ({"shape": (64,)}, "shape"),
        ({"bands": "grq"}, "bands"),
        ({"bands": ""}, "bands"),
        ({"density": -1}, "density"),
        ({"density": float("nan")}, "density"),
        ({"depth": -2}, "depth"),
        ({"depth": "forever"}, "depth"),
        ({"seed": -1}, "seed"),
        ({"bad_pixel_fraction": 1.5}, "bad_pixel_fraction"),
        ({"no_data": -0.1}, "no_data"),
        ({"psf_model": "airy"}, "psf_model"),
        ({"psf_variation": -0.1}, "psf_variation"),
        ({"mag_range": (25, 20)}, "mag_range"),
        ({"star_fraction": 2}, "star_fraction"),
        ({"border": 40}, "border"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        simulate_patch(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_sources": -1}, "n_sources"),
        ({"n_sources": 3, "separations": [1.0]}, "separations"),
        ({"n_sources": 2, "separations": [-3.0]}, "separations"),
        ({"n_sources": 2, "mags": [20.0]}, "mags"),
        ({"n_sources": 2, "positions": [(1, 2)]}, "positions"),
    ],
)
def test_blend_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        simulate_blend(**kwargs)


def test_exposure_view_and_truth_table(noisy):
    exp = noisy.exposure("r")
    b = noisy.bands.index("r")
    assert exp.image is not None and np.shares_memory(exp.image, noisy.images)
    np.testing.assert_array_equal(exp.psf, noisy.psfs[b])
    with pytest.raises(ValueError, match="band"):
        noisy.exposure("q")
    t = noisy.truth
    assert t["id"].dtype == np.int64 and len(t) == noisy.n_sources
    assert str(t["flux_r"].unit) == "nJy"


def test_import_is_light():
    code = (
        "import sys, vermilion.sim, vermilion.sim.metrics;"
        "heavy = [m for m in ('galsim', 'astropy', 'surveycodex', 'matplotlib', 'dask')"
        " if m in sys.modules]; print(heavy); assert not heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_kolmogorov_psf_and_varying_psf_keep_fluxes():
    patch = simulate_patch(
        (128, 128),
        density=150,
        seed=2,
        psf_model="kolmogorov",
        psf_variation=True,
        noise=False,
        return_source_images=True,
    )
    sums = np.array([s.image.sum(axis=(1, 2), dtype=np.float64) for s in patch.source_images])
    np.testing.assert_allclose(sums, flux_matrix(patch), rtol=1e-5)
    np.testing.assert_allclose(patch.psfs.sum(axis=(1, 2)), 1.0, rtol=1e-6)
