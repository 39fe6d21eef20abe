"""Bad or degenerate input gives a correct (possibly empty) result or a clear error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vermilion.core import MASK_PLANES
from vermilion.core.bbox import Box
from vermilion.detect import SourceCatalog, detect_sources

BAD, SAT, NO_DATA, EDGE = (MASK_PLANES[k] for k in ("BAD", "SAT", "NO_DATA", "EDGE"))


def gaussian(shape, y, x, sigma, flux):
    yy, xx = np.indices(shape)
    return (
        flux * np.exp(-0.5 * ((yy - y) ** 2 + (xx - x) ** 2) / sigma**2) / (2 * math.pi * sigma**2)
    )


def scene(shape=(64, 64), bands=3, seed=0, sources=((32, 32, 500.0),)):
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 1, (bands, *shape)).astype(np.float32)
    for y, x, f in sources:
        images += gaussian(shape, y, x, 1.5, f)[None].astype(np.float32)
    return images, np.ones((bands, *shape), np.float32)


def test_all_nan_band_is_ignored():
    images, variance = scene(sources=((20, 20, 400.0), (45, 40, 400.0)))
    ref = detect_sources(images[1:], variance[1:], psf_fwhm=3.5)
    images[0] = np.nan
    cat = detect_sources(images, variance, psf_fwhm=3.5)
    assert len(cat) == len(ref) == 2
    np.testing.assert_array_equal(cat["peak_y"], ref["peak_y"])
    np.testing.assert_array_equal(cat["peak_x"], ref["peak_x"])


def test_all_bands_nan_gives_empty_catalog():
    images, variance = scene()
    images[:] = np.nan
    cat = detect_sources(images, variance, psf_fwhm=3.5)
    assert isinstance(cat, SourceCatalog) and len(cat) == 0
    assert "footprint" in cat.colnames


def test_zero_or_bad_variance():
    images, variance = scene()
    variance[:] = 0
    assert len(detect_sources(images, variance, psf_fwhm=3.5)) == 0
    variance[:] = np.inf
    assert len(detect_sources(images, variance, psf_fwhm=3.5)) == 0
    variance[:] = -1
    assert len(detect_sources(images, variance, psf_fwhm=3.5)) == 0


def test_no_sources():
    images, variance = scene((200, 200), sources=())
    cat = detect_sources(images, variance, psf_fwhm=3.5)
    assert len(cat) == 0
    cat = detect_sources(np.zeros((2, 30, 30)), np.ones((2, 30, 30)), psf_fwhm=3.5)
    assert len(cat) == 0


def test_one_pixel_footprint():
    images = np.zeros((1, 20, 20), np.float32)
    images[0, 7, 11] = 50.0
    cat = detect_sources(
        images, np.ones_like(images), smooth=False, grow=0, background=None, yx0=(100, 0)
    )
    assert len(cat) == 1
    fp = cat[0].footprint
    assert fp.area == 1 and cat[0]["footprint_area"] == 1
    assert fp.bbox == Box((1, 1), (107, 11))
    assert cat[0].peak == (107, 11)
    assert cat[0]["peak_snr"] == pytest.approx(50.0)


def test_footprint_touching_every_edge():
    h, w = 40, 50
    images, variance = scene((h, w), sources=((20, 25, 0.0),))
    images += 30.0  # a source filling the whole image
    cat = detect_sources(images, variance, psf_fwhm=3.5, background=None)
    assert len(cat) == 1
    rec = cat[0]
    assert rec["detect_edge"]
    assert rec.footprint.bbox == Box((h, w))
    assert rec.footprint.area == h * w
    assert rec["deblend_nPeaks"] >= 1


def test_sources_at_edges_are_flagged():
    images, variance = scene((60, 60), sources=((0, 30, 600.0), (30, 30, 600.0), (59, 59, 600.0)))
    cat = detect_sources(images, variance, psf_fwhm=3.5)
    assert len(cat) == 3
    edge = {tuple(rec.peak): bool(rec["detect_edge"]) for rec in cat}
    assert edge == {(0, 30): True, (30, 30): False, (59, 59): True}


def test_fully_masked_region():
    images, variance = scene((80, 80), sources=((20, 20, 600.0), (60, 60, 600.0)))
    mask = np.zeros((80, 80), np.int32)
    mask[45:75, 45:75] = BAD  # hides the second source completely
    images[:, 45:75, 45:75] = 1e6  # garbage under the mask
    cat = detect_sources(images, variance, mask, psf_fwhm=3.5)
    assert len(cat) == 1
    assert cat[0].peak == (20, 20)
    # masked everywhere: nothing
    full = np.full((80, 80), BAD, np.int32)
    assert len(detect_sources(images, variance, full, psf_fwhm=3.5)) == 0


def test_no_data_region_sets_masked_and_edge():
    images, variance = scene((80, 80), sources=((40, 40, 3000.0),))
    mask = np.zeros((3, 80, 80), np.int32)
    mask[:, :, 41:] = NO_DATA
    cat = detect_sources(images, variance, mask, psf_fwhm=3.5)
    assert len(cat) == 1
    rec = cat[0]
    assert rec["detect_edge"]
    assert rec["masked_fraction"] > 0.25 and rec["deblend_masked"]
    relaxed = detect_sources(images, variance, mask, psf_fwhm=3.5, mask_limits={"NO_DATA": 0.9})
    assert not relaxed[0]["deblend_masked"]


def test_saturated_core_gets_one_peak():
    images, variance = scene((80, 80), sources=((40, 40, 200000.0),))
    mask = np.zeros((3, 80, 80), np.int32)
    yy, xx = np.indices((80, 80))
    core = (yy - 40) ** 2 + (xx - 40) ** 2 <= 16
    mask[:, core] = SAT
    images[:, core] = 0.0  # saturated pixels carry no useful value
    cat = detect_sources(images, variance, mask, psf_fwhm=3.5)
    assert len(cat) == 1
    fp = cat[0].footprint
    assert fp.n_peaks == 1
    assert abs(fp.peaks["y"][0] - 40) <= 1 and abs(fp.peaks["x"][0] - 40) <= 1
    assert fp.contains((40, 40))  # the saturated core belongs to the footprint


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variance": np.ones((2, 10, 10))}, "variance shape"),
        ({"mask": np.zeros((5, 5), np.int32)}, "mask shape"),
        ({"mask": np.zeros((3, 10, 10))}, "integer"),
        ({"bands": "gr"}, "band names"),
        ({"thresh": 0}, "thresh"),
        ({"thresh": np.nan}, "thresh"),
        ({"psf_fwhm": -1}, "psf_fwhm"),
        ({"grow": -2}, "grow"),
        ({"bad_mask_bits": ("BAD", "NOPE")}, "unknown mask plane"),
        ({"mask_limits": {"NOPE": 0.1}}, "unknown mask plane"),
        ({"tract": 1 << 16}, "tract"),
        ({"background": "median"}, "background"),
        ({"psfs": np.zeros((3, 5, 5))}, "PSF"),
        ({"psfs": np.ones((2, 5, 5))}, "PSF images"),
    ],
)
def test_clear_errors(kwargs, match):
    args = {"images": np.zeros((3, 10, 10)), "variance": np.ones((3, 10, 10))}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        detect_sources(**args)


def test_wrong_dimensions():
    with pytest.raises(ValueError, match="images must be"):
        detect_sources(np.zeros(10), np.ones(10))
    with pytest.raises(ValueError, match="images must be"):
        detect_sources(np.zeros((1, 2, 3, 4)), np.ones((1, 2, 3, 4)))


def test_single_band_2d_input():
    images, variance = scene(bands=1)
    cat = detect_sources(images[0], variance[0], psf_fwhm=3.5)
    assert len(cat) == 1 and cat.bands == ("0",)


def test_vermilion_image_input():
    from vermilion.core.image import Image

    images, variance = scene()
    img = Image(images, bands=("g", "r", "i"), yx0=(10, 20))
    cat = detect_sources(img, Image(variance, bands=("g", "r", "i"), yx0=(10, 20)), psf_fwhm=3.5)
    assert cat.bands == ("g", "r", "i")
    assert cat[0].peak == (42, 52)
