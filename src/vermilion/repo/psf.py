"""`ImagePsf`: a PSF model made of images (one constant image, or a grid by position).

Only numpy is used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ImagePsf", "as_psf"]


def _position_yx(position: Any) -> tuple[float, float] | None:
    """A position as ``(y, x)``; objects with ``getX``/``getY`` (lsst.geom points) are x-first."""
    if position is None:
        return None
    if hasattr(position, "getX") and hasattr(position, "getY"):
        return float(position.getY()), float(position.getX())
    y, x = position
    return float(y), float(x)


class ImagePsf:
    """A PSF model made of images: one constant image, or a grid interpolated by position.

    Parameters
    ----------
    image
        ``(ph, pw)`` for a constant PSF, or ``(ny, nx, ph, pw)`` for a grid of PSF
        images whose nodes sit at rows ``grid_y`` and columns ``grid_x``.
        ``ph`` and ``pw`` must be odd (the PSF centre is the central pixel).
    grid_y, grid_x
        Parent-pixel coordinates of the grid nodes (increasing), required for a grid.

    Notes
    -----
    Between nodes the kernel is interpolated bilinearly; outside the grid the nearest
    node's kernel is used. Kernels are returned normalised to a sum of 1.
    """

    __slots__ = ("_image", "_kernel", "grid_x", "grid_y")

    def __init__(
        self,
        image: np.ndarray,
        grid_y: Sequence[float] | None = None,
        grid_x: Sequence[float] | None = None,
    ) -> None:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim not in (2, 4):
            raise ValueError(
                f"A PSF image must be (ph, pw) or a grid (ny, nx, ph, pw), got shape {image.shape}"
            )
        ph, pw = image.shape[-2:]
        if ph % 2 == 0 or pw % 2 == 0:
            raise ValueError(f"PSF images must have odd height and width, got {(ph, pw)}")
        if not np.all(np.isfinite(image)):
            raise ValueError("PSF image holds NaN or inf values")
        self._image = image
        self._kernel: np.ndarray | None = None
        if image.ndim == 4:
            if grid_y is None or grid_x is None:
                raise ValueError("A grid of PSF images needs grid_y and grid_x node coordinates")
            gy = np.asarray(grid_y, dtype=float)
            gx = np.asarray(grid_x, dtype=float)
            if gy.shape != (image.shape[0],) or gx.shape != (image.shape[1],):
                raise ValueError(
                    f"PSF grid of {image.shape[:2]} nodes needs {image.shape[0]} grid_y and "
                    f"{image.shape[1]} grid_x values, got {gy.size} and {gx.size}"
                )
            if np.any(np.diff(gy) <= 0) or np.any(np.diff(gx) <= 0):
                raise ValueError("PSF grid node coordinates must increase strictly")
            self.grid_y: np.ndarray | None = gy
            self.grid_x: np.ndarray | None = gx
        else:
            if grid_y is not None or grid_x is not None:
                raise ValueError("grid_y/grid_x are only used with a 4D grid of PSF images")
            self.grid_y = self.grid_x = None

    @property
    def is_constant(self) -> bool:
        return self._image.ndim == 2

    @property
    def shape(self) -> tuple[int, int]:
        """``(ph, pw)`` of one kernel image."""
        return tuple(self._image.shape[-2:])  # type: ignore[return-value]

    @property
    def image(self) -> np.ndarray:
        """The stored image(s): ``(ph, pw)`` or ``(ny, nx, ph, pw)``."""
        return self._image

    @property
    def center(self) -> tuple[float, float] | None:
        """Centre of the grid (None for a constant PSF)."""
        if self.is_constant:
            return None
        return float(self.grid_y.mean()), float(self.grid_x.mean())  # type: ignore[union-attr]

    def compute_kernel_image(self, position: Any = None) -> np.ndarray:
        """The PSF kernel at ``position``, normalised to sum to 1 (float32, (ph, pw)).

        Parameters
        ----------
        position
            ``(y, x)`` in parent pixels, or an object with ``getX()``/``getY()``
            (an ``lsst.geom.Point2D``). Ignored by a constant PSF; for a grid, None
            means the grid centre.
        """
        if self.is_constant:
            if self._kernel is None:
                self._kernel = _normalized(self._image)
            return self._kernel.copy()
        yx = _position_yx(position) or self.center
        wy = _interp_weights(self.grid_y, yx[0])  # type: ignore[arg-type]
        wx = _interp_weights(self.grid_x, yx[1])  # type: ignore[arg-type]
        kernel = np.zeros(self.shape, dtype=np.float64)
        for iy, fy in wy:
            for ix, fx in wx:
                if fy * fx > 0:
                    kernel += fy * fx * self._image[iy, ix]
        return _normalized(kernel)

    #: Rubin's spelling (``lsst.afw.detection.Psf.computeKernelImage``).
    computeKernelImage = compute_kernel_image

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        kernel = self.computeKernelImage()
        return kernel if dtype is None else kernel.astype(dtype)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImagePsf) or self.is_constant != other.is_constant:
            return False
        if self._image.shape != other._image.shape or not np.array_equal(self._image, other._image):
            return False
        if self.is_constant:
            return True
        return np.array_equal(self.grid_y, other.grid_y) and np.array_equal(
            self.grid_x, other.grid_x
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.is_constant:
            return f"ImagePsf(shape={self.shape})"
        return f"ImagePsf(shape={self.shape}, grid={self._image.shape[:2]})"


def _normalized(kernel: np.ndarray) -> np.ndarray:
    total = float(kernel.sum())
    if total <= 0 or not np.isfinite(total):
        raise ValueError(f"PSF kernel sums to {total}; it cannot be normalised")
    return (kernel / total).astype(np.float32)


def _interp_weights(nodes: np.ndarray, value: float) -> list[tuple[int, float]]:
    """Linear-interpolation (index, weight) pairs, clamped to the end nodes."""
    if nodes.size == 1 or value <= nodes[0]:
        return [(0, 1.0)]
    if value >= nodes[-1]:
        return [(nodes.size - 1, 1.0)]
    i = int(np.searchsorted(nodes, value, side="right")) - 1
    f = (value - nodes[i]) / (nodes[i + 1] - nodes[i])
    return [(i, 1.0 - f), (i + 1, f)]


def as_psf(psf: Any) -> ImagePsf | None:
    """``psf`` as an `ImagePsf`: an `ImagePsf` or None as is, an array as a constant PSF."""
    if psf is None or isinstance(psf, ImagePsf):
        return psf
    return ImagePsf(np.asarray(psf))
