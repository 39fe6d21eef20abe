"""The parent/child source catalog shared by detection, the pipeline and users.

`SourceCatalog` is an `astropy.table.Table` with one record per parent and per
child. Boolean-mask indexing returns a `SourceCatalog`; integer indexing returns a
`SourceRecord` with the Rubin-style accessors::

    parent = catalog[catalog["deblend_nChild"] == 5][0]
    parent.getId(), parent.id
    parent.getFootprint().spans.asArray()
    catalog.find(parent.id), catalog.children(parent.id)

Standard columns (see `STANDARD_COLUMNS`): ``id`` (64-bit, see
`vermilion.detect.ids`), ``parent`` (0 for parents), ``deblend_nChild``,
``deblend_nPeaks``, the brightest (parent) or own (child) peak ``peak_id``,
``peak_y``, ``peak_x``, ``peak_value``, ``peak_snr``, ``footprint_area``, the flags
``detect_edge``, ``deblend_skipped``, ``deblend_failed``, ``deblend_tooManyPeaks``,
``deblend_parentTooBig``, ``deblend_masked``, ``deblend_isolatedParent``, the text
``deblend_failReason`` and the object column ``footprint``. Other layers add
columns with `SourceCatalog.ensure_column` or plain astropy assignment.

On disk (`SourceCatalog.write`) a catalog is one FITS file readable with astropy
alone: extension ``CATALOG`` (every column but ``footprint``, plus
``footprint_kind``: 0 none, 1 footprint, 2 heavy footprint), ``SPANS``
(``source_id, y, x0, x1``, x1 inclusive), ``PEAKS`` (``source_id, id, y, x, value,
snr``), and for heavy footprints ``HEAVY`` (``source_id`` and ``values``, one row per
pixel in span order, one value per band) and ``HEAVYBANDS`` (``source_id, bands``,
band names joined by commas).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.table import Row, Table

from vermilion.core.files import atomic_write_file

from .footprint import PEAK_DTYPE, Footprint, HeavyFootprint, SpanSet, _as_peaks
from .ids import MAX_SEQ, make_source_id, unpack_source_id

__all__ = [
    "FLAG_COLUMNS",
    "SCHEMA_VERSION",
    "STANDARD_COLUMNS",
    "SourceCatalog",
    "SourceRecord",
]

SCHEMA_VERSION = "1.0.0"

#: name -> (numpy dtype, default value, description)
STANDARD_COLUMNS: dict[str, tuple[object, object, str]] = {
    "id": (np.int64, 0, "unique 64-bit source id (tract, patch, sequence)"),
    "parent": (np.int64, 0, "id of the parent record, 0 for parents"),
    "deblend_nChild": (np.int32, 0, "number of children of this parent"),
    "deblend_nPeaks": (np.int32, 0, "number of peaks in the footprint"),
    "peak_id": (np.int64, 0, "id of the brightest (parent) or own (child) peak"),
    "peak_y": (np.int32, -1, "row of that peak (absolute pixel)"),
    "peak_x": (np.int32, -1, "column of that peak (absolute pixel)"),
    "peak_value": (np.float32, np.nan, "PSF-matched detection amplitude at the peak"),
    "peak_snr": (np.float32, np.nan, "detection S/N at the peak"),
    "footprint_area": (np.int64, 0, "number of pixels in the footprint"),
    "detect_edge": (bool, False, "footprint touches the image edge, EDGE or NO_DATA pixels"),
    "deblend_skipped": (bool, False, "the deblender skipped this parent"),
    "deblend_failed": (bool, False, "the deblender failed on this parent"),
    "deblend_failReason": (object, "", "why the deblender failed or skipped"),
    "deblend_tooManyPeaks": (bool, False, "parent has more peaks than the deblender allows"),
    "deblend_parentTooBig": (bool, False, "parent footprint is larger than allowed"),
    "deblend_masked": (bool, False, "too large a fraction of the footprint is masked"),
    "deblend_isolatedParent": (bool, False, "parent with a single peak (not blended)"),
    "footprint": (object, None, "the Footprint (or HeavyFootprint) of the record"),
}

FLAG_COLUMNS = tuple(name for name, (dtype, _, _) in STANDARD_COLUMNS.items() if dtype is bool)

_FOOTPRINT_KIND = "footprint_kind"


def _default_for(dtype: np.dtype, name: str):
    if name in STANDARD_COLUMNS:
        return STANDARD_COLUMNS[name][1]
    kind = np.dtype(dtype).kind
    if kind == "f":
        return np.nan
    if kind in "iu":
        return 0
    if kind == "b":
        return False
    if kind in "US":
        return ""
    return None


class SourceRecord(Row):
    """One record of a `SourceCatalog` (an astropy `Row` with Rubin-style accessors).

    Columns are also readable as attributes (``record.deblend_nChild``).
    """

    @property
    def id(self) -> int:
        return int(self["id"])

    def getId(self) -> int:
        return int(self["id"])

    @property
    def parent(self) -> int:
        return int(self["parent"])

    def getParent(self) -> int:
        return int(self["parent"])

    @property
    def footprint(self) -> Footprint | None:
        return self["footprint"]

    @footprint.setter
    def footprint(self, value: Footprint | None) -> None:
        self.setFootprint(value)

    def getFootprint(self) -> Footprint | None:
        return self["footprint"]

    def setFootprint(self, footprint: Footprint | None) -> None:
        """Set the footprint (and ``footprint_area``)."""
        if footprint is not None and not isinstance(footprint, Footprint):
            raise TypeError(f"footprint must be a Footprint or None, got {type(footprint)}")
        self["footprint"] = footprint
        if "footprint_area" in self.colnames:
            self["footprint_area"] = 0 if footprint is None else footprint.area

    @property
    def peak(self) -> tuple[int, int]:
        """``(y, x)`` of the record's peak."""
        return (int(self["peak_y"]), int(self["peak_x"]))

    def set(self, name: str, value) -> None:
        self[name] = value

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        table = self.__dict__.get("_table")
        if table is not None and name in table.colnames:
            return self[name]
        raise AttributeError(f"SourceRecord has no attribute or column {name!r}")

    def __repr__(self) -> str:
        return (
            f"<SourceRecord id={self.id} parent={self.parent} "
            f"nChild={self['deblend_nChild'] if 'deblend_nChild' in self.colnames else '?'}>"
        )


