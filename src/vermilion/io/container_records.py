"""The records of vermilion's container: one compressed blend (or isolated source) each.

A record is ``compress(u32 header length + header JSON + shuffle(float32 payload))``;
the byte shuffle stores all the floats' first bytes, then all their second bytes, and
so on, which lets the compressor (zstandard by default, or zlib) find the runs of
exponent bytes and zeros in smooth, thresholded models; it is exactly reversible.
`vermilion.io.container` lays the records out in a file with an index.
"""

from __future__ import annotations

import json
import math
import struct
import threading
import zlib
from typing import Any

import numpy as np

from ._fields import (
    INT64_MAX,
    INT64_MIN,
    MAX_SIDE,
    Where,
    as_bands,
    as_dict,
    as_float,
    as_id,
    as_int,
    as_int_tuple,
    as_list,
    as_peak,
    as_shape,
    as_source_id,
    require,
)
from .components import (
    CubeComponentData,
    FactorizedComponentData,
    IsolatedSourceData,
    SourceData,
)
from .data import BlendData, ModelData
from .errors import ModelDataError
from .limits import check_blend_shape
from .metadata import decode_metadata, encode_metadata
from .rubin_json import blend_to_dict, parse_blend

__all__ = [
    "CODECS",
    "Codec",
    "Cursor",
    "blend_record",
    "decode_record",
    "encode_record",
    "parse_blend_record",
    "parse_isolated_record",
    "plain_metadata",
]

CODEC_ZLIB = 1  # zlib over byte-shuffled floats
CODEC_ZSTD = 2  # zstandard over byte-shuffled floats
CODECS = {"zlib": CODEC_ZLIB, "zstd": CODEC_ZSTD}

_LEN = struct.Struct("<I")
_JSON = json.JSONDecoder()
# Component kinds in a record header.
_FACTORIZED, _CUBE = 0, 1


# ---- the float payload filter -------------------------------------------------------


def _filter(payload: np.ndarray) -> bytes:
    """Byte shuffle: all first bytes of the floats, then all second bytes, ..."""
    return payload.view(np.uint8).reshape(-1, 4).T.tobytes()


def _unfilter(buf: bytes | memoryview, n: int) -> np.ndarray:
    planes = np.frombuffer(buf, np.uint8, 4 * n).reshape(4, n)
    out = np.empty((n, 4), np.uint8)
    # four contiguous-source copies are faster than one transposing copy
    for k in range(4):
        out[:, k] = planes[k]
    return out.view(np.float32).reshape(n)


# ---- records ------------------------------------------------------------------------


class Codec:
    """Compression of records: zlib (standard library) or zstandard (faster to read)."""

    def __init__(self, codec: int, level: int = 6) -> None:
        if codec not in (CODEC_ZLIB, CODEC_ZSTD):
            raise ModelDataError(f"unknown codec {codec}", field="codec")
        self.codec = codec
        self.level = level
        self._local = threading.local()

    def compress(self, raw: bytes) -> bytes:
        if self.codec == CODEC_ZLIB:
            return zlib.compress(raw, self.level)
        c = getattr(self._local, "c", None)
        if c is None:
            import zstandard

            c = self._local.c = zstandard.ZstdCompressor(level=self.level)
        return c.compress(raw)

    def decompress(self, comp: bytes, raw_length: int, where: Where) -> bytes:
        if self.codec == CODEC_ZLIB:
            try:
                return zlib.decompressobj().decompress(comp, raw_length + 1)
            except zlib.error as e:
                raise where.error(f"cannot decompress: {e}", "record") from None
        import zstandard

        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        try:
            if zstandard.frame_content_size(comp) != raw_length:
                raise where.error("compressed size disagrees with the index", "record")
            return d.decompress(comp, max_output_size=raw_length)
        except zstandard.ZstdError as e:
            raise where.error(f"cannot decompress: {e}", "record") from None


