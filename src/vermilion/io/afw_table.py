"""FITS files written by ``lsst.afw.table``, read without the Rubin stack, as numpy arrays.

Two kinds of file are recognised (see `identify_afw`):

* a **catalog** (``SourceCatalog.writeFits``): HDU 1 is the record table (header
  ``AFW_TYPE`` and/or ``AFW_TABLE_VERSION``; the packed ``flags`` bit column is named
  bit by bit by ``TFLAGn``; the ``footprint`` column holds an archive object id per
  record, 0 for none); ``AR_HDU`` (1-based) in its header or the primary header says
  where the archive starts;
* a bare **archive** (``Footprint.writeFits``): HDU 1 is the ``ARCHIVE_INDEX``.

The archive is an ``ARCHIVE_INDEX`` table (one row per object id and catalog: ``id``,
``cat.archive``, the 1-based position of an ``ARCHIVE_DATA`` table after the index,
``cat.persistable``, ``row0``, ``nrows``, ``name``) followed by ``ARCHIVE_DATA`` tables
(``AR_NAME``, ``AR_CATN``). A ``Footprint``'s catalog 0 holds the id of its ``SpanSet``
object (rows ``y, x0, x1``, x1 inclusive), or in the older layout the spans themselves;
catalog 1 its peaks; a ``HeavyFootprint{F,D,I,U}``'s catalog 2 one row of ``image``,
``mask`` and ``variance`` arrays, one value per pixel in span order.

Everything is read once and decoded with vectorised numpy (no loop over spans). Every
inconsistency (a truncated file, a missing HDU, an object id the archive lacks, a row
range past a table's end, an array of the wrong length) raises `AfwTableError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.io import fits

from .afw_fits import (
    _PARSE_ERRORS,
    AfwColumn,
    AfwTableError,
    _header_value,
    _native,
    _parsing,
    _ranges,
    _unsigned,
    read_columns,
)

__all__ = [
    "FOOTPRINT_CLASSES",
    "HEAVY_FOOTPRINT_CLASSES",
    "AfwFootprints",
    "AfwTable",
    "describe_hdus",
    "identify_afw",
    "read_afw",
    "read_afw_archive",
]

HEAVY_FOOTPRINT_CLASSES = (
    "HeavyFootprintF",
    "HeavyFootprintD",
    "HeavyFootprintI",
    "HeavyFootprintU",
)
FOOTPRINT_CLASSES = ("Footprint", *HEAVY_FOOTPRINT_CLASSES)
SPANSET_CLASS = "SpanSet"
_INDEX_COLUMNS = ("id", "cat.archive", "cat.persistable", "row0", "nrows", "name")


@dataclass
class AfwFootprints:
    """Every footprint of an archive, as flat arrays (footprint ``i`` owns slice ``i``).

    Attributes
    ----------
    ids
        Archive object id of each footprint, sorted ascending (int64).
    classes
        afw class name of each footprint (``Footprint``, ``HeavyFootprintF`` ...).
    span_offsets
        ``(n + 1,)``: footprint ``i``'s spans are ``y, x0, x1[span_offsets[i]:span_offsets[i+1]]``.
    y, x0, x1
        Spans (int64, x1 inclusive, absolute pixels), sorted by ``(y, x0)`` within
        each footprint (heavy pixel values follow that order).
    needs_merge
        Footprints whose spans overlap or touch on a row (never a heavy one with overlaps).
    peak_offsets
        ``(n + 1,)``: slices of the peak arrays.
    peaks
        Peak columns (name -> array): ``id``, ``y``, ``x`` (integer pixel), ``f_y``,
        ``f_x`` (sub-pixel), ``value`` (``peakValue``), then every other column of the
        peak tables (one boolean per ``TFLAGn``, ``significance`` ...).
    peak_units, peak_descriptions
        Unit and description of each peak column, where the file gives them.
    pixel_offsets
        ``(n + 1,)``: slices of ``image``, ``mask`` and ``variance`` (empty for a
        footprint that is not heavy).
    image, mask, variance
        Per-pixel values of the heavy footprints, in span order, or None when the
        archive holds none.
    """

    ids: np.ndarray
    classes: np.ndarray
    span_offsets: np.ndarray
    y: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    needs_merge: np.ndarray
    peak_offsets: np.ndarray
    peaks: dict[str, np.ndarray]
    peak_units: dict[str, u.UnitBase | None] = field(default_factory=dict)
    peak_descriptions: dict[str, str] = field(default_factory=dict)
    pixel_offsets: np.ndarray | None = None
    image: np.ndarray | None = None
    mask: np.ndarray | None = None
    variance: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_heavy(self) -> np.ndarray:
        return np.isin(self.classes, HEAVY_FOOTPRINT_CLASSES)

    def rows_of(self, ids) -> np.ndarray:
        """Position of each archive id in `ids` (-1 for id 0); AfwTableError for unknown ids."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, ids)
        rows = np.minimum(rows, max(len(self.ids) - 1, 0))
        found = (self.ids[rows] == ids) if len(self.ids) else np.zeros(ids.shape, bool)
        bad = ~found & (ids != 0)
        if np.any(bad):
            missing = sorted(set(ids[bad].tolist()))
            raise AfwTableError(
                f"records refer to footprint archive ids {missing[:5]} that the archive lacks"
            )
        return np.where(found, rows, -1)

    @staticmethod
    def empty() -> AfwFootprints:
        zero = np.zeros(1, np.int64)
        ints = np.zeros(0, np.int64)
        return AfwFootprints(
            ints, np.zeros(0, "U1"), zero, ints, ints, ints, np.zeros(0, bool), zero, {}
        )


