"""Step 2 of `detect_sources`: the smooth sky background of each band.

`estimate_background` takes sigma-clipped medians on a coarse mesh of cells,
median-filters them and interpolates them with a bicubic spline; the background of
each band is subtracted before coadding (`vermilion.detect.maps`).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["estimate_background"]


def estimate_background(
    image: np.ndarray,
    weight: np.ndarray | None = None,
    cell: int = 128,
    clip: float = 3.0,
    n_iter: int = 3,
    min_fraction: float = 0.1,
    max_samples: int = 4096,
) -> np.ndarray:
    """Smooth background of ``image`` from sigma-clipped cell medians.

    Parameters
    ----------
    image
        ``(H, W)`` image.
    weight
        Inverse variance per pixel (0 = no data). Default: uniform, with the noise
        estimated from the median absolute deviation.
    cell
        Cell size in pixels. Images smaller than a cell get one constant level.
    clip
        Pixels further than ``clip`` times the cell's median pixel noise from the
        cell median are dropped (iterated ``n_iter`` times).
    min_fraction
        Cells with a smaller fraction of usable pixels take the value of the
        nearest good cell.
    max_samples
        Cells larger than this are subsampled on a regular grid (the median of a
        few thousand pixels is precise to a few percent of the noise).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 background: the cell levels, median filtered over 3x3
        cells, interpolated with a bicubic spline (zeros when no pixel has data).
    """
    from scipy import ndimage
    from scipy.interpolate import BSpline, RectBivariateSpline

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-d, got shape {image.shape}")
    h, w = image.shape
    if h == 0 or w == 0:
        return np.zeros_like(image)
    if cell < 1:
        raise ValueError(f"background cell must be >= 1 pixel, got {cell}")
    good = np.isfinite(image)
    if weight is not None:
        weight = np.asarray(weight)
        if weight.shape != image.shape:
            raise ValueError(f"weight shape {weight.shape} differs from image {image.shape}")
        good &= weight > 0
    if not good.any():
        return np.zeros_like(image)

    ch, cw = min(cell, h), min(cell, w)
    ny, nx = -(-h // ch), -(-w // cw)
    step = 1
    while (ch // step) * (cw // step) > max_samples and step < 64:
        step *= 2
    if ch % step or cw % step:
        step = 1
    sh, sw = ch // step, cw // step  # cell size on the subsampled grid
    sub = image[::step, ::step]
    sgood = good[::step, ::step]
    if weight is None:
        med = np.median(image[good])
        noise = np.full(sub.shape, 1.4826 * np.median(np.abs(image[good] - med)) or 1.0)
    else:
        with np.errstate(divide="ignore"):
            noise = 1.0 / np.sqrt(np.maximum(weight[::step, ::step], 1e-30))

    def cells(a, fill):
        pad = np.full((ny * sh, nx * sw), fill, dtype=np.float32)
        pad[: a.shape[0], : a.shape[1]] = a
        return pad.reshape(ny, sh, nx, sw).transpose(0, 2, 1, 3).reshape(ny, nx, sh * sw)

    data = np.sort(cells(np.where(sgood, sub, np.nan), np.nan), axis=-1)  # NaN last
    n_good = np.sum(np.isfinite(data), axis=-1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": empty cells
        sig = np.nanmedian(cells(np.where(sgood, noise, np.nan), np.nan), axis=-1)
    lo = np.zeros((ny, nx), np.int64)
    hi = n_good.copy()

    def median_between(lo, hi):
        n = hi - lo
        a = np.clip(lo + (n - 1) // 2, 0, data.shape[-1] - 1)
        b = np.clip(lo + n // 2, 0, data.shape[-1] - 1)
        va = np.take_along_axis(data, a[..., None], -1)[..., 0]
        vb = np.take_along_axis(data, b[..., None], -1)[..., 0]
        return np.where(n > 0, 0.5 * (va + vb), np.nan)

    level = median_between(lo, hi)
    for _ in range(n_iter):
        ok_sig = np.isfinite(sig) & np.isfinite(level)
        lo_v = np.where(ok_sig, level - clip * sig, -np.inf)[..., None]
        hi_v = np.where(ok_sig, level + clip * sig, np.inf)[..., None]
        with np.errstate(invalid="ignore"):
            lo = np.sum(data < lo_v, axis=-1)
            hi = np.minimum(np.sum(data <= hi_v, axis=-1), n_good)
        level = median_between(lo, hi)
    ok = np.isfinite(level) & (n_good >= min_fraction * sh * sw)
    if not ok.any():
        ok = np.isfinite(level)
    if not ok.all():
        _, (iy, ix) = ndimage.distance_transform_edt(~ok, return_indices=True)
        level = level[iy, ix]
    if ny >= 3 and nx >= 3:
        # pad by point reflection so that a gradient survives the filter at the edges
        padded = np.pad(level, 1, mode="reflect", reflect_type="odd")
        level = ndimage.median_filter(padded, size=3)[1:-1, 1:-1]
    if ny == 1 and nx == 1:
        return np.full((h, w), level[0, 0], dtype=np.float32)

    # cell centres (the last cell may be partial)
    yc = np.array([(i * ch + min((i + 1) * ch, h) - 1) / 2 for i in range(ny)])
    xc = np.array([(j * cw + min((j + 1) * cw, w) - 1) / 2 for j in range(nx)])
    if ny == 1:
        yc = np.array([yc[0] - 1.0, yc[0] + 1.0])
        level = np.repeat(level, 2, axis=0)
    if nx == 1:
        xc = np.array([xc[0] - 1.0, xc[0] + 1.0])
        level = np.repeat(level, 2, axis=1)
    ky, kx = min(3, len(yc) - 1), min(3, len(xc) - 1)
    spline = RectBivariateSpline(yc, xc, level, kx=ky, ky=kx)
    # evaluate the tensor-product spline as By @ C @ Bx.T (two small dense factors);
    # beyond the outermost cell centres the level is held constant, as extrapolating
    # a cubic through noisy cell levels amplifies their noise at the image edges
    ty, tx = spline.tck[0], spline.tck[1]
    coef = spline.tck[2].reshape(len(ty) - ky - 1, len(tx) - kx - 1)
    by = BSpline.design_matrix(np.clip(np.arange(h, dtype=float), yc[0], yc[-1]), ty, ky)
    bx = BSpline.design_matrix(np.clip(np.arange(w, dtype=float), xc[0], xc[-1]), tx, kx)
    return (by.toarray() @ coef @ bx.toarray().T).astype(np.float32)


def _band_background(img, w, background, background_cell, shape):
    if isinstance(background, str):
        if background != "mesh":
            raise ValueError(
                f"background must be 'mesh', None, a number or an array, got {background!r}"
            )
        return estimate_background(img, w, cell=background_cell)
    if background is None:
        return None
    try:
        return np.broadcast_to(np.asarray(background, dtype=np.float32), shape)
    except ValueError as err:
        raise ValueError(f"background does not fit the image shape {shape}: {err}") from err
