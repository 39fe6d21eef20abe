"""Step 5 of `detect_sources`: the peaks of each footprint.

Per footprint: 3x3 local maxima of the coadd S/N at pixels with data and
``snr >= peak_snr``, culled by `_cull_peaks` (minimum separation; a secondary peak
needs either a dip of ``prominence`` towards the brighter peaks or light that is not
point-symmetric about the brighter peak it hangs on); then the band peaks (culled
the same way in their own maps, `BandPeaks`) farther than ``band_peak_separation``
from every kept peak (sources of unusual colour); then `_asymmetry_peaks` (faint
sources on the wing of a bright one that make no local maximum at all: light that is
not point-symmetric about the bright peaks whose light reaches it), or with
``residual_peaks=True`` the maxima of the light left by symmetric, monotonic
templates of all the peaks (`_symmetric_residual_peaks`; the choice of
``crowded=True``, with looser cuts: better in crowded simulated fields, but it
splits real, asymmetric galaxies). Regions with no data in any band because of
saturation get one peak at their centre instead of a ring of peaks
(`_saturated_cores`). All but the culled coadd maxima are then vetted
(`vermilion.detect.vetting`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import ResolvedDetection
from .maps import DetectionMaps, _matched_filter
from .templates import _ray_lengths, _subpixel_peak, _symmetric_templates

__all__ = ["BandPeaks", "Candidates", "FootprintPeaks", "find_candidates", "footprint_peaks"]


def _local_maxima(
    snr: np.ndarray, valid: np.ndarray, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(ys, xs)`` of pixels with ``valid`` and ``snr >= floor`` that are not lower
    than any valid 8-neighbour (cheaper than a maximum filter when few pixels pass
    the floor)."""
    h, w = snr.shape
    ys, xs = np.nonzero(valid & (snr >= floor))
    if len(ys) == 0:
        return ys, xs
    v = snr[ys, xs]
    keep = np.ones(len(ys), bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            ny, nx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
            higher = inside & valid[ny, nx] & (snr[ny, nx] > v)
            keep &= ~higher
    return ys[keep], xs[keep]


def _line_min(snr: np.ndarray, y: int, x: int, ty: np.ndarray, tx: np.ndarray) -> np.ndarray:
    """Minimum of ``snr`` along straight pixel lines from (y, x) to each (ty, tx)."""
    dist = np.maximum(np.abs(ty - y), np.abs(tx - x))
    n = int(dist.max()) + 1
    t = np.linspace(0.0, 1.0, n + 1)
    ly = np.rint(y + np.outer(ty - y, t)).astype(np.int64)
    lx = np.rint(x + np.outer(tx - x, t)).astype(np.int64)
    return snr[ly, lx].min(axis=1)


def _cull_peaks(
    ys: np.ndarray,
    xs: np.ndarray,
    amp: np.ndarray,
    snr_at: np.ndarray,
    snr: np.ndarray,
    min_separation: float,
    prominence: float,
    symmetry: float = np.inf,
    n_neighbours: int = 8,
    forced: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the peaks kept, visited by amplitude, brightest first.

    A peak is dropped when it lies closer than ``min_separation`` to a kept peak,
    or when both its prominence (S/N minus the highest minimum of ``snr`` along
    the straight lines to the nearest kept peaks) is below ``prominence`` and its
    symmetry excess (S/N minus the S/N at its mirror image through the kept peak
    of that highest minimum) is below ``symmetry``. The second test keeps
    faint sources on the steep wings of bright ones, where the dip between them
    is shallow but the light is plainly not point-symmetric about the bright one.
    ``forced`` peaks (saturated cores) are always kept, visited first.
    """
    order = np.argsort(-amp, kind="stable")
    if forced is not None and forced.any():
        order = np.concatenate([order[forced[order]], order[~forced[order]]])
    min_d2 = max(min_separation, 1.5) ** 2
    h, w = snr.shape
    kept: list[int] = []
    ky = np.empty(len(ys), np.int64)
    kx = np.empty(len(ys), np.int64)
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        n = len(kept)
        if n and not (forced is not None and forced[i]):
            d2 = (ky[:n] - y) ** 2 + (kx[:n] - x) ** 2
            if d2.min() < min_d2:
                continue
            if prominence > 0:
                near = np.argsort(d2)[:n_neighbours] if n > n_neighbours else slice(None)
                ny, nx = ky[:n][near], kx[:n][near]
                cols = _line_min(snr, y, x, ny, nx)
                j = int(np.argmax(cols))
                if snr_at[i] - cols[j] < prominence:
                    # mirror through the peak this one is attached to (highest col)
                    my, mx = 2 * ny[j] - y, 2 * nx[j] - x
                    if not (0 <= my < h and 0 <= mx < w):
                        continue
                    if not snr_at[i] - snr[my, mx] >= symmetry:
                        continue
        ky[n], kx[n] = y, x
        kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def _wing_radius(snr: np.ndarray, y: int, x: int, level: float) -> float:
    """How far the light of the peak at (y, x) reaches: the median of `_ray_lengths` to
    ``level`` (the median, so that the directions running into a neighbour do not count)."""
    return float(np.median(_ray_lengths(snr, y, x, level)))


def _asymmetry_peaks(snr, has_data, sub, slc, centres, floor, rel=0.1, reach=None):
    """Local maxima of the light of a footprint that no peak explains symmetrically.

    For each peak ``c`` in ``centres`` (refined to sub-pixel), ``r_c(p) = snr(p) -
    snr(2 c - p)`` (bilinear for the mirrored pixel) is the light at ``p`` that is
    not point-symmetric about ``c``; ``r = min_c r_c`` over the peaks whose mirror
    of ``p`` has data and, with ``reach`` (one radius per centre, `_wing_radius`),
    that lie within that radius of ``p``: in a large footprint each pixel is mirrored
    about the peaks whose light reaches it, not about a peak at the far end. A faint
    source on the wing of a bright one makes no local maximum of the S/N, but it does
    make one of ``r``, while the wings of the known peaks themselves do not. Returns
    ``(y, x, r, k)`` with ``r >= max(floor, rel * snr(p))`` (the relative term absorbs
    what is left of the centring error on steep profiles) and ``k`` the index of the
    centre that gave the minimum, largest ``r`` first.
    """
    from scipy import ndimage

    h, w = snr.shape
    ys, xs = np.nonzero(sub)
    ys = ys + slc[0].start
    xs = xs + slc[1].start
    own = snr[ys, xs]
    r = np.full(len(ys), np.inf, np.float32)
    owner = np.full(len(ys), -1, np.int64)
    for k, (cy, cx) in enumerate(centres):
        cyf, cxf = _subpixel_peak(snr, cy, cx)
        my, mx = 2 * cyf - ys, 2 * cxf - xs
        ok = (my >= 0) & (my <= h - 1) & (mx >= 0) & (mx <= w - 1)
        if reach is not None:
            ok &= (ys - cyf) ** 2 + (xs - cxf) ** 2 <= reach[k] ** 2
        ok[ok] &= has_data[np.rint(my[ok]).astype(int), np.rint(mx[ok]).astype(int)]
        if ok.any():
            mirrored = ndimage.map_coordinates(snr, [my[ok], mx[ok]], order=1, mode="nearest")
            val = own[ok] - mirrored
            lower = val < r[ok]
            idx = np.flatnonzero(ok)[lower]
            r[idx] = val[lower]
            owner[idx] = k
    good = np.isfinite(r) & has_data[ys, xs] & (r >= floor) & (r >= rel * own)
    if not good.any():
        return []
    box_h, box_w = sub.shape
    grid = np.full((box_h + 2, box_w + 2), -np.inf, np.float32)
    grid[ys - slc[0].start + 1, xs - slc[1].start + 1] = np.where(good, r, -np.inf)
    owner_box = np.full((box_h, box_w), -1, np.int64)
    owner_box[ys - slc[0].start, xs - slc[1].start] = owner
    core = grid[1:-1, 1:-1]
    is_max = np.isfinite(core)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                is_max &= core >= grid[1 + dy : 1 + dy + box_h, 1 + dx : 1 + dx + box_w]
    py, px = np.nonzero(is_max)
    order = np.argsort(-core[py, px])
    return [
        (
            int(py[i] + slc[0].start),
            int(px[i] + slc[1].start),
            float(core[py[i], px[i]]),
            int(owner_box[py[i], px[i]]),
        )
        for i in order
    ]


def _symmetric_residual_peaks(
    snr,
    has_data,
    sub,
    slc,
    ky,
    kx,
    floor,
    sep2,
    width,
    rel=0.1,
    maxratio=0.85,
    verify=None,
    verify_floor=0.0,
):
    """Local maxima of the footprint's S/N left once every known peak's template is removed.

    ``snr - sum_k T_k`` (`_symmetric_templates`) inside the footprint ``sub`` (box
    ``slc``), at least ``max(floor, rel * snr)`` and at most ``maxratio * snr``,
    farther than ``sqrt(sep2)`` from every peak; with ``verify`` (a second S/N map,
    e.g. the matched filter when ``snr`` is sharper) the residual of that map
    within 1 pixel must reach ``verify_floor`` too. Returns ``[(y, x)]``.
    """
    y0, x0 = slc[0].start, slc[1].start
    valid = has_data[slc]
    inside = sub & valid
    box = snr[slc].astype(np.float32)
    bh, bw = box.shape
    ly = [y - y0 for y in ky]
    lx = [x - x0 for x in kx]
    total, covered = _symmetric_templates(box, valid, ly, lx, width)
    resid = box - total
    good = inside & covered & (resid >= floor) & (resid >= rel * box) & (resid <= maxratio * box)
    if not good.any():
        return []
    if verify is not None:
        vbox = verify[slc].astype(np.float32)
        vtotal, _ = _symmetric_templates(vbox, valid, ly, lx, width)
        vres = np.pad(vbox - vtotal, 1, constant_values=-np.inf)
        vmax = np.full(box.shape, -np.inf, np.float32)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                np.maximum(vmax, vres[1 + dy : 1 + dy + bh, 1 + dx : 1 + dx + bw], out=vmax)
        good &= vmax >= verify_floor
    grid = np.where(good, resid, -np.inf)
    padded = np.pad(grid, 1, constant_values=-np.inf)
    is_max = good.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                is_max &= grid >= padded[1 + dy : 1 + dy + bh, 1 + dx : 1 + dx + bw]
    py, px = np.nonzero(is_max)
    ky, kx = list(ky), list(kx)
    added = []
    for i in np.argsort(-grid[py, px], kind="stable"):
        y, x = int(py[i] + y0), int(px[i] + x0)
        d2 = (np.array(ky) - y) ** 2 + (np.array(kx) - x) ** 2
        if d2.min() < sep2:
            continue
        ky.append(y)
        kx.append(x)
        added.append((y, x))
    return added


def _band_peaks(snr_b, w_b, thresh, peak_snr, min_separation, prominence, symmetry):
    """Peaks of one band's S/N map, culled within that band's own footprints."""
    from scipy import ndimage

    structure = np.ones((3, 3), bool)
    ys, xs = _local_maxima(snr_b, w_b > 0, peak_snr)
    if len(ys) == 0:
        return ys, xs, np.zeros(0, np.float32)
    labels, _ = ndimage.label(snr_b >= thresh, structure=structure)
    lab = labels[ys, xs]
    order = np.argsort(lab, kind="stable")
    ys, xs, lab = ys[order], xs[order], lab[order]
    vals = snr_b[ys, xs]
    bounds = np.flatnonzero(np.diff(lab)) + 1
    keep = []
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(ys)]):
        if b - a == 1:
            keep.append(np.array([a]))
            continue
        k = _cull_peaks(
            ys[a:b], xs[a:b], vals[a:b], vals[a:b], snr_b, min_separation, prominence, symmetry
        )
        keep.append(k + a)
    keep = np.concatenate(keep)
    return ys[keep], xs[keep], vals[keep]


class BandPeaks:
    """The band hook of the detection pass (`vermilion.detect.maps._detection_pass`).

    Called with each band's S/N map: marks its pixels above ``thresh`` (``above``,
    footprint pixels of any band) and returns its culled peaks (`_band_peaks`).
    """

    def __init__(self, s: ResolvedDetection, shape: tuple[int, int]) -> None:
        self.s = s
        self.above = np.zeros(shape, bool)

    def __call__(self, b: int, snr_b: np.ndarray, w_b: np.ndarray):
        s, c = self.s, self.s.config
        np.logical_or(self.above, snr_b >= s.thresh, out=self.above)
        return _band_peaks(
            snr_b, w_b, s.thresh, s.band_peak_snr, s.min_separation, c.prominence, c.symmetry
        )


def sharp_snr_map(maps: DetectionMaps, s: ResolvedDetection) -> np.ndarray | None:
    """The S/N map of the residual peaks (None without them): smoothed with
    ``residual_sigma`` times the PSF sigma, sharper than the matched filter, so that
    close pairs stand out more (the matched filter's own residual still vets them,
    ``residual_verify_snr``)."""
    if not s.residual_peaks:
        return None
    rs = s.config.residual_sigma * s.smooth_sigma
    if rs == s.smooth_sigma:
        return maps.snr
    return _matched_filter(maps.coadd * maps.weight, maps.weight, rs, amplitude=False)[0]


@dataclass
class Candidates:
    """Peak candidates of the whole image, sorted by footprint label.

    The coadd's local maxima (``c*``; ``c_forced``: one per saturated core) and the
    band peaks (``b*``, brightest first within a footprint); the candidates of
    footprint ``lab`` are ``[c_starts[lab - 1], c_starts[lab])`` (and the same with
    ``b_starts``).
    """

    cy: np.ndarray
    cx: np.ndarray
    c_snr: np.ndarray
    c_amp: np.ndarray
    c_forced: np.ndarray
    c_starts: np.ndarray
    by: np.ndarray
    bx: np.ndarray
    b_snr: np.ndarray
    b_starts: np.ndarray

    def any(self, lab: int) -> bool:
        """Whether footprint ``lab`` has a candidate."""
        c, b = self.c_starts, self.b_starts
        return bool(c[lab] > c[lab - 1] or b[lab] > b[lab - 1])

    def coadd(self, lab: int) -> slice:
        """The coadd candidates of footprint ``lab``."""
        return slice(self.c_starts[lab - 1], self.c_starts[lab])

    def band(self, lab: int) -> range:
        """The band candidates of footprint ``lab``."""
        return range(self.b_starts[lab - 1], self.b_starts[lab])


def find_candidates(maps, labels, n, band_found, sat_hole, s: ResolvedDetection) -> Candidates:
    """The `Candidates` of the ``n`` footprints of ``labels``.

    Coadd candidates are the local maxima of the S/N among pixels with data, at
    least ``peak_snr``; ``band_found`` are the band peaks of `BandPeaks` (None:
    none). With ``sat_hole`` (saturated pixels without data) each hole gets one
    forced peak and the candidates in the wings of its core are dropped.
    """
    snr, amp = maps.snr, maps.amplitude
    cy, cx = _local_maxima(snr, maps.weight > 0, s.peak_snr)
    in_fp = labels[cy, cx] > 0
    cy, cx = cy[in_fp], cx[in_fp]
    c_forced = np.zeros(len(cy), bool)
    if band_found is not None:
        by = np.concatenate([f[0] for f in band_found])
        bx = np.concatenate([f[1] for f in band_found])
        b_snr = np.concatenate([f[2] for f in band_found]).astype(np.float32)
    else:
        by = bx = np.zeros(0, np.int64)
        b_snr = np.zeros(0, np.float32)
    if sat_hole is not None:
        cy, cx, c_forced, keep_b = _saturated_cores(sat_hole, labels, cy, cx, c_forced, by, bx, s)
        by, bx, b_snr = by[keep_b], bx[keep_b], b_snr[keep_b]

    c_lab = labels[cy, cx]
    c_snr = snr[cy, cx]
    # a saturated core is brighter than anything measured around it
    c_amp = np.where(c_forced, np.inf, amp[cy, cx])
    order = np.argsort(c_lab, kind="stable")
    cy, cx, c_lab, c_snr, c_amp, c_forced = (
        a[order] for a in (cy, cx, c_lab, c_snr, c_amp, c_forced)
    )
    b_lab = labels[by, bx]
    order = np.lexsort((-b_snr, b_lab))
    by, bx, b_snr, b_lab = by[order], bx[order], b_snr[order], b_lab[order]
    firsts = np.arange(1, n + 2)
    return Candidates(
        cy,
        cx,
        c_snr,
        c_amp,
        c_forced,
        np.searchsorted(c_lab, firsts),
        by,
        bx,
        b_snr,
        np.searchsorted(b_lab, firsts),
    )


def _saturated_cores(sat_hole, labels, cy, cx, c_forced, by, bx, s: ResolvedDetection):
    """One peak per saturated hole, at the hole pixel nearest its centroid; candidates
    in the wings of the saturated core are dropped. Returns the coadd candidates with
    the holes' peaks appended, their ``forced`` flags and which band peaks to keep."""
    from scipy import ndimage

    hole_lab, _ = ndimage.label(sat_hole & (labels > 0), structure=np.ones((3, 3), bool))
    sy, sx = [], []
    drop_c = np.zeros(len(cy), bool)
    drop_b = np.zeros(len(by), bool)
    for k, slc in enumerate(ndimage.find_objects(hole_lab), start=1):
        py, px = np.nonzero(hole_lab[slc] == k)
        py, px = py + slc[0].start, px + slc[1].start
        j = int(np.argmin((py - py.mean()) ** 2 + (px - px.mean()) ** 2))
        sy.append(py[j])
        sx.append(px[j])
        r2 = (math.sqrt(len(py) / math.pi) + s.grow) ** 2
        drop_c |= (cy - py[j]) ** 2 + (cx - px[j]) ** 2 <= r2
        drop_b |= (by - py[j]) ** 2 + (bx - px[j]) ** 2 <= r2
    keep = ~drop_c
    cy = np.concatenate([cy[keep], np.array(sy, np.int64)])
    cx = np.concatenate([cx[keep], np.array(sx, np.int64)])
    c_forced = np.concatenate([c_forced[keep], np.ones(len(sy), bool)])
    return cy, cx, c_forced, ~drop_b


@dataclass
class FootprintPeaks:
    """The peaks of one footprint: positions, S/N, amplitudes; the first ``n_coadd``
    are the culled coadd maxima, the rest candidates for `vermilion.detect.vetting`."""

    y: list
    x: list
    snr: list
    amp: list
    n_coadd: int

    def add(self, y: int, x: int, snr: float, amp: float) -> None:
        self.y.append(y)
        self.x.append(x)
        self.snr.append(snr)
        self.amp.append(amp)

    def keep(self, kept: np.ndarray) -> None:
        """Keep the peaks where ``kept`` is set (``amp`` is an array by then)."""
        self.y = [v for v, k in zip(self.y, kept) if k]
        self.x = [v for v, k in zip(self.x, kept) if k]
        self.snr = [v for v, k in zip(self.snr, kept) if k]
        self.amp = self.amp[kept]


def footprint_peaks(
    lab: int, slc, sub, maps, has_data, rsnr, cands: Candidates, s: ResolvedDetection
) -> FootprintPeaks | None:
    """Step 5 for footprint ``lab`` (box ``slc``, pixels ``sub`` in it; ``has_data``:
    ``maps.weight > 0``): its coadd
    candidates culled by `_cull_peaks`, the band peaks farther than
    ``band_peak_separation`` from them, then the residual peaks (with ``rsnr``,
    `sharp_snr_map`) or the asymmetry peaks. None when it has no peak."""
    c = s.config
    snr, amp = maps.snr, maps.amplitude
    i = cands.coadd(lab)
    keep = _cull_peaks(
        cands.cy[i],
        cands.cx[i],
        cands.c_amp[i],
        cands.c_snr[i],
        snr,
        s.min_separation,
        c.prominence,
        c.symmetry,
        forced=cands.c_forced[i],
    )
    found = FootprintPeaks(
        list(cands.cy[i][keep]),
        list(cands.cx[i][keep]),
        list(cands.c_snr[i][keep]),
        list(cands.c_amp[i][keep]),
        len(keep),
    )
    for j in cands.band(lab):
        y, x = int(cands.by[j]), int(cands.bx[j])
        if found.y:
            d2 = (np.array(found.y) - y) ** 2 + (np.array(found.x) - x) ** 2
            if d2.min() < s.band_sep2:
                continue
        found.add(y, x, cands.b_snr[j], amp[y, x])
    if not found.y:
        return None
    if rsnr is not None and max(found.snr) >= 2 * s.residual_snr:
        for y, x in _symmetric_residual_peaks(
            rsnr,
            has_data,
            sub,
            slc,
            found.y,
            found.x,
            s.residual_snr,
            s.resid_sep2,
            math.sqrt(2.0) * s.sigma,
            verify=snr,
            verify_floor=s.residual_verify_snr,
        ):
            if snr[y, x] >= s.peak_snr:
                found.add(y, x, snr[y, x], amp[y, x])
    elif c.asymmetry_snr is not None and max(found.snr) >= 2 * c.asymmetry_snr:
        _add_asymmetry_peaks(found, maps, has_data, sub, slc, s)
    return found


def _add_asymmetry_peaks(found: FootprintPeaks, maps, has_data, sub, slc, s) -> None:
    """Add the `_asymmetry_peaks` of a footprint that are not on the flank of a peak."""
    snr, amp = maps.snr, maps.amplitude
    floor = s.config.asymmetry_snr
    ky, kx = found.y, found.x
    # mirror centres: the bright peaks, each over the reach of its own light
    refs = [i for i in range(len(ky)) if found.snr[i] >= 2 * floor]
    reach = [_wing_radius(snr, ky[i], kx[i], 0.5 * floor) for i in refs]
    n_known = len(ky)
    centres = [(ky[i], kx[i]) for i in refs]
    for y, x, _, o in _asymmetry_peaks(snr, has_data, sub, slc, centres, floor, reach=reach):
        d2 = (np.array(ky) - y) ** 2 + (np.array(kx) - x) ** 2
        if d2.min() < s.band_sep2 or snr[y, x] < s.peak_snr:
            continue
        # not on the flank of another known peak (than the one mirrored
        # through): the S/N must dip towards it
        j0 = refs[o]
        oy = np.array([v for i, v in enumerate(ky[:n_known]) if i != j0], np.int64)
        ox = np.array([v for i, v in enumerate(kx[:n_known]) if i != j0], np.int64)
        if len(oy) and snr[y, x] - _line_min(snr, y, x, oy, ox).max() < s.config.prominence:
            continue
        found.add(y, x, snr[y, x], amp[y, x])