@dataclass
class AfwTable:
    """An afw file read into arrays.

    Attributes
    ----------
    kind
        ``"catalog"`` (a record table, with or without an archive) or ``"archive"``
        (a bare archive such as a persisted footprint: no records).
    columns
        The record table's columns in file order, the ``flags`` bits expanded into
        one boolean column per ``TFLAGn`` at the place of ``flags``.
    footprint_ids
        The ``footprint`` column (archive id per record, 0 for none), or None when the
        table has no such column. It is not among `columns`.
    footprint_position
        Position in `columns` where the ``footprint`` column was (-1 if none).
    footprints
        Every footprint of the archive (empty when there is no archive).
    meta
        ``afw_type``, ``afw_table_version`` and ``aliases`` (the ``ALIAS`` cards).
    """

    kind: str
    columns: list[AfwColumn]
    footprint_ids: np.ndarray | None
    footprint_position: int
    footprints: AfwFootprints
    meta: dict


# -- opening and recognising ---------------------------------------------------------------
def identify_afw(hdul: fits.HDUList) -> str | None:
    """``"catalog"``, ``"archive"`` or None (not a file written by ``lsst.afw.table``)."""
    with _parsing(None):
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            return None
        header = hdul[1].header
        exttype = _header_value(header, "EXTTYPE") or ""
        if exttype == "ARCHIVE_INDEX":
            return "archive"
        if exttype.startswith("ARCHIVE"):
            return None  # archive data without its index is no record table
        if "AFW_TYPE" in header or "AFW_TABLE_VERSION" in header:
            return "catalog"
        if _header_value(header, "TCCLS1") is not None or "AR_HDU" in header:
            return "catalog"
    return None


