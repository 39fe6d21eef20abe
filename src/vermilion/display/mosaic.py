"""Fast scene and source pictures for reports: panels drawn straight on the figure.

`show_scene` and `show_sources` give one axes per panel, with pixel-coordinate
ticks; each axes costs about 10 ms to create and draw, too much for a report of
thousands of blends. Here there is no axes at all: images (``BboxImage``),
titles, source labels, peak markers, boxes and spectra are figure artists placed
in inches, so a scene plus its sources costs a few tens of milliseconds. The
panels look like the scarlet ones, without ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .rgb import img_to_rgb, residual_norm
from .views import (
    chosen_sources,
    component_spectra,
    default_norm,
    image_extent,
    observation_has_data,
    observed_images,
    on_box,
    peak_xy,
    resolve_sources,
    source_model,
    source_on_blend,
    source_titles,
    spectrum_of,
    spread_labels,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ImagePanel",
    "SpectrumPanel",
    "TextPanel",
    "draw_mosaic",
    "scene_mosaic",
    "sources_mosaic",
]

#: Labels of peaks closer than this fraction of a panel's larger side are moved apart.
LABEL_SPACING = 0.09

_TITLE_H = 0.2  # inches above each cell for its title
_GAP = 0.08
_PAD = 0.06


@dataclass
class ImagePanel:
    """An RGB image laid on ``bbox`` (parent coordinates), with overlays."""

    rgb: np.ndarray
    bbox: Any
    title: str = ""
    labels: list[tuple[float, float, str]] = field(default_factory=list)
    markers: list[tuple[float, float]] = field(default_factory=list)
    rects: list[Any] = field(default_factory=list)


@dataclass
class SpectrumPanel:
    """Flux per band (and optional per-component curves)."""

    values: np.ndarray
    bands: list[str]
    title: str = "Spectrum"
    components: list[np.ndarray] = field(default_factory=list)


@dataclass
class TextPanel:
    """Lines of text (a source's catalog entry) in a cell."""

    lines: list[str]
    title: str = "Catalog"


def _fit(aspect: float, cw: float, ch: float) -> tuple[float, float]:
    """Width and height of an image of ``aspect`` (h / w) fitted into a ``cw x ch`` cell."""
    if aspect * cw <= ch:
        return cw, aspect * cw
    return ch / aspect, ch


class _InchCanvas:
    """Artists placed on a figure in inches from its lower left corner (no axes at all)."""

    def __init__(self, fig) -> None:
        self.fig = fig
        self.trans = fig.dpi_scale_trans

    def text(self, x, y, s, **kwargs):
        return self.fig.text(x, y, s, transform=self.trans, **kwargs)

    def image(self, rgb: np.ndarray, x0: float, y0: float, w: float, h: float):
        from matplotlib.image import BboxImage
        from matplotlib.transforms import Bbox, TransformedBbox

        box = TransformedBbox(Bbox.from_bounds(x0, y0, w, h), self.trans)
        artist = BboxImage(box, origin="lower", interpolation="nearest", resample=False)
        artist.set_data(rgb)
        self.fig.add_artist(artist)
        return artist, box

    def rect(self, x0, y0, w, h, clip=None, **kwargs):
        from matplotlib.patches import Rectangle

        patch = Rectangle((x0, y0), w, h, transform=self.trans, **kwargs)
        if clip is not None:
            patch.set_clip_box(clip)
        self.fig.add_artist(patch)
        return patch

    def line(self, xs, ys, clip=None, **kwargs):
        from matplotlib.lines import Line2D

        line = Line2D(xs, ys, transform=self.trans, **kwargs)
        if clip is not None:
            line.set_clip_box(clip)
        self.fig.add_artist(line)
        return line


def draw_mosaic(
    rows: list[list[ImagePanel | SpectrumPanel | TextPanel]],
    cell: tuple[float, float] = (2.0, 2.0),
    title: str | None = None,
    fontsize: float = 7.0,
) -> Figure:
    """One figure with a grid of panels, drawn straight on the figure (no axes).

    Parameters
    ----------
    rows
        Panels row by row (rows may have different lengths).
    cell
        Width and height of a cell in inches (the title sits above it).
    title
        Figure title.
    fontsize
        Base font size.

    Notes
    -----
    Images are ``BboxImage`` artists in ``fig.artists``, texts are in ``fig.texts``.
    Spectrum panels share the band labels of the last one drawn (set only once, on
    the bottom row), as the bands are the same for every source.
    """
    from matplotlib.figure import Figure

    cw, ch = cell
    ncols = max((len(r) for r in rows), default=1)
    top_extra = 0.25 if title else 0.0
    band_h = 0.14 if any(isinstance(p, SpectrumPanel) for p in rows[-1]) else 0.0
    width = 2 * _PAD + ncols * cw + (ncols - 1) * _GAP
    height = 2 * _PAD + top_extra + len(rows) * (ch + _TITLE_H) + (len(rows) - 1) * _GAP + band_h
    fig = Figure(figsize=(width, height))
    canvas = _InchCanvas(fig)
    for r, row in enumerate(rows):
        y_top = height - _PAD - top_extra - r * (ch + _TITLE_H + _GAP)
        last_row = r == len(rows) - 1
        for c, panel in enumerate(row):
            x0 = _PAD + c * (cw + _GAP)
            cy0 = y_top - _TITLE_H - ch  # bottom of the cell
            canvas.text(
                x0 + cw / 2, y_top - _TITLE_H / 2, panel.title, ha="center", va="center",
                fontsize=fontsize,
            )  # fmt: skip
            if isinstance(panel, SpectrumPanel):
                _draw_spectrum_cell(canvas, panel, x0, cy0, cw, ch, fontsize, last_row)
                continue
            if isinstance(panel, TextPanel):
                for k, line in enumerate(panel.lines):
                    canvas.text(
                        x0 + 0.04, y_top - _TITLE_H - 0.05 - k * fontsize * 1.35 / 72, line,
                        ha="left", va="top", fontsize=fontsize - 0.5, family="monospace",
                    )  # fmt: skip
                continue
            ex0, ex1, ey0, ey1 = image_extent(panel.bbox)
            iw, ih = _fit((ey1 - ey0) / max(ex1 - ex0, 1e-9), cw, ch)
            ix0 = x0 + (cw - iw) / 2
            iy0 = cy0 + (ch - ih) / 2
            sx = iw / (ex1 - ex0)
            sy = ih / (ey1 - ey0)

            def to_fig(x, y, ix0=ix0, iy0=iy0, ex0=ex0, ey0=ey0, sx=sx, sy=sy):
                return ix0 + (x - ex0) * sx, iy0 + (y - ey0) * sy

            _, clip = canvas.image(panel.rgb, ix0, iy0, iw, ih)
            for box in panel.rects:
                (by0, bx0), (bh, bw) = box.origin[-2:], box.shape[-2:]
                fx, fy = to_fig(bx0 - 0.5, by0 - 0.5)
                canvas.rect(
                    fx, fy, bw * sx, bh * sy, clip=clip, facecolor="none", edgecolor="w",
                    lw=0.7, ls="--",
                )  # fmt: skip
            if panel.markers:
                pts = np.array([to_fig(x, y) for x, y in panel.markers])
                canvas.line(
                    pts[:, 0], pts[:, 1], clip=clip, marker="x", color="w", ms=5, mew=1, ls="none"
                )
            for x, y, text in panel.labels:
                fx, fy = to_fig(x, y)
                canvas.text(
                    fx, fy, text, color="w", ha="center", va="center", fontsize=fontsize,
                    fontweight="bold",
                )  # fmt: skip
    if title:
        canvas.text(
            width / 2, height - _PAD - top_extra / 2, title, ha="center", va="center",
            fontsize=fontsize + 2,
        )  # fmt: skip
    return fig


def _draw_spectrum_cell(
    canvas: _InchCanvas, panel: SpectrumPanel, x0, y0, cw, ch, fontsize, band_labels: bool
) -> None:
    left, bottom = 0.2 * cw, 0.04 * ch
    fx0, fy0 = x0 + left, y0 + bottom
    fw, fh = cw - left - 0.04 * cw, ch - bottom - 0.04 * ch
    canvas.rect(fx0, fy0, fw, fh, facecolor="w", edgecolor="0.3", lw=0.6)
    curves = [np.asarray(panel.values, dtype=np.float64)] + [
        np.asarray(c, dtype=np.float64) for c in panel.components
    ]
    allv = np.concatenate([c[np.isfinite(c)] for c in curves] + [np.zeros(1)])
    lo, hi = float(min(allv.min(), 0.0)), float(allv.max())
    if hi <= lo:
        hi = lo + 1.0
    n = len(panel.values)
    xs = fx0 + (np.arange(n) + 0.5) / max(n, 1) * fw

    def ys(v):
        return fy0 + 0.04 * fh + (np.clip(v, lo, hi) - lo) / (hi - lo) * fh * 0.88

    if lo < 0:
        canvas.line([fx0, fx0 + fw], [ys(0.0)] * 2, color="0.7", lw=0.5)
    for k, curve in enumerate(curves[1:]):
        canvas.line(xs, ys(curve), ls="--", color=f"C{k + 1}", lw=0.7)
    canvas.line(xs, ys(curves[0]), marker="o", color="k", ms=2.5, lw=0.9)
    if band_labels:
        for x, b in zip(xs, panel.bands):
            canvas.text(x, fy0 - 0.02, b, ha="center", va="top", fontsize=fontsize - 1)
    # y labels at the bottom, the middle and the top of the range (zero among them)
    for value in sorted({lo, 0.0, (lo + hi) / 2, hi}):
        canvas.text(fx0 - 0.025 * cw, ys(value), f"{value:.3g}", ha="right", va="center",
                    fontsize=fontsize - 1)  # fmt: skip


def _cell_for(blend, base: float = 1.9) -> tuple[float, float]:
    h, w = blend.observation.bbox.shape[-2:]
    aspect = float(np.clip(h / max(w, 1), 0.5, 2.0))
    return (base, base * aspect)


def scene_mosaic(
    blend,
    norm=None,
    channel_map=None,
    rendered: np.ndarray | None = None,
    show_model: bool = True,
    title: str | None = None,
    cell: float = 1.9,
) -> Figure:
    """The scene of a blend on one axes: model, rendered, observation and residual.

    Observation and residual are drawn when the blend holds data. Sources are
    labelled by their index at their peak.
    """
    observation = blend.observation
    if norm is None:
        norm = default_norm(blend, channel_map)
    sources = resolve_sources(blend, None)
    peaks = [(xy, str(i)) for i, s in sources if (xy := peak_xy(s)) is not None]
    h, w = observation.bbox.shape[-2:]
    spots = spread_labels([xy for xy, _ in peaks], LABEL_SPACING * max(h, w, 1))
    labels = [(x, y, text) for (x, y), (_, text) in zip(spots, peaks)]
    if rendered is None:
        rendered = on_box(blend.get_model(convolve=True), observation.bbox)
    box = observation.bbox
    panels = []
    if show_model:
        model = blend.get_model()
        panels.append(
            ImagePanel(
                img_to_rgb(model, channel_map, norm), getattr(model, "bbox", box), "Model", labels
            )
        )
    panels.append(
        ImagePanel(img_to_rgb(rendered, channel_map, norm), box, "Model Rendered", labels)
    )
    if observation_has_data(observation):
        observed = observed_images(observation)
        residual = observed - rendered
        panels.append(
            ImagePanel(img_to_rgb(observed, channel_map, norm), box, "Observation", labels)
        )
        panels.append(
            ImagePanel(
                img_to_rgb(residual, channel_map, residual_norm(residual, channel_map)),
                box,
                "Residual",
            )
        )
    return draw_mosaic([panels], _cell_for(blend, cell), title=title)


def sources_mosaic(
    blend,
    norm=None,
    channel_map=None,
    sources=None,
    use_flux: bool = False,
    max_sources: int | None = 20,
    cell: float = 1.6,
    title: str | None = None,
    catalog: Any = None,
) -> Figure:
    """One row per source on one axes: model (peak marked), rendered, observed, spectrum.

    With ``catalog`` (``{source id: lines of text}``, e.g. its catalog id, fluxes per
    band with errors and flags), each row ends with a cell of those lines.
    """
    observation = blend.observation
    if norm is None:
        norm = default_norm(blend, channel_map)
    chosen, n_total = chosen_sources(blend, sources, max_sources)
    box = observation.bbox
    has_data = observation_has_data(observation)
    obs_rgb = img_to_rgb(observed_images(observation), channel_map, norm) if has_data else None
    bands = list(getattr(observation, "bands", ()))
    rows = []
    for idx, src in chosen:
        model = source_model(src, use_flux)
        sbox = getattr(model, "bbox", None) or src.bbox
        xy = peak_xy(src)
        markers = [xy] if xy is not None else []
        data = source_on_blend(blend, model, use_flux)
        model_title, rendered_title = source_titles(idx, src, use_flux)
        row = [
            ImagePanel(img_to_rgb(model, channel_map, norm), sbox, model_title, markers=markers),
            ImagePanel(
                img_to_rgb(data, channel_map, norm),
                box,
                rendered_title,
                markers=markers,
                rects=[sbox],
            ),
        ]
        if has_data:
            row.append(ImagePanel(obs_rgb, box, "Observation", markers=markers, rects=[sbox]))
        comps = [cs for _, cs in component_spectra(src, use_flux)]
        row.append(SpectrumPanel(spectrum_of(model), bands, "Spectrum", comps))
        if catalog is not None:
            sid = (getattr(src, "metadata", None) or {}).get("id")
            lines = catalog.get(sid) or catalog.get(str(sid)) or ["not in the catalog"]
            row.append(TextPanel(list(lines), "Catalog"))
        rows.append(row)
    if title is None and n_total > len(chosen):
        title = f"first {len(chosen)} of {n_total} sources"
    elif n_total > len(chosen):
        title = f"{title} (first {len(chosen)} of {n_total} sources)"
    return draw_mosaic(rows, (cell, cell), title=title)