class SourceCatalog(Table):
    """Parents and children with footprints, flags and measurements (an astropy Table).

    Create an empty catalog with the standard columns with `SourceCatalog.empty`,
    or one parent per footprint with `SourceCatalog.from_footprints`.
    ``meta`` holds ``tract``, ``patch``, ``bands`` and ``schema_version``.
    """

    Row = SourceRecord

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(
        cls, tract: int = 0, patch: int = 0, bands: Sequence[str] | None = None
    ) -> SourceCatalog:
        """A catalog with the standard columns and no rows."""
        make_source_id(tract, patch, 1)  # validates the ranges
        cols = {}
        for name, (dtype, _, _) in STANDARD_COLUMNS.items():
            cols[name] = np.zeros(0, dtype=dtype)
        cat = cls(cols)
        for name, (_, _, desc) in STANDARD_COLUMNS.items():
            cat[name].description = desc
        cat.meta.update(
            {
                "tract": int(tract),
                "patch": int(patch),
                "bands": list(bands) if bands is not None else [],
                "schema_version": SCHEMA_VERSION,
            }
        )
        return cat

    @classmethod
    def from_footprints(
        cls,
        footprints: Sequence[Footprint],
        tract: int = 0,
        patch: int = 0,
        bands: Sequence[str] | None = None,
        first_seq: int = 1,
        **columns,
    ) -> SourceCatalog:
        """One parent record per footprint, ids ``first_seq, first_seq + 1, ...``.

        Peak columns come from each footprint's brightest peak;
        ``deblend_nPeaks`` is the number of peaks and ``deblend_isolatedParent``
        is set for single-peak parents. Extra ``columns`` (arrays of one value per
        footprint) are added as they are.
        """
        cat = cls.empty(tract, patch, bands)
        n = len(footprints)
        if n == 0:
            for name, values in columns.items():
                cat[name] = np.asarray(values)[:0]
            return cat
        if first_seq + n - 1 > MAX_SEQ:
            raise ValueError(f"too many sources for one patch: {first_seq + n - 1} > {MAX_SEQ}")
        data = _peak_columns(footprints)
        data["id"] = make_source_id(tract, patch, np.arange(first_seq, first_seq + n))
        data["parent"] = np.zeros(n, np.int64)
        data["deblend_isolatedParent"] = data["deblend_nPeaks"] == 1
        data.update(columns)
        cat._append(data)
        return cat

    # -- metadata -----------------------------------------------------------------------
    @property
    def tract(self) -> int:
        return int(self.meta.get("tract", 0))

    @property
    def patch(self) -> int:
        return int(self.meta.get("patch", 0))

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.meta.get("bands", ()))

    # -- lookup -------------------------------------------------------------------------
    def find(self, source_id: int) -> SourceRecord | None:
        """The record with ``id == source_id``, or None (like ``afw.table`` ``find``)."""
        source_id = int(source_id)
        index = self.__dict__.get("_id_index")
        ids = self["id"]
        row = None if index is None else index.get(source_id)
        if row is None or row >= len(self) or ids[row] != source_id:
            # (re)build: rows were added, removed or ids changed
            index = {int(i): r for r, i in enumerate(np.asarray(ids).tolist())}
            self.__dict__["_id_index"] = index
            row = index.get(source_id)
            if row is None:
                return None
        return self[row]

    def index_of(self, source_id: int) -> int:
        """Row number of ``source_id``; KeyError when absent."""
        rec = self.find(source_id)
        if rec is None:
            raise KeyError(f"no record with id {source_id}")
        return rec.index

    def children(self, parent_id: int) -> SourceCatalog:
        """Records whose ``parent`` is ``parent_id``."""
        return self[np.asarray(self["parent"]) == int(parent_id)]

    def getChildren(self, parent_id: int) -> SourceCatalog:
        return self.children(parent_id)

    def parents(self) -> SourceCatalog:
        """Records with ``parent == 0``."""
        return self[np.asarray(self["parent"]) == 0]

    @property
    def footprints(self) -> list[Footprint | None]:
        return list(self["footprint"])

    # -- adding columns and rows -------------------------------------------------------
    def ensure_column(
        self,
        name: str,
        dtype=np.float64,
        default=None,
        shape: tuple[int, ...] = (),
        description: str | None = None,
        unit=None,
    ) -> None:
        """Add column ``name`` filled with ``default`` unless it exists already.

        The default default is NaN for floats, 0 for integers, False for booleans,
        "" for strings and None for objects.
        """
        if name in self.colnames:
            return
        dtype = np.dtype(dtype)
        if default is None:
            default = _default_for(dtype, name)
        values = np.empty((len(self), *shape), dtype=dtype)
        values[...] = default
        self[name] = values
        if description is not None:
            self[name].description = description
        if unit is not None:
            self[name].unit = unit

    def next_id(self, n: int | None = None):
        """Unused id(s) of this catalog's tract and patch (after the largest sequence)."""
        if len(self):
            seq = int(np.max(unpack_source_id(np.asarray(self["id"]))[2]))
        else:
            seq = 0
        count = 1 if n is None else int(n)
        if seq + count > MAX_SEQ:
            raise ValueError(f"no ids left in tract {self.tract} patch {self.patch}")
        ids = make_source_id(self.tract, self.patch, np.arange(seq + 1, seq + 1 + count))
        return int(ids[0]) if n is None else ids

    def add_record(self, **fields) -> SourceRecord:
        """Append one record; missing columns get their defaults, ``id`` a new id.

        Unknown keyword names become new columns (filled with defaults for the
        other rows).
        """
        return self[int(self._add_rows(1, {k: [v] for k, v in fields.items()})[0])]

    addNew = add_record

    def add_child(
        self, parent_id: int, peak=None, footprint: Footprint | None = None, **fields
    ) -> SourceRecord:
        """Append a child of ``parent_id`` and increment the parent's ``deblend_nChild``.

        Parameters
        ----------
        parent_id
            Id of an existing record.
        peak
            The child's peak: a `PEAK_DTYPE` record, a mapping with ``y``, ``x``
            (and optionally ``id``, ``value``, ``snr``), or a ``(y, x)`` pair.
        footprint
            The child's footprint (or heavy footprint), optional.
        **fields
            Any other column values (new names become new columns).
        """
        added = self.add_children(
            parent_id,
            peaks=None if peak is None else [peak],
            footprints=None if footprint is None else [footprint],
            n=1,
            **{k: [v] for k, v in fields.items()},
        )
        return self[int(added[0])]

    def add_children(
        self,
        parent_id,
        peaks=None,
        footprints: Sequence[Footprint | None] | None = None,
        n: int | None = None,
        **columns,
    ) -> np.ndarray:
        """Append several children at once (fast); return their row numbers.

        ``parent_id`` is one id for all the children or a sequence of one parent id
        per child (children of many parents in one call: appending rows copies the
        table, so one call for a whole patch is much faster than one per parent).
        ``peaks`` and ``footprints`` are sequences of one entry per child, and every
        value of ``columns`` is a sequence of one value per child. Each parent's
        ``deblend_nChild`` grows by its number of new children.
        """
        many = np.ndim(parent_id) > 0
        parent_ids = np.asarray(parent_id, dtype=np.int64).reshape(-1)
        if n is None:
            for seq in (peaks, footprints, *columns.values()):
                if seq is not None:
                    n = len(seq)
                    break
            else:
                if not many:
                    raise ValueError("add_children needs peaks, footprints or columns")
                n = len(parent_ids)
        data: dict[str, object] = {}
        if footprints is not None:
            if len(footprints) != n:
                raise ValueError(f"{len(footprints)} footprints for {n} children")
            for fp in footprints:
                if fp is not None and not isinstance(fp, Footprint):
                    raise TypeError(f"footprints must be Footprint or None, got {type(fp)}")
            data.update(_peak_columns(footprints))
            data["deblend_nPeaks"] = np.array(
                [0 if fp is None else fp.n_peaks for fp in footprints], np.int32
            )
        if peaks is not None:
            if len(peaks) != n:
                raise ValueError(f"{len(peaks)} peaks for {n} children")
            pk = np.concatenate([_peak_record(p) for p in peaks]) if n else _as_peaks(None)
            data["peak_id"] = pk["id"]
            data["peak_y"] = pk["y"]
            data["peak_x"] = pk["x"]
            data["peak_value"] = pk["value"]
            data["peak_snr"] = pk["snr"]
        if many and len(parent_ids) != n:
            raise ValueError(f"{len(parent_ids)} parent ids for {n} children")
        uniq, counts = np.unique(parent_ids, return_counts=True)
        if not many:
            counts = np.array([n])
        prows = []
        for pid in uniq.tolist():
            rec = self.find(pid)
            if rec is None:
                raise KeyError(f"no parent record with id {pid}")
            prows.append(rec.index)
        data["parent"] = parent_ids if many else np.full(n, parent_ids[0], np.int64)
        data.update(columns)
        rows = self._add_rows(n, data)
        if n:
            self["deblend_nChild"][np.array(prows)] += counts.astype(np.int32)
        return rows

    def set_failed(self, source_id: int, reason: str, skipped: bool = False) -> None:
        """Flag ``deblend_failed`` (or ``deblend_skipped``) with a text reason."""
        row = self.index_of(source_id)
        self["deblend_skipped" if skipped else "deblend_failed"][row] = True
        self.ensure_column("deblend_failReason", object, "")
        self["deblend_failReason"][row] = str(reason)

    def _add_rows(self, n: int, data: Mapping[str, object]) -> np.ndarray:
        data = dict(data)
        if "id" not in data:
            data["id"] = self.next_id(n)
        start = len(self)
        self._append(data, n)
        return np.arange(start, start + n)

    def _append(self, data: Mapping[str, object], n: int | None = None) -> None:
        """Append ``n`` rows given column arrays; other columns get their defaults."""
        if n is None:
            n = len(next(iter(data.values())))
        if n == 0:
            return
        arrays = {}
        for name, values in data.items():
            if name in self.colnames:
                dtype = self[name].dtype
            elif name in STANDARD_COLUMNS:
                dtype = np.dtype(STANDARD_COLUMNS[name][0])
            else:
                dtype = None
            if dtype is not None and dtype.kind == "O":
                arr = np.empty(n, dtype=object)
                arr[:] = list(values)
            else:
                arr = np.asarray(values, dtype=dtype)
            if arr.shape[:1] != (n,):
                raise ValueError(f"column {name!r}: {arr.shape[:1]} values for {n} rows")
            arrays[name] = arr
        for name, arr in list(arrays.items()):
            if name not in self.colnames:
                if arr.dtype.kind == "U":
                    # text goes in object columns so that long values never get cut
                    arrays[name] = arr = arr.astype(object)
                    self.ensure_column(name, object, "", shape=arr.shape[1:])
                else:
                    self.ensure_column(name, arr.dtype, shape=arr.shape[1:])
        if "footprint" in arrays and "footprint_area" in self.colnames:
            if "footprint_area" not in data:
                arrays["footprint_area"] = np.array(
                    [0 if fp is None else fp.area for fp in arrays["footprint"]], np.int64
                )
        columns = self.TableColumns()
        for name, col in self.columns.items():
            if name in arrays:
                values = arrays[name]
            else:
                values = np.empty((n, *col.shape[1:]), dtype=col.dtype)
                values[...] = _default_for(col.dtype, name)
            if col.dtype.kind == "O":
                # Column.insert would insert an object array as one element
                obj = np.empty((n, *col.shape[1:]), dtype=object)
                obj[...] = values if values.dtype.kind == "O" else values.tolist()
                newcol = col.copy(data=np.concatenate([np.asarray(col), obj]), copy_data=False)
            else:
                newcol = col.insert(len(col), values, axis=0)
            newcol.info.parent_table = self
            columns[name] = newcol
        self._replace_cols(columns)

    # -- persistence --------------------------------------------------------------------
    def write(self, path: str | os.PathLike, overwrite: bool = True) -> None:
        """Write the catalog and its footprints to one FITS file, atomically.

        The file is written to a temporary file in the same directory and then
        moved into place with `os.replace`, so readers never see a partial file.
        """
        from astropy.io import fits

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists and overwrite is False")
        hdul = fits.HDUList([fits.PrimaryHDU(), *self._to_hdus()])
        hdul[0].header["VERMCAT"] = (SCHEMA_VERSION, "vermilion SourceCatalog schema")
        atomic_write_file(path, hdul.writeto)

    def _to_hdus(self) -> list:
        from astropy.io import fits

        ids = np.asarray(self["id"], dtype=np.int64)
        fps = list(self["footprint"]) if "footprint" in self.colnames else [None] * len(self)
        kinds = np.array(
            [0 if fp is None else (2 if fp.is_heavy else 1) for fp in fps], dtype=np.int16
        )
        table = Table()
        obj_str, uni_str = [], []
        for name in self.colnames:
            if name == "footprint":
                continue
            col = self[name]
            if col.dtype.kind == "O":
                values = list(col)
                if not all(isinstance(v, str) for v in values):
                    raise TypeError(
                        f"column {name!r} holds objects other than str and cannot be written"
                    )
                table[name] = _utf8(np.array(values, dtype=str))
                obj_str.append(name)
            elif col.dtype.kind == "U":
                # FITS text is ASCII: store UTF-8 bytes and decode them on reading
                table[name] = _utf8(np.asarray(col))
                uni_str.append(f"{name}:{col.dtype.itemsize // 4}")
            else:
                table[name] = col
            table[name].unit = col.unit
            table[name].description = col.description
        table[_FOOTPRINT_KIND] = kinds
        cat_hdu = fits.table_to_hdu(table)
        cat_hdu.name = "CATALOG"
        fp_pos = self.colnames.index("footprint") if "footprint" in self.colnames else -1
        cat_hdu.header["VFPCOL"] = (fp_pos, "position of the footprint column, -1 if none")
        cat_hdu.header["VOBJSTR"] = (",".join(obj_str), "object columns holding UTF-8 text")
        cat_hdu.header["VUNISTR"] = (",".join(uni_str), "unicode columns stored as UTF-8")
        cat_hdu.header["VMETA"] = json.dumps(_jsonable(dict(self.meta)))

        span_parts, peak_parts, heavy_parts, heavy_bands = [], [], [], []
        for sid, fp in zip(ids.tolist(), fps):
            if fp is None:
                continue
            s = fp.spans
            span_parts.append((np.full(len(s), sid, np.int64), s.y, s.x0, s.x1))
            pk = fp.peaks
            peak_parts.append((np.full(len(pk), sid, np.int64), pk))
            if fp.is_heavy:
                heavy_parts.append((np.full(fp.values.shape[1], sid, np.int64), fp.values))
                heavy_bands.append((sid, ",".join(fp.bands or ())))

        def cat(parts, i, dtype):
            return (
                np.concatenate([p[i] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)
            )

        spans = Table(
            {
                "source_id": cat(span_parts, 0, np.int64),
                "y": cat(span_parts, 1, np.int32),
                "x0": cat(span_parts, 2, np.int32),
                "x1": cat(span_parts, 3, np.int32),
            }
        )
        span_hdu = fits.table_to_hdu(spans)
        span_hdu.name = "SPANS"
        span_hdu.header["X1INCL"] = (True, "x1 is inclusive: a span covers x0..x1")
        pk_all = (
            np.concatenate([p[1] for p in peak_parts]) if peak_parts else np.zeros(0, PEAK_DTYPE)
        )
        peaks = Table({"source_id": cat(peak_parts, 0, np.int64)})
        for name in PEAK_DTYPE.names:
            peaks[name] = pk_all[name]
        peak_hdu = fits.table_to_hdu(peaks)
        peak_hdu.name = "PEAKS"
        hdus = [cat_hdu, span_hdu, peak_hdu]
        if heavy_parts:
            n_bands = max(p[1].shape[0] for p in heavy_parts)
            rows = sum(p[1].shape[1] for p in heavy_parts)
            values = np.full((rows, n_bands), np.nan, np.float32)
            at = 0
            for _, v in heavy_parts:
                values[at : at + v.shape[1], : v.shape[0]] = v.T
                at += v.shape[1]
            heavy = Table({"source_id": cat(heavy_parts, 0, np.int64), "values": values})
            heavy_hdu = fits.table_to_hdu(heavy)
            heavy_hdu.name = "HEAVY"
            width = max([len(b) for _, b in heavy_bands] + [1])
            hb = Table(
                {
                    "source_id": np.array([s for s, _ in heavy_bands], np.int64),
                    "bands": np.array([b for _, b in heavy_bands], dtype=f"U{width}"),
                    "n_bands": np.array([p[1].shape[0] for p in heavy_parts], dtype=np.int32),
                }
            )
            hb_hdu = fits.table_to_hdu(hb)
            hb_hdu.name = "HEAVYBANDS"
            hdus += [heavy_hdu, hb_hdu]
        return hdus

    @classmethod
    def read(cls, path: str | os.PathLike) -> SourceCatalog:
        """Read a catalog written by `write` (footprints and heavy footprints included)."""
        from vermilion.io.limits import open_fits_checked

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no catalog file at {path}")
        with open_fits_checked(path, memmap=False) as hdul:
            names = {h.name for h in hdul}
            for ext in ("CATALOG", "SPANS", "PEAKS"):
                if ext not in names:
                    raise ValueError(f"{path} is not a vermilion catalog: no {ext} extension")
            header = hdul["CATALOG"].header
            table = Table.read(hdul, hdu="CATALOG", character_as_bytes=True, mask_invalid=False)
            spans = Table.read(hdul, hdu="SPANS", mask_invalid=False)
            peaks = Table.read(hdul, hdu="PEAKS", mask_invalid=False)
            heavy = heavy_bands = None
            if "HEAVY" in names:
                heavy = Table.read(hdul, hdu="HEAVY", mask_invalid=False)
                heavy_bands = Table.read(
                    hdul, hdu="HEAVYBANDS", character_as_bytes=False, mask_invalid=False
                )
        try:
            meta = json.loads(header.get("VMETA", "{}"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: CATALOG header VMETA is not valid JSON: {err}") from err
        obj_str = [n for n in header.get("VOBJSTR", "").split(",") if n]
        if _FOOTPRINT_KIND not in table.colnames:
            raise ValueError(f"{path}: CATALOG lacks the {_FOOTPRINT_KIND} column")
        kinds = np.asarray(table[_FOOTPRINT_KIND])
        table.remove_column(_FOOTPRINT_KIND)
        table.meta.clear()
        table.meta.update(meta)
        for name in table.colnames:
            col = table[name]
            if col.dtype.kind not in "OUS" and not col.dtype.isnative:
                native = col.copy(data=np.asarray(col).astype(col.dtype.newbyteorder("=")))
                table.replace_column(name, native)
        widths = dict(n.rsplit(":", 1) for n in header.get("VUNISTR", "").split(",") if n)
        for name in obj_str + list(widths):
            if name not in table.colnames:
                raise ValueError(f"{path}: CATALOG lacks the text column {name!r}")
            desc, unit = table[name].description, table[name].unit
            text = np.char.decode(np.asarray(table[name], dtype=bytes), "utf-8")
            if name in obj_str:
                values = np.empty(text.shape, dtype=object)
                values[...] = text.tolist()
            else:
                values = text.astype(f"U{max(int(widths[name]), 1)}")
            table[name] = values
            table[name].description = desc
            table[name].unit = unit

        def groups(t: Table) -> tuple[Table | None, dict[int, slice]]:
            """Rows of ``t`` sorted by source id, and each id's slice."""
            sid = np.asarray(t["source_id"], dtype=np.int64)
            if len(sid) == 0:
                return None, {}
            order = np.argsort(sid, kind="stable")
            t = t[order]
            uniq, first, count = np.unique(sid[order], return_index=True, return_counts=True)
            return t, {int(u): slice(int(f), int(f + c)) for u, f, c in zip(uniq, first, count)}

        spans, span_idx = groups(spans)
        peaks, peak_idx = groups(peaks)
        sy = np.asarray(spans["y"]) if spans is not None else None
        sx0 = np.asarray(spans["x0"]) if spans is not None else None
        sx1 = np.asarray(spans["x1"]) if spans is not None else None
        pk_arr = None
        if peaks is not None:
            pk_arr = np.zeros(len(peaks), PEAK_DTYPE)
            for name in PEAK_DTYPE.names:
                pk_arr[name] = np.asarray(peaks[name])
        heavy_idx = {}
        heavy_vals = None
        band_of = {}
        if heavy is not None:
            heavy, heavy_idx = groups(heavy)
            heavy_vals = np.asarray(heavy["values"], dtype=np.float32)
            if heavy_vals.ndim == 1:
                heavy_vals = heavy_vals[:, None]
            for sid, b, nb in zip(
                heavy_bands["source_id"], heavy_bands["bands"], heavy_bands["n_bands"]
            ):
                bands = tuple(x for x in str(b).split(",") if x) if b else None
                band_of[int(sid)] = (bands, int(nb))

        fps = np.empty(len(table), dtype=object)
        for row, (sid, kind) in enumerate(zip(np.asarray(table["id"]).tolist(), kinds)):
            if kind == 0:
                continue
            s = span_idx.get(sid, slice(0, 0))
            spanset = (
                SpanSet(sy[s], sx0[s], sx1[s], normalize=False) if sy is not None else SpanSet()
            )
            p = peak_idx.get(sid)
            pk = pk_arr[p] if p is not None else None
            if kind == 2:
                if sid not in band_of:
                    raise ValueError(f"{path}: heavy footprint of {sid} has no HEAVYBANDS row")
                bands, nb = band_of[sid]
                h = heavy_idx.get(sid, slice(0, 0))
                vals = heavy_vals[h, :nb].T
                fps[row] = HeavyFootprint(spanset, pk, vals, bands)
            else:
                fps[row] = Footprint(spanset, pk)
        cat = cls(table, copy=False)
        fp_pos = int(header.get("VFPCOL", len(cat.colnames)))
        if fp_pos >= 0:
            cat.add_column(fps, name="footprint", index=min(fp_pos, len(cat.colnames)))
            cat["footprint"].description = STANDARD_COLUMNS["footprint"][2]
        return cat

    def equals(self, other: SourceCatalog) -> bool:
        """Whether two catalogs have the same columns, values, footprints and meta."""
        if self.colnames != other.colnames or len(self) != len(other):
            return False
        if _jsonable(dict(self.meta)) != _jsonable(dict(other.meta)):
            return False
        for name in self.colnames:
            a, b = self[name], other[name]
            if a.dtype != b.dtype or a.unit != b.unit:
                return False
            if a.dtype.kind == "O":
                if not all(
                    (x is None and y is None) or (x is not None and x == y) for x, y in zip(a, b)
                ):
                    return False
            elif not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=a.dtype.kind in "fc"):
                return False
        return True


def _utf8(text: np.ndarray) -> np.ndarray:
    """Unicode array -> UTF-8 bytes array (at least one byte wide)."""
    encoded = np.char.encode(text, "utf-8") if text.size else text.astype("S1")
    return encoded.astype(f"S{max(encoded.dtype.itemsize, 1)}")


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _peak_record(peak) -> np.ndarray:
    if isinstance(peak, np.void) and peak.dtype.names:
        return _as_peaks(np.array([peak]))
    if isinstance(peak, np.ndarray) and peak.dtype.names:
        return _as_peaks(peak.reshape(-1)[:1])
    if isinstance(peak, Mapping):
        out = np.zeros(1, PEAK_DTYPE)
        out["value"] = np.nan
        out["snr"] = np.nan
        for name in PEAK_DTYPE.names:
            if name in peak:
                out[name] = peak[name]
        return out
    y, x = peak
    return _as_peaks([(y, x)])


def _peak_columns(footprints: Iterable[Footprint | None]) -> dict[str, np.ndarray]:
    fps = list(footprints)
    n = len(fps)
    out = {
        "peak_id": np.zeros(n, np.int64),
        "peak_y": np.full(n, -1, np.int32),
        "peak_x": np.full(n, -1, np.int32),
        "peak_value": np.full(n, np.nan, np.float32),
        "peak_snr": np.full(n, np.nan, np.float32),
        "deblend_nPeaks": np.zeros(n, np.int32),
        "footprint_area": np.zeros(n, np.int64),
    }
    for i, fp in enumerate(fps):
        if fp is None:
            continue
        out["footprint_area"][i] = fp.area
        out["deblend_nPeaks"][i] = fp.n_peaks
        if fp.n_peaks:
            p = fp.peaks[0]
            out["peak_id"][i] = p["id"]
            out["peak_y"][i] = p["y"]
            out["peak_x"][i] = p["x"]
            out["peak_value"][i] = p["value"]
            out["peak_snr"][i] = p["snr"]
    fp_arr = np.empty(n, dtype=object)
    fp_arr[:] = fps
    out["footprint"] = fp_arr
    return out
