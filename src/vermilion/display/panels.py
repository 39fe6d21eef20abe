"""Drawing a blend's panels into a matplotlib figure (or subfigure).

`draw_scene` and `draw_sources` fill a container with the scene and per-source panels that
`vermilion.display.plot.show_scene` / ``show_sources`` and the report's pictures use; matplotlib
is imported when a panel is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .rgb import img_to_rgb, residual_norm
from .views import (
    chosen_sources,
    component_spectra,
    default_norm,
    image_extent,
    observed_images,
    on_box,
    peak_xy,
    require_data,
    resolve_mask,
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
    "draw_peak_labels",
    "draw_scene",
    "draw_sources",
    "label_at",
    "new_figure",
    "scene_figsize",
    "source_columns",
    "style_axes",
]

_MARKER = {"marker": "x", "color": "w", "mew": 1.2, "ms": 8, "ls": "none"}


_BOX = {"facecolor": "none", "edgecolor": "w", "lw": 0.8, "ls": "--"}


def new_figure(figsize, pyplot: bool) -> Figure:
    """A figure of ``figsize``: with pyplot, or a bare ``Figure`` when ``pyplot`` is False."""
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def label_at(ax, x: float, y: float, text: str, fontsize: float = 10) -> None:
    """Write ``text`` at ``(x, y)`` in white with a black outline."""
    from matplotlib import patheffects

    ax.text(
        x,
        y,
        text,
        color="w",
        ha="center",
        va="center",
        fontsize=fontsize,
        fontweight="bold",
        path_effects=[patheffects.withStroke(linewidth=2, foreground="k")],
    )


def _box_patch(bbox, **kwargs):
    from matplotlib.patches import Rectangle

    (y0, x0), (h, w) = bbox.origin[-2:], bbox.shape[-2:]
    return Rectangle((x0 - 0.5, y0 - 0.5), w, h, **{**_BOX, **kwargs})


def style_axes(ax, axes: bool) -> None:
    """Pixel-coordinate tick labels when ``axes``, else no ticks."""
    if not axes:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.tick_params(labelsize=7, length=2)


def _grid_shape(n_panels: int, linear: bool | None) -> tuple[int, int]:
    """``(nrows, ncols)`` of the scene panels: one row, or two rows.

    ``linear=None`` (the default of `show_scene`): four panels in a 2 x 2 grid, fewer
    in one row.
    """
    if linear is None:
        linear = n_panels != 4
    ncols = n_panels if linear else int(np.ceil(n_panels / 2))
    return (1 if linear else int(np.ceil(n_panels / ncols))), ncols


#: Labels of peaks closer than this fraction of a panel's larger side are moved apart.
LABEL_SPACING = 0.07


def draw_peak_labels(ax, sources, box, fontsize: float) -> None:
    """Write each source's index at its peak; labels of close peaks are moved apart
    (`spread_labels`), with a thin line back to their peak."""
    items = [(str(idx), xy) for idx, src in sources if (xy := peak_xy(src)) is not None]
    if not items:
        return
    h, w = box.shape[-2:]
    spots = spread_labels([xy for _, xy in items], LABEL_SPACING * max(h, w, 1))
    for (text, (x, y)), (lx, ly) in zip(items, spots):
        if np.hypot(lx - x, ly - y) > 0.3:
            ax.plot([x, lx], [y, ly], color="w", lw=0.6, alpha=0.8)
        label_at(ax, lx, ly, text, fontsize=fontsize)


def _place_grid(container, nrows: int, ncols: int, titles: bool, axes: bool):
    """A grid of axes with fixed margins (no tight_layout: it would cost a full draw)."""
    left = 0.06 if axes else 0.01
    bottom = 0.06 if axes else 0.01
    top = 0.94 if titles else 0.99
    wspace = 0.18 if axes else 0.04
    hspace = 0.25 if axes else 0.12
    gs = container.add_gridspec(
        nrows, ncols, left=left, right=0.99, bottom=bottom, top=top, wspace=wspace, hspace=hspace
    )
    return gs


def _scene_panels(
    blend,
    norm,
    channel_map,
    show_model,
    show_rendered,
    show_observed,
    show_residual,
    use_flux,
    mask,
):
    """``[(title, rgb, bbox)]`` for the requested scene panels."""
    observation = blend.observation
    if show_observed:
        require_data(observation, "observation")
    if show_residual:
        require_data(observation, "residual")
    if norm is None:
        norm = default_norm(blend, channel_map)
    panels = []
    model_box = getattr(blend, "bbox", None) or observation.bbox
    mask = resolve_mask(mask, blend)
    if show_model:
        model = blend.get_model(convolve=False, use_flux=use_flux)
        box = getattr(model, "bbox", model_box)
        m = mask if mask is not None and mask.shape == tuple(box.shape[-2:]) else None
        title = "Flux re-apportioned" if use_flux else "Model"
        panels.append((title, img_to_rgb(model, channel_map, norm, mask=m), box))
    rendered = None
    if show_rendered or show_residual:
        if use_flux:
            rendered = blend.get_model(convolve=False, use_flux=True)
        else:
            rendered = blend.get_model(convolve=True)
        rendered = on_box(rendered, observation.bbox)
    if show_rendered:
        title = "Flux re-apportioned" if use_flux else "Model Rendered"
        panels.append((title, img_to_rgb(rendered, channel_map, norm, mask=mask), observation.bbox))
    if show_observed:
        panels.append(
            (
                "Observation",
                img_to_rgb(observed_images(observation), channel_map, norm, mask=mask),
                observation.bbox,
            )
        )
    if show_residual:
        residual = observed_images(observation) - rendered
        rnorm = residual_norm(residual, channel_map)
        panels.append(
            ("Residual", img_to_rgb(residual, channel_map, rnorm, mask=mask), observation.bbox)
        )
    return panels


def draw_scene(
    container,
    blend,
    norm=None,
    channel_map=None,
    show_model=True,
    show_rendered=False,
    show_observed=False,
    show_residual=False,
    label_sources=True,
    show_boxes=False,
    linear=None,
    use_flux=False,
    mask=None,
    axes=True,
    title=None,
):
    """Draw the scene panels of `show_scene` into ``container`` (a figure or subfigure).

    Takes the arguments of `show_scene` (but ``figsize`` and ``pyplot``); returns the axes."""
    panels = _scene_panels(
        blend,
        norm,
        channel_map,
        show_model,
        show_rendered,
        show_observed,
        show_residual,
        use_flux,
        mask,
    )
    if not panels:
        raise ValueError("Nothing to show: every show_* option is False")
    nrows, ncols = _grid_shape(len(panels), linear)
    gs = _place_grid(container, nrows, ncols, True, axes)
    sources = resolve_sources(blend, None) if (label_sources or show_boxes) else []
    out_axes = []
    for k, (ptitle, rgb, box) in enumerate(panels):
        ax = container.add_subplot(gs[k // ncols, k % ncols])
        ax.imshow(rgb, extent=image_extent(box), origin="lower", interpolation="nearest")
        ax.set_title(ptitle, fontsize=9)
        style_axes(ax, axes)
        for _idx, src in sources if show_boxes else ():
            sbox = getattr(src, "flux_box", None) if use_flux else None
            ax.add_patch(_box_patch(sbox if sbox is not None else src.bbox))
        if label_sources:
            draw_peak_labels(ax, sources, box, fontsize=9 if len(sources) < 20 else 6)
        ax.set_xlim(*image_extent(box)[:2])
        ax.set_ylim(*image_extent(box)[2:])
        out_axes.append(ax)
    if title:
        container.suptitle(title, fontsize=10)
    return out_axes


def scene_figsize(blend, n_panels: int, linear: bool | None, axes: bool, panel: float = 3.5):
    """Default figure size of `show_scene` for ``n_panels`` panels."""
    h, w = blend.observation.bbox.shape[-2:]
    aspect = h / max(w, 1)
    nrows, ncols = _grid_shape(n_panels, linear)
    pad = 0.6 if axes else 0.35
    return (panel * ncols + 0.3, (panel * aspect + pad) * nrows)


def source_columns(show_model, show_rendered, show_observed, show_spectrum) -> list[str]:
    """The per-source columns requested, in order (model, rendered, observed, spectrum)."""
    flags = {
        "model": show_model,
        "rendered": show_rendered,
        "observed": show_observed,
        "spectrum": show_spectrum,
    }
    return [c for c, on in flags.items() if on]


def draw_sources(
    container,
    blend,
    sources=None,
    norm=None,
    channel_map=None,
    show_model=True,
    show_rendered=False,
    show_observed=False,
    show_spectrum=True,
    use_flux=False,
    axes=True,
    max_sources=None,
):
    """Draw the per-source rows of `show_sources` into ``container``.

    Takes the arguments of `show_sources` (but ``figsize`` and ``pyplot``); returns the
    ``[(index, source)]`` shown."""
    observation = blend.observation
    if show_observed:
        require_data(observation, "observation")
    chosen, n_total = chosen_sources(blend, sources, max_sources)
    columns = source_columns(show_model, show_rendered, show_observed, show_spectrum)
    if not columns:
        raise ValueError("Nothing to show: every show_* option is False")
    if norm is None:
        norm = default_norm(blend, channel_map)
    obs_rgb = None
    if show_observed:
        obs_rgb = img_to_rgb(observed_images(observation), channel_map, norm)
    bands = list(getattr(observation, "bands", ()))
    # margins in inches (room for the band labels under the last spectrum and the titles)
    height = max(float(container.bbox.height) / float(container.figure.dpi), 1.0)
    width = max(float(container.bbox.width) / float(container.figure.dpi), 1.0)
    gs = container.add_gridspec(
        len(chosen),
        len(columns),
        left=min(0.45 / width, 0.2) if axes else 0.04,
        right=0.98,
        bottom=min(0.4 / height, 0.3),
        top=1 - min(0.3 / height, 0.2),
        wspace=0.35 if axes else 0.25,
        hspace=0.5,
    )
    for row, (idx, src) in enumerate(chosen):
        model_title, rendered_title = source_titles(idx, src, use_flux)
        model = source_model(src, use_flux)
        box = getattr(model, "bbox", None) or src.bbox
        xy = peak_xy(src)
        for col, what in enumerate(columns):
            ax = container.add_subplot(gs[row, col])
            if what == "spectrum":
                _draw_spectrum(ax, src, model, bands, use_flux)
                continue
            if what == "model":
                rgb = img_to_rgb(model, channel_map, norm)
                ax.imshow(rgb, extent=image_extent(box), origin="lower", interpolation="nearest")
                ax.set_title(model_title, fontsize=8)
                view = box
            else:
                if what == "rendered":
                    rgb = img_to_rgb(source_on_blend(blend, model, use_flux), channel_map, norm)
                    ax.set_title(rendered_title, fontsize=8)
                else:
                    rgb = obs_rgb
                    ax.set_title("Observation", fontsize=8)
                ax.imshow(
                    rgb,
                    extent=image_extent(observation.bbox),
                    origin="lower",
                    interpolation="nearest",
                )
                ax.add_patch(_box_patch(box))
                view = observation.bbox
            if xy is not None:
                ax.plot(*xy, **_MARKER)
            ext = image_extent(view)
            ax.set_xlim(*ext[:2])
            ax.set_ylim(*ext[2:])
            style_axes(ax, axes)
    if n_total > len(chosen):
        container.suptitle(f"first {len(chosen)} of {n_total} sources", fontsize=8)
    return chosen


def _draw_spectrum(ax, src, model, bands, use_flux: bool) -> None:
    spectrum = spectrum_of(model)
    x = np.arange(len(spectrum))
    ax.plot(x, spectrum, "o-", color="k", ms=3, lw=1, label="total")
    components = component_spectra(src, use_flux)
    for c, cs in components:
        ax.plot(x, cs, "--", lw=0.8, label=f"comp {c}")
    if components:
        ax.legend(fontsize=6, frameon=False)
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.set_xticks(x)
    ax.set_xticklabels(bands if len(bands) == len(spectrum) else [str(i) for i in x], fontsize=7)
    ax.set_xlim(-0.5, len(spectrum) - 0.5)
    # a few short y labels (1.2k, 35, 0.5m): readable at this size, no offset text
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.tick_params(axis="both", labelsize=7, length=2, pad=1.5)
    ax.set_title("Spectrum", fontsize=8)
    ax.axhline(0, color="0.7", lw=0.5)
