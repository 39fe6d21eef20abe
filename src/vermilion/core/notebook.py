"""The hook through which objects of every layer show a picture in Jupyter.

The engine, the stored models (`vermilion.io`) and the exposures (`vermilion.repo`)
have a ``_repr_png_`` method, but none of them may import the pictures
(`vermilion.display` sits beside them, above `core` only). So the drawing is
registered here, from above: ``vermilion/__init__.py`` sets a renderer that
imports `vermilion.display.notebook` (and matplotlib) on the first picture asked
for. Without a renderer (``vermilion.core`` used alone, or drawing fails),
``_repr_png_`` returns None and Jupyter shows the text repr.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["picture_png", "set_picture_renderer"]

_renderer: Callable[[Any], bytes | None] | None = None


def set_picture_renderer(renderer: Callable[[Any], bytes | None] | None) -> None:
    """Set the function that draws an object as PNG bytes (None: no pictures).

    Parameters
    ----------
    renderer
        ``renderer(obj)`` returns the PNG bytes of a picture of ``obj``, or None for
        an object it cannot draw.
    """
    global _renderer
    _renderer = renderer


def picture_png(obj: Any) -> bytes | None:
    """PNG bytes of a picture of ``obj``, or None (no renderer, or it cannot be drawn).

    Parameters
    ----------
    obj
        A blend, an observation, stored models or an exposure.

    Returns
    -------
    bytes or None
        What the registered renderer draws; None where there is none. A failing
        renderer gives a warning and None, so the text repr is shown instead.
    """
    if _renderer is None:
        return None
    try:
        return _renderer(obj)
    except Exception as exc:  # a picture must never break printing an object
        warnings.warn(
            f"no picture of {type(obj).__name__}: {type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
