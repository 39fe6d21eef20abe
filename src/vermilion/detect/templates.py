"""Symmetric, monotonic templates of peaks: the profile model of steps 5 and 6.

Each peak of a footprint gets a template that is point-symmetric about its
sub-pixel maximum and monotonic about it (`_symmetric_templates`). The residual
peaks of `vermilion.detect.peaks` are the maxima of what the templates leave; the
vetting fit of `vermilion.detect.vetting` uses them as the profiles of the known
peaks. Also the geometry both need: `_subpixel_peak` and `_ray_lengths`.
"""

from __future__ import annotations

import math

import numpy as np

__all__: list[str] = []


def _subpixel_peak(snr: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """Peak position refined by a parabola through the pixel and its two neighbours."""
    h, w = snr.shape
    out = []
    for axis, (c, n) in enumerate(((y, h), (x, w))):
        if c <= 0 or c >= n - 1:
            out.append(float(c))
            continue
        lo = snr[y - 1, x] if axis == 0 else snr[y, x - 1]
        hi = snr[y + 1, x] if axis == 0 else snr[y, x + 1]
        mid = snr[y, x]
        curv = lo - 2 * mid + hi
        shift = 0.5 * (lo - hi) / curv if curv < 0 else 0.0
        out.append(c + float(np.clip(shift, -0.5, 0.5)))
    return out[0], out[1]


def _ray_lengths(a: np.ndarray, y: int, x: int, level: float, minus=None) -> list[float]:
    """Distances from (y, x) along the 8 pixel directions at which ``a`` (less
    ``minus``, if given) first falls below ``level`` (to the array edge if never)."""
    h, w = a.shape
    out = []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)):
        n = min(
            (h - 1 - y) if dy > 0 else y if dy < 0 else h,
            (w - 1 - x) if dx > 0 else x if dx < 0 else w,
        )
        steps = np.arange(1, n + 1)
        ys, xs = y + dy * steps, x + dx * steps
        values = a[ys, xs] if minus is None else a[ys, xs] - minus[ys, xs]
        below = np.flatnonzero(values < level)
        d = below[0] + 1 if len(below) else n
        out.append(d * (1.4142 if dy and dx else 1.0))
    return out


def _profile_radius(box, total, cy, cx, level, width):
    """Distance from (cy, cx) at which ``box - total`` first falls below ``level``
    along 8 directions (the largest of them, `_ray_lengths`), plus ``width``."""
    return math.ceil(max(_ray_lengths(box, cy, cx, level, minus=total)) + width)


def _symmetric_templates(box, valid, ky, kx, width, n_iter=2, monotonic=0.0, level=1.0):
    """Sum of the symmetric, monotonic templates of the peaks ``(ky, kx)`` (box pixels).

    Each peak ``k`` gets ``T_k(p) = max(0, min(J_k(p), J_k(2 c_k - p)))`` with ``J_k =
    box - sum_{j != k} T_j`` (the light not claimed by the other peaks) and ``c_k``
    the sub-pixel maximum of ``J_k`` at the peak, projected to be monotonic about the
    peak (`vermilion.core.operators.prox_monotonic`, so that the mirror of a pixel
    landing on another source claims nothing), within a window reaching where
    ``J_k`` falls below ``level``; ``n_iter`` sweeps, brightest first. Pixels whose
    mirror has no data keep ``J_k``. Returns ``(total, covered)``: the summed
    templates and the pixels inside some peak's window.
    """
    from scipy import ndimage

    from vermilion.core.operators import prox_monotonic

    bh, bw = box.shape
    order = np.argsort([-box[y, x] for y, x in zip(ky, kx)], kind="stable")
    temps = [None] * len(ky)
    total = np.zeros_like(box)
    for _ in range(n_iter):
        for k in order:
            cy, cx = ky[k], kx[k]
            if temps[k] is not None:
                sl, t = temps[k]
                total[sl] -= t
            rad = _profile_radius(box, total, cy, cx, level, width)
            sl = (
                slice(max(cy - rad, 0), min(cy + rad + 1, bh)),
                slice(max(cx - rad, 0), min(cx + rad + 1, bw)),
            )
            j = box[sl] - total[sl]
            ly, lx = cy - sl[0].start, cx - sl[1].start
            fy, fx = _subpixel_peak(j, ly, lx)
            gy, gx = np.mgrid[0 : j.shape[0], 0 : j.shape[1]]
            my, mx = 2 * fy - gy, 2 * fx - gx
            ok = (my >= 0) & (my <= j.shape[0] - 1) & (mx >= 0) & (mx <= j.shape[1] - 1)
            mirrored = ndimage.map_coordinates(
                j,
                [np.clip(my, 0, j.shape[0] - 1), np.clip(mx, 0, j.shape[1] - 1)],
                order=1,
                mode="nearest",
            )
            t = np.where(ok & valid[sl], np.minimum(j, mirrored), j)
            t = np.clip(t, 0, None).astype(np.float32)
            if monotonic is not None:
                t = prox_monotonic(t, (ly, lx), monotonic)
            temps[k] = (sl, t)
            total[sl] += t
    covered = np.zeros(box.shape, bool)
    for sl, _t in temps:
        covered[sl] = True
    return total, covered
