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
from typing import TYPE_CHECKING

import numpy as np

from .panels import (
    draw_scene,
    draw_sources,
    label_at,
    new_figure,
    scene_figsize,
    source_columns,
    style_axes,
)
from .rgb import Mapping, asinh_norm, img_to_rgb
from .views import (
    chosen_sources,
    default_norm,
    image_extent,
    observed_images,
    observed_noise_rms,
    require_data,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "default_norm",
    "show_loss",
    "show_observation",
    "show_scene",
    "show_sources",
]


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
    linear: bool | None = None,
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
        All panels in one row (True) or in two rows (False); default: four panels in a
        2 x 2 grid, fewer in one row.
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
        figsize = scene_figsize(blend, n, linear, axes)
    fig = new_figure(figsize, pyplot)
    draw_scene(
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
        n_rows = len(chosen_sources(blend, sources, max_sources)[0])
        n_cols = len(source_columns(show_model, show_rendered, show_observed, show_spectrum))
        figsize = (2.6 * max(n_cols, 1) + 0.3, 2.5 * n_rows)
    fig = new_figure(figsize, pyplot)
    draw_sources(
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
    require_data(observation, "observation")
    images = observed_images(observation)
    if norm is None:
        norm = asinh_norm(
            images, channel_map=channel_map, noise_rms=observed_noise_rms(observation)
        )
    rgb = img_to_rgb(images, channel_map, norm, mask=mask)
    bands = list(getattr(observation, "bands", [str(b) for b in range(images.shape[0])]))
    psfs = getattr(observation, "psfs", None) if show_psf else None
    model_psf = getattr(observation, "model_psf", None) if show_psf else None
    n_psf = 0 if psfs is None else len(psfs) + (model_psf is not None)
    h, w = images.shape[-2:]
    if figsize is None:
        width = max(4.0, 1.3 * n_psf)
        figsize = (width, width * h / max(w, 1) + 0.5 + (1.5 if n_psf else 0))
    fig = new_figure(figsize, pyplot)
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
    ax.imshow(rgb, extent=image_extent(observation.bbox), origin="lower", interpolation="nearest")
    ax.set_title("Observation", fontsize=9)
    style_axes(ax, axes)
    for k, c in enumerate(centers or []):
        label_at(ax, float(c[1]), float(c[0]), str(k))
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
    fig = new_figure(figsize or (8, 3), pyplot)
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