def describe_hdus(hdul: fits.HDUList) -> str:
    """One line naming each HDU: index, name, kind, size and (tables) first columns."""
    parts = []
    for i, hdu in enumerate(hdul):
        try:
            header = hdu.header
            name = hdu.name or ""
            kind = type(hdu).__name__.replace("HDU", "")
            extra = _header_value(header, "EXTTYPE") or _header_value(header, "AFW_TYPE")
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                cols = [_header_value(header, f"TTYPE{k}") for k in range(1, 7)]
                cols = [c for c in cols if c]
                more = ", ..." if int(header.get("TFIELDS", 0)) > len(cols) else ""
                what = f"{header.get('NAXIS2', 0)} rows, columns {', '.join(cols)}{more}"
            else:
                shape = tuple(
                    header.get(f"NAXIS{k}", 0) for k in range(1, header.get("NAXIS", 0) + 1)
                )
                what = f"shape {shape}" if shape else "no data"
            label = f"{name!r} " if name else ""
            parts.append(f"HDU {i} {label}{kind}{f' {extra}' if extra else ''} ({what})")
        except _PARSE_ERRORS as err:  # a damaged header: say so and go on
            parts.append(f"HDU {i} unreadable ({type(err).__name__})")
    return "; ".join(parts) if parts else "no HDU"


def _check_complete(hdul: fits.HDUList, path) -> None:
    """AfwTableError when the file is shorter than its headers say (truncated)."""
    name = path if path is not None else hdul.filename()
    if name is None or not os.path.exists(name):
        return
    size = os.path.getsize(name)
    for i, hdu in enumerate(hdul):
        header = hdu.header
        naxis = int(header.get("NAXIS", 0))
        count = int(np.prod([int(header.get(f"NAXIS{k}", 0)) for k in range(1, naxis + 1)]))
        count = (count if naxis else 0) + int(header.get("PCOUNT", 0))
        nbytes = abs(int(header.get("BITPIX", 8))) // 8 * int(header.get("GCOUNT", 1)) * count
        end = hdul.fileinfo(i)["datLoc"] + nbytes
        if end > size:
            raise AfwTableError(
                f"file truncated: HDU {i} needs {end} bytes, the file has {size}", path
            )


class _Archive:
    """The index and the ARCHIVE_DATA tables of one archive (each table read once)."""

    def __init__(self, hdul: fits.HDUList, index_hdu: int, path) -> None:
        self.hdul, self.index_hdu, self.path = hdul, index_hdu, path
        if index_hdu < 0 or index_hdu >= len(hdul):
            raise AfwTableError(
                f"AR_HDU points at HDU {index_hdu + 1} (1-based) but the file has {len(hdul)}"
                " HDUs (missing archive)",
                path,
            )
        hdu = hdul[index_hdu]
        if _header_value(hdu.header, "EXTTYPE") != "ARCHIVE_INDEX":
            raise AfwTableError(f"HDU {index_hdu} is not an ARCHIVE_INDEX", path)
        names = hdu.columns.names
        missing = [c for c in _INDEX_COLUMNS if c not in names]
        if missing:
            raise AfwTableError(f"ARCHIVE_INDEX lacks columns {missing}", path)
        data = hdu.data
        self.n_catalogs = int(hdu.header.get("AR_NCAT", 0))

        def get(c: str) -> np.ndarray:
            return np.asarray(data[c], np.int64) if data is not None else np.zeros(0, np.int64)

        self.ids, self.archive = get("id"), get("cat.archive")
        self.persistable, self.row0, self.nrows = get("cat.persistable"), get("row0"), get("nrows")
        self.names = (
            np.char.strip(np.asarray(data["name"]).astype(str))
            if data is not None
            else np.zeros(0, "U1")
        )
        if np.any(self.archive < 1) or (
            self.n_catalogs and np.any(self.archive >= self.n_catalogs)
        ):
            raise AfwTableError("ARCHIVE_INDEX points at catalogs outside the archive", path)
        if np.any(self.row0 < 0) or np.any(self.nrows < 0) or np.any(self.persistable < 0):
            raise AfwTableError("ARCHIVE_INDEX has negative rows or catalog numbers", path)
        self._tables: dict[int, tuple[fits.BinTableHDU, list[str]]] = {}

    def table(self, k: int) -> tuple[fits.BinTableHDU, list[str]]:
        """ARCHIVE_DATA catalog ``k`` (1-based after the index), checked against the index."""
        if k not in self._tables:
            at = self.index_hdu + k
            if at >= len(self.hdul):
                raise AfwTableError(f"archive catalog {k} (HDU {at}) is missing", self.path)
            hdu = self.hdul[at]
            header = hdu.header
            if (
                not isinstance(hdu, fits.BinTableHDU)
                or _header_value(header, "EXTTYPE") != "ARCHIVE_DATA"
            ):
                raise AfwTableError(
                    f"HDU {at} should be archive catalog {k} (ARCHIVE_DATA)", self.path
                )
            catn = header.get("AR_CATN")
            if catn is not None and int(catn) != k:
                raise AfwTableError(f"HDU {at} is archive catalog {catn}, expected {k}", self.path)
            ar_name = _header_value(header, "AR_NAME")
            expected = set(self.names[self.archive == k].tolist())
            if ar_name is not None and expected and expected != {ar_name}:
                raise AfwTableError(
                    f"archive catalog {k} holds {ar_name!r} objects, "
                    f"the index says {sorted(expected)}",
                    self.path,
                )
            nrows = int(header.get("NAXIS2", 0))
            used = self.archive == k
            if np.any(self.row0[used] + self.nrows[used] > nrows):
                raise AfwTableError(
                    f"ARCHIVE_INDEX rows run past the {nrows} rows of archive catalog {k}",
                    self.path,
                )
            self._tables[k] = (hdu, list(hdu.columns.names))
        return self._tables[k]

    def int_column(self, k: int, name: str) -> np.ndarray:
        hdu, names = self.table(k)
        if name not in names:
            raise AfwTableError(f"archive catalog {k} has no column {name!r}", self.path)
        return np.asarray(hdu.data[name], dtype=np.int64)


