"""Scene, sources, observation and loss figures: what they draw, checked on the saved pixels."""

from __future__ import annotations

import io
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from display_helpers import DATA, blue_spectrum, make_blend, red_spectrum
from PIL import Image as PILImage

from vermilion.core import (
    Blend,
    NoDataObservation,
    Observation,
    init_adaprox_component,
    init_all_sources,
    parameterize_sources,
    weight_sources,
)
from vermilion.display import (
    AsinhMapping,
    channels_to_rgb,
    img_to_rgb,
    show_loss,
    show_observation,
    show_scene,
    show_sources,
)

BAND_COUNTS = [1, 3, 5, 6]


def saved_pixels(fig) -> np.ndarray:
    """The figure as written to a PNG file, ``(H, W, 3)`` uint8."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    buf.seek(0)
    return np.asarray(PILImage.open(buf).convert("RGB"))


def pixel_at(ax, pixels: np.ndarray, x: float, y: float) -> np.ndarray:
    """The saved RGB value at parent-image coordinate (x, y) of an image axes."""
    dx, dy = ax.transData.transform((x, y))
    row, col = int(pixels.shape[0] - dy), int(dx)
    return pixels[row, col].astype(int)


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_scene_red_left_blue_right(n_bands):
    blend = make_blend(n_bands)  # red source at x=215, blue at x=245 (parent coordinates)
    fig = show_scene(
        blend,
        norm=AsinhMapping(0, 0.5, 8),
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        label_sources=False,
        pyplot=False,
    )
    assert titles(fig) == ["Model", "Model Rendered", "Observation", "Residual"]
    pixels = saved_pixels(fig)
    (left_y, left_x), (right_y, right_x) = (s.peak for s in blend.sources)
    for ax in fig.axes[:3]:
        left = pixel_at(ax, pixels, left_x, left_y)
        right = pixel_at(ax, pixels, right_x, right_y)
        sky = pixel_at(ax, pixels, 230, 135)
        assert sky.max() < 60, ax.get_title()
        if n_bands == 1:
            # one band is grey: both sources bright, all channels equal
            assert left.min() > 150 and np.ptp(left) <= 2
            assert right.min() > 150 and np.ptp(right) <= 2
        else:
            assert left[0] > 200 and left[2] < 40, (ax.get_title(), left)
            assert right[2] > 200 and right[0] < 40, (ax.get_title(), right)
    # the residual of a blend whose data is its model plus noise is a mid-grey field
    residual = fig.axes[3]
    values = np.array([pixel_at(residual, pixels, x, 120) for x in range(205, 255, 3)])
    assert 90 < values.mean() < 165


def test_scene_model_panel_matches_reference_rgb():
    """The model panel shows img_to_rgb of the model, pixel for pixel (within a tolerance)."""
    blend = make_blend(5, spectra=(np.array([1, 2, 3, 4, 5.0]), np.array([5, 4, 3, 2, 1.0])))
    norm = AsinhMapping(0, 0.3, 8)
    fig = show_scene(blend, norm=norm, label_sources=False, figsize=(6, 4.5), pyplot=False)
    pixels = saved_pixels(fig)
    reference = img_to_rgb(blend.get_model(), norm=norm)
    (y0, x0), (h, w) = blend.bbox.origin, blend.bbox.shape
    ax = fig.axes[0]
    diffs = [
        np.abs(pixel_at(ax, pixels, x0 + j + 0.0, y0 + i + 0.0) - reference[i, j].astype(int))
        for i in range(2, h - 2, 3)
        for j in range(2, w - 2, 3)
    ]
    diffs = np.array(diffs)
    assert np.median(diffs) <= 2
    assert np.percentile(diffs, 95) <= 12


def test_scene_labels_sources_by_index_at_their_peak():
    blend = make_blend(3, centers=((10, 10), (30, 50), (20, 30)), spectra=[red_spectrum(3)] * 3)
    fig = show_scene(blend, show_boxes=True, pyplot=False)
    texts = {t.get_text(): t.get_position() for t in fig.axes[0].texts}
    assert set(texts) == {"0", "1", "2"}
    for k, source in enumerate(blend.sources):
        y, x = source.peak
        assert texts[str(k)] == pytest.approx((x, y))
    assert len(fig.axes[0].patches) == 3  # one box per source
    # the axes read parent-image coordinates
    assert fig.axes[0].get_xlim() == pytest.approx((199.5, 259.5))
    assert fig.axes[0].get_ylim() == pytest.approx((99.5, 139.5))


def test_scene_footprint_mask_hides_pixels():
    blend = make_blend(3)
    mask = np.zeros(blend.bbox.shape, dtype=bool)
    mask[:, :30] = True  # hide the left half, where the red source is
    norm = AsinhMapping(0, 0.5, 8)
    fig = show_scene(
        blend,
        norm=norm,
        show_model=False,
        show_observed=True,
        mask=mask,
        label_sources=False,
        pyplot=False,
    )
    pixels = saved_pixels(fig)
    (ly, lx), (ry, rx) = (s.peak for s in blend.sources)
    assert pixel_at(fig.axes[0], pixels, lx, ly).max() == 0
    assert pixel_at(fig.axes[0], pixels, rx, ry)[2] > 200
    with pytest.raises(ValueError, match="mask shape"):
        show_scene(blend, mask=np.zeros((3, 3), bool), pyplot=False)


def test_scene_layout_options_and_errors():
    blend = make_blend(3)
    fig = show_scene(
        blend,
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        linear=False,
        pyplot=False,
    )
    rows = {round(ax.get_position().y0, 3) for ax in fig.axes}
    assert len(fig.axes) == 4 and len(rows) == 2  # two rows of two
    with pytest.raises(ValueError, match="Nothing to show"):
        show_scene(blend, show_model=False, pyplot=False)


def test_pyplot_option_controls_global_figures():
    blend = make_blend(3)
    before = set(plt.get_fignums())
    fig = show_scene(blend)  # default: a pyplot figure, so plt.show() displays it
    assert set(plt.get_fignums()) - before == {fig.number}
    plt.close(fig)
    show_scene(blend, pyplot=False)
    assert set(plt.get_fignums()) == before


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_sources_rows_and_colours(n_bands):
    blend = make_blend(n_bands)
    norm = AsinhMapping(0, 0.5, 8)
    fig = show_sources(blend, norm=norm, show_rendered=True, show_observed=True, pyplot=False)
    assert titles(fig) == [
        "source 0 (id 1)", "Model 0 rendered", "Observation", "Spectrum",
        "source 1 (id 2)", "Model 1 rendered", "Observation", "Spectrum",
    ]  # fmt: skip
    pixels = saved_pixels(fig)
    for row, source in enumerate(blend.sources):
        y, x = source.peak
        model_ax, rendered_ax, observed_ax, spectrum_ax = fig.axes[4 * row : 4 * row + 4]
        # the peak is marked with an x on the image panels
        for ax in (model_ax, rendered_ax, observed_ax):
            (line,) = ax.lines
            assert line.get_xydata().tolist() == [[x, y]]
        # the rendered panel holds this source only: the other source's place is dark
        other = blend.sources[1 - row].peak
        assert pixel_at(rendered_ax, pixels, other[1], other[0]).max() < 40
        # its spectrum is the flux per band of its model
        spectrum = spectrum_ax.lines[0].get_ydata()
        np.testing.assert_allclose(spectrum, source.get_model().data.sum(axis=(1, 2)), rtol=1e-5)
        assert [t.get_text() for t in spectrum_ax.get_xticklabels()] == list(blend.bands)
    if n_bands > 1:
        # next to the peak (the peak itself carries the white marker)
        (y0, x0), (y1, x1) = blend.sources[0].peak, blend.sources[1].peak
        red = pixel_at(fig.axes[0], pixels, x0 + 2, y0)
        blue = pixel_at(fig.axes[4], pixels, x1 + 2, y1)
        assert red[0] > 200 and red[2] < 40
        assert blue[2] > 200 and blue[0] < 40


def test_sources_subset_flux_and_errors():
    blend = make_blend(3, centers=((10, 10), (30, 50), (20, 30)),
                       spectra=[red_spectrum(3), blue_spectrum(3), red_spectrum(3)])  # fmt: skip
    fig = show_sources(blend, sources=[2], show_spectrum=False, pyplot=False)
    assert titles(fig) == ["source 2 (id 3)"]
    fig = show_sources(blend, sources=blend.sources[1:2], pyplot=False)
    assert titles(fig)[0] == "source 1 (id 2)"
    with pytest.raises(ValueError, match="weight_sources"):
        show_sources(blend, use_flux=True, pyplot=False)
    weight_sources(blend)
    fig = show_sources(blend, use_flux=True, show_rendered=True, pyplot=False)
    assert titles(fig)[:2] == ["Flux: source 0 (id 1)", "Flux 0"]
    flux = fig.axes[2].lines[0].get_ydata()
    np.testing.assert_allclose(flux, blend.sources[0].flux.data.sum(axis=(1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        show_sources(blend, sources=[7], pyplot=False)
    fig = show_sources(blend, max_sources=2, pyplot=False)
    assert len(fig.axes) == 4


def test_blend_without_data_renders_model_but_refuses_observation():
    blend = make_blend(3)
    obs = blend.observation
    nodata = NoDataObservation(obs.psfs, obs.model_psf, obs.bands, obs.bbox)
    dummy = Blend(blend.sources, nodata)
    fig = show_scene(dummy, show_rendered=True, pyplot=False)
    assert titles(fig) == ["Model", "Model Rendered"]
    with pytest.raises(ValueError, match="no image data"):
        show_scene(dummy, show_observed=True, pyplot=False)
    with pytest.raises(ValueError, match="no image data"):
        show_sources(dummy, show_observed=True, pyplot=False)


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_observation_with_psfs_and_centres(n_bands):
    blend = make_blend(n_bands)
    centers = [s.peak for s in blend.sources]
    fig = show_observation(blend.observation, centers=centers, show_psf=True, pyplot=False)
    assert titles(fig)[0] == "Observation"
    assert titles(fig)[1:] == [f"PSF {b}" for b in blend.bands] + ["PSF model"]
    labels = {t.get_text(): t.get_position() for t in fig.axes[0].texts}
    assert labels["1"] == pytest.approx((centers[1][1], centers[1][0]))


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_loss_plot(n_bands):
    blend = make_blend(n_bands)
    with pytest.raises(ValueError, match="fit it first"):
        show_loss(blend, pyplot=False)
    blend.loss = [-1000.0, -600.0, -550.0, -549.0]
    fig = show_loss(blend, pyplot=False)
    ax_loss, ax_rel = fig.axes
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), [1000, 600, 550, 549])
    np.testing.assert_allclose(ax_rel.lines[0].get_ydata(), [400 / 600, 50 / 550, 1 / 549])


def test_import_vermilion_does_not_import_matplotlib():
    code = (
        "import sys, vermilion, vermilion.display; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def hsc_blend():
    data = np.load(DATA / "hsc_cosmos_35.npz")
    obs = Observation(
        data["images"], data["variance"], psfs=data["psfs"], bands=[str(b) for b in data["filters"]]
    )
    centers = [(int(c["y"]), int(c["x"])) for c in data["catalog"]]
    sources = parameterize_sources(init_all_sources(obs, centers), obs, init_adaprox_component)
    blend = Blend(sources, obs)
    blend.fit(60, e_rel=1e-4)
    weight_sources(blend)
    return blend


def test_hsc_scene_looks_like_the_data(hsc_blend):
    """The real HSC blend: the bright galaxy 1 is orange (red > green > blue) in every panel."""
    fig = show_scene(
        hsc_blend,
        norm=AsinhMapping(minimum=0, stretch=0.2, Q=10),
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        label_sources=False,
        pyplot=False,
    )
    pixels = saved_pixels(fig)
    y, x = hsc_blend.sources[1].peak
    for ax in fig.axes[:3]:
        r, g, b = pixel_at(ax, pixels, x, y)
        assert r > g > b and r > 150, (ax.get_title(), (r, g, b))
    # the rendered model resembles the observation wherever the data is bright
    rendered = img_to_rgb(hsc_blend.get_model(convolve=True), norm=AsinhMapping(0, 0.2, 10))
    observed = img_to_rgb(hsc_blend.observation.images, norm=AsinhMapping(0, 0.2, 10))
    bright = observed.max(axis=-1) > 120
    assert np.median(np.abs(rendered[bright].astype(int) - observed[bright])) < 25


def test_hsc_seed_channel_map_hides_first_band(hsc_blend):
    channel_map = np.zeros((3, 5))
    channel_map[:, 1:] = channels_to_rgb(4)
    norm = AsinhMapping(0, 0.2, 10)
    fig = show_sources(
        hsc_blend, sources=hsc_blend.sources[:4], channel_map=channel_map,
        norm=norm, show_rendered=True, show_observed=True,
        show_spectrum=False, use_flux=True, pyplot=False,
    )  # fmt: skip
    assert len(fig.axes) == 12
    # the observation panels are coloured with the given map, not the default one
    pixels = saved_pixels(fig)
    images = hsc_blend.observation.images
    expected = img_to_rgb(images, channel_map, norm).astype(int)
    default = img_to_rgb(images, None, norm).astype(int)
    (y0, x0) = hsc_blend.bbox.origin
    for row, source in enumerate(hsc_blend.sources[:4]):
        y, x = source.peak
        x += 2  # beside the peak marker
        got = pixel_at(fig.axes[3 * row + 2], pixels, x, y)
        assert np.abs(got - expected[y - y0, x - x0]).max() <= 2, (row, got)
    y, x = hsc_blend.sources[1].peak
    assert np.abs(expected[y - y0, x + 2 - x0] - default[y - y0, x + 2 - x0]).max() > 20
