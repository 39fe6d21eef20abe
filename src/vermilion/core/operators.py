"""Proximal operators (constraints) of the engine.

The monotonicity projection is the hot loop: it runs in compiled C
(`vermilion.core._operators`) over a table of offsets sorted by distance from
the peak and of neighbour weights, both computed once for the largest box
needed and sliced (they depend only on the offset from the peak).
"""

from __future__ import annotations

import numpy as np

from . import _operators

__all__ = [
    "MonotonicityTables",
    "find_peak",
    "get_monotonicity_tables",
    "prox_connected",
    "prox_monotonic",
    "prox_sparsity",
    "prox_thin",
    "thin_pixels",
]

# Measured on the HSC reference blend and simulated blends (bench_engine, bench_accuracy):
# 0.5 fits the HSC blend to logL -7906 where 0 stops at -8345 (e_rel 1e-4). With the faint
# sources' tendrils pruned (`prox_thin`), 0.5 falls to -8192 and 6 of the 8 grid
# orientations miss -8000; 0.75 gives -7785 and all 8 reach -8000 at e_rel 1e-4 (all 8 meet
# <= 40 iterations at >= -9680 at e_rel 1e-2), with the fluxes of both scene families as
# accurate as at 0.5.
DEFAULT_MONOTONIC_SLACK = 0.75


def checked_slack(slack: float) -> float:
    """``slack`` as a float; ValueError when it is not a number in [0, 1].

    Parameters
    ----------
    slack
        The monotonicity slack.

    Returns
    -------
    float
        ``slack``.
    """
    value = float(slack)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"monotonic_slack {slack} is outside [0, 1]")
    return value


_NBR = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


class MonotonicityTables:
    """Offsets sorted by distance from the peak and the weights of their 8 neighbours.

    The weight of a neighbour is the cosine of the angle between the pixel's
    direction to the peak and its direction to that neighbour, kept only for
    neighbours strictly closer to the peak, normalised to sum to 1.
    """

    def __init__(self, radius: int) -> None:
        radius = int(radius)
        self.radius = radius
        r = np.arange(-radius, radius + 1)
        dy, dx = np.meshgrid(r, r, indexing="ij")
        d2 = dy * dy + dx * dx
        order = np.argsort(d2, axis=None, kind="stable")
        self.order_dy = np.ascontiguousarray(dy.ravel()[order], dtype=np.int32)
        self.order_dx = np.ascontiguousarray(dx.ravel()[order], dtype=np.int32)
        dist = np.sqrt(d2).astype(np.float64)
        weights = np.zeros((*dy.shape, 8))
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, (ny, nx) in enumerate(_NBR):
                # neighbour offset relative to the peak
                my, mx = dy + ny, dx + nx
                closer = my * my + mx * mx < d2
                cos = -(dy * ny + dx * nx) / (dist * np.hypot(ny, nx))
                weights[..., j] = np.where(closer & (cos > 0), cos, 0)
        total = weights.sum(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            weights = np.where(total > 0, weights / total, 0)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)


_TABLES: MonotonicityTables | None = None


def get_monotonicity_tables(radius: int) -> MonotonicityTables:
    """Shared tables covering at least ``radius`` (grown on demand, never shrunk).

    Parameters
    ----------
    radius
        Largest distance from the peak needed.

    Returns
    -------
    MonotonicityTables
        The shared tables.
    """
    global _TABLES
    if _TABLES is None or _TABLES.radius < radius:
        size = 32
        while size < radius:
            size *= 2
        _TABLES = MonotonicityTables(size)
    return _TABLES


def find_peak(morph: np.ndarray, peak: tuple[int, int], radius: int) -> tuple[int, int]:
    """Brightest pixel within ``radius`` of ``peak`` (the peak itself on ties).

    Parameters
    ----------
    morph
        2-d morphology.
    peak
        ``(y, x)`` in ``morph``.
    radius
        Search radius in pixels.

    Returns
    -------
    tuple of int
        ``(y, x)`` of the brightest pixel.
    """
    if radius <= 0:
        return peak
    py, px = peak
    y0, x0 = max(py - radius, 0), max(px - radius, 0)
    window = morph[y0 : py + radius + 1, x0 : px + radius + 1]
    if window.size == 0:
        return peak
    iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
    if window[iy, ix] > morph[py, px]:
        return (y0 + int(iy), x0 + int(ix))
    return peak


def _compiled_input(morph: np.ndarray, peak) -> tuple[np.ndarray, tuple, tuple]:
    """``morph`` as the compiled operators take it (float32, C order, writeable: a copy
    only when it is not), its shape, and the peak checked to lie inside it."""
    if morph.dtype != np.float32 or not morph.flags.c_contiguous or not morph.flags.writeable:
        morph = np.array(morph, dtype=np.float32, order="C")
    h, w = morph.shape
    py, px = int(peak[0]), int(peak[1])
    if not (0 <= py < h and 0 <= px < w):
        raise ValueError(f"peak {peak} is outside the morphology of shape {morph.shape}")
    return morph, (h, w), (py, px)


