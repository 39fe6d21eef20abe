"""Pictures a person can read, and pictures in notebooks (issue 18), checked on the figures."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from display_helpers import make_blend

from vermilion.core import Blend, NoDataObservation
from vermilion.display import render_blend_pictures, show_scene, show_sources, sources_mosaic
from vermilion.display.report import catalog_lines, render_report_entry
from vermilion.display.rgb import img_to_rgb
from vermilion.display.views import default_norm, spread_labels

PNG = b"\x89PNG\r\n\x1a\n"


def _psf_only(blend: Blend) -> Blend:
    obs = blend.observation
    return Blend(blend.sources, NoDataObservation(obs.psfs, obs.model_psf, obs.bands, obs.bbox))


def test_show_scene_puts_four_panels_in_a_2x2_grid_filling_the_figure():
    blend = make_blend(3)
    fig = show_scene(blend, show_rendered=True, show_observed=True, show_residual=True,
                     pyplot=False)  # fmt: skip
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes] == [(2, 2)] * 4
    assert [ax.get_title() for ax in fig.axes] == [
        "Model", "Model Rendered", "Observation", "Residual"
    ]  # fmt: skip
    _draw(fig)
    boxes = [ax.get_position() for ax in fig.axes]  # figure fractions, as drawn (aspect kept)
    # the images reach the figure's edges, with no empty band above, below or between rows
    assert min(b.y0 for b in boxes) < 0.12 and max(b.y1 for b in boxes) > 0.85
    assert min(b.x0 for b in boxes) < 0.12 and max(b.x1 for b in boxes) > 0.9
    gap = boxes[0].y0 - boxes[2].y1
    assert 0 < gap < 0.15
    # one row when asked, and for fewer panels
    fig = show_scene(blend, show_rendered=True, show_observed=True, show_residual=True,
                     linear=True, pyplot=False)  # fmt: skip
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {(1, 4)}
    fig = show_scene(blend, show_rendered=True, pyplot=False)
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {(1, 2)}


def test_a_blend_rebuilt_from_psfs_alone_is_stretched_on_its_model():
    blend = _psf_only(make_blend(3))
    model = blend.get_model().data
    norm = default_norm(blend)
    rgb = img_to_rgb(model, None, norm)
    saturated = np.mean(rgb.max(axis=-1) == 255)
    assert saturated < 0.005  # only the brightest model pixel(s)
    assert rgb.max() >= 254  # and the brightest does reach full scale
    # where the model is at a tenth of its peak, the picture is not yet at full scale
    lit = rgb.max(axis=-1)[model.max(axis=0) > 0.1 * model.max()]
    assert np.median(lit) < 250
    fig = show_scene(blend, show_rendered=True, pyplot=False)
    assert [ax.get_title() for ax in fig.axes] == ["Model", "Model Rendered"]


def _draw(fig):
    """Draw a bare figure on the Agg canvas; its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _inside_figure(fig, texts) -> bool:
    renderer = _draw(fig)
    frame = fig.bbox
    for t in texts:
        box = t.get_window_extent(renderer)
        if box.x0 < frame.x0 - 1 or box.y0 < frame.y0 - 1 or box.x1 > frame.x1 + 1:
            return False
    return True


def test_spectrum_panels_have_readable_ticks_and_band_labels_inside_the_figure(tmp_path):
    blend = make_blend(5)
    fig = show_sources(blend, show_rendered=True, show_observed=True, pyplot=False)
    _draw(fig)
    spectra = [ax for ax in fig.axes if ax.get_title() == "Spectrum"]
    assert len(spectra) == 2
    for ax in spectra:
        bands = [t.get_text() for t in ax.get_xticklabels()]
        assert bands == list(blend.bands)
        ylabels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert 2 <= len(ylabels) <= 6 and all(len(s) <= 6 for s in ylabels)
        assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e4" floating above
        assert _inside_figure(fig, ax.get_xticklabels())
    # the same in `vermilion show`'s picture (scene above the source rows)
    from matplotlib.figure import Figure

    saved = {}
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        saved["fig"] = self
        return original(self, *args, **kwargs)

    Figure.savefig = keep
    try:
        render_blend_pictures(blend, tmp_path / "blend.png")
    finally:
        Figure.savefig = original
    fig = saved["fig"]
    _draw(fig)
    axes = [ax for sub in fig.subfigs for ax in sub.axes]
    spectra = [ax for ax in axes if ax.get_title() == "Spectrum"]
    assert spectra and all(_inside_figure(fig, ax.get_xticklabels()) for ax in spectra)
    titles = [ax.get_title() for ax in axes]
    assert "source 0 (id 1)" in titles and "Model 1 rendered" in titles


def test_source_panels_carry_the_catalog_ids_with_the_same_words_everywhere():
    blend = make_blend(3)
    blend.sources[0].metadata["id"] = 8796093022209
    fig = show_sources(blend, show_rendered=True, pyplot=False)
    plot_titles = [ax.get_title() for ax in fig.axes if ax.get_title() != "Spectrum"]
    assert plot_titles == [
        "source 0 (id 8796093022209)", "Model 0 rendered", "source 1 (id 2)", "Model 1 rendered"
    ]  # fmt: skip
    fig = sources_mosaic(blend)  # the report's source rows
    texts = [t.get_text() for t in fig.texts]
    assert [t for t in texts if t in plot_titles] == plot_titles