def read_afw_archive(hdul: fits.HDUList, index_hdu: int, path=None) -> AfwFootprints:
    """Every footprint of the archive whose ``ARCHIVE_INDEX`` is HDU ``index_hdu`` (0-based)."""
    with _parsing(path):
        ar = _Archive(hdul, index_hdu, path)
        is_fp = np.isin(ar.names, FOOTPRINT_CLASSES)
        fp_ids = np.unique(ar.ids[is_fp])
        if len(fp_ids) == 0:
            return AfwFootprints.empty()
        if np.any(np.isin(ar.ids, fp_ids) & ~is_fp):
            # a footprint's row whose class name is damaged must not just drop its catalog
            raise AfwTableError("an archive object's catalogs disagree on its class", path)
        entry = {}
        for p in (0, 1, 2):
            sel = np.flatnonzero(is_fp & (ar.persistable == p))
            pos = np.searchsorted(fp_ids, ar.ids[sel])
            if len(np.unique(pos)) != len(pos):
                raise AfwTableError(f"a footprint has two entries for its catalog {p}", path)
            rows = np.full(len(fp_ids), -1, np.int64)
            rows[pos] = sel
            entry[p] = rows
        if np.any(entry[0] < 0):
            bad = fp_ids[entry[0] < 0][:5].tolist()
            raise AfwTableError(f"footprints {bad} have no span catalog in the archive", path)
        classes = ar.names[entry[0]]
        for p, what, need in (
            (1, "peak", np.ones(len(fp_ids), bool)),
            (2, "pixel", np.isin(classes, HEAVY_FOOTPRINT_CLASSES)),
        ):
            if np.any(need & (entry[p] < 0)):
                bad = fp_ids[need & (entry[p] < 0)][:5].tolist()
                raise AfwTableError(f"footprints {bad} have no {what} catalog in the archive", path)
        for p in (1, 2):
            has = entry[p] >= 0
            if np.any(ar.names[entry[p][has]] != classes[has]):
                raise AfwTableError("an archive object's catalogs disagree on its class", path)
        sk, s0, sn = _span_ranges(ar, entry[0])
        y, x0, x1, span_off = _gather_spans(ar, sk, s0, sn)
        heavy = np.isin(classes, HEAVY_FOOTPRINT_CLASSES)
        out = AfwFootprints(
            fp_ids,
            classes,
            span_off,
            y,
            x0,
            x1,
            np.zeros(len(fp_ids), bool),
            *_gather_peaks(ar, entry[1]),
        )
        if np.any(heavy):
            _gather_heavy(ar, out, entry[2], heavy)
        _sort_spans(out, path)
        return out


