"""Band-to-RGB maps and the colour-preserving intensity mappings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vermilion.core import Image
from vermilion.display import (
    AsinhMapping,
    LinearMapping,
    asinh_norm,
    channels_to_rgb,
    img_to_rgb,
    residual_norm,
)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 10])
def test_channels_to_rgb_shape_and_grey_for_flat_spectrum(n):
    cmap = channels_to_rgb(n)
    assert cmap.shape == (3, n)
    assert np.all(cmap >= 0)
    # every colour row sums to 1: a flat spectrum is grey
    np.testing.assert_allclose(cmap.sum(axis=1), 1.0)
    rgb = cmap @ np.ones(n)
    np.testing.assert_allclose(rgb, rgb[0])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_channels_to_rgb_runs_blue_to_red(n):
    cmap = channels_to_rgb(n)
    # the bluest band feeds blue most, the reddest red most
    assert cmap[2, 0] == cmap[:, 0].max() and cmap[2, 0] > cmap[0, 0]
    assert cmap[0, -1] == cmap[:, -1].max() and cmap[0, -1] > cmap[2, -1]
    # every band is seen by some colour
    assert np.all(cmap.sum(axis=0) > 0)


def test_channels_to_rgb_exact_cases():
    np.testing.assert_allclose(channels_to_rgb(1), np.ones((3, 1)))
    np.testing.assert_allclose(channels_to_rgb(3), np.eye(3)[::-1])


@pytest.mark.parametrize("bad", [0, -2])
def test_channels_to_rgb_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="at least 1"):
        channels_to_rgb(bad)
    with pytest.raises(TypeError):
        channels_to_rgb(2.5)


positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    r=positive,
    g=positive,
    b=positive,
    stretch=st.floats(min_value=1e-3, max_value=1e3),
    Q=st.floats(min_value=0, max_value=50),
)
def test_asinh_mapping_keeps_colour_ratio(r, g, b, stretch, Q):
    norm = AsinhMapping(minimum=0, stretch=stretch, Q=Q)
    rgb = np.array([r, g, b], dtype=np.float64)[:, None, None]
    out = norm.map_float(rgb)[:, 0, 0]
    assert np.all(out >= 0) and np.all(out <= 255)
    assert out.max() > 0
    # the mapped pixel has the colour of the input: channels in the same ratio
    np.testing.assert_allclose(out / out.max(), rgb[:, 0, 0] / rgb.max(), rtol=1e-9, atol=1e-12)
    # the uint8 image only rounds: within one unit of the exact ratio
    u8 = norm.make_rgb_image(*rgb).astype(np.float64)[0, 0]
    expected = rgb[:, 0, 0] / rgb.max() * u8.max()
    assert np.all(np.abs(u8 - expected) <= 1.0 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(r=positive, g=positive, b=positive, scale=st.floats(min_value=1.5, max_value=1e3))
def test_linear_mapping_saturates_without_changing_colour(r, g, b, scale):
    rgb = np.array([r, g, b])[:, None, None]
    norm = LinearMapping(minimum=0, maximum=rgb.mean() / scale)  # saturated
    out = norm.map_float(rgb)[:, 0, 0]
    assert out.max() == pytest.approx(255)
    np.testing.assert_allclose(out / out.max(), rgb[:, 0, 0] / rgb.max(), rtol=1e-9)


def test_asinh_is_monotonic_and_compresses_bright_end():
    norm = AsinhMapping(minimum=0, stretch=1.0, Q=8)
    levels = np.logspace(-3, 3, 50)
    grey = np.broadcast_to(levels, (3, 1, 50))
    out = norm.map_float(grey)[0, 0]
    assert np.all(np.diff(out) >= 0)
    # linear for faint pixels: doubling the intensity doubles the value
    faint = norm.map_float(np.full((3, 1, 2), [1e-4, 2e-4]))[0, 0]
    assert faint[1] / faint[0] == pytest.approx(2, rel=1e-3)


def test_mapping_parameters_are_checked():
    with pytest.raises(ValueError, match="stretch"):
        AsinhMapping(0, stretch=0)
    with pytest.raises(ValueError, match="Q"):
        AsinhMapping(0, stretch=1, Q=-1)
    with pytest.raises(ValueError, match="maximum"):
        LinearMapping(minimum=1, maximum=1)
    with pytest.raises(ValueError, match="minimum"):
        AsinhMapping(minimum=[0, 1], stretch=1)


@pytest.mark.parametrize("n_bands", [1, 3, 5, 6])
def test_img_to_rgb_shapes_and_colours(n_bands):
    img = np.zeros((n_bands, 8, 10), dtype=np.float32)
    img[-1, 2, 3] = 5.0  # reddest band only
    img[0, 6, 7] = 5.0  # bluest band only
    rgb = img_to_rgb(img, norm=AsinhMapping(0, 0.5, 8))
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 10, 3)
    red, blue = rgb[2, 3].astype(int), rgb[6, 7].astype(int)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    if n_bands == 1:
        assert red[0] == red[1] == red[2] > 0  # one band is grey
    else:
        assert red[0] > 100 and red[2] < 20
        assert blue[2] > 100 and blue[0] < 20


def test_img_to_rgb_mask_nan_fill_and_image_input():
    data = np.ones((3, 4, 5), dtype=np.float32)
    data[1, 0, 0] = np.nan
    mask = np.zeros((4, 5), dtype=bool)
    mask[3, 4] = True
    rgb = img_to_rgb(
        Image(data, bands=("g", "r", "i")),
        norm=LinearMapping(0, 2),
        mask=mask,
        fill_value=(10, 20, 30),
    )
    assert rgb[3, 4].tolist() == [10, 20, 30]
    assert rgb[0, 0].tolist() == [10, 20, 30]
    assert rgb[1, 1].tolist() == [128, 128, 128]  # half of the linear range, grey
    # 2D input is one band
    assert img_to_rgb(np.ones((4, 5))).shape == (4, 5, 3)


def test_img_to_rgb_channel_map_hides_a_band_and_is_checked():
    data = np.zeros((6, 3, 3))
    data[0] = 10  # a narrow band we hide, as in the seed's HSC example
    cmap = np.zeros((3, 6))
    cmap[:, 1:] = channels_to_rgb(5)
    assert np.all(img_to_rgb(data, channel_map=cmap, norm=LinearMapping(0, 1)) == 0)
    with pytest.raises(ValueError, match=r"channel_map must have shape \(3, 6\)"):
        img_to_rgb(data, channel_map=np.ones((3, 5)))
    with pytest.raises(ValueError, match="mask shape"):
        img_to_rgb(data, mask=np.zeros((2, 2), bool))
    with pytest.raises(TypeError, match="norm"):
        img_to_rgb(data, norm="asinh")


def test_default_linear_norm_spans_min_to_max():
    data = np.stack([np.linspace(0, 1, 12).reshape(3, 4)] * 3)
    rgb = img_to_rgb(data)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[-1, -1].tolist() == [255, 255, 255]


def test_asinh_norm_keeps_sky_noise_faint_and_bright_end_visible():
    rng = np.random.default_rng(3)
    sky = rng.normal(0, 0.01, (5, 60, 60))
    sky[:, 30, 30] += 50.0
    norm = asinh_norm(sky, noise_rms=np.full(5, 0.01))
    rgb = img_to_rgb(sky, norm=norm).astype(float)
    noise_level = np.median(rgb[:20, :20].max(axis=-1))
    assert 0 < noise_level < 40  # noise visible but faint
    assert rgb[30, 30].max() == 255  # the source saturates


def test_residual_norm_is_symmetric_grey_at_zero():
    res = np.random.default_rng(0).normal(0, 1, (3, 20, 20))
    norm = residual_norm(res)
    assert norm.minimum[0] == pytest.approx(-norm.maximum)
    zero = img_to_rgb(np.zeros((3, 2, 2)), norm=norm)
    assert np.all(np.abs(zero.astype(int) - 128) <= 1)