def encode_record(header: dict, arrays: list[np.ndarray], codec: Codec) -> tuple[bytes, int]:
    """Compressed record bytes and the raw length."""
    hdr = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    if arrays:
        payload = np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])
    else:
        payload = np.zeros(0, np.float32)
    raw = b"".join((_LEN.pack(len(hdr)), hdr, _filter(payload)))
    return codec.compress(raw), len(raw)


def decode_record(
    comp: bytes, raw_length: int, crc: int, where: Where, codec: Codec
) -> tuple[dict, np.ndarray]:
    if zlib.crc32(comp) != crc:
        raise where.error("checksum mismatch: the stored bytes are corrupted", "crc")
    raw = codec.decompress(comp, raw_length, where)
    if len(raw) != raw_length:
        raise where.error(
            f"decompressed to {len(raw)} bytes, the index says {raw_length}", "record"
        )
    if raw_length < 4:
        raise where.error("record too short", "record")
    (hlen,) = _LEN.unpack_from(raw)
    if 4 + hlen > raw_length or (raw_length - 4 - hlen) % 4:
        raise where.error("record header length is inconsistent", "record")
    try:
        header = _JSON.decode(raw[4 : 4 + hlen].decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise where.error(f"record header is not valid JSON: {e}", "record") from None
    n = (raw_length - 4 - hlen) // 4
    payload = _unfilter(memoryview(raw)[4 + hlen :], n)
    return as_dict(header, where, "record"), payload


class Cursor:
    """Consume a record's float payload array by array, checking sizes."""

    __slots__ = ("payload", "pos", "where")

    def __init__(self, payload: np.ndarray, where: Where) -> None:
        self.payload = payload
        self.pos = 0
        self.where = where

    def take(self, shape: tuple[int, ...], field: str) -> np.ndarray:
        n = 1
        for s in shape:
            n *= s
        if self.pos + n > self.payload.size:
            raise self.where.error(f"array of shape {shape} runs past the end of the record", field)
        out = self.payload[self.pos : self.pos + n].reshape(shape)
        self.pos += n
        return out

    def done(self) -> None:
        if self.pos != self.payload.size:
            raise self.where.error(
                f"{self.payload.size - self.pos} unexplained values at the end of the record",
                "record",
            )


def blend_record(
    blend_id: int, blend: BlendData, own: dict[str, Any], model: ModelData | None = None
) -> tuple[dict, list]:
    """The header and arrays of a blend's record (``model``: the patch, for child blends)."""
    arrays: list[np.ndarray] = []
    header: dict[str, Any] = {
        "id": int(blend_id),
        "origin": [int(o) for o in blend.origin],
        "shape": [int(s) for s in blend.shape],
    }
    if blend.psf_center is not None:
        header["psf_center"] = [float(c) for c in blend.psf_center]
    if "bands" in own:
        header["bands"] = list(own["bands"])
    if "psf" in own:
        header["psf"] = list(own["psf"].shape)
        arrays.append(own["psf"])
    if "model_psf" in own:
        header["model_psf"] = list(own["model_psf"].shape)
        arrays.append(own["model_psf"])
    if blend.footprint is not None:
        header["footprint"] = True
        arrays.append(np.asarray(blend.footprint, dtype=np.float32))
    if blend.metadata:
        header["metadata"] = plain_metadata(blend.metadata, Where(blend_id), "metadata")
    sources: list[list] = []
    table: list[list] = []
    for sid, src in blend.sources.items():
        for c in src.components:
            if isinstance(c, FactorizedComponentData):
                h, w = c.morph.shape
                table.append([_FACTORIZED, *map(int, c.origin), *c.peak, c.spectrum.shape[0], h, w])
                arrays.append(c.spectrum)
                arrays.append(c.morph)
            else:
                nb, h, w = c.model.shape
                table.append([_CUBE, *map(int, c.origin), *c.peak, nb, h, w])
                arrays.append(c.model)
        entry: list[Any] = [
            sid if isinstance(sid, str) else int(sid),
            src.peak_id,
            len(src.components),
        ]
        if src.metadata:
            entry.append(plain_metadata(src.metadata, Where(blend_id, sid), "metadata"))
        sources.append(entry)
    header["sources"] = sources
    header["components"] = table
    if blend.children is not None:
        # the children's layout in Rubin's form, their sources by id (stored above)
        tree = blend_to_dict(blend, model or ModelData(), source_ids_only=True)
        header["children"] = tree["children"]
    return header, arrays


def plain_metadata(meta: dict, where: Where, field: str) -> dict:
    """Metadata must be JSON-compatible (arrays go through the Rubin array_keys encoding)."""
    enc = encode_metadata(meta)
    try:
        json.dumps(enc, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise where.error(f"metadata is not JSON-compatible: {e}", field) from None
    return enc


_LIM = 2**31
_NUMBER = (int, float)


def _component_rows(rows: Any, w: Where) -> tuple[list[list], int]:
    """The component rows ``[kind, y0, x0, peak_y, peak_x, bands, h, w]``, checked.

    Also returns the number of payload values the rows need.
    """
    rows = as_list(rows, w, "components")
    size = 0
    for row in rows:
        if type(row) is not list or len(row) != 8:
            raise w.error("component rows must have 8 numbers", "components")
        kind, oy, ox, py, px, nb, h, wd = row
        if not (
            type(kind) is int
            and type(oy) is int
            and type(ox) is int
            and type(nb) is int
            and type(h) is int
            and type(wd) is int
            and type(py) in _NUMBER
            and type(px) in _NUMBER
        ):
            raise w.error("component rows must hold integers and numbers", "components")
        if kind != _FACTORIZED and kind != _CUBE:
            raise w.error(f"unknown component type {kind}", "components")
        # (comparisons with NaN are False, so these also reject non-finite peaks)
        if not (0 <= nb <= MAX_SIDE and 0 <= h <= MAX_SIDE and 0 <= wd <= MAX_SIDE):
            raise w.error("component shape out of range", "components")
        if not (
            -_LIM < oy < _LIM and -_LIM < ox < _LIM and -_LIM < py < _LIM and -_LIM < px < _LIM
        ):
            raise w.error("component position out of range", "components")
        size += nb + h * wd if kind == _FACTORIZED else nb * h * wd
    return rows, size


def _locate_non_finite(
    w: Where, bad: int, start: int, entries: list, rows: list[list]
) -> ModelDataError:
    """The error naming the source and field of the non-finite payload value ``bad``."""
    if bad < start:
        return w.error("non-finite value", "psf")
    pos, row = start, 0
    for entry in entries:
        sid = entry[0] if isinstance(entry, list) and entry else None
        n_comp = entry[2] if isinstance(entry, list) and len(entry) > 2 else 0
        for i, (kind, *_, nb, h, wd) in enumerate(rows[row : row + n_comp]):
            parts = (
                [("spectrum", nb), ("morph", h * wd)]
                if kind == _FACTORIZED
                else [("model", nb * h * wd)]
            )
            for name, size in parts:
                if pos <= bad < pos + size:
                    return w.source(sid).error("non-finite value", f"components[{i}].{name}")
                pos += size
        row += n_comp
    return w.error("non-finite value", "record")


def parse_blend_record(header: dict, payload: np.ndarray, blend_id: int) -> BlendData:
    w = Where(blend_id)
    stored_id = as_id(require(header, "id", w), w, "id")
    if stored_id != blend_id:
        raise w.error(f"the record holds blend {stored_id}", "id")
    cur = Cursor(payload, w)
    origin = as_int_tuple(require(header, "origin", w), 2, w, "origin")
    shape = as_shape(require(header, "shape", w), 2, w, "shape")
    check_blend_shape(shape, w)
    psf_center = header.get("psf_center")
    if psf_center is not None:
        psf_center = tuple(
            as_float(c, w, "psf_center") for c in as_list(psf_center, w, "psf_center")
        )
        if len(psf_center) != 2:
            raise w.error("expected (y, x)", "psf_center")
    bands = header.get("bands")
    if bands is not None:
        bands = as_bands(bands, w, "bands")
    psf = model_psf = footprint = None
    if header.get("psf") is not None:
        psf = cur.take(as_shape(header["psf"], 3, w, "psf"), "psf")
        if bands is not None and psf.shape[0] != len(bands):
            raise w.error(f"{psf.shape[0]} PSF bands for {len(bands)} bands", "psf")
    if header.get("model_psf") is not None:
        model_psf = cur.take(as_shape(header["model_psf"], 2, w, "model_psf"), "model_psf")
    if header.get("footprint"):
        footprint = cur.take(shape, "footprint") != 0
    meta = header.get("metadata")
    if meta is not None:
        meta = decode_metadata(meta, w, "metadata") or None
    rows, size = _component_rows(header.get("components", []), w)
    entries = as_list(require(header, "sources", w), w, "sources")
    start = cur.pos
    needed = start + size
    if needed != payload.size:
        raise w.error(
            f"the component table needs {needed} values, the record holds {payload.size}",
            "components",
        )
    # a float64 sum of float32 values cannot overflow: it is finite iff all values are
    if not math.isfinite(payload.sum(dtype=np.float64)):
        bad = int(np.flatnonzero(~np.isfinite(payload))[0])
        raise _locate_non_finite(w, bad, start, entries, rows)
    sources: dict[int, SourceData] = {}
    pos, row = start, 0
    for entry in entries:
        if type(entry) is not list or not 3 <= len(entry) <= 4:
            raise w.error("a source entry has 3 or 4 fields", "sources")
        sid, peak_id, n_comp = entry[0], entry[1], entry[2]
        if type(sid) is not int or not INT64_MIN <= sid <= INT64_MAX:
            sid = as_source_id(sid, w, "sources")
        if sid in sources:
            raise w.source(sid).error("duplicate source id", "sources")
        if peak_id is not None and type(peak_id) is not int:
            peak_id = as_int(peak_id, w.source(sid), "peak_id")
        if type(n_comp) is not int or not 0 <= n_comp <= len(rows) - row:
            raise w.source(sid).error("bad number of components", "components")
        comps: list = []
        for kind, oy, ox, py, px, nb, h, wd in rows[row : row + n_comp]:
            if kind == _FACTORIZED:
                spectrum = payload[pos : pos + nb]
                pos += nb
                morph = payload[pos : pos + h * wd].reshape(h, wd)
                pos += h * wd
                comps.append(FactorizedComponentData((oy, ox), (py, px), spectrum, morph))
            else:
                model = payload[pos : pos + nb * h * wd].reshape(nb, h, wd)
                pos += nb * h * wd
                comps.append(CubeComponentData((oy, ox), (py, px), model))
        row += n_comp
        smeta = None
        if len(entry) == 4:
            smeta = decode_metadata(entry[3], w.source(sid), "metadata") or None
        sources[sid] = SourceData(comps, peak_id, smeta)
    if row != len(rows):
        raise w.error(f"{len(rows) - row} components belong to no source", "components")
    children = None
    if header.get("children") is not None:
        tree = {"blend_type": "hierarchical", "children": header["children"], "version": "1.0.0"}
        children = parse_blend(tree, blend_id, source_table=sources).children
    return BlendData(
        origin, shape, sources, psf_center, psf, bands, model_psf, footprint, meta, children
    )


def parse_isolated_record(header: dict, payload: np.ndarray, source_id: int) -> IsolatedSourceData:
    w = Where(source_id=source_id)
    stored_id = as_id(require(header, "id", w), w, "id")
    if stored_id != source_id:
        raise w.error(f"the record holds source {stored_id}", "id")
    cur = Cursor(payload, w)
    origin = as_int_tuple(require(header, "origin", w), 2, w, "origin")
    peak = as_peak(require(header, "peak", w), w, "peak")
    shape = as_shape(require(header, "shape", w), 2, w, "shape")
    span = cur.take(shape, "span_array")
    cur.done()
    if not np.isfinite(span).all():
        raise w.error("non-finite value", "span_array")
    meta = decode_metadata(header.get("metadata"), w, "metadata") or None
    return IsolatedSourceData(origin, peak, span, meta)