def _span_ranges(ar: _Archive, first: np.ndarray):
    """(catalog, row0, nrows) of each footprint's spans, following SpanSet ids."""
    k, row0, nrows = ar.archive[first], ar.row0[first], ar.nrows[first]
    k, row0, nrows = k.copy(), row0.copy(), nrows.copy()
    spanset = ar.names == SPANSET_CLASS
    ss_rows = np.flatnonzero(spanset & (ar.persistable == 0))
    order = np.argsort(ar.ids[ss_rows], kind="stable")
    ss_rows, ss_ids = ss_rows[order], ar.ids[ss_rows[order]]
    for cat in np.unique(k).tolist():
        _, names = ar.table(cat)
        sel = np.flatnonzero(k == cat)
        if {"y", "x0", "x1"} <= set(names):
            continue  # the older layout: the spans are in the footprint's own catalog
        if "id" not in names:
            raise AfwTableError(
                f"archive catalog {cat} holds neither spans nor a SpanSet id", ar.path
            )
        if np.any(nrows[sel] != 1):
            raise AfwTableError("a footprint's SpanSet reference must be one row", ar.path)
        ref = ar.int_column(cat, "id")[row0[sel]]
        at = np.minimum(np.searchsorted(ss_ids, ref), max(len(ss_ids) - 1, 0))
        found = (ss_ids[at] == ref) if len(ss_ids) else np.zeros(len(ref), bool)
        if np.any(~found & (ref != 0)):
            bad = sorted(set(ref[~found & (ref != 0)].tolist()))[:5]
            raise AfwTableError(
                f"footprints refer to SpanSet ids {bad} that the archive lacks", ar.path
            )
        target = ss_rows[at]
        k[sel] = np.where(found, ar.archive[target], 0)
        row0[sel] = np.where(found, ar.row0[target], 0)
        nrows[sel] = np.where(found, ar.nrows[target], 0)
    return k, row0, nrows


def _gather_spans(ar: _Archive, k, row0, nrows):
    offsets = np.zeros(len(k) + 1, np.int64)
    np.cumsum(nrows, out=offsets[1:])
    total = int(offsets[-1])
    y, x0, x1 = (np.zeros(total, np.int64) for _ in range(3))
    for cat in np.unique(k[nrows > 0]).tolist():
        sel = np.flatnonzero((k == cat) & (nrows > 0))
        src = _ranges(row0[sel], nrows[sel])
        dst = _ranges(offsets[sel], nrows[sel])
        y[dst] = ar.int_column(cat, "y")[src]
        x0[dst] = ar.int_column(cat, "x0")[src]
        x1[dst] = ar.int_column(cat, "x1")[src]
    if np.any(x1 < x0):
        raise AfwTableError("a span ends before it starts (x1 < x0)", ar.path)
    lim = np.iinfo(np.int32)
    if total and (min(y.min(), x0.min()) < lim.min or max(y.max(), x1.max()) > lim.max):
        raise AfwTableError("span coordinates do not fit in 32 bits", ar.path)
    return y, x0, x1, offsets


_PEAK_RENAME = {
    "i_y": "y",
    "i_x": "x",
    "peakValue": "value",
    "i.y": "y",
    "i.x": "x",
    "f.y": "f_y",
    "f.x": "f_x",
}


