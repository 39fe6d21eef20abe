"""vermilion's own model container: one indexed, compressed, checksummed file per patch.

Layout (all integers little-endian)::

    header   16 bytes   magic "\\x89VML\\r\\n\\x1a\\n", format version (u16), codec (u16), 0 (u32)
    records  ...        one per blend / isolated source, then one for the patch metadata
    index    48 B/entry blend table sorted by id, then isolated-source table sorted by id
    footer   64 bytes   where the index and metadata record are, counts, CRCs, end magic

A record is ``compress(u32 header length + header JSON + shuffle(float32 payload))``
(see `vermilion.io.container_records`).
Each index entry holds the record's offset, compressed and raw lengths, CRC32 of the
compressed bytes, the source count and the blend box, so one blend is read with a
footer read, a binary search of the on-disk index (a few 8-byte reads), one record
read and its checksum; nothing else of the patch is touched.

Files are written by `ModelDataWriter` into a temporary file beside the target and
moved into place with ``os.replace`` when complete (streaming, so not through
`vermilion.core.files.atomic_write`, whose permissions and parent creation it matches).
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
import zlib
from typing import Any

import numpy as np

from vermilion.core.files import default_file_mode, remove_stale_temps, temp_prefix

from . import registry
from ._fields import MAX_ELEMENTS, Where, as_bands, as_id, as_shape, require
from .components import IsolatedSourceData
from .container_records import (
    CODECS,
    Codec,
    Cursor,
    blend_record,
    decode_record,
    encode_record,
    parse_blend_record,
    parse_isolated_record,
    plain_metadata,
)
from .data import BlendData, ModelData
from .errors import ModelDataError
from .limits import check_declared_size
from .metadata import decode_metadata
from .migration import MigrationRegistry
from .readers import DECODE_ERRORS, ModelDataReader
from .schema import MODEL_MIGRATIONS

__all__ = [
    "ENTRY",
    "FOOTER",
    "FORMAT_VERSION",
    "HEADER",
    "MAGIC",
    "ContainerReader",
    "ModelDataWriter",
    "parse_blend_record",
    "write_container",
]

MAGIC = b"\x89VML\r\n\x1a\n"
END_MAGIC = b"VMLINDEX"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sHHI")
# index_offset, n_blends, n_isolated, index_crc, meta_offset, meta_length, meta_raw_length,
# meta_crc, format_version, codec, footer_crc, end magic
FOOTER = struct.Struct("<QQQIQIIIHHI8s")
ENTRY = np.dtype(
    [
        ("id", "<i8"),
        ("offset", "<u8"),
        ("length", "<u4"),
        ("raw_length", "<u4"),
        ("crc", "<u4"),
        ("n_sources", "<u4"),
        ("y0", "<i4"),
        ("x0", "<i4"),
        ("height", "<i4"),
        ("width", "<i4"),
    ]
)
assert ENTRY.itemsize == 48
#: How far from the end a footer is looked for when bytes were appended to a file.
_FOOTER_SEARCH = 1 << 16

#: The container's own header schema (record header JSON); migrations go here.
CONTAINER_MIGRATIONS = MigrationRegistry("container record", "1.0.0")

# ---- writer -------------------------------------------------------------------------


class ModelDataWriter:
    """Stream blends into a container one by one; the file appears complete or not at all.

    Parameters
    ----------
    path
        Destination. Written to a temporary file beside it and moved into place
        (``os.replace``) by `close`; an exception inside the ``with`` block leaves
        ``path`` untouched.
    metadata
        A `ModelData` giving the patch-level bands, model PSF, observed PSF, metadata
        and version (its blends are not written: add them with `add_blend`).
    compression_level
        Compression level (zstd: 1 to 19, zlib: 0 to 9; 6 by default).
    codec
        ``"zstd"`` (default; fast to read) or ``"zlib"`` (standard library only).

    Examples
    --------
    >>> with ModelDataWriter("patch.vmd", ModelData(bands, model_psf)) as w:  # doctest: +SKIP
    ...     for parent_id, blend in deblend_patch():
    ...         w.add_blend(parent_id, blend_to_data(blend))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        metadata: ModelData,
        *,
        compression_level: int = 6,
        codec: str = "zstd",
    ) -> None:
        if not isinstance(metadata, ModelData):
            raise TypeError("metadata must be a ModelData (its blends are not written)")
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, not {codec!r}")
        top = 9 if codec == "zlib" else 19
        if not 0 <= compression_level <= top:
            raise ValueError(f"{codec} compression_level must be 0..{top}, got {compression_level}")
        self._codec = Codec(CODECS[codec], compression_level)
        self.path = os.fspath(path)
        self.model = metadata.metadata_only()
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)  # as core.files.atomic_write does
        remove_stale_temps(self.path)  # of a writer killed mid-write
        fd, self._tmp = tempfile.mkstemp(
            dir=directory, prefix=temp_prefix(self.path), suffix=".tmp"
        )
        self._file = os.fdopen(fd, "wb")
        self._file.write(HEADER.pack(MAGIC, FORMAT_VERSION, self._codec.codec, 0))
        self._pos = HEADER.size
        self._blends: list[tuple] = []
        self._isolated: list[tuple] = []
        self._ids: set[int] = set()
        self._iso_ids: set[int] = set()
        self._lock = threading.Lock()
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"the writer of {self.path} is closed")

    def _append(self, comp: bytes) -> int:
        offset = self._pos
        self._file.write(comp)
        self._pos += len(comp)
        return offset

    def add_blend(self, blend_id: int, blend: BlendData) -> None:
        """Validate, compress and append one blend (its id must be new)."""
        self._check_open()
        blend_id = as_id(blend_id, Where(), "blend_id")
        if not isinstance(blend, BlendData):
            raise ModelDataError(
                f"expected BlendData, got {type(blend).__name__}", blend_id=blend_id
            )
        if blend_id in self._ids:
            raise ModelDataError("blend id written twice", blend_id=blend_id)
        blend.validate(blend_id, self.model.bands)
        header, arrays = blend_record(blend_id, blend, self.model.own_fields(blend), self.model)
        comp, raw_length = encode_record(header, arrays, self._codec)
        with self._lock:
            self._check_open()
            if blend_id in self._ids:
                raise ModelDataError("blend id written twice", blend_id=blend_id)
            offset = self._append(comp)
            self._ids.add(blend_id)
            self._blends.append(
                (
                    blend_id,
                    offset,
                    len(comp),
                    raw_length,
                    zlib.crc32(comp),
                    len(blend.sources),
                    *blend.origin,
                    *blend.shape,
                )
            )

    def add_isolated(self, source_id: int, source: IsolatedSourceData) -> None:
        """Append one isolated (not deblended) source."""
        self._check_open()
        source_id = as_id(source_id, Where(), "source_id")
        if source_id in self._iso_ids:
            raise ModelDataError("isolated source id written twice", source_id=source_id)
        source.validate(Where(source_id=source_id))
        header = {
            "id": source_id,
            "origin": [int(o) for o in source.origin],
            "peak": list(source.peak),
            "shape": list(source.span_array.shape),
        }
        if source.metadata:
            header["metadata"] = plain_metadata(
                source.metadata, Where(source_id=source_id), "metadata"
            )
        comp, raw_length = encode_record(header, [source.span_array], self._codec)
        with self._lock:
            self._check_open()
            offset = self._append(comp)
            self._iso_ids.add(source_id)
            h, w = source.span_array.shape
            self._isolated.append(
                (
                    source_id,
                    offset,
                    len(comp),
                    raw_length,
                    zlib.crc32(comp),
                    0,
                    *source.origin,
                    h,
                    w,
                )
            )

    def _metadata_record(self) -> tuple[bytes, int]:
        m = self.model
        header: dict[str, Any] = {
            "schema_version": m.version,
            "record_version": CONTAINER_MIGRATIONS.current,
            "bands": None if m.bands is None else list(m.bands),
            "metadata": plain_metadata(m.metadata, Where(), "metadata") if m.metadata else None,
        }
        arrays = []
        if m.psf is not None:
            header["model_psf"] = list(m.psf.shape)
            arrays.append(m.psf)
        if m.observed_psf is not None:
            header["observed_psf"] = list(m.observed_psf.shape)
            arrays.append(m.observed_psf)
        return encode_record(header, arrays, self._codec)

    def close(self) -> None:
        """Write the metadata, the index and the footer, then move the file into place."""
        if self.closed:
            return
        try:
            meta_comp, meta_raw = self._metadata_record()
            meta_offset = self._append(meta_comp)
            index = np.array(sorted(self._blends) + sorted(self._isolated), dtype=ENTRY).tobytes()
            index_offset = self._append(index)
            fields = (
                index_offset,
                len(self._blends),
                len(self._isolated),
                zlib.crc32(index),
                meta_offset,
                len(meta_comp),
                meta_raw,
                zlib.crc32(meta_comp),
                FORMAT_VERSION,
                self._codec.codec,
            )
            body = FOOTER.pack(*fields, 0, END_MAGIC)
            footer_crc = zlib.crc32(body[: FOOTER.size - 12])
            self._file.write(FOOTER.pack(*fields, footer_crc, END_MAGIC))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            # the usual permissions (as core.files.atomic_write gives), not mkstemp's 0600
            os.chmod(self._tmp, default_file_mode())
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self.closed = True

    def abort(self) -> None:
        """Discard everything written; ``path`` is left as it was."""
        self.closed = True
        try:
            self._file.close()
        finally:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass

    def __enter__(self) -> ModelDataWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def n_blends(self) -> int:
        return len(self._blends)