def test_labels_of_close_peaks_do_not_overlap():
    assert spread_labels([(0.0, 0.0), (10.0, 0.0)], 3.0) == [(0.0, 0.0), (10.0, 0.0)]
    spots = spread_labels([(5.0, 5.0), (6.0, 5.0), (5.0, 5.0)], 3.0)
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.hypot(*np.subtract(spots[i], spots[j])) >= 2.99
    # on the figure: two peaks 1 px apart get labels that do not touch
    blend = make_blend(3, centers=((20, 30), (20, 31)))
    fig = show_scene(blend, show_rendered=True, pyplot=False)
    renderer = _draw(fig)
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        assert [t.get_text() for t in ax.texts] == ["0", "1"]
        assert not boxes[0].overlaps(boxes[1])
        assert len(ax.lines) == 2  # each moved label has a thin line back to its peak


def test_the_reports_source_rows_show_id_fluxes_with_errors_and_flags(tmp_path):
    columns = {
        "id": 8796093022209,
        "parent": 8796093022208,
        "deblend_reapportionedFlux_g": 175.94,
        "deblend_reapportionedFlux_r": 469.4,
        "flux_g": 176.1,
        "flux_r": 470.25,
        "flux_err_g": 3.21,
        "flux_err_r": 4.5,
        "deblend_zeroFlux": np.True_,
        "deblend_converged": True,
        "detect_edge": False,
    }
    assert catalog_lines(columns, ["g", "r"]) == [
        "id 8796093022209",
        "g    176.1 ± 3.2",
        "r    470.2 ± 4.5",
        "flags: deblend_zeroFlux",
    ]
    # without flux_<band> and errors: the re-apportioned flux, and no ±
    plain = {k: v for k, v in columns.items() if not k.startswith("flux")}
    assert catalog_lines(plain, ["g", "r"])[1:3] == ["g    175.9", "r    469.4"]
    # in the pictures: one catalog cell per source row
    blend = make_blend(2)
    info = {"n_children": 2, "sources": {1: columns, 2: {"id": 2, "flux_g": 1.0}}}
    row = render_report_entry(1, blend, info, tmp_path, "b1")
    assert row["sources"] and row["error"] is None and "sources" not in row["extra"]
    catalog = {1: catalog_lines(columns, blend.bands), 2: ["id 2"]}
    texts = [t.get_text() for t in sources_mosaic(blend, catalog=catalog).texts]
    assert texts.count("Catalog") == 2 and "flags: deblend_zeroFlux" in texts and "id 2" in texts


def test_objects_show_a_picture_in_notebooks(tmp_path):
    from vermilion.io import blend_to_data
    from vermilion.repo import Exposure, MultibandExposure

    blend = make_blend(3)
    assert blend._repr_png_().startswith(PNG)
    assert blend.observation._repr_png_().startswith(PNG)
    data = blend_to_data(blend)
    assert data._repr_png_().startswith(PNG)
    from vermilion.io import ModelData

    model = ModelData(blend.bands, blend.observation.model_psf, {7: data})
    assert model._repr_png_().startswith(PNG)
    obs = blend.observation
    mexp = MultibandExposure(obs.bands, obs.images.data, obs.variance.data, None, obs.psfs,
                             obs.bbox)  # fmt: skip
    assert mexp._repr_png_().startswith(PNG)
    exp = Exposure(obs.images.data[0], None, obs.variance.data[0], obs.psfs[0], obs.bbox.origin,
                   None, "g")  # fmt: skip
    assert exp._repr_png_().startswith(PNG)
    # a render-only observation has no picture of its own (no images)
    assert _psf_only(blend).observation._repr_png_() is None
    # the text repr shows the bands and logL
    assert "bands=ir" in repr(make_blend(2)) or "bands=" in repr(blend)
    assert f"logL={blend.log_likelihood:.1f}" in repr(blend)


def test_pictures_are_drawn_lazily_and_only_with_the_hook():
    code = (
        "import sys, numpy as np, vermilion\n"
        "from vermilion.core import Blend, Observation, notebook\n"
        "psf = np.zeros((1, 5, 5)); psf[0, 2, 2] = 1\n"
        "obs = Observation(np.ones((1, 8, 8)), np.ones((1, 8, 8)), psfs=psf, bands=('r',))\n"
        "b = Blend([], obs)\n"
        "print('matplotlib' in sys.modules, end=' ')\n"
        "png = b._repr_png_()\n"
        "print('matplotlib' in sys.modules, png[:4] == b'\\x89PNG', end=' ')\n"
        "notebook.set_picture_renderer(None)\n"
        "print(b._repr_png_() is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True True True"


def test_a_failing_picture_warns_and_falls_back_to_text():
    from vermilion.core import notebook

    class Odd:
        sources = observation = None

    with pytest.warns(RuntimeWarning, match="no picture of Odd: "):
        assert notebook.picture_png(Odd()) is None