def _gather_peaks(ar: _Archive, rows: np.ndarray):
    """Peak columns of every footprint (flat), their offsets, units and descriptions."""
    has = rows >= 0
    counts = np.where(has, ar.nrows[np.maximum(rows, 0)], 0)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    cats = ar.archive[np.maximum(rows, 0)]
    columns: dict[str, np.ndarray] = {}
    units: dict[str, u.UnitBase | None] = {}
    docs: dict[str, str] = {}
    for cat in np.unique(cats[has & (counts > 0)]).tolist():
        sel = np.flatnonzero(has & (cats == cat) & (counts > 0))
        src = _ranges(ar.row0[rows[sel]], counts[sel])
        dst = _ranges(offsets[sel], counts[sel])
        hdu, _ = ar.table(cat)
        for col in read_columns(hdu, ar.path):
            name = _PEAK_RENAME.get(col.name, col.name)
            if name not in columns:
                if col.data.dtype.kind == "O":
                    raise AfwTableError(f"peak column {col.name!r} has variable length", ar.path)
                shape = (total, *col.data.shape[1:])
                columns[name] = np.zeros(shape, col.data.dtype)
                if col.data.dtype.kind == "f":
                    columns[name][...] = np.nan
                units[name], docs[name] = col.unit, col.description
            columns[name][dst] = col.data[src]
    if total and not ({"y", "x"} <= set(columns) or {"f_y", "f_x"} <= set(columns)):
        raise AfwTableError(
            "the peak tables give no peak positions (i_x, i_y or f_x, f_y)", ar.path
        )
    for a, b in (("y", "f_y"), ("x", "f_x")):
        if a not in columns:
            columns[a] = (
                np.round(columns[b]).astype(np.int64) if b in columns else np.zeros(total, np.int64)
            )
    if "id" not in columns:
        columns["id"] = np.zeros(total, np.int64)
    if "value" not in columns:
        columns["value"] = np.full(total, np.nan, np.float32)
    first = ("id", "y", "x", "f_y", "f_x", "value")
    ordered = {k: columns[k] for k in first if k in columns}
    ordered.update({k: v for k, v in columns.items() if k not in ordered})
    return offsets, ordered, units, docs


def _gather_heavy(ar: _Archive, out: AfwFootprints, rows: np.ndarray, heavy: np.ndarray) -> None:
    """Per-pixel image, mask and variance of the heavy footprints (checked against their areas)."""
    if np.any(heavy & (rows < 0)):
        raise AfwTableError("a heavy footprint has no pixel catalog", ar.path)
    lengths = out.x1 - out.x0 + 1
    area = (
        np.add.reduceat(lengths, out.span_offsets[:-1])
        if len(lengths)
        else np.zeros(len(rows), np.int64)
    )
    area = np.where(np.diff(out.span_offsets) > 0, area, 0)
    npix = np.where(heavy, area, 0)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(npix, out=offsets[1:])
    planes: dict[str, list] = {"image": [], "mask": [], "variance": []}
    idx = np.flatnonzero(heavy)
    if np.any(ar.nrows[rows[idx]] != 1):
        raise AfwTableError("a heavy footprint's pixel catalog must be one row", ar.path)
    for i in idx.tolist():
        cat, row = int(ar.archive[rows[i]]), int(ar.row0[rows[i]])
        hdu, names = ar.table(cat)
        for plane in planes:
            if plane not in names:
                raise AfwTableError(
                    f"heavy footprint catalog {cat} has no {plane!r} column", ar.path
                )
            values = _plane_values(hdu, names.index(plane), row)
            if values.size != area[i]:
                raise AfwTableError(
                    f"heavy footprint {out.ids[i]}: {values.size} {plane} values "
                    f"for {area[i]} pixels",
                    ar.path,
                )
            planes[plane].append(values)
    out.pixel_offsets = offsets
    out.image, out.mask, out.variance = (np.concatenate(v) for v in planes.values())


def _plane_values(hdu, index: int, row: int) -> np.ndarray:
    col = hdu.columns[index]
    values = np.asarray(hdu.data.field(index)[row])
    if str(col.format).lstrip("0123456789")[:1] in "PQ":
        values = _unsigned(values, col)
    return _native(values).reshape(-1)


