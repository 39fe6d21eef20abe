"""Pictures of vermilion's objects for Jupyter (``_repr_png_``).

`vermilion.core.notebook` holds the hook: the engine, the stored models and the
exposures call it from their ``_repr_png_``, and ``vermilion/__init__.py`` fills
it with `picture_png` (through a function that imports this module, and so
matplotlib, only when the first picture is asked for). Objects are recognised
by what they hold, never by importing their classes: this package sits above
`vermilion.core` only.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .pictures import bin_pixels
from .plot import show_observation, show_scene
from .rgb import asinh_norm, img_to_rgb
from .views import observation_has_data

__all__ = ["figure_png", "picture_png"]

#: Pictures are at most this many pixels of data on a side (larger data is binned).
MAX_PIXELS = 600
#: A `ModelData` shows its first this many blends.
MAX_BLENDS = 4


def figure_png(fig, dpi: int = 72) -> bytes:
    """The PNG bytes of a matplotlib figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _is_blend(obj: Any) -> bool:
    return hasattr(obj, "sources") and hasattr(obj, "observation")


def _blend_png(blend) -> bytes:
    data = observation_has_data(blend.observation)
    fig = show_scene(
        blend,
        show_model=True,
        show_rendered=True,
        show_observed=data,
        show_residual=data,
        linear=False,
        pyplot=False,
    )
    return figure_png(fig)


def _array_png(images: np.ndarray, bbox, title: str) -> bytes:
    """An RGB (or grey, for one band) picture of ``(bands, h, w)`` data, binned when large."""
    from .panels import new_figure

    images = np.asarray(images, dtype=np.float32)
    factor = int(np.ceil(max(images.shape[-2:]) / MAX_PIXELS))
    small = bin_pixels(np.where(np.isfinite(images), images, 0), factor)
    rgb = img_to_rgb(small, None, asinh_norm(small))
    h, w = rgb.shape[:2]
    fig = new_figure((5.0, 5.0 * h / max(w, 1) + 0.4), False)
    ax = fig.add_subplot(1, 1, 1)
    (y0, y1), (x0, x1) = bbox.bounds if bbox is not None else ((0, h), (0, w))
    ax.imshow(rgb, origin="lower", extent=(x0 - 0.5, x1 - 0.5, y0 - 0.5, y1 - 0.5))
    ax.set_title(title + (f" (binned {factor}x{factor})" if factor > 1 else ""), fontsize=9)
    return figure_png(fig)


def picture_png(obj: Any) -> bytes | None:
    """A PNG picture of a blend, observation, stored models or exposure (None: not one).

    Parameters
    ----------
    obj
        A `vermilion.core.Blend` (its scene: model, rendered model, and with data the
        observation and residual, in a 2 x 2 grid), an `Observation` (its images), a
        `BlendData` (rebuilt from its PSFs: model and rendered model), a `ModelData`
        (its first `MAX_BLENDS` blends), a `MultibandExposure` or an `Exposure`.

    Returns
    -------
    bytes or None
    """
    if _is_blend(obj):
        return _blend_png(obj)
    if hasattr(obj, "to_blend") and hasattr(obj, "sources") and hasattr(obj, "bbox"):
        return _blend_png(obj.to_blend())  # BlendData: rendered from its stored PSFs
    if hasattr(obj, "blends") and hasattr(obj, "attach"):  # ModelData
        return _model_data_png(obj)
    if hasattr(obj, "diff_kernel"):  # an Observation
        if not observation_has_data(obj):
            return None
        return figure_png(show_observation(obj, show_psf=True, pyplot=False))
    if hasattr(obj, "images") and hasattr(obj, "bands") and hasattr(obj, "bbox"):
        bands = "".join(str(b) for b in obj.bands)
        return _array_png(obj.images, obj.bbox, f"bands {bands}, {obj.bbox}")
    if hasattr(obj, "image") and hasattr(obj, "band") and hasattr(obj, "bbox"):
        image = np.asarray(obj.image)[None]
        return _array_png(image, obj.bbox, f"band {obj.band}, {obj.bbox}")
    return None


def _model_data_png(model) -> bytes | None:
    from .panels import new_figure

    ids = sorted(model.blends)[:MAX_BLENDS]
    if not ids:
        return None
    fig = new_figure((3.2 * len(ids), 3.6), False)
    for k, bid in enumerate(ids):
        blend = model.attach(model.blends[bid]).to_blend()
        rendered = blend.get_model(convolve=True)
        data = np.asarray(getattr(rendered, "data", rendered))
        rgb = img_to_rgb(data, None, asinh_norm(data))
        ax = fig.add_subplot(1, len(ids), k + 1)
        (y0, y1), (x0, x1) = blend.bbox.bounds
        ax.imshow(rgb, origin="lower", extent=(x0 - 0.5, x1 - 0.5, y0 - 0.5, y1 - 0.5))
        ax.set_title(f"blend {bid}\n{len(blend.sources)} sources", fontsize=8)
        ax.tick_params(labelsize=6)
    more = len(model.blends) - len(ids)
    title = f"{len(model.blends)} blends, bands {''.join(model.bands or ())}"
    fig.suptitle(title + (f" (first {len(ids)} shown)" if more > 0 else ""), fontsize=9)
    return figure_png(fig)
