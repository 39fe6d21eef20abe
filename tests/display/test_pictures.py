"""Pictures written to files: render_blend_pictures, thumbnails and the fast mosaics."""

from __future__ import annotations

import os

import numpy as np
import pytest
from display_helpers import make_blend
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import BboxImage
from matplotlib.lines import Line2D
from PIL import Image as PILImage

from vermilion.core import Blend, NoDataObservation, weight_sources
from vermilion.display import (
    AsinhMapping,
    blend_thumbnail,
    render_blend_pictures,
    save_rgb,
    scene_mosaic,
    sources_mosaic,
)
from vermilion.display.mosaic import ImagePanel, SpectrumPanel, draw_mosaic

BAND_COUNTS = [1, 3, 5, 6]


def read_png(path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGB"))


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_render_blend_pictures_writes_scene_and_sources(tmp_path, n_bands):
    blend = make_blend(n_bands)
    out = render_blend_pictures(blend, tmp_path / "blend.png", dpi=40, title="blend 7")
    assert out == tmp_path / "blend.png"
    full = read_png(out)
    scene_only = read_png(render_blend_pictures(blend, tmp_path / "scene.png", sources=0, dpi=40))
    # same width; the two source rows add height
    assert full.shape[1] == scene_only.shape[1]
    assert full.shape[0] > 1.8 * scene_only.shape[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blend.png", "scene.png"]  # no temp
    # readable by others like any file (mkstemp alone would leave 0600)
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_render_blend_pictures_options(tmp_path):
    blend = make_blend(3, centers=((10, 10), (30, 50), (20, 30)),
                       spectra=[np.array([1, 2, 3.0])] * 3)  # fmt: skip
    one = read_png(
        render_blend_pictures(blend, tmp_path / "a.png", sources=[2], dpi=30, axes=False)
    )
    two = read_png(render_blend_pictures(blend, tmp_path / "b.png", sources=2, dpi=30, axes=False))
    assert two.shape[0] > one.shape[0]
    with pytest.raises(ValueError, match="weight_sources"):
        render_blend_pictures(blend, tmp_path / "c.png", use_flux=True)
    weight_sources(blend)
    render_blend_pictures(blend, tmp_path / "c.png", use_flux=True, dpi=30, axes=False)
    render_blend_pictures(blend, tmp_path / "d.pdf", sources=0, axes=False)
    assert (tmp_path / "d.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match=">= 0"):
        render_blend_pictures(blend, tmp_path / "e.png", sources=-1)
    assert not (tmp_path / "e.png").exists()
    # without image data: model and rendered panels only
    obs = blend.observation
    dummy = Blend(blend.sources, NoDataObservation(obs.psfs, obs.model_psf, obs.bands, obs.bbox))
    render_blend_pictures(dummy, tmp_path / "f.png", dpi=30, axes=False)
    with pytest.raises(ValueError, match="no image data"):
        render_blend_pictures(dummy, tmp_path / "g.png", show_observed=True)


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_thumbnail_is_observed_model_residual(n_bands, tmp_path):
    blend = make_blend(n_bands)
    h, w = blend.bbox.shape
    thumb = blend_thumbnail(blend, norm=AsinhMapping(0, 0.5, 8), gap=2)
    assert thumb.dtype == np.uint8 and thumb.shape == (h, 3 * w + 4, 3)
    (ly, lx), (ry, rx) = ((y - 100, x - 200) for y, x in (s.peak for s in blend.sources))
    for panel in range(2):  # observed, then model
        left = thumb[ly, panel * (w + 2) + lx].astype(int)
        right = thumb[ry, panel * (w + 2) + rx].astype(int)
        if n_bands == 1:
            assert left.min() > 150 and right.min() > 150
        else:
            assert left[0] > 200 and left[2] < 40
            assert right[2] > 200 and right[0] < 40
    residual = thumb[:, 2 * (w + 2) :].astype(float)
    assert 90 < residual.mean() < 165  # noise only: grey on average
    # written with row 0 at the bottom (origin lower): the file is flipped
    path = save_rgb(thumb, tmp_path / "t.png")
    np.testing.assert_array_equal(read_png(path), thumb[::-1])


def test_thumbnail_shrinks_large_blends():
    blend = make_blend(3, shape=(200, 400), centers=((100, 100), (100, 300)))
    thumb = blend_thumbnail(blend, max_size=100)
    assert thumb.shape[0] == 50 and thumb.shape[1] == 3 * 100 + 4


def mosaic_images(fig) -> list:
    return [a for a in fig.artists if isinstance(a, BboxImage)]


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
def test_mosaics_draw_every_panel(n_bands):
    blend = make_blend(n_bands)
    fig = scene_mosaic(blend, title="blend 1")
    assert fig.axes == []  # no axes: panels are figure artists
    assert len(mosaic_images(fig)) == 4
    texts = [t.get_text() for t in fig.texts]
    for title in ("Model", "Model Rendered", "Observation", "Residual", "blend 1"):
        assert title in texts
    assert texts.count("0") == 3 and texts.count("1") == 3  # labels (not on the residual)
    fig = sources_mosaic(blend)
    assert len(mosaic_images(fig)) == 6  # model, rendered, observed for two sources
    texts = [t.get_text() for t in fig.texts]
    assert [t for t in texts if t.startswith(("Model", "source"))] == [
        "source 0 (id 1)", "Model 0 rendered", "source 1 (id 2)", "Model 1 rendered",
    ]  # fmt: skip
    assert [t for t in texts if t in blend.bands] == list(blend.bands)  # once, bottom row


def test_mosaic_places_red_left_blue_right():
    blend = make_blend(3)
    norm = AsinhMapping(0, 0.5, 8)
    fig = scene_mosaic(blend, norm=norm, show_model=False)
    fig.set_dpi(50)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    x0, y0, x1, y1 = mosaic_images(fig)[0].get_window_extent().extents  # rendered model
    h, w = blend.bbox.shape

    def at(px, py):  # blend pixel -> saved figure pixel
        dx = x0 + (px + 0.5) / w * (x1 - x0)
        dy = y0 + (py + 0.5) / h * (y1 - y0)
        return pixels[int(pixels.shape[0] - dy), int(dx)]

    left, right = at(15, 22), at(45, 22)  # beside the labels at the peaks
    assert left[0] > 150 and left[2] < 60
    assert right[2] > 150 and right[0] < 60
    assert at(30, 5).max() < 40  # dark sky between and below them


def test_draw_mosaic_spectrum_panel_with_negative_values():
    panel = SpectrumPanel(np.array([-1.0, 2.0, 3.0]), ["g", "r", "i"], components=[np.ones(3)])
    img = ImagePanel(np.zeros((4, 4, 3), np.uint8), make_blend(1).bbox, "x")
    fig = draw_mosaic([[img, panel]])
    labels = [t.get_text() for t in fig.texts]
    assert {"g", "r", "i", "3", "-1"} <= set(labels)
    lines = [a for a in fig.artists if isinstance(a, Line2D)]
    assert len(lines) == 3  # zero line, component, total
    np.testing.assert_allclose(lines[-1].get_xydata()[:, 1].argsort(), [0, 1, 2])


def test_blend_pictures_scene_has_no_empty_band_of_figure(tmp_path):
    """The demo's scene picture: a 2 x 2 grid sized to the blend, no wide blank columns."""
    from PIL import Image

    from vermilion.core import weight_sources
    from vermilion.display import save_blend_pictures

    blend = make_blend()
    weight_sources(blend)
    scene = save_blend_pictures(blend, tmp_path, "b")[0]
    pixels = np.asarray(Image.open(scene).convert("L"))
    blank = np.all(pixels > 250, axis=0)  # columns with nothing drawn
    longest, run = 0, 0
    for empty in blank:
        run = run + 1 if empty else 0
        longest = max(longest, run)
    # the panels fill the width: no blank stretch wider than a tenth of the figure
    # (a fixed 12 x 4 in figure left a third of it blank between the two columns)
    assert longest < 0.1 * pixels.shape[1]