def _sort_spans(out: AfwFootprints, path) -> None:
    """Sort spans by (y, x0) within each footprint; flag overlaps and touching spans."""
    n_spans = len(out.y)
    if n_spans < 2:
        return
    owner = np.repeat(np.arange(len(out.ids)), np.diff(out.span_offsets))
    same = owner[1:] == owner[:-1]
    ordered = (out.y[1:] > out.y[:-1]) | ((out.y[1:] == out.y[:-1]) & (out.x0[1:] > out.x0[:-1]))
    if not np.all(ordered | ~same):
        order = np.lexsort((out.x0, out.y, owner))
        if out.image is not None:
            heavy_span = np.repeat(out.is_heavy, np.diff(out.span_offsets))
            length = out.x1 - out.x0 + 1
            start = np.zeros(n_spans, np.int64)
            start[heavy_span] = (
                np.cumsum(np.where(heavy_span, length, 0))[heavy_span] - length[heavy_span]
            )
            hs = order[heavy_span[order]]
            pix = _ranges(start[hs], length[hs])
            out.image, out.mask, out.variance = out.image[pix], out.mask[pix], out.variance[pix]
        out.y, out.x0, out.x1 = out.y[order], out.x0[order], out.x1[order]
    same_row = same & (out.y[1:] == out.y[:-1])
    overlap = same_row & (out.x0[1:] <= out.x1[:-1])
    touch = same_row & (out.x0[1:] <= out.x1[:-1] + 1)
    if np.any(overlap & np.repeat(out.is_heavy, np.diff(out.span_offsets))[1:]):
        raise AfwTableError("a heavy footprint has overlapping spans", path)
    out.needs_merge = np.zeros(len(out.ids), bool)
    out.needs_merge[owner[1:][touch]] = True


# -- the whole file ------------------------------------------------------------------------
def read_afw(hdul: fits.HDUList, path=None) -> AfwTable:
    """Read an afw catalog or bare archive (see the module docstring) from an open file.

    Raises
    ------
    AfwTableError
        The file is not an afw file (the message names what was found), or it is a
        damaged one.
    """
    kind = identify_afw(hdul)
    if kind is None:
        raise AfwTableError(f"not an lsst.afw.table file; found {describe_hdus(hdul)}", path)
    with _parsing(path):
        _check_complete(hdul, path)
        if kind == "archive":
            fps = read_afw_archive(hdul, 1, path)
            meta = _meta(hdul[1].header, "archive")
            return AfwTable("archive", [], None, -1, fps, meta)
        header = hdul[1].header
        columns = read_columns(hdul[1], path)
        meta = _meta(header, _header_value(header, "AFW_TYPE") or "")
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise AfwTableError(f"column names repeat: {dup[:5]}", path)
        fp_pos = names.index("footprint") if "footprint" in names else -1
        fp_ids = None
        if fp_pos >= 0:
            fp_ids = np.asarray(columns.pop(fp_pos).data).astype(np.int64)
        ar_hdu = header.get("AR_HDU", hdul[0].header.get("AR_HDU"))
        fps = AfwFootprints.empty()
        if ar_hdu is not None and int(ar_hdu) > 0:
            fps = read_afw_archive(hdul, int(ar_hdu) - 1, path)
        elif fp_ids is not None and np.any(fp_ids != 0):
            raise AfwTableError(
                "records refer to footprints but the file has no archive (AR_HDU)", path
            )
        if fp_ids is not None:
            fps.rows_of(fp_ids)  # every id must be in the archive
        return AfwTable("catalog", columns, fp_ids, fp_pos, fps, meta)


def _meta(header, afw_type: str) -> dict:
    aliases = {}
    for card in header.cards:
        if card.keyword == "ALIAS" and isinstance(card.value, str) and ":" in card.value:
            alias, target = card.value.split(":", 1)
            aliases[alias.strip()] = target.strip()
    version = header.get("AFW_TABLE_VERSION", 0)
    return {"afw_type": afw_type, "afw_table_version": int(version), "aliases": aliases}
