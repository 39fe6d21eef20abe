"""Footprints: sets of pixels stored as row runs ("spans"), with peaks.

Conventions
-----------
* Coordinates are absolute parent-image pixels ``(y, x)``, like `Box`.
* A span is one run of pixels on row ``y`` from ``x0`` to ``x1`` **inclusive**
  (the convention of ``lsst.afw.geom.Span``); its length is ``x1 - x0 + 1``.
* Spans are stored as three ``int32`` arrays ``y``, ``x0``, ``x1`` sorted by
  ``(y, x0)``; sets built by this module never overlap nor touch on one row.
* A footprint's bounding box is the bounding box of its spans.
* Peaks are a numpy structured array of dtype `PEAK_DTYPE`
  (``id, y, x, value, snr``), ordered by ``value`` descending.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vermilion.core.bbox import Box

__all__ = [
    "PEAK_DTYPE",
    "Footprint",
    "HeavyFootprint",
    "SpanSet",
    "make_peaks",
]

PEAK_DTYPE = np.dtype(
    [("id", np.int64), ("y", np.int32), ("x", np.int32), ("value", np.float32), ("snr", np.float32)]
)


def make_peaks(y=(), x=(), value=None, snr=None, id=None) -> np.ndarray:
    """Build a peak array of dtype `PEAK_DTYPE` (value, snr default NaN; id default 0)."""
    y = np.atleast_1d(np.asarray(y, dtype=np.int64))
    x = np.atleast_1d(np.asarray(x, dtype=np.int64))
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"peak y and x must be 1-d of one length, got {y.shape} and {x.shape}")
    peaks = np.zeros(len(y), dtype=PEAK_DTYPE)
    peaks["y"] = y
    peaks["x"] = x
    peaks["value"] = np.nan if value is None else value
    peaks["snr"] = np.nan if snr is None else snr
    if id is not None:
        peaks["id"] = id
    return peaks


def _as_peaks(peaks) -> np.ndarray:
    if peaks is None:
        return np.zeros(0, dtype=PEAK_DTYPE)
    if isinstance(peaks, np.ndarray) and peaks.dtype == PEAK_DTYPE:
        return peaks.reshape(-1).copy()
    arr = np.asarray(peaks)
    if arr.dtype.names is not None:
        out = np.zeros(arr.size, dtype=PEAK_DTYPE)
        missing = {"y", "x"} - set(arr.dtype.names)
        if missing:
            raise ValueError(f"peaks need fields 'y' and 'x', missing {sorted(missing)}")
        for name in PEAK_DTYPE.names:
            if name in arr.dtype.names:
                out[name] = arr[name].reshape(-1)
            elif name in ("value", "snr"):
                out[name] = np.nan
        return out
    # Sequence of (y, x) pairs
    arr = np.asarray(peaks, dtype=np.float64).reshape(-1, 2) if len(arr) else np.zeros((0, 2))
    return make_peaks(np.round(arr[:, 0]).astype(np.int64), np.round(arr[:, 1]).astype(np.int64))


def _sort_peaks(peaks: np.ndarray) -> np.ndarray:
    # NaN values go last; ties keep their order
    key = np.where(np.isnan(peaks["value"]), -np.inf, peaks["value"])
    return peaks[np.argsort(-key, kind="stable")]


class SpanSet:
    """A set of pixels stored as row runs ``(y, x0, x1)`` with ``x1`` inclusive.

    Parameters
    ----------
    y, x0, x1
        Integer arrays of equal length: row, first column and last column
        (inclusive) of every span, absolute coordinates.
    normalize
        Sort the spans and merge overlapping or touching ones (needed when the
        input spans may overlap; the constructors of this module always give
        normalized sets).
    """

    __slots__ = ("x0", "x1", "y")

    def __init__(self, y=(), x0=(), x1=(), normalize: bool = True) -> None:
        y = np.asarray(y, dtype=np.int64).reshape(-1)
        x0 = np.asarray(x0, dtype=np.int64).reshape(-1)
        x1 = np.asarray(x1, dtype=np.int64).reshape(-1)
        if not (len(y) == len(x0) == len(x1)):
            raise ValueError(
                f"span arrays differ in length: y {len(y)}, x0 {len(x0)}, x1 {len(x1)}"
            )
        if np.any(x1 < x0):
            raise ValueError("every span needs x1 >= x0 (x1 is inclusive)")
        lim = np.iinfo(np.int32)
        for name, a in (("y", y), ("x0", x0), ("x1", x1)):
            if a.size and (a.min() < lim.min or a.max() > lim.max):
                raise ValueError(f"span {name} does not fit in int32")
        if normalize and len(y) > 1:
            y, x0, x1 = _normalize_spans(y, x0, x1)
        self.y = y.astype(np.int32)
        self.x0 = x0.astype(np.int32)
        self.x1 = x1.astype(np.int32)

    # -- constructors -----------------------------------------------------------------
    @staticmethod
    def from_mask(mask, yx0: Sequence[int] = (0, 0)) -> SpanSet:
        """Spans of the True pixels of a 2-d boolean array whose first pixel is ``yx0``."""
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-d, got shape {mask.shape}")
        h, w = mask.shape
        if h == 0 or w == 0:
            return SpanSet()
        padded = np.zeros((h, w + 2), dtype=np.int8)
        padded[:, 1:-1] = mask
        d = np.diff(padded, axis=1)
        ys, xs = np.nonzero(d == 1)
        _, xe = np.nonzero(d == -1)
        # nonzero is row-major, so starts and ends pair up in order
        return SpanSet(ys + yx0[0], xs + yx0[1], xe - 1 + yx0[1], normalize=False)

    @staticmethod
    def from_box(box: Box) -> SpanSet:
        """Every pixel of a box."""
        h, w = box.shape
        if h == 0 or w == 0:
            return SpanSet()
        y = np.arange(box.origin[0], box.origin[0] + h)
        return SpanSet(
            y, np.full(h, box.origin[1]), np.full(h, box.origin[1] + w - 1), normalize=False
        )

    # -- properties -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.y)

    @property
    def area(self) -> int:
        """Number of pixels."""
        return int(np.sum(self.x1.astype(np.int64) - self.x0 + 1))

    def getArea(self) -> int:
        return self.area

    @property
    def is_empty(self) -> bool:
        return len(self.y) == 0

    @property
    def bbox(self) -> Box:
        """Bounding box of the pixels (an empty box at the origin when empty)."""
        if self.is_empty:
            return Box((0, 0), (0, 0))
        y0, y1 = int(self.y.min()), int(self.y.max())
        x0, x1 = int(self.x0.min()), int(self.x1.max())
        return Box((y1 - y0 + 1, x1 - x0 + 1), (y0, x0))

    def getBBox(self) -> Box:
        return self.bbox

    # -- conversions ------------------------------------------------------------------
    def as_mask(self, box: Box | None = None) -> np.ndarray:
        """Boolean array over ``box`` (default: the bounding box), True on the set's pixels.

        Pixels outside ``box`` are ignored.
        """
        if box is None:
            box = self.bbox
        h, w = box.shape
        if self.is_empty or h == 0 or w == 0:
            return np.zeros((h, w), dtype=bool)
        out = np.zeros((h, w + 1), dtype=np.int32)
        y = self.y.astype(np.int64) - box.origin[0]
        x0 = np.clip(self.x0.astype(np.int64) - box.origin[1], 0, w)
        x1 = np.clip(self.x1.astype(np.int64) - box.origin[1] + 1, 0, w)
        keep = (y >= 0) & (y < h) & (x1 > x0)
        y, x0, x1 = y[keep], x0[keep], x1[keep]
        flat = out.reshape(-1)
        np.add.at(flat, y * (w + 1) + x0, 1)
        np.add.at(flat, y * (w + 1) + x1, -1)
        return np.cumsum(out, axis=1)[:, :w] > 0

    def as_array(self) -> np.ndarray:
        """Boolean mask shaped like the bounding box (``spans.asArray()`` in Rubin code)."""
        return self.as_mask()

    asArray = as_array

    def indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Absolute ``(ys, xs)`` of every pixel, in span order (row-major)."""
        if self.is_empty:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        lengths = self.x1.astype(np.int64) - self.x0 + 1
        ys = np.repeat(self.y.astype(np.int64), lengths)
        starts = np.repeat(self.x0.astype(np.int64), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return ys, starts + offsets

    # -- queries ----------------------------------------------------------------------
    def contains(self, point: Sequence[float]) -> bool:
        """Whether pixel ``(y, x)`` (rounded to the nearest pixel) is in the set."""
        y, x = int(np.rint(point[0])), int(np.rint(point[1]))
        row = self.y == y
        return bool(np.any(row & (self.x0 <= x) & (self.x1 >= x)))

    __contains__ = contains

    def contains_many(self, ys, xs) -> np.ndarray:
        """Vectorised `contains` for arrays of integer ``ys`` and ``xs``."""
        ys = np.asarray(ys, dtype=np.int64)
        xs = np.asarray(xs, dtype=np.int64)
        if self.is_empty or ys.size == 0:
            return np.zeros(ys.shape, dtype=bool)
        box = self.bbox
        mask = self.as_mask(box)
        ly, lx = ys - box.origin[0], xs - box.origin[1]
        inside = (ly >= 0) & (ly < box.shape[0]) & (lx >= 0) & (lx < box.shape[1])
        out = np.zeros(ys.shape, dtype=bool)
        out[inside] = mask[ly[inside], lx[inside]]
        return out

    # -- set operations ---------------------------------------------------------------
    def shifted_by(self, shift: Sequence[int]) -> SpanSet:
        """Set moved by ``(dy, dx)``."""
        dy, dx = int(shift[0]), int(shift[1])
        return SpanSet(self.y + dy, self.x0 + dx, self.x1 + dx, normalize=False)

    def clipped_to(self, box: Box) -> SpanSet:
        """Pixels of the set that lie inside ``box``."""
        if self.is_empty or box.is_empty:
            return SpanSet()
        (ya, yb), (xa, xb) = box.bounds
        keep = (self.y >= ya) & (self.y < yb) & (self.x1 >= xa) & (self.x0 < xb)
        return SpanSet(
            self.y[keep],
            np.maximum(self.x0[keep], xa),
            np.minimum(self.x1[keep], xb - 1),
            normalize=False,
        )

    def dilated(self, radius: int) -> SpanSet:
        """Set grown by a disk of integer ``radius`` (pixels within that distance)."""
        radius = int(radius)
        if radius < 0:
            raise ValueError(f"dilation radius must be >= 0, got {radius}")
        if radius == 0 or self.is_empty:
            return self.copy()
        from scipy import ndimage

        box = self.bbox.grow(radius)
        grown = ndimage.binary_dilation(self.as_mask(box), structure=disk(radius))
        return SpanSet.from_mask(grown, box.origin)

    def eroded(self, radius: int) -> SpanSet:
        """Set shrunk by a disk of integer ``radius``."""
        radius = int(radius)
        if radius < 0:
            raise ValueError(f"erosion radius must be >= 0, got {radius}")
        if radius == 0 or self.is_empty:
            return self.copy()
        from scipy import ndimage

        box = self.bbox.grow(1)
        shrunk = ndimage.binary_erosion(self.as_mask(box), structure=disk(radius))
        return SpanSet.from_mask(shrunk, box.origin)

    def union(self, other: SpanSet) -> SpanSet:
        """Pixels in either set."""
        if self.is_empty:
            return other.copy()
        if other.is_empty:
            return self.copy()
        return SpanSet(
            np.concatenate([self.y, other.y]),
            np.concatenate([self.x0, other.x0]),
            np.concatenate([self.x1, other.x1]),
            normalize=True,
        )

    def intersection(self, other: SpanSet) -> SpanSet:
        """Pixels in both sets."""
        box = self.bbox & other.bbox
        if self.is_empty or other.is_empty or box.is_empty:
            return SpanSet()
        return SpanSet.from_mask(self.as_mask(box) & other.as_mask(box), box.origin)

    def __or__(self, other: SpanSet) -> SpanSet:
        return self.union(other)

    def __and__(self, other: SpanSet) -> SpanSet:
        return self.intersection(other)

    def copy(self) -> SpanSet:
        return SpanSet(self.y.copy(), self.x0.copy(), self.x1.copy(), normalize=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpanSet):
            return NotImplemented
        return (
            np.array_equal(self.y, other.y)
            and np.array_equal(self.x0, other.x0)
            and np.array_equal(self.x1, other.x1)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SpanSet(n_spans={len(self)}, area={self.area}, bbox={self.bbox})"


def _normalize_spans(y, x0, x1):
    """Sort spans and merge those that overlap or touch on a row (vectorised)."""
    order = np.lexsort((x0, y))
    y, x0, x1 = y[order], x0[order], x1[order]
    rows = y - y.min()
    xs0 = x0 - x0.min()
    xs1 = x1 - x0.min()
    width = int(xs1.max()) + 2
    # running maximum of the run end, reset on each row by offsetting rows
    run_end = np.maximum.accumulate(rows * width + xs1) - rows * width
    new_run = np.ones(len(y), dtype=bool)
    new_run[1:] = (rows[1:] != rows[:-1]) | (xs0[1:] > run_end[:-1] + 1)
    starts = np.flatnonzero(new_run)
    return y[starts], x0[starts], np.maximum.reduceat(x1, starts)


def disk(radius: int) -> np.ndarray:
    """Boolean disk structuring element of integer ``radius`` ((2r+1, 2r+1))."""
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r + 0.5


class Footprint:
    """A detection footprint: a `SpanSet` of pixels and the peaks found in it.

    Parameters
    ----------
    spans
        The pixels, a `SpanSet` (or a 2-d boolean mask, then ``yx0`` gives its origin).
    peaks
        Peaks of dtype `PEAK_DTYPE`, or any structured array with ``y`` and ``x``
        fields, or a sequence of ``(y, x)`` pairs. Stored sorted by ``value``
        descending.
    yx0
        Origin of ``spans`` when it is given as a mask.
    """

    is_heavy = False

    def __init__(self, spans, peaks=None, yx0: Sequence[int] = (0, 0)) -> None:
        if not isinstance(spans, SpanSet):
            if isinstance(spans, Box):
                spans = SpanSet.from_box(spans)
            else:
                spans = SpanSet.from_mask(spans, yx0)
        self.spans = spans
        self._peaks = _sort_peaks(_as_peaks(peaks))

    # -- Rubin-style accessors ------------------------------------------------------
    @property
    def peaks(self) -> np.ndarray:
        """Structured array of peaks (``id, y, x, value, snr``), brightest first."""
        return self._peaks

    @peaks.setter
    def peaks(self, value) -> None:
        self._peaks = _sort_peaks(_as_peaks(value))

    def getPeaks(self) -> np.ndarray:
        return self._peaks

    def getSpans(self) -> SpanSet:
        return self.spans

    @property
    def bbox(self) -> Box:
        """Bounding box of the spans."""
        return self.spans.bbox

    def getBBox(self) -> Box:
        return self.bbox

    @property
    def area(self) -> int:
        return self.spans.area

    def getArea(self) -> int:
        return self.area

    @property
    def n_peaks(self) -> int:
        return len(self._peaks)

    @property
    def centroid(self) -> tuple[float, float]:
        """Unweighted mean ``(y, x)`` of the footprint's pixels (NaN when empty)."""
        if self.spans.is_empty:
            return (float("nan"), float("nan"))
        n = self.spans.x1.astype(np.float64) - self.spans.x0 + 1
        cy = np.sum(self.spans.y * n) / n.sum()
        cx = np.sum(n * (self.spans.x0.astype(np.float64) + self.spans.x1) / 2) / n.sum()
        return (float(cy), float(cx))

    def getCentroid(self) -> tuple[float, float]:
        return self.centroid

    def as_array(self) -> np.ndarray:
        """Boolean mask over `bbox`."""
        return self.spans.as_array()

    def contains(self, point: Sequence[float]) -> bool:
        return self.spans.contains(point)

    __contains__ = contains

    def add_peak(self, y: int, x: int, value: float = np.nan, snr: float = np.nan, id: int = 0):
        """Add one peak (kept sorted by value)."""
        new = make_peaks([y], [x], value=value, snr=snr, id=id)
        self._peaks = _sort_peaks(np.concatenate([self._peaks, new]))

    addPeak = add_peak

    # -- geometry ---------------------------------------------------------------------
    def _with(self, spans: SpanSet) -> Footprint:
        inside = spans.contains_many(self._peaks["y"], self._peaks["x"])
        return Footprint(spans, self._peaks[inside])

    def grow(self, radius: int) -> Footprint:
        """Footprint dilated by a disk of ``radius`` pixels (peaks kept)."""
        return Footprint(self.spans.dilated(radius), self._peaks)

    dilated = grow

    def shifted_by(self, shift: Sequence[int]) -> Footprint:
        peaks = self._peaks.copy()
        peaks["y"] += int(shift[0])
        peaks["x"] += int(shift[1])
        return Footprint(self.spans.shifted_by(shift), peaks)

    def clipped_to(self, box: Box) -> Footprint:
        """Footprint restricted to ``box`` (peaks outside are dropped)."""
        return self._with(self.spans.clipped_to(box))

    def union(self, other: Footprint) -> Footprint:
        """Pixels of both footprints; peaks of both (one per id when ids are set)."""
        peaks = np.concatenate([self._peaks, other.peaks])
        with_id = peaks["id"] != 0
        _, first = np.unique(peaks["id"][with_id], return_index=True)
        keep = np.flatnonzero(~with_id)
        keep = np.concatenate([keep, np.flatnonzero(with_id)[first]])
        return Footprint(self.spans.union(other.spans), peaks[np.sort(keep)])

    def intersection(self, other: Footprint) -> Footprint:
        """Pixels in both footprints; this footprint's peaks that lie inside."""
        return self._with(self.spans.intersection(other.spans))

    def __or__(self, other: Footprint) -> Footprint:
        return self.union(other)

    def __and__(self, other: Footprint) -> Footprint:
        return self.intersection(other)

    def copy(self) -> Footprint:
        return Footprint(self.spans.copy(), self._peaks.copy())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Footprint):
            return NotImplemented
        return (
            self.is_heavy == other.is_heavy
            and self.spans == other.spans
            and _peaks_equal(self._peaks, other.peaks)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Footprint(area={self.area}, bbox={self.bbox}, n_peaks={self.n_peaks})"


def _peaks_equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    for name in PEAK_DTYPE.names:
        if not np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"):
            return False
    return True


class HeavyFootprint(Footprint):
    """A footprint that also carries its pixel values in every band.

    Parameters
    ----------
    spans, peaks
        As for `Footprint`.
    values
        ``(n_bands, area)`` float32 array: the value of every footprint pixel in
        every band, pixels in span order (row-major, see `SpanSet.indices`).
    bands
        Band names, one per row of ``values`` (optional).
    mask, variance
        Optional per-pixel mask bits (integers) and variance, shaped like ``values``
        (an ``lsst.afw`` ``HeavyFootprint`` carries both); None when unknown.
    """

    is_heavy = True

    def __init__(
        self, spans, peaks=None, values=None, bands=None, yx0=(0, 0), mask=None, variance=None
    ) -> None:
        super().__init__(spans, peaks, yx0)
        area = self.spans.area
        if values is None:
            values = np.zeros((0 if bands is None else len(bands), area), dtype=np.float32)
        values = np.asarray(values, dtype=np.float32)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.shape[1] != area:
            raise ValueError(
                f"heavy footprint values must be (n_bands, {area}), got shape {values.shape}"
            )
        if bands is not None:
            bands = tuple(str(b) for b in bands)
            if len(bands) != values.shape[0]:
                raise ValueError(f"{len(bands)} bands given for {values.shape[0]} value rows")
        self.values = values
        self.bands = bands
        self.mask = _plane(mask, values.shape, "mask", integer=True)
        self.variance = _plane(variance, values.shape, "variance", integer=False)

    @staticmethod
    def from_image(
        footprint: Footprint, images, yx0: Sequence[int] = (0, 0), bands=None
    ) -> HeavyFootprint:
        """Cut the pixels of ``footprint`` out of ``images``.

        Parameters
        ----------
        footprint
            The footprint.
        images
            ``(n_bands, H, W)`` or ``(H, W)`` array, or an object with ``.data``,
            ``.yx0`` and ``.bands`` (a vermilion `Image`).
        yx0
            Absolute coordinate of ``images[..., 0, 0]`` (ignored for an `Image`).
        bands
            Band names (taken from an `Image` when not given).

        Pixels of the footprint that lie outside the images get value 0.
        """
        if hasattr(images, "data") and hasattr(images, "yx0"):
            bands = bands if bands is not None else getattr(images, "bands", None)
            yx0 = images.yx0
            images = images.data
        data = np.asarray(images)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(f"images must be (bands, H, W) or (H, W), got {data.shape}")
        ys, xs = footprint.spans.indices()
        ly, lx = ys - yx0[0], xs - yx0[1]
        inside = (ly >= 0) & (ly < data.shape[1]) & (lx >= 0) & (lx < data.shape[2])
        values = np.zeros((data.shape[0], len(ys)), dtype=np.float32)
        values[:, inside] = data[:, ly[inside], lx[inside]]
        return HeavyFootprint(footprint.spans, footprint.peaks, values, bands)

    @property
    def n_bands(self) -> int:
        return self.values.shape[0]

    def as_image_array(self) -> np.ndarray:
        """``(n_bands, h, w)`` float32 array over `bbox`, 0 outside the footprint."""
        box = self.bbox
        out = np.zeros((self.n_bands, *box.shape), dtype=np.float32)
        ys, xs = self.spans.indices()
        out[:, ys - box.origin[0], xs - box.origin[1]] = self.values
        return out

    getImageArray = as_image_array

    def insert(self, array: np.ndarray, yx0: Sequence[int] = (0, 0)) -> np.ndarray:
        """Write the values into ``array`` ((bands, H, W) whose first pixel is ``yx0``)."""
        ys, xs = self.spans.indices()
        ly, lx = ys - yx0[0], xs - yx0[1]
        inside = (ly >= 0) & (ly < array.shape[-2]) & (lx >= 0) & (lx < array.shape[-1])
        array[..., ly[inside], lx[inside]] = self.values[:, inside]
        return array

    def copy(self) -> HeavyFootprint:
        return HeavyFootprint(
            self.spans.copy(),
            self._peaks.copy(),
            self.values.copy(),
            self.bands,
            mask=None if self.mask is None else self.mask.copy(),
            variance=None if self.variance is None else self.variance.copy(),
        )

    def __eq__(self, other: object) -> bool:
        base = super().__eq__(other)
        if base is NotImplemented or not base:
            return base
        return (
            self.bands == other.bands
            and np.array_equal(self.values, other.values, equal_nan=True)
            and _same_plane(self.mask, other.mask)
            and _same_plane(self.variance, other.variance)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"HeavyFootprint(area={self.area}, bbox={self.bbox}, n_peaks={self.n_peaks}, "
            f"bands={self.bands})"
        )


def _plane(values, shape: tuple[int, ...], name: str, integer: bool) -> np.ndarray | None:
    """A heavy footprint's optional mask or variance, checked against the values' shape."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[None]
    if values.shape != shape:
        raise ValueError(f"heavy footprint {name} must have shape {shape}, got {values.shape}")
    if integer:
        if values.dtype.kind not in "iub":
            raise ValueError(f"heavy footprint {name} must hold integers, got {values.dtype}")
        return values
    return values.astype(np.float32)


def _same_plane(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.dtype.kind == b.dtype.kind and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