def prox_monotonic(morph: np.ndarray, peak: tuple[int, int], slack: float = 0.0) -> np.ndarray:
    """Project ``morph`` (2D, in place when float32 and contiguous) to be monotonic about ``peak``.

    Every pixel, visited in order of distance from the peak, is lowered to a
    reference value of its closer 8-neighbours when brighter than it: their
    weighted mean (weights: the cosine between the directions to the peak and to
    the neighbour), moved a fraction ``slack`` of the way to their maximum.
    ``slack=0`` is scarlet's weighted monotonicity; ``slack=1`` only asks every
    pixel to be no brighter than its brightest closer neighbour (intensity falls
    along some path from the peak). Either way the result has no maximum but the
    peak, satisfies the constraint everywhere, and the operator is idempotent.

    Returns the projected array (the same object when it could work in place).

    Parameters
    ----------
    morph
        2-d morphology.
    peak
        ``(y, x)`` in ``morph``.
    slack
        Allowed relative rise, in [0, 1].

    Returns
    -------
    numpy.ndarray
        The projected morphology.
    """
    slack = checked_slack(slack)
    morph, (h, w), (py, px) = _compiled_input(morph, peak)
    tables = get_monotonicity_tables(max(py, h - 1 - py, px, w - 1 - px))
    _operators.monotonic_project(
        morph,
        h,
        w,
        py,
        px,
        tables.order_dy,
        tables.order_dx,
        tables.weights,
        tables.radius,
        slack,
    )
    return morph


def prox_sparsity(morph: np.ndarray, threshold: float) -> np.ndarray:
    """Zero every pixel below ``threshold`` (in place) and clip negatives to 0.

    Parameters
    ----------
    morph
        2-d morphology.
    threshold
        Smallest value kept.

    Returns
    -------
    numpy.ndarray
        ``morph``.
    """
    morph[morph < max(threshold, 0)] = 0
    return morph


def prox_connected(morph: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """Zero the non-zero pixels that are not 8-connected to the peak (in place).

    Parameters
    ----------
    morph
        2-d morphology.
    peak
        ``(y, x)`` in ``morph``.

    Returns
    -------
    numpy.ndarray
        ``morph``.
    """
    from scipy import ndimage

    labels, _ = ndimage.label(morph > 0, structure=np.ones((3, 3), dtype=bool))
    keep = labels[peak]
    if keep == 0:
        morph[...] = 0
    else:
        morph[labels != keep] = 0
    return morph


def prox_thin(morph: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """Zero the tendrils of ``morph`` (in place when float32 and contiguous).

    The pixels `thin_pixels` finds: non-zero pixels in no 2 x 2 block of non-zero
    pixels (lines and spurs one pixel wide), and pieces of the support not connected
    to the peak through such blocks (when the peak itself is thin, the piece holding the
    most flux is kept). Compiled: an O(n) pass and flood fills.

    Parameters
    ----------
    morph
        2-d morphology.
    peak
        ``(y, x)`` in ``morph``.

    Returns
    -------
    numpy.ndarray
        The pruned morphology (``morph`` itself when it could work in place).
    """
    morph, (h, w), (py, px) = _compiled_input(morph, peak)
    _operators.prune_thin(morph, h, w, py, px)
    return morph


def thin_pixels(plane: np.ndarray, peak: tuple[int, int] | None) -> np.ndarray:
    """Mask of the non-zero pixels of ``plane`` in tendrils: one pixel wide, or cut off.

    The support (``plane > 0``) is opened with a 2 x 2 square; a pixel that lies in no
    2 x 2 block of the support (a line or spur one pixel wide) is thin, and so is a pixel
    of the opened support not 8-connected to the piece holding ``peak`` (or, when the
    peak itself is thin or None, to the piece holding most of the flux).

    Parameters
    ----------
    plane
        2-d non-negative image (a morphology, or a model summed over bands).
    peak
        ``(y, x)`` in ``plane``, or None.

    Returns
    -------
    numpy.ndarray
        Boolean mask, True on tendril pixels.
    """
    from scipy import ndimage

    support = plane > 0
    thick = ndimage.binary_opening(support, structure=np.ones((2, 2), dtype=bool))
    labels, n = ndimage.label(thick, structure=np.ones((3, 3), dtype=bool))
    keep = 0
    if peak is not None and 0 <= peak[0] < plane.shape[0] and 0 <= peak[1] < plane.shape[1]:
        keep = labels[peak[0], peak[1]]
    if keep == 0 and n > 0:
        sums = ndimage.sum(np.where(support, plane, 0), labels, index=np.arange(1, n + 1))
        keep = int(np.argmax(sums)) + 1
    if keep == 0:
        return np.zeros_like(support)
    return support & (labels != keep)