# ---- reader -------------------------------------------------------------------------


class ContainerReader(ModelDataReader):
    """Lazy reader of a container: blends are read through the index on demand.

    Safe to share between threads (reads are positional, ``os.pread``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        self.path = path
        self._fd = -1
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as e:
            raise ModelDataError(f"cannot open: {e}", path=path) from e
        try:
            model = self._open()
        except ModelDataError as e:
            self.close()
            raise e.with_context(path=path) from None
        except DECODE_ERRORS as e:
            self.close()
            raise ModelDataError(f"cannot decode: {type(e).__name__}: {e}", path=path) from e
        super().__init__(model, path)
        self.source_format = f"vermilion-container-{FORMAT_VERSION}"
        self._table: np.ndarray | None = None

    def _pread(self, n: int, offset: int) -> bytes:
        data = os.pread(self._fd, n, offset)
        if len(data) != n:
            raise ModelDataError(f"file is truncated: wanted {n} bytes at {offset}")
        return data

    def _open(self) -> ModelData:
        #: Bytes found after the footer (appended to the file) and ignored.
        self.trailing_bytes = 0
        size = os.fstat(self._fd).st_size
        if size < HEADER.size + FOOTER.size:
            raise ModelDataError(f"file is truncated ({size} bytes)")
        magic, version, codec, _ = HEADER.unpack(self._pread(HEADER.size, 0))
        if magic != MAGIC:
            raise ModelDataError("not a vermilion model container (bad magic)")
        try:
            raw, size = self._find_footer(size)
        except ModelDataError:
            if version > FORMAT_VERSION:  # a newer layout, whose footer this one cannot read
                raise self._newer(version) from None
            raise
        (
            index_offset,
            n_blends,
            n_isolated,
            self._index_crc,
            meta_offset,
            meta_length,
            meta_raw_length,
            meta_crc,
            fversion,
            fcodec,
            _footer_crc,
            _end_magic,
        ) = FOOTER.unpack(raw)
        if version != fversion or codec != fcodec:
            raise ModelDataError(
                f"the file is damaged: its header says format version {version}, codec "
                f"{codec}; its (checksummed) footer says version {fversion}, codec {fcodec}",
                field="format_version",
            )
        if version > FORMAT_VERSION:
            raise self._newer(version)
        if version < 1:
            raise ModelDataError(f"bad container format version {version}", field="format_version")
        self._codec = Codec(codec)
        data_end = size - FOOTER.size
        n_entries = n_blends + n_isolated
        if (
            index_offset + n_entries * ENTRY.itemsize != data_end
            or not HEADER.size <= meta_offset <= index_offset - meta_length
        ):
            raise ModelDataError("footer points outside the file", field="footer")
        self._index_offset = index_offset
        self._data_end = meta_offset
        self.n_blends = n_blends
        self.n_isolated = n_isolated
        check_declared_size(meta_raw_length, meta_length, Where(), "metadata")
        comp = self._pread(meta_length, meta_offset)
        header, payload = decode_record(comp, meta_raw_length, meta_crc, Where(), self._codec)
        return self._parse_metadata(header, payload)

    @staticmethod
    def _newer(version: int) -> ModelDataError:
        return ModelDataError(
            f"container format version {version} is newer than the newest this "
            f"vermilion reads ({FORMAT_VERSION}); upgrade vermilion",
            field="format_version",
        )

    def _find_footer(self, size: int) -> tuple[bytes, int]:
        """The footer's bytes and where the container ends (bytes appended are ignored)."""
        raw = self._pread(FOOTER.size, size - FOOTER.size)
        if raw.endswith(END_MAGIC):
            if zlib.crc32(raw[: FOOTER.size - 12]) != FOOTER.unpack(raw)[-2]:
                raise ModelDataError("checksum mismatch in the footer", field="footer")
            return raw, size
        # data appended after the footer (a copy gone wrong): look for the footer in the tail
        start = max(HEADER.size, size - _FOOTER_SEARCH)
        tail = self._pread(size - start, start)
        at = tail.rfind(END_MAGIC)
        while at >= FOOTER.size - len(END_MAGIC):
            end = start + at + len(END_MAGIC)
            raw = tail[end - start - FOOTER.size : end - start]
            if zlib.crc32(raw[: FOOTER.size - 12]) == FOOTER.unpack(raw)[-2]:
                self.trailing_bytes = size - end
                return raw, end
            at = tail.rfind(END_MAGIC, 0, at)
        raise ModelDataError(
            "file is truncated or was not closed (no footer at the end)", field="footer"
        )

    @staticmethod
    def _parse_metadata(header: dict, payload: np.ndarray) -> ModelData:
        w = Where()
        header = CONTAINER_MIGRATIONS.migrate(
            header, header.get("record_version", "1.0.0"), "record_version"
        )
        version = MODEL_MIGRATIONS.check(require(header, "schema_version", w), "schema_version")
        cur = Cursor(payload, w)
        model_psf = observed = None
        if header.get("model_psf") is not None:
            model_psf = cur.take(as_shape(header["model_psf"], 2, w, "model_psf"), "model_psf")
        if header.get("observed_psf") is not None:
            observed = cur.take(
                as_shape(header["observed_psf"], 3, w, "observed_psf"), "observed_psf"
            )
        cur.done()
        bands = header.get("bands")
        if bands is not None:
            bands = as_bands(bands, w, "bands")
        meta = decode_metadata(header.get("metadata"), w, "metadata")
        return ModelData(bands, model_psf, observed_psf=observed, metadata=meta, version=version)

    # -- index
    def _entry(self, table: int, i: int) -> tuple:
        base = self._index_offset + ((self.n_blends if table else 0) + i) * ENTRY.itemsize
        return np.frombuffer(self._pread(ENTRY.itemsize, base), dtype=ENTRY)[0].item()

    def _find(self, ident: int, table: int = 0) -> tuple | None:
        """Binary search of the on-disk index: O(log n) small reads, no full index load."""
        if self._table is not None:
            t = self._table[: self.n_blends] if table == 0 else self._table[self.n_blends :]
            i = int(np.searchsorted(t["id"], ident))
            return t[i].item() if i < t.size and t["id"][i] == ident else None
        lo, hi = 0, self.n_blends if table == 0 else self.n_isolated
        base = self._index_offset + (self.n_blends if table else 0) * ENTRY.itemsize
        while lo < hi:
            mid = (lo + hi) // 2
            (mid_id,) = struct.unpack("<q", self._pread(8, base + mid * ENTRY.itemsize))
            if mid_id < ident:
                lo = mid + 1
            else:
                hi = mid
        if lo < (self.n_blends if table == 0 else self.n_isolated):
            entry = self._entry(table, lo)
            if entry[0] == ident:
                return entry
        return None

    def index(self) -> np.ndarray:
        """The whole index (blends then isolated sources), checked against its CRC.

        Fields: ``id, offset, length, raw_length, crc, n_sources, y0, x0, height, width``;
        enough to select blends by size or position without reading any of them.
        """
        if self._table is None:
            n = self.n_blends + self.n_isolated
            raw = self._pread(n * ENTRY.itemsize, self._index_offset)
            if zlib.crc32(raw) != self._index_crc:
                raise ModelDataError(
                    "checksum mismatch in the index", field="index", path=self.path
                )
            table = np.frombuffer(raw, dtype=ENTRY)
            ids = table["id"]
            for part in (ids[: self.n_blends], ids[self.n_blends :]):
                if part.size > 1 and not (part[1:] > part[:-1]).all():
                    raise ModelDataError("index ids are not sorted", field="index", path=self.path)
            self._table = table
        return self._table

    def blend_ids(self) -> list[int]:
        return self.index()["id"][: self.n_blends].tolist()

    def isolated_ids(self) -> list[int]:
        return self.index()["id"][self.n_blends :].tolist()

    def __len__(self) -> int:
        return self.n_blends

    def __contains__(self, blend_id: object) -> bool:
        try:
            return self._find(self._key(blend_id)) is not None
        except KeyError:
            return False

    # -- records
    def _read_entry(
        self, entry: tuple, where: Where, data: memoryview | None = None
    ) -> tuple[dict, np.ndarray]:
        """Decode the record of an index entry (a tuple in `ENTRY` order).

        ``data``: the whole data region, already read (for whole-file reads).
        """
        _, offset, length, raw_length, crc = entry[:5]
        if not HEADER.size <= offset <= self._data_end - length:
            raise where.error("index entry points outside the data", "index")
        if raw_length > 4 * MAX_ELEMENTS:
            raise where.error("index entry has an impossible size", "index")
        check_declared_size(raw_length, length, where)
        if data is None:
            comp = os.pread(self._fd, length, offset)
            if len(comp) != length:
                raise where.error("file is truncated", "record")
        else:
            comp = data[offset - HEADER.size : offset - HEADER.size + length]
        return decode_record(comp, raw_length, crc, where, self._codec)

    def _blend(self, blend_id: int) -> BlendData:
        entry = self._find(blend_id)
        if entry is None:
            raise KeyError(blend_id)
        return self._decode_blend(entry, blend_id)

    def get_isolated(self, source_id: int) -> IsolatedSourceData:
        entry = self._find(source_id, table=1)
        if entry is None:
            raise KeyError(source_id)
        header, payload = self._read_entry(entry, Where(source_id=source_id))
        return parse_isolated_record(header, payload, source_id)

    def _read_all(self, out: ModelData, strict: bool) -> None:
        # Check the index CRC once, read the data region once, decode in file order.
        table = self.index()
        blends = table[: self.n_blends]
        entries = blends[np.argsort(blends["offset"], kind="stable")].tolist()
        data = memoryview(self._pread(self._data_end - HEADER.size, HEADER.size))
        for entry in entries:
            bid = entry[0]
            try:
                out.blends[bid] = self.model.attach(self._decode_blend(entry, bid, data))
            except ModelDataError as e:
                e = e.with_context(blend_id=bid, path=self.path)
                if strict:
                    raise e from None
                out.errors[bid] = e
        self._read_ids(out, [], self.isolated_ids(), strict)

    def _decode_blend(
        self, entry: tuple, blend_id: int, data: memoryview | None = None
    ) -> BlendData:
        try:
            header, payload = self._read_entry(entry, Where(blend_id), data)
            return parse_blend_record(header, payload, blend_id)
        except DECODE_ERRORS as e:
            if isinstance(e, ModelDataError):
                raise
            raise ModelDataError(
                f"cannot decode: {type(e).__name__}: {e}", blend_id=blend_id
            ) from e

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def write_container(
    model: ModelData,
    path: str | os.PathLike,
    *,
    compression_level: int = 6,
    codec: str = "zstd",
    **_options,
) -> None:
    """Write a whole `ModelData` as a container (see `ModelDataWriter`)."""
    with ModelDataWriter(path, model, compression_level=compression_level, codec=codec) as w:
        for bid, blend in model.blends.items():
            w.add_blend(bid, blend)
        for sid, iso in model.isolated.items():
            w.add_isolated(sid, iso)


registry.register_format(
    "container",
    identify=lambda head: head == MAGIC,
    reader=ContainerReader,
    writer=write_container,
    extensions=(".vmd",),
)
