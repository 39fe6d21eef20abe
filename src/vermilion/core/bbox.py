"""Axis-aligned integer boxes in parent-image pixel coordinates.

A `Box` follows the array convention of the rest of vermilion: the shape is
``(height, width)`` (or any number of dimensions) and the origin is the
``(y0, x0)`` pixel of the box's first row and column.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Box", "overlapped_slices"]


class Box:
    """An integer box: ``shape`` and ``origin``, one entry per dimension.

    Parameters
    ----------
    shape
        Size along every dimension, e.g. ``(height, width)``.
    origin
        Coordinate of the first pixel along every dimension, e.g. ``(y0, x0)``.
        Defaults to zeros.
    """

    __slots__ = ("origin", "shape")

    def __init__(self, shape: Sequence[int], origin: Sequence[int] | None = None) -> None:
        shape = tuple(int(s) for s in shape)
        if origin is None:
            origin = (0,) * len(shape)
        origin = tuple(int(o) for o in origin)
        if len(origin) != len(shape):
            raise ValueError(f"Box shape {shape} and origin {origin} differ in dimension")
        if any(s < 0 for s in shape):
            raise ValueError(f"Box shape must not be negative, got {shape}")
        self.shape: tuple[int, ...] = shape
        self.origin: tuple[int, ...] = origin

    @staticmethod
    def from_bounds(*bounds: tuple[int, int]) -> Box:
        """Build a box from ``(start, stop)`` pairs, one per dimension (stop exclusive).

        Parameters
        ----------
        *bounds
            ``(start, stop)`` of every dimension.

        Returns
        -------
        Box
            The box.
        """
        return Box(
            tuple(max(stop - start, 0) for start, stop in bounds),
            tuple(start for start, _ in bounds),
        )

    @staticmethod
    def from_data(x, min_value: float = 0) -> Box:
        """Smallest box holding every element of array ``x`` above ``min_value``.

        Parameters
        ----------
        x
            The array.
        min_value
            Elements must be strictly above it.

        Returns
        -------
        Box
            At the array's origin; empty when no element is above ``min_value``.
        """
        import numpy as np

        sel = np.asarray(x) > min_value
        if not sel.any():
            return Box((0,) * sel.ndim)
        bounds = []
        for axis in range(sel.ndim):
            other = tuple(a for a in range(sel.ndim) if a != axis)
            hit = np.flatnonzero(sel.any(axis=other))
            bounds.append((int(hit[0]), int(hit[-1]) + 1))
        return Box.from_bounds(*bounds)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def start(self) -> tuple[int, ...]:
        """First pixel of every dimension (the origin)."""
        return self.origin

    @property
    def stop(self) -> tuple[int, ...]:
        """One past the last pixel of every dimension."""
        return tuple(o + s for o, s in zip(self.origin, self.shape))

    @property
    def bounds(self) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` of every dimension."""
        return tuple((o, o + s) for o, s in zip(self.origin, self.shape))

    @property
    def center(self) -> tuple[float, ...]:
        """Centre of the box, ``origin + (shape - 1) / 2`` in every dimension."""
        return tuple(o + (s - 1) / 2 for o, s in zip(self.origin, self.shape))

    @property
    def area(self) -> int:
        """Number of pixels."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def is_empty(self) -> bool:
        """Whether some dimension has length 0."""
        return any(s == 0 for s in self.shape)

    @property
    def slices(self) -> tuple[slice, ...]:
        """Slices of this box into an array whose first pixel is coordinate 0."""
        return tuple(slice(o, o + s) for o, s in zip(self.origin, self.shape))

    def slices_in(self, other: Box) -> tuple[slice, ...]:
        """Slices of this box into an array laid on ``other`` (which must contain it).

        Parameters
        ----------
        other
            The box of the array.

        Returns
        -------
        tuple of slice
            One slice per dimension.
        """
        return tuple(
            slice(o - p, o - p + s) for o, p, s in zip(self.origin, other.origin, self.shape)
        )

    # Rubin-style (x-first) views, for users of lsst.geom.Box2I
    @property
    def xy0(self) -> tuple[int, int]:
        """Origin as ``(x, y)`` (Rubin order)."""
        return (self.origin[1], self.origin[0])

    @property
    def extent(self) -> tuple[int, int]:
        """Shape as ``(width, height)`` (Rubin order)."""
        return (self.shape[1], self.shape[0])

    def contains(self, point: Sequence[float]) -> bool:
        """Whether the pixel ``point`` (same dimension order) lies inside the box.

        Parameters
        ----------
        point
            Pixel coordinates, one per dimension.

        Returns
        -------
        bool
            True inside.
        """
        return all(o <= p < o + s for p, o, s in zip(point, self.origin, self.shape))

    __contains__ = contains

    def grow(self, radius: int | Sequence[int]) -> Box:
        """Box grown by ``radius`` pixels on every side (per dimension if a sequence).

        Parameters
        ----------
        radius
            Pixels to add on each side.

        Returns
        -------
        Box
            The grown box.
        """
        if isinstance(radius, int):
            radius = (radius,) * self.ndim
        return Box(
            tuple(max(s + 2 * r, 0) for s, r in zip(self.shape, radius)),
            tuple(o - r for o, r in zip(self.origin, radius)),
        )

    def shifted_by(self, shift: Sequence[int]) -> Box:
        """The box moved by ``shift`` pixels.

        Parameters
        ----------
        shift
            One offset per dimension.

        Returns
        -------
        Box
            Same shape, new origin.
        """
        return Box(self.shape, tuple(o + int(d) for o, d in zip(self.origin, shift)))

    def __add__(self, offset: Sequence[int]) -> Box:
        return self.shifted_by(offset)

    def __sub__(self, offset: Sequence[int]) -> Box:
        return self.shifted_by(tuple(-int(d) for d in offset))

    def __and__(self, other: Box) -> Box:
        """Intersection (an empty box where they do not overlap)."""
        self._check_dim(other)
        bounds = []
        for (a0, a1), (b0, b1) in zip(self.bounds, other.bounds):
            start = max(a0, b0)
            bounds.append((start, max(min(a1, b1), start)))
        return Box.from_bounds(*bounds)

    def __or__(self, other: Box) -> Box:
        """Smallest box holding both."""
        self._check_dim(other)
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        return Box.from_bounds(
            *[(min(a0, b0), max(a1, b1)) for (a0, a1), (b0, b1) in zip(self.bounds, other.bounds)]
        )

    def overlaps(self, other: Box) -> bool:
        """Whether the two boxes share a pixel.

        Parameters
        ----------
        other
            The other box.

        Returns
        -------
        bool
            True when their intersection is not empty.
        """
        return not (self & other).is_empty

    def overlapped_slices(self, other: Box) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Slices into an array on ``self`` and one on ``other`` covering their overlap.

        Parameters
        ----------
        other
            The other box.

        Returns
        -------
        tuple
            ``(slices into self's array, slices into other's array)``.
        """
        return overlapped_slices(self, other)

    def __getitem__(self, index) -> Box:
        """Sub-box over some dimensions, e.g. ``box[-2:]`` for the spatial part."""
        if isinstance(index, int):
            return Box((self.shape[index],), (self.origin[index],))
        return Box(self.shape[index], self.origin[index])

    def __matmul__(self, other: Box) -> Box:
        """Concatenate dimensions: ``Box((nbands,)) @ spatial_box``."""
        return Box(self.shape + other.shape, self.origin + other.origin)

    def _check_dim(self, other: Box) -> None:
        if other.ndim != self.ndim:
            raise ValueError(f"Boxes of different dimension: {self} and {other}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and self.shape == other.shape and self.origin == other.origin

    def __hash__(self) -> int:
        return hash((self.shape, self.origin))

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, origin={self.origin})"

    def copy(self) -> Box:
        """A copy of the box.

        Returns
        -------
        Box
            Same shape and origin.
        """
        return Box(self.shape, self.origin)


def overlapped_slices(box1: Box, box2: Box) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the overlap of two boxes, into arrays laid on ``box1`` and on ``box2``.

    Parameters
    ----------
    box1, box2
        The two boxes.

    Returns
    -------
    tuple
        ``(slices into box1's array, slices into box2's array)``.
    """
    overlap = box1 & box2
    s1 = tuple(
        slice(o - a, o - a + s) for o, a, s in zip(overlap.origin, box1.origin, overlap.shape)
    )
    s2 = tuple(
        slice(o - b, o - b + s) for o, b, s in zip(overlap.origin, box2.origin, overlap.shape)
    )
    return s1, s2
