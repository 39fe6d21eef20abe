"""Scarlet-style pictures of blends: scene, sources, observation and loss panels.

Every function returns a matplotlib figure and never calls ``plt.show()``.
By default the figure is made with ``pyplot`` (so ``plt.show()`` or a notebook
shows it, as in the scarlet tutorials); pass ``pyplot=False`` for a bare
``matplotlib.figure.Figure`` that no global state keeps alive (for scripts and
worker processes: save it with ``fig.savefig``).

Images are drawn with ``origin="lower"`` in parent-image pixel coordinates, so
the axes read ``x`` and ``y`` of the parent image and a source labelled ``k``
is ``blend.sources[k]``, written at its peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .rgb import Mapping, _as_array, asinh_norm, img_to_rgb, residual_norm

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "default_norm",
    "show_loss",
    "show_observation",
    "show_scene",
    "show_sources",
]

_MARKER = {"marker": "x", "color": "w", "mew": 1.2, "ms": 8, "ls": "none"}
_BOX = {"facecolor": "none", "edgecolor": "w", "lw": 0.8, "ls": "--"}


# ----------------------------------------------------------------------------------------------
# helpers


def _new_figure(figsize, pyplot: bool) -> Figure:
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _extent(bbox) -> tuple[float, float, float, float]:
    """imshow extent of a box so that pixel (y, x) is centred on coordinate (y, x)."""
    (y0, x0), (h, w) = bbox.origin[-2:], bbox.shape[-2:]
    return (x0 - 0.5, x0 + w - 0.5, y0 - 0.5, y0 + h - 0.5)


def _has_data(observation) -> bool:
    return bool(getattr(observation, "has_data", True))


def _require_data(observation, what: str) -> None:
    if not _has_data(observation):
        raise ValueError(
            f"Cannot show the {what}: the blend's observation has no image data "
            "(rebuild the blend with the exposure cutout)"
        )


def _observed(observation) -> np.ndarray:
    return np.asarray(_as_array(observation.images), dtype=np.float32)


def _noise_rms(observation):
    rms = getattr(observation, "noise_rms", None)
    if rms is None:
        return None
    rms = np.asarray(rms, dtype=np.float64)
    if rms.size == 0 or not np.all(np.isfinite(rms)) or not np.any(rms > 0):
        return None
    return rms


def default_norm(blend, channel_map: np.ndarray | None = None, Q: float = 10.0) -> Mapping:
    """The `AsinhMapping` used when no ``norm`` is given: tuned to the blend's data.

    With image data the stretch follows the observed image and its noise (see
    `asinh_norm`: the bright end saturates, the sky noise stays faint); without data,
    the rendered model.
    """
    observation = blend.observation
    if _has_data(observation):
        return asinh_norm(
            _observed(observation), channel_map=channel_map, Q=Q, noise_rms=_noise_rms(observation)
        )
    return asinh_norm(_as_array(blend.get_model(convolve=True)), channel_map=channel_map, Q=Q)


def _source_index(blend, src, fallback: int) -> int:
    for i, s in enumerate(blend.sources):
        if s is src:
            return i
    return fallback


def _resolve_sources(blend, sources) -> list[tuple[int, Any]]:
    """``[(index in blend.sources, source)]`` for non-null sources."""
    all_sources = list(blend.sources)
    if sources is None:
        chosen = list(enumerate(all_sources))
    else:
        if isinstance(sources, (int, np.integer)):
            raise TypeError("sources must be a sequence of sources or of indices, not a number")
        chosen = []
        for n, s in enumerate(sources):
            if isinstance(s, (int, np.integer)):
                if not -len(all_sources) <= s < len(all_sources):
                    raise ValueError(
                        f"source index {s} out of range for a blend of {len(all_sources)} sources"
                    )
                chosen.append((int(s) % len(all_sources), all_sources[s]))
            else:
                chosen.append((_source_index(blend, s, n), s))
    return [(i, s) for i, s in chosen if not getattr(s, "is_null", False)]


def _peak_xy(src) -> tuple[float, float] | None:
    peak = getattr(src, "peak", None)
    if peak is None:
        peak = getattr(src, "center", None)
    if peak is None:
        return None
    return float(peak[1]), float(peak[0])


def _label(ax, x: float, y: float, text: str, fontsize: float = 10) -> None:
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


def _style_axes(ax, axes: bool) -> None:
    if not axes:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.tick_params(labelsize=7, length=2)


def _grid_shape(n_panels: int, linear: bool) -> tuple[int, int]:
    """``(nrows, ncols)`` of the scene panels: one row, or two rows."""
    ncols = n_panels if linear else int(np.ceil(n_panels / 2))
    return (1 if linear else int(np.ceil(n_panels / ncols))), ncols


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


# ----------------------------------------------------------------------------------------------
# scene


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
        _require_data(observation, "observation")
    if show_residual:
        _require_data(observation, "residual")
    if norm is None:
        norm = default_norm(blend, channel_map)
    panels = []
    model_box = getattr(blend, "bbox", None) or observation.bbox
    mask = _resolve_mask(mask, blend)
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
        rendered = _on_box(rendered, observation.bbox)
    if show_rendered:
        title = "Flux re-apportioned" if use_flux else "Model Rendered"
        panels.append((title, img_to_rgb(rendered, channel_map, norm, mask=mask), observation.bbox))
    if show_observed:
        panels.append(
            (
                "Observation",
                img_to_rgb(_observed(observation), channel_map, norm, mask=mask),
                observation.bbox,
            )
        )
    if show_residual:
        residual = _observed(observation) - rendered
        rnorm = residual_norm(residual, channel_map)
        panels.append(
            ("Residual", img_to_rgb(residual, channel_map, rnorm, mask=mask), observation.bbox)
        )
    return panels


def _on_box(image, bbox) -> np.ndarray:
    """Pixels of an ``Image`` (or array) laid on ``bbox``."""
    if isinstance(image, np.ndarray):
        return image
    bbox = bbox[-2:] if bbox.ndim > 2 else bbox
    if image.bbox != bbox:
        image = image.project(bbox)
    return np.asarray(_as_array(image))


def _resolve_mask(mask, blend) -> np.ndarray | None:
    if mask is None or mask is False:
        return None
    if isinstance(mask, str):
        if mask != "weights":
            raise ValueError(f"mask must be a boolean array, None or 'weights', got {mask!r}")
        observation = blend.observation
        _require_data(observation, "footprint mask")
        return np.all(_as_array(observation.weights) <= 0, axis=0)
    mask = np.asarray(mask, dtype=bool)
    shape = tuple(blend.observation.bbox.shape[-2:])
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} differs from the blend box shape {shape}")
    return mask


def _draw_scene(
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
    linear=True,
    use_flux=False,
    mask=None,
    axes=True,
    title=None,
):
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
    sources = _resolve_sources(blend, None) if (label_sources or show_boxes) else []
    out_axes = []
    for k, (ptitle, rgb, box) in enumerate(panels):
        ax = container.add_subplot(gs[k // ncols, k % ncols])
        ax.imshow(rgb, extent=_extent(box), origin="lower", interpolation="nearest")
        ax.set_title(ptitle, fontsize=9)
        _style_axes(ax, axes)
        for idx, src in sources:
            if show_boxes:
                sbox = getattr(src, "flux_box", None) if use_flux else None
                ax.add_patch(_box_patch(sbox if sbox is not None else src.bbox))
            if label_sources:
                xy = _peak_xy(src)
                if xy is not None:
                    _label(ax, *xy, str(idx), fontsize=9 if len(sources) < 20 else 6)
        ax.set_xlim(*_extent(box)[:2])
        ax.set_ylim(*_extent(box)[2:])
        out_axes.append(ax)
    if title:
        container.suptitle(title, fontsize=10)
    return out_axes


def show_scene(
    blend,
    norm: Mapping | None = None,
    channel_map: np.ndarray | None = None,
    show_model: bool = True,
    show_rendered: bool = False,
    show_observed: bool = False,
    show_residual: bool = False,
    label_sources: bool = True,
    show_boxes: bool = False,
    linear: bool = True,
    figsize: tuple[float, float] | None = None,
    *,
    use_flux: bool = False,
    mask: np.ndarray | str | None = None,
    axes: bool = True,
    title: str | None = None,
    pyplot: bool = True,
) -> Figure:
    """Show a blend: its model, the model in the observed seeing, the data and the residual.

    Parameters
    ----------
    blend
        A fitted `Blend` (or one rebuilt from stored models).
    norm
        Intensity mapping shared by the model, rendered and observed panels
        (e.g. ``AsinhMapping(minimum=0, stretch=0.1, Q=10)``); default `default_norm`.
        The residual uses its own symmetric linear mapping (zero is grey).
    channel_map
        ``(3, bands)`` band-to-RGB matrix; default ``channels_to_rgb(bands)``.
    show_model, show_rendered, show_observed, show_residual
        Which panels to draw: the model in model space, the model convolved to the
        observed PSFs, the observed images, and observed minus rendered.
    label_sources
        Write each source's index in ``blend.sources`` at its peak.
    show_boxes
        Outline every source's box.
    linear
        All panels in one row (True) or in two rows.
    figsize
        Figure size in inches; default from the number of panels and the blend shape.
    use_flux
        Show the flux re-apportioned by `weight_sources` instead of the model.
    mask
        ``(h, w)`` boolean array on the blend box, True where pixels are hidden (e.g.
        outside the parent footprint), or ``"weights"`` to hide pixels of zero weight.
    axes
        Draw pixel-coordinate tick labels.
    title
        Optional figure title.
    pyplot
        Make the figure with pyplot (shown by ``plt.show()``); False gives a bare
        ``Figure`` for saving only.

    Returns
    -------
    fig : `matplotlib.figure.Figure`
    """
    n = sum(map(bool, (show_model, show_rendered, show_observed, show_residual)))
    if n == 0:
        raise ValueError("Nothing to show: every show_* option is False")
    if figsize is None:
        figsize = _scene_figsize(blend, n, linear, axes)
    fig = _new_figure(figsize, pyplot)
    _draw_scene(
        fig,
        blend,
        norm,
        channel_map,
        show_model,
        show_rendered,
        show_observed,
        show_residual,
        label_sources,
        show_boxes,
        linear,
        use_flux,
        mask,
        axes,
        title,
    )
    return fig


def _scene_figsize(blend, n_panels: int, linear: bool, axes: bool, panel: float = 3.5):
    h, w = blend.observation.bbox.shape[-2:]
    aspect = h / max(w, 1)
    nrows, ncols = _grid_shape(n_panels, linear)
    pad = 0.6 if axes else 0.35
    return (panel * ncols + 0.3, (panel * aspect + pad) * nrows)


# ----------------------------------------------------------------------------------------------
# sources


def _source_model(src, use_flux: bool):
    if use_flux:
        if getattr(src, "flux", None) is None:
            raise ValueError(
                "Source has no re-apportioned flux: run weight_sources(blend) before use_flux=True"
            )
        return src.get_model(use_flux=True)
    return src.get_model()


def _render_source(blend, model) -> np.ndarray:
    """A source model laid on the blend box and convolved to the observed PSFs."""
    from vermilion.core.image import Image

    observation = blend.observation
    bands = tuple(getattr(observation, "bands", ()) or getattr(model, "bands", ()))
    full = Image.from_box(observation.bbox[-2:], bands=bands or None)
    full.insert(model)
    return np.asarray(_as_array(observation.convolve(full)))


def _source_on_blend(blend, model, use_flux: bool) -> np.ndarray:
    """A source alone on the blend box: its re-apportioned flux as is, or its model rendered."""
    if use_flux:
        return _on_box(model, blend.observation.bbox)
    return _render_source(blend, model)


def _chosen_sources(blend, sources, max_sources: int | None) -> tuple[list[tuple[int, Any]], int]:
    """The non-null sources to show (at most ``max_sources``) and how many there are in all."""
    chosen = _resolve_sources(blend, sources)
    n_total = len(chosen)
    if max_sources is not None:
        chosen = chosen[:max_sources]
    if not chosen:
        raise ValueError("No (non-null) source to show")
    return chosen, n_total


def _source_columns(show_model, show_rendered, show_observed, show_spectrum) -> list[str]:
    flags = {
        "model": show_model,
        "rendered": show_rendered,
        "observed": show_observed,
        "spectrum": show_spectrum,
    }
    return [c for c, on in flags.items() if on]


def _component_spectra(src, use_flux: bool) -> list[tuple[int, np.ndarray]]:
    """``[(index, spectrum)]`` of the components of a source with several (none for its flux)."""
    components = list(getattr(src, "components", []) or [])
    if use_flux or len(components) < 2:
        return []
    out = []
    for c, comp in enumerate(components):
        try:
            out.append((c, _spectrum_of(comp.get_model())))
        except (AttributeError, TypeError, ValueError):
            continue
    return out


def _spectrum_of(model) -> np.ndarray:
    data = np.asarray(_as_array(model), dtype=np.float64)
    if data.ndim == 2:
        data = data[None]
    return data.sum(axis=(1, 2))


def _draw_sources(
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
    observation = blend.observation
    if show_observed:
        _require_data(observation, "observation")
    chosen, n_total = _chosen_sources(blend, sources, max_sources)
    columns = _source_columns(show_model, show_rendered, show_observed, show_spectrum)
    if not columns:
        raise ValueError("Nothing to show: every show_* option is False")
    if norm is None:
        norm = default_norm(blend, channel_map)
    obs_rgb = None
    if show_observed:
        obs_rgb = img_to_rgb(_observed(observation), channel_map, norm)
    bands = list(getattr(observation, "bands", ()))
    gs = container.add_gridspec(
        len(chosen),
        len(columns),
        left=0.07 if axes else 0.04,
        right=0.98,
        bottom=0.05 if len(chosen) < 3 else 0.03,
        top=0.95 if len(chosen) < 3 else 0.97,
        wspace=0.3 if axes else 0.25,
        hspace=0.45,
    )
    kind = "Flux" if use_flux else "Model"
    for row, (idx, src) in enumerate(chosen):
        model = _source_model(src, use_flux)
        box = getattr(model, "bbox", None) or src.bbox
        xy = _peak_xy(src)
        for col, what in enumerate(columns):
            ax = container.add_subplot(gs[row, col])
            if what == "spectrum":
                _draw_spectrum(ax, src, model, bands, use_flux)
                continue
            if what == "model":
                rgb = img_to_rgb(model, channel_map, norm)
                ax.imshow(rgb, extent=_extent(box), origin="lower", interpolation="nearest")
                ax.set_title(f"{kind} Source {idx}", fontsize=8)
                view = box
            else:
                if what == "rendered":
                    rgb = img_to_rgb(_source_on_blend(blend, model, use_flux), channel_map, norm)
                    ax.set_title(
                        f"{kind} Source {idx}" + ("" if use_flux else " Rendered"), fontsize=8
                    )
                else:
                    rgb = obs_rgb
                    ax.set_title("Observation", fontsize=8)
                ax.imshow(
                    rgb, extent=_extent(observation.bbox), origin="lower", interpolation="nearest"
                )
                ax.add_patch(_box_patch(box))
                view = observation.bbox
            if xy is not None:
                ax.plot(*xy, **_MARKER)
            ext = _extent(view)
            ax.set_xlim(*ext[:2])
            ax.set_ylim(*ext[2:])
            _style_axes(ax, axes)
    if n_total > len(chosen):
        container.suptitle(f"first {len(chosen)} of {n_total} sources", fontsize=8)
    return chosen


def _draw_spectrum(ax, src, model, bands, use_flux: bool) -> None:
    spectrum = _spectrum_of(model)
    x = np.arange(len(spectrum))
    ax.plot(x, spectrum, "o-", color="k", ms=3, lw=1, label="total")
    components = _component_spectra(src, use_flux)
    for c, cs in components:
        ax.plot(x, cs, "--", lw=0.8, label=f"comp {c}")
    if components:
        ax.legend(fontsize=6, frameon=False)
    ax.set_xticks(x)
    ax.set_xticklabels(bands if len(bands) == len(spectrum) else [str(i) for i in x], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Spectrum", fontsize=8)
    ax.axhline(0, color="0.7", lw=0.5)


def show_sources(
    blend,
    sources: Sequence | None = None,
    norm: Mapping | None = None,
    channel_map: np.ndarray | None = None,
    show_model: bool = True,
    show_rendered: bool = False,
    show_observed: bool = False,
    show_spectrum: bool = True,
    use_flux: bool = False,
    figsize: tuple[float, float] | None = None,
    *,
    axes: bool = True,
    max_sources: int | None = None,
    pyplot: bool = True,
) -> Figure:
    """One row per source: its model in its own box, rendered, observed, and its spectrum.

    Parameters
    ----------
    blend
        The `Blend`.
    sources
        Sources (objects of ``blend.sources``) or their indices; default all.
        Null sources are skipped. Rows are titled with the index in ``blend.sources``.
    norm, channel_map
        As for `show_scene` (the same default norm, so colours match the scene).
    show_model
        The model in the source's own box, its peak marked with ``x``.
    show_rendered
        The source alone in the blend box, convolved to the observed PSFs, its box outlined.
    show_observed
        The observed images, with the source's box and peak.
    show_spectrum
        The source's flux per band (and per component when it has several).
    use_flux
        Show the re-apportioned flux (`weight_sources`) instead of the model.
    figsize
        Figure size; default 2.6 inches per panel.
    axes
        Draw pixel-coordinate tick labels on the image panels.
    max_sources
        Show at most this many sources (the title then says how many were left out).
    pyplot
        As for `show_scene`.

    Returns
    -------
    fig : `matplotlib.figure.Figure`
    """
    if figsize is None:
        n_rows = len(_chosen_sources(blend, sources, max_sources)[0])
        n_cols = len(_source_columns(show_model, show_rendered, show_observed, show_spectrum))
        figsize = (2.6 * max(n_cols, 1) + 0.3, 2.5 * n_rows)
    fig = _new_figure(figsize, pyplot)
    _draw_sources(
        fig,
        blend,
        sources,
        norm,
        channel_map,
        show_model,
        show_rendered,
        show_observed,
        show_spectrum,
        use_flux,
        axes,
        max_sources,
    )
    return fig


# ----------------------------------------------------------------------------------------------
# observation and loss


def show_observation(
    observation,
    norm: Mapping | None = None,
    channel_map: np.ndarray | None = None,
    centers: Sequence[tuple[float, float]] | None = None,
    show_psf: bool = False,
    mask: np.ndarray | None = None,
    figsize: tuple[float, float] | None = None,
    *,
    axes: bool = True,
    pyplot: bool = True,
) -> Figure:
    """Show an observation in colour, optionally with labelled centres and its PSFs.

    Parameters
    ----------
    observation
        An `Observation` with image data.
    norm, channel_map
        As for `show_scene`; the default norm follows the image's noise.
    centers
        ``(y, x)`` positions (parent coordinates) labelled by their index.
    show_psf
        Add a row with the observed PSF of every band (log scale) and the model PSF.
    mask
        ``(h, w)`` boolean, True where pixels are hidden.
    figsize
        Figure size in inches.
    axes, pyplot
        As for `show_scene`.
    """
    _require_data(observation, "observation")
    images = _observed(observation)
    if norm is None:
        norm = asinh_norm(images, channel_map=channel_map, noise_rms=_noise_rms(observation))
    rgb = img_to_rgb(images, channel_map, norm, mask=mask)
    bands = list(getattr(observation, "bands", [str(b) for b in range(images.shape[0])]))
    psfs = getattr(observation, "psfs", None) if show_psf else None
    model_psf = getattr(observation, "model_psf", None) if show_psf else None
    n_psf = 0 if psfs is None else len(psfs) + (model_psf is not None)
    h, w = images.shape[-2:]
    if figsize is None:
        width = max(4.0, 1.3 * n_psf)
        figsize = (width, width * h / max(w, 1) + 0.5 + (1.5 if n_psf else 0))
    fig = _new_figure(figsize, pyplot)
    if n_psf:
        gs = fig.add_gridspec(
            2,
            n_psf,
            height_ratios=[3.5, 1],
            hspace=0.25,
            left=0.08,
            right=0.98,
            top=0.95,
            bottom=0.04,
        )
        ax = fig.add_subplot(gs[0, :])
    else:
        ax = fig.add_subplot(1, 1, 1)
    ax.imshow(rgb, extent=_extent(observation.bbox), origin="lower", interpolation="nearest")
    ax.set_title("Observation", fontsize=9)
    _style_axes(ax, axes)
    for k, c in enumerate(centers or []):
        _label(ax, float(c[1]), float(c[0]), str(k))
    if n_psf:
        items = [(b, p) for b, p in zip(bands, psfs)]
        if model_psf is not None:
            items.append(("model", model_psf))
        for k, (name, psf) in enumerate(items):
            pax = fig.add_subplot(gs[1, k])
            psf = np.asarray(psf, dtype=np.float64)
            top = psf.max() if psf.size and psf.max() > 0 else 1.0
            pax.imshow(np.log10(np.clip(psf / top, 1e-4, None)), origin="lower", cmap="magma")
            pax.set_title(f"PSF {name}", fontsize=7)
            pax.set_xticks([])
            pax.set_yticks([])
    return fig


def show_loss(blend, figsize: tuple[float, float] | None = None, *, pyplot: bool = True) -> Figure:
    """The loss history of a fit and its relative change per iteration.

    Parameters
    ----------
    blend
        A fitted `Blend` (its ``loss`` holds one value per iteration).
    figsize
        Figure size in inches.
    pyplot
        As for `show_scene`.
    """
    loss = np.asarray(list(getattr(blend, "loss", []) or []), dtype=np.float64)
    if loss.size == 0:
        raise ValueError("The blend has no loss history: fit it first (blend.fit)")
    fig = _new_figure(figsize or (8, 3), pyplot)
    ax1, ax2 = fig.subplots(1, 2)
    it = np.arange(1, loss.size + 1)
    if np.all(loss < 0):
        # a log-likelihood: show -log L, which falls towards its minimum on a log axis
        ax1.semilogy(it, -loss, "-", color="C0", lw=1.2)
        ax1.set_ylabel(r"$-\log L$")
    else:
        ax1.plot(it, loss, "-", color="C0", lw=1.2)
        ax1.set_ylabel("loss")
    ax1.set_xlabel("iteration")
    ax1.set_title(f"Loss ({loss.size} iterations, final {loss[-1]:.6g})", fontsize=9)
    if loss.size > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(np.diff(loss)) / np.abs(loss[1:])
        good = np.isfinite(rel) & (rel > 0)
        if good.any():
            ax2.semilogy(it[1:][good], rel[good], ".-", color="C1", lw=1, ms=3)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel(r"$|\Delta L| / |L|$")
    ax2.set_title("Relative change", fontsize=9)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.16, top=0.88, wspace=0.35)
    return fig
