"""Pictures of one blend written to files: the scene and source panels in one PNG, thumbnails.

`render_blend_pictures` is what ``vermilion show`` calls. Files are written
atomically (a temporary file in the same folder, then ``os.replace``), with bare
``matplotlib.figure.Figure`` objects (no pyplot state, safe in worker processes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vermilion.core.files import atomic_write

from .panels import draw_scene, draw_sources
from .plot import show_scene, show_sources
from .rgb import Mapping, img_to_rgb, residual_norm
from .views import default_norm, observation_has_data, observed_images, on_box, resolve_sources

__all__ = [
    "bin_pixels",
    "blend_thumbnail",
    "render_blend_pictures",
    "save_blend_pictures",
    "save_figure",
    "save_rgb",
]


def save_figure(
    fig, path: str | os.PathLike, dpi: float = 100, fast: bool = False, **kwargs
) -> Path:
    """Save a matplotlib figure atomically; the format follows the file suffix.

    ``fast=True`` writes PNGs with light compression (quicker, somewhat larger files).
    """
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fast and fmt == "png":
        kwargs.setdefault("pil_kwargs", {"compress_level": 1})
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt, **kwargs))


def save_rgb(rgb: np.ndarray, path: str | os.PathLike, origin: str = "lower") -> Path:
    """Write a ``uint8 (h, w, 3)`` array as a PNG (row 0 at the bottom with ``origin='lower'``)."""
    from PIL import Image as PILImage

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise ValueError(f"rgb must be a uint8 (h, w, 3) array, got {rgb.dtype} {rgb.shape}")
    if origin == "lower":
        rgb = rgb[::-1]
    picture = PILImage.fromarray(np.ascontiguousarray(rgb))
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG", compress_level=1))


def bin_pixels(data: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the last two axes by ``factor`` (trimming the remainder).

    Parameters
    ----------
    data
        ``(..., h, w)`` array.
    factor
        Block size (1 or less: ``data`` as it is).

    Returns
    -------
    numpy.ndarray
        ``(..., h // factor, w // factor)``.
    """
    if factor <= 1:
        return data
    h, w = data.shape[-2:]
    h2, w2 = h // factor, w // factor
    data = data[..., : h2 * factor, : w2 * factor]
    return data.reshape(*data.shape[:-2], h2, factor, w2, factor).mean(axis=(-3, -1))


def blend_thumbnail(
    blend,
    norm: Mapping | None = None,
    channel_map: np.ndarray | None = None,
    max_size: int = 160,
    gap: int = 2,
    rendered: np.ndarray | None = None,
) -> np.ndarray:
    """A ``uint8 (h, w, 3)`` strip: observed | rendered model | residual (model only without data).

    Parameters
    ----------
    blend
        The `Blend`.
    norm, channel_map
        As for `show_scene`; the residual has its own symmetric linear norm.
    max_size
        Panels larger than this (pixels) are block-averaged down.
    gap
        Grey columns between the panels.
    rendered
        The rendered model on the blend box, if already computed.
    """
    observation = blend.observation
    if rendered is None:
        rendered = on_box(blend.get_model(convolve=True), observation.bbox)
    h, w = rendered.shape[-2:]
    factor = int(np.ceil(max(h, w) / max_size)) if max(h, w) > max_size else 1
    if norm is None:
        norm = default_norm(blend, channel_map)
    panels = []
    model = bin_pixels(rendered, factor)
    if observation_has_data(observation):
        observed = bin_pixels(observed_images(observation), factor)
        residual = observed - model
        panels.append(img_to_rgb(observed, channel_map, norm))
        panels.append(img_to_rgb(model, channel_map, norm))
        panels.append(img_to_rgb(residual, channel_map, residual_norm(residual, channel_map)))
    else:
        panels.append(img_to_rgb(model, channel_map, norm))
    height = panels[0].shape[0]
    spacer = np.full((height, gap, 3), 90, dtype=np.uint8)
    strip = [panels[0]]
    for p in panels[1:]:
        strip += [spacer, p]
    return np.concatenate(strip, axis=1)


def _scene_flags(blend, show_observed: bool | None):
    has = observation_has_data(blend.observation)
    if show_observed is None:
        show_observed = has
    return show_observed, show_observed and has


