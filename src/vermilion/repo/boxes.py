"""Boxes of exposures: conversion from the forms users pass, and the inside check."""

from __future__ import annotations

from typing import Any

from vermilion.core.bbox import Box

from .errors import BBoxError

__all__ = ["as_box", "check_inside", "is_box"]


def as_box(bbox: Any) -> Box:
    """Convert a box to a `Box` in parent ``(y, x)`` pixel coordinates.

    Accepts a `Box`, an ``lsst.geom.Box2I``-like object (``getMinX``, ``getMinY``,
    ``getWidth``, ``getHeight``) or a pair of slices ``(y_slice, x_slice)`` with
    explicit starts and stops.
    """
    if isinstance(bbox, Box):
        if bbox.ndim != 2:
            raise ValueError(f"Expected a 2D box, got {bbox}")
        return bbox
    if all(hasattr(bbox, n) for n in ("getMinX", "getMinY", "getWidth", "getHeight")):
        return Box(
            (int(bbox.getHeight()), int(bbox.getWidth())),
            (int(bbox.getMinY()), int(bbox.getMinX())),
        )
    if (
        isinstance(bbox, tuple)
        and len(bbox) == 2
        and all(isinstance(s, slice) and s.start is not None and s.stop is not None for s in bbox)
    ):
        return Box.from_bounds((bbox[0].start, bbox[0].stop), (bbox[1].start, bbox[1].stop))
    raise TypeError(
        f"Cannot use {bbox!r} as a box: give a vermilion Box(shape=(h, w), origin=(y0, x0))"
    )


def is_box(obj: Any) -> bool:
    """Whether ``obj`` is a `Box` or an ``lsst.geom.Box2I``-like box."""
    return isinstance(obj, Box) or hasattr(obj, "getMinX")


def check_inside(box: Box, full: Box, what: str) -> None:
    """Raise `BBoxError` unless ``box`` is non-empty and inside ``full`` (of the ``what``)."""
    if box.is_empty or (box & full) != box:
        raise BBoxError(f"Requested bbox {box} is not inside the {what} bbox {full}")
