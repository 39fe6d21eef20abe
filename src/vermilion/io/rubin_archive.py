"""Rubin's ``.scarlet`` archive: a ZIP of one versioned-JSON member per parent id.

Members are named by parent (or isolated source) id and hold the blend dicts of
`vermilion.io.rubin_json`; ``metadata`` and ``version`` members hold the patch
level (older archives: ``psf`` and ``psf_shape``). Written uncompressed (stored),
as Rubin writes them, so that each blend is read with one member read.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from vermilion.core.files import atomic_write_file

from . import registry
from ._fields import NOWHERE, Where, as_id
from .components import IsolatedSourceData
from .data import BlendData, ModelData
from .errors import ModelDataError
from .limits import check_declared_size
from .readers import DECODE_ERRORS, ModelDataReader
from .rubin_json import (
    blend_to_dict,
    dumps,
    isolated_to_dict,
    model_metadata_to_dict,
    parse_blend,
    parse_isolated,
    parse_model_header,
)
from .schema import MODEL_MIGRATIONS

__all__ = ["ARCHIVE_META_MEMBERS", "ArchiveReader", "write_archive"]

ARCHIVE_META_MEMBERS = ("metadata", "version", "psf", "psf_shape")
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


class ArchiveReader(ModelDataReader):
    """A Rubin ``.scarlet`` archive: one JSON member per parent (or isolated source) id."""

    source_format = "rubin-archive"

    def __init__(self, path: str) -> None:
        try:
            self._zip = zipfile.ZipFile(path, "r")
        except (*DECODE_ERRORS, OSError) as e:
            raise ModelDataError(f"not a readable ZIP archive: {e}", path=path) from e
        try:
            names = self._zip.namelist()
            self._members: dict[int, str] = {}
            for name in names:
                if name in ARCHIVE_META_MEMBERS:
                    continue
                self._members[as_id(name, NOWHERE, "archive member")] = name
            doc: dict[str, Any] = {"blends": {}}
            if "metadata" in names:
                doc["metadata"] = self._load("metadata")
                doc["model_type"] = "lsst"
                doc["version"] = self._load("version") if "version" in names else "0.0.0"
            elif "psf" in names:
                doc["psf"] = self._load("psf")
                doc["psfShape"] = self._load("psf_shape") if "psf_shape" in names else None
            else:
                raise ModelDataError("archive has neither a 'metadata' nor a 'psf' member")
            model, _, _ = parse_model_header(doc)
            if isinstance(doc.get("version"), str):
                self.source_format = f"rubin-archive-{doc['version']}"
        except ModelDataError as e:
            self._zip.close()
            raise e.with_context(path=path) from None
        except (*DECODE_ERRORS, OSError) as e:
            self._zip.close()
            raise ModelDataError(
                f"cannot decode archive: {type(e).__name__}: {e}", path=path
            ) from e
        super().__init__(model, path)
        self._kinds: dict[int, str] = {}
        self._cache: dict[int, Any] = {}

    def _load(self, name: str) -> Any:
        info = self._zip.getinfo(name)
        where = NOWHERE if name in ARCHIVE_META_MEMBERS else Where(as_id(name, NOWHERE, "member"))
        compressed = info.compress_size if info.compress_type != zipfile.ZIP_STORED else None
        check_declared_size(info.file_size, info.file_size if compressed is None else compressed,
                            where, f"archive member {name!r}")  # fmt: skip
        with self._zip.open(name) as f:
            # the inflated size is bounded by the declared one (zipfile stops there)
            return json.loads(f.read(info.file_size + 1))

    def _member(self, ident: int) -> Any:
        """Decoded member ``ident``; its kind (blend or isolated) is remembered."""
        if ident in self._cache:
            return self._cache.pop(ident)
        doc = self._load(self._members[ident])
        self._kinds[ident] = (
            "isolated"
            if isinstance(doc, dict) and doc.get("source_type") == "isolated"
            else "blend"
        )
        return doc

    def _classify_all(self) -> None:
        for ident in self._members:
            if ident not in self._kinds:
                try:
                    self._member(ident)  # only its kind is kept: memory stays bounded
                except (*DECODE_ERRORS, OSError):
                    self._kinds[ident] = "blend"  # reported when the blend is read

    def blend_ids(self) -> list[int]:
        self._classify_all()
        return [i for i in self._members if self._kinds[i] == "blend"]

    def isolated_ids(self) -> list[int]:
        self._classify_all()
        return [i for i in self._members if self._kinds[i] == "isolated"]

    def __contains__(self, blend_id: object) -> bool:
        try:
            key = self._key(blend_id)
        except KeyError:
            return False
        if key not in self._members:
            return False
        if key not in self._kinds:
            try:
                self._cache[key] = self._member(key)
            except (*DECODE_ERRORS, OSError):
                return True  # reported when the blend is read
        return self._kinds[key] == "blend"

    def _blend(self, blend_id: int) -> BlendData:
        if blend_id not in self._members:
            raise KeyError(blend_id)
        try:
            doc = self._member(blend_id)
        except OSError as e:
            raise ModelDataError(f"cannot read archive member: {e}") from e
        if self._kinds[blend_id] != "blend":
            raise KeyError(blend_id)
        return parse_blend(doc, blend_id)

    def _read_all(self, out: ModelData, strict: bool) -> None:
        """One pass over the members, each decoded once."""
        for ident, name in self._members.items():
            try:
                try:
                    doc = self._load(name)
                    if isinstance(doc, dict) and doc.get("source_type") == "isolated":
                        out.isolated[ident] = parse_isolated(doc, ident)
                    else:
                        out.blends[ident] = self.model.attach(parse_blend(doc, ident))
                except ModelDataError:
                    raise
                except (*DECODE_ERRORS, OSError) as e:
                    raise ModelDataError(
                        f"cannot decode: {type(e).__name__}: {e}", blend_id=ident
                    ) from e
            except ModelDataError as e:
                e = e.with_context(path=self.path)
                if strict:
                    raise e from None
                out.errors[ident] = e

    def get_isolated(self, source_id: int) -> IsolatedSourceData:
        if source_id not in self._members:
            raise KeyError(source_id)
        doc = self._member(source_id)
        if self._kinds[source_id] != "isolated":
            raise KeyError(source_id)
        return parse_isolated(doc, source_id)

    def close(self) -> None:
        self._zip.close()


def write_archive(model: ModelData, path: str | os.PathLike) -> None:
    """Write a Rubin ``.scarlet`` archive (ZIP, members stored), atomically."""
    model.validate()

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for bid, blend in model.blends.items():
                zf.writestr(str(bid), dumps(blend_to_dict(blend, model)))
            for sid, iso in model.isolated.items():
                zf.writestr(str(sid), dumps(isolated_to_dict(iso)))
            zf.writestr("metadata", dumps(model_metadata_to_dict(model)))
            zf.writestr("version", dumps(MODEL_MIGRATIONS.current))

    atomic_write_file(path, write)


def _write_archive(model: ModelData, path: str | os.PathLike, **_options) -> None:
    write_archive(model, path)


registry.register_format(
    "scarlet",
    identify=lambda head: head[:4] in ZIP_MAGICS,
    reader=ArchiveReader,
    writer=_write_archive,
    extensions=(".scarlet",),
)