def render_blend_pictures(
    blend,
    out_path: str | os.PathLike,
    sources: int | Sequence[int] | None = None,
    use_flux: bool = False,
    norm: Mapping | None = None,
    channel_map: np.ndarray | None = None,
    mask: np.ndarray | str | None = None,
    show_observed: bool | None = None,
    max_sources: int = 12,
    dpi: float = 100,
    axes: bool = True,
    title: str | None = None,
) -> Path:
    """Write one picture of a blend: its scene on top and one row per source below.

    The scene shows the model, the rendered model and, when the observation holds
    data, the observed images and the residual; each source row shows its model
    (peak marked), its rendered model, the observation (with data) and its spectrum.

    Parameters
    ----------
    blend
        The `Blend`.
    out_path
        Output file; the format follows the suffix (``.png``, ``.pdf``, ``.svg``...).
    sources
        ``None``: every non-null source (at most ``max_sources``); a number ``N``: the
        first ``N`` (0 for the scene only); a sequence: those indices of ``blend.sources``.
    use_flux
        Show the re-apportioned flux (after `weight_sources`) instead of the models.
    norm, channel_map, mask
        As for `show_scene`.
    show_observed
        Show the observed and residual panels (default: when the blend has data).
    max_sources
        Most source rows drawn when ``sources`` is None.
    dpi
        Resolution of raster output.
    axes
        Pixel-coordinate tick labels.
    title
        Figure title (e.g. the blend id).

    Returns
    -------
    The path written.
    """
    from matplotlib.figure import Figure

    show_obs, show_res = _scene_flags(blend, show_observed)
    if show_obs and not observation_has_data(blend.observation):
        raise ValueError("show_observed=True but the blend's observation holds no image data")
    if norm is None:
        norm = default_norm(blend, channel_map)
    if isinstance(sources, bool):
        raise TypeError("sources must be None, a number or a sequence of indices")
    if isinstance(sources, (int, np.integer)):
        if sources < 0:
            raise ValueError(f"sources must be >= 0, got {sources}")
        chosen = [i for i, _ in resolve_sources(blend, None)][: int(sources)]
    elif sources is None:
        chosen = [i for i, _ in resolve_sources(blend, None)][:max_sources]
    else:
        chosen = [i for i, _ in resolve_sources(blend, list(sources))]

    n_scene = 2 + 2 * show_obs
    h, w = blend.observation.bbox.shape[-2:]
    aspect = h / max(w, 1)
    panel = 3.2
    width = panel * n_scene + 0.3
    scene_h = (width - 0.3) / n_scene * aspect + 0.7
    n_cols = 3 + show_obs
    row_h = (width / n_cols) * 0.85
    sources_h = row_h * len(chosen)
    fig = Figure(figsize=(width, scene_h + sources_h))
    if chosen:
        top, bottom = fig.subfigures(2, 1, height_ratios=[scene_h, sources_h])
    else:
        top, bottom = fig, None
    draw_scene(
        top,
        blend,
        norm,
        channel_map,
        show_model=True,
        show_rendered=True,
        show_observed=show_obs,
        show_residual=show_res,
        label_sources=True,
        show_boxes=False,
        linear=True,
        use_flux=use_flux,
        mask=mask,
        axes=axes,
        title=title,
    )
    if bottom is not None:
        draw_sources(
            bottom,
            blend,
            chosen,
            norm,
            channel_map,
            show_model=True,
            show_rendered=True,
            show_observed=show_obs,
            show_spectrum=True,
            use_flux=use_flux,
            axes=axes,
        )
    return save_figure(fig, out_path, dpi=dpi)


def save_blend_pictures(blend, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """The pictures of the Rubin "Working with scarlet-lite Models" steps for one blend.

    ``<stem>_scene.png`` (model, rendered, observed and residual, 100 dpi),
    ``<stem>_sources.png`` (every source's model, rendering, observation and spectrum)
    and ``<stem>_sources_flux.png`` (the same for the re-apportioned flux; run
    `weight_sources` first), 80 dpi, all with the `default_norm` of the blend.

    Parameters
    ----------
    blend
        A fitted blend with image data (and re-apportioned fluxes).
    out_dir
        Folder of the pictures (it must exist).
    stem
        Start of the file names, e.g. ``"blend_<id>"``.

    Returns
    -------
    list of Path
        The three pictures, in the order above.
    """
    out_dir = Path(out_dir)
    # The seed's AsinhMapping(minimum=0, stretch=0.1, Q=10) suits HSC counts; our images
    # are in nJy, so let the display tune the stretch to the data and its noise.
    norm = default_norm(blend)
    fig = show_scene(
        blend,
        norm=norm,
        show_model=True,
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        linear=False,  # a 2 x 2 grid, sized to the blend by show_scene
        pyplot=False,
    )
    pictures = [out_dir / f"{stem}_scene.png"]
    fig.savefig(pictures[-1], dpi=100)
    for use_flux in (False, True):
        fig = show_sources(
            blend,
            norm=norm,
            show_model=True,
            show_rendered=True,
            show_observed=True,
            show_spectrum=True,
            use_flux=use_flux,
            pyplot=False,
        )
        pictures.append(out_dir / f"{stem}_sources{'_flux' if use_flux else ''}.png")
        fig.savefig(pictures[-1], dpi=80)
    return pictures
