"""A `SourceCatalog` on disk: one FITS file readable with astropy alone.

Extensions (written by `catalog_hdus`, read by `read_catalog`): ``CATALOG`` (every
column but ``footprint``, plus ``footprint_kind``: 0 none, 1 footprint, 2 heavy
footprint), ``SPANS`` (``source_id, y, x0, x1``, x1 inclusive), ``PEAKS`` (``source_id,
id, y, x, value, snr``), and for heavy footprints ``HEAVY`` (``source_id``, ``values``
and, where any footprint has them, ``mask`` and ``variance``: one row per pixel in span
order, one value per band) and ``HEAVYBANDS`` (``source_id, bands, n_bands, has_mask,
has_variance``, band names joined by commas).

Column units go in the standard ``TUNITn`` keywords (astropy writes them); column
descriptions, which astropy does not write, go in ``TDOCn`` keywords as the Rubin
``lsst.afw.table`` FITS catalogs hold them, and are read back from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.table import Table

from .footprint import PEAK_DTYPE, Footprint, HeavyFootprint, SpanSet

__all__ = [
    "FOOTPRINT_KIND",
    "catalog_hdus",
    "jsonable",
    "read_catalog",
    "read_column_docs",
    "utf8",
    "write_column_docs",
]

#: The CATALOG column that says which footprint (none, plain, heavy) a record has.
FOOTPRINT_KIND = "footprint_kind"


def utf8(text: np.ndarray) -> np.ndarray:
    """Unicode array -> UTF-8 bytes array (at least one byte wide)."""
    encoded = np.char.encode(text, "utf-8") if text.size else text.astype("S1")
    return encoded.astype(f"S{max(encoded.dtype.itemsize, 1)}")


def jsonable(obj):
    """``obj`` with numpy scalars and arrays turned into Python values (for JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def write_column_docs(header, table) -> None:
    """Write each column's description of ``table`` as ``TDOCn`` in its HDU ``header``."""
    for i, name in enumerate(table.colnames, start=1):
        doc = table[name].description
        if doc:
            header[f"TDOC{i}"] = str(doc)


def read_column_docs(header, table) -> None:
    """Set the descriptions of ``table``'s columns from the ``TDOCn`` of ``header``."""
    for i, name in enumerate(table.colnames, start=1):
        doc = header.get(f"TDOC{i}")
        if doc and not table[name].description:
            table[name].description = str(doc)


def _stack(parts, i: int, rows: int, n_bands: int, dtype, fill) -> np.ndarray:
    """Per-pixel planes of heavy footprints (``parts[k][i]``, bands x pixels) as rows."""
    out = np.full((rows, n_bands), fill, dtype)
    at = 0
    for p in parts:
        n = p[1].shape[1]
        if p[i] is not None:
            out[at : at + n, : p[i].shape[0]] = p[i].T
        at += n
    return out


def _flags(table: Table, name: str, n: int) -> np.ndarray:
    """A boolean column of ``table``, all False where the file predates it."""
    return np.asarray(table[name], bool) if name in table.colnames else np.zeros(n, bool)


def catalog_hdus(catalog) -> list:
    """The FITS extensions of a `SourceCatalog` (layout: this module's docstring).

    Parameters
    ----------
    catalog
        The catalog.

    Returns
    -------
    list of astropy HDUs
        ``CATALOG``, ``SPANS``, ``PEAKS`` and, with heavy footprints, ``HEAVY`` and
        ``HEAVYBANDS``.
    """
    from astropy.io import fits

    ids = np.asarray(catalog["id"], dtype=np.int64)
    fps = list(catalog["footprint"]) if "footprint" in catalog.colnames else [None] * len(catalog)
    kinds = np.array([0 if fp is None else (2 if fp.is_heavy else 1) for fp in fps], dtype=np.int16)
    table = Table()
    obj_str, uni_str = [], []
    for name in catalog.colnames:
        if name == "footprint":
            continue
        col = catalog[name]
        if col.dtype.kind == "O":
            values = list(col)
            if not all(isinstance(v, str) for v in values):
                raise TypeError(
                    f"column {name!r} holds objects other than str and cannot be written"
                )
            table[name] = utf8(np.array(values, dtype=str))
            obj_str.append(name)
        elif col.dtype.kind == "U":
            # FITS text is ASCII: store UTF-8 bytes and decode them on reading
            table[name] = utf8(np.asarray(col))
            uni_str.append(f"{name}:{col.dtype.itemsize // 4}")
        else:
            table[name] = col
        table[name].unit = col.unit
        table[name].description = col.description
    table[FOOTPRINT_KIND] = kinds
    cat_hdu = fits.table_to_hdu(table)
    write_column_docs(cat_hdu.header, table)
    cat_hdu.name = "CATALOG"
    fp_pos = catalog.colnames.index("footprint") if "footprint" in catalog.colnames else -1
    cat_hdu.header["VFPCOL"] = (fp_pos, "position of the footprint column, -1 if none")
    cat_hdu.header["VOBJSTR"] = (",".join(obj_str), "object columns holding UTF-8 text")
    cat_hdu.header["VUNISTR"] = (",".join(uni_str), "unicode columns stored as UTF-8")
    cat_hdu.header["VMETA"] = json.dumps(jsonable(dict(catalog.meta)))

    span_parts, peak_parts, heavy_parts, heavy_bands = [], [], [], []
    for sid, fp in zip(ids.tolist(), fps):
        if fp is None:
            continue
        s = fp.spans
        span_parts.append((np.full(len(s), sid, np.int64), s.y, s.x0, s.x1))
        pk = fp.peaks
        peak_parts.append((np.full(len(pk), sid, np.int64), pk))
        if fp.is_heavy:
            heavy_parts.append(
                (np.full(fp.values.shape[1], sid, np.int64), fp.values, fp.mask, fp.variance)
            )
            heavy_bands.append((sid, ",".join(fp.bands or ())))

    def cat(parts, i, dtype):
        return np.concatenate([p[i] for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)

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
    pk_all = np.concatenate([p[1] for p in peak_parts]) if peak_parts else np.zeros(0, PEAK_DTYPE)
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
        for _, v, *_ in heavy_parts:
            values[at : at + v.shape[1], : v.shape[0]] = v.T
            at += v.shape[1]
        heavy = Table({"source_id": cat(heavy_parts, 0, np.int64), "values": values})
        has_mask = [p[2] is not None for p in heavy_parts]
        has_var = [p[3] is not None for p in heavy_parts]
        mask_dtype = None
        if any(has_mask):
            mask_dtype = np.result_type(*[p[2].dtype for p in heavy_parts if p[2] is not None])
            heavy["mask"] = _stack(heavy_parts, 2, rows, n_bands, mask_dtype, 0)
        if any(has_var):
            heavy["variance"] = _stack(heavy_parts, 3, rows, n_bands, np.float32, np.nan)
        heavy_hdu = fits.table_to_hdu(heavy)
        heavy_hdu.name = "HEAVY"
        if mask_dtype is not None:
            heavy_hdu.header["VMASKDT"] = (mask_dtype.str, "numpy dtype of the mask values")
        width = max([len(b) for _, b in heavy_bands] + [1])
        hb = Table(
            {
                "source_id": np.array([s for s, _ in heavy_bands], np.int64),
                "bands": np.array([b for _, b in heavy_bands], dtype=f"U{width}"),
                "n_bands": np.array([p[1].shape[0] for p in heavy_parts], dtype=np.int32),
            }
        )
        hb["has_mask"] = np.array(has_mask, bool)
        hb["has_variance"] = np.array(has_var, bool)
        hb_hdu = fits.table_to_hdu(hb)
        hb_hdu.name = "HEAVYBANDS"
        hdus += [heavy_hdu, hb_hdu]
    return hdus


def read_catalog(hdul, path: Path, cls):
    """A catalog from the extensions `catalog_hdus` writes (``CATALOG`` among ``hdul``).

    Parameters
    ----------
    hdul
        The open FITS file.
    path
        Its path, for error messages.
    cls
        The catalog class to return (`SourceCatalog` or a subclass).

    Returns
    -------
    SourceCatalog
        Its records, footprints and ``meta``.

    Raises
    ------
    ValueError
        If an extension or column the layout needs is missing or damaged.
    """
    names = {h.name for h in hdul}
    mask_dtype = None
    for ext in ("SPANS", "PEAKS"):
        if ext not in names:
            raise ValueError(f"{path} is not a vermilion catalog: no {ext} extension")
    header = hdul["CATALOG"].header
    table = Table.read(hdul, hdu="CATALOG", character_as_bytes=True, mask_invalid=False)
    read_column_docs(header, table)
    spans = Table.read(hdul, hdu="SPANS", mask_invalid=False)
    peaks = Table.read(hdul, hdu="PEAKS", mask_invalid=False)
    heavy = heavy_bands = None
    if "HEAVY" in names:
        heavy = Table.read(hdul, hdu="HEAVY", mask_invalid=False)
        heavy_bands = Table.read(
            hdul, hdu="HEAVYBANDS", character_as_bytes=False, mask_invalid=False
        )
        mask_dtype = hdul["HEAVY"].header.get("VMASKDT")
    try:
        meta = json.loads(header.get("VMETA", "{}"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: CATALOG header VMETA is not valid JSON: {err}") from err
    obj_str = [n for n in header.get("VOBJSTR", "").split(",") if n]
    if FOOTPRINT_KIND not in table.colnames:
        raise ValueError(f"{path}: CATALOG lacks the {FOOTPRINT_KIND} column")
    kinds = np.asarray(table[FOOTPRINT_KIND])
    table.remove_column(FOOTPRINT_KIND)
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
    heavy_vals = heavy_mask = heavy_var = None
    band_of = {}
    if heavy is not None:
        heavy, heavy_idx = groups(heavy)
        heavy_vals = np.asarray(heavy["values"], dtype=np.float32)
        if heavy_vals.ndim == 1:
            heavy_vals = heavy_vals[:, None]
        if "mask" in heavy.colnames:
            heavy_mask = np.asarray(heavy["mask"]).astype(np.dtype(mask_dtype or "i8"))
            heavy_mask = heavy_mask if heavy_mask.ndim == 2 else heavy_mask[:, None]
        if "variance" in heavy.colnames:
            heavy_var = np.asarray(heavy["variance"], dtype=np.float32)
            heavy_var = heavy_var if heavy_var.ndim == 2 else heavy_var[:, None]
        n = len(heavy_bands)
        has_mask = _flags(heavy_bands, "has_mask", n)
        has_var = _flags(heavy_bands, "has_variance", n)
        for i, (sid, b, nb) in enumerate(
            zip(heavy_bands["source_id"], heavy_bands["bands"], heavy_bands["n_bands"])
        ):
            bands = tuple(x for x in str(b).split(",") if x) if b else None
            band_of[int(sid)] = (bands, int(nb), bool(has_mask[i]), bool(has_var[i]))

    fps = np.empty(len(table), dtype=object)
    for row, (sid, kind) in enumerate(zip(np.asarray(table["id"]).tolist(), kinds)):
        if kind == 0:
            continue
        s = span_idx.get(sid, slice(0, 0))
        spanset = SpanSet(sy[s], sx0[s], sx1[s], normalize=False) if sy is not None else SpanSet()
        p = peak_idx.get(sid)
        pk = pk_arr[p] if p is not None else None
        if kind == 2:
            if sid not in band_of:
                raise ValueError(f"{path}: heavy footprint of {sid} has no HEAVYBANDS row")
            bands, nb, with_mask, with_var = band_of[sid]
            h = heavy_idx.get(sid, slice(0, 0))
            vals = heavy_vals[h, :nb].T
            mask = heavy_mask[h, :nb].T if with_mask and heavy_mask is not None else None
            var = heavy_var[h, :nb].T if with_var and heavy_var is not None else None
            fps[row] = HeavyFootprint(spanset, pk, vals, bands, mask=mask, variance=var)
        else:
            fps[row] = Footprint(spanset, pk)
    cat = cls(table, copy=False)
    fp_pos = int(header.get("VFPCOL", len(cat.colnames)))
    if fp_pos >= 0:
        cat.add_column(fps, name="footprint", index=min(fp_pos, len(cat.colnames)))
    return cat
