"""Lazy read-only access to a model file of any supported format.

`open_reader(path)` recognises the format by content (not by name) and returns a
`ModelDataReader`: a mapping ``{blend_id: BlendData}`` that reads blends on demand
(through the index for our container, one member each for a Rubin archive; a
Rubin JSON document is decoded once and its blends parsed on demand).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._fields import NOWHERE, as_id
from .data import BlendData, IsolatedSourceData, ModelData
from .errors import ModelDataError

__all__ = ["ArchiveReader", "DictReader", "ModelDataReader", "open_reader"]

# Python exceptions that malformed input can provoke in decoders we call (json,
# zipfile, zlib, struct); readers turn them into ModelDataError.
DECODE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    EOFError,
    NotImplementedError,
    UnicodeDecodeError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
)


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while decoding many acyclic objects.

    A bulk read creates hundreds of thousands of lists, dicts and arrays; each
    automatic collection on the way would traverse the whole heap (20-25% of a
    whole-patch read in a process that already holds a patch).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ModelDataReader(Mapping):
    """A read-only mapping ``{blend_id: BlendData}`` over one model file.

    Blends come back with the patch's bands, observed PSF and model PSF attached
    where they store none of their own. Use as a context manager, or `close` it.

    Attributes
    ----------
    model
        The patch-level part (bands, PSFs, metadata, version), without blends.
    source_format
        Name of the format read (e.g. ``"vermilion-container-1"``, ``"rubin-archive"``).
    path
        The file, if read from one.
    """

    source_format: str = "?"

    def __init__(self, model: ModelData, path: str | None = None) -> None:
        self.model = model
        self.path = path

    # -- patch-level fields
    @property
    def bands(self) -> tuple[str, ...] | None:
        return self.model.bands

    @property
    def psf(self):
        """The model-space PSF (2D)."""
        return self.model.psf

    model_psf = psf

    @property
    def observed_psf(self):
        return self.model.observed_psf

    @property
    def metadata(self) -> dict[str, Any]:
        return self.model.metadata

    @property
    def version(self) -> str:
        return self.model.version

    # -- to implement
    def _blend(self, blend_id: int) -> BlendData:
        """The blend ``blend_id`` (raise KeyError if absent)."""
        raise NotImplementedError

    def blend_ids(self) -> list[int]:
        raise NotImplementedError

    def isolated_ids(self) -> list[int]:
        return []

    def get_isolated(self, source_id: int) -> IsolatedSourceData:
        raise KeyError(source_id)

    # -- mapping
    def __getitem__(self, blend_id: int) -> BlendData:
        blend_id = self._key(blend_id)
        try:
            blend = self._blend(blend_id)
        except ModelDataError as e:
            raise e.with_context(blend_id=blend_id, path=self.path) from None
        except KeyError:
            raise
        except DECODE_ERRORS as e:
            raise ModelDataError(
                f"cannot decode: {type(e).__name__}: {e}", blend_id=blend_id, path=self.path
            ) from e
        return self.model.attach(blend)

    def _key(self, blend_id: Any) -> int:
        try:
            return as_id(blend_id, NOWHERE, "blend_id")
        except ModelDataError:
            raise KeyError(blend_id) from None

    def __iter__(self) -> Iterator[int]:
        return iter(self.blend_ids())

    def __len__(self) -> int:
        return len(self.blend_ids())

    def __contains__(self, blend_id: object) -> bool:
        try:
            self._key(blend_id)
        except KeyError:
            return False
        return self._key(blend_id) in set(self.blend_ids())

    def read(self, blend_ids: Iterable[int] | None = None, on_error: str = "raise") -> ModelData:
        """Read blends (all, or ``blend_ids``) into a `ModelData`.

        Ids of isolated sources may be given among ``blend_ids``; they land in
        ``model.isolated``. With ``on_error="skip"`` blends that fail to read are
        left out and their errors kept in ``model.errors``.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        out = self.model.metadata_only()
        out.source_format = self.source_format
        with gc_paused():
            if blend_ids is None:
                self._read_all(out, on_error == "raise")
            else:
                blends, isolated = self._split_ids(blend_ids)
                self._read_ids(out, blends, isolated, on_error == "raise")
        if out.bands is None and blend_ids is None:
            # Legacy files store bands per blend only: lift them when all agree.
            found = {b.bands for b in out.blends.values()}
            if len(found) == 1 and None not in found:
                out.bands = found.pop()
        return out

    def _read_all(self, out: ModelData, strict: bool) -> None:
        """Read every blend and isolated source into ``out``."""
        self._read_ids(out, self.blend_ids(), self.isolated_ids(), strict)

    def _read_ids(
        self, out: ModelData, blends: Iterable[int], isolated: Iterable[int], strict: bool
    ) -> None:
        for bid in blends:
            try:
                out.blends[bid] = self[bid]
            except ModelDataError as e:
                if strict:
                    raise
                out.errors[bid] = e
        for sid in isolated:
            try:
                out.isolated[sid] = self._isolated(sid)
            except ModelDataError as e:
                if strict:
                    raise
                out.errors[sid] = e

    def _split_ids(self, ids: Iterable[int]) -> tuple[list[int], list[int]]:
        blends, isolated = [], []
        iso = None
        for raw in ids:
            bid = self._key_or_error(raw)
            if bid in self:
                blends.append(bid)
                continue
            if iso is None:
                iso = set(self.isolated_ids())
            if bid in iso:
                isolated.append(bid)
            else:
                raise ModelDataError(
                    "no blend or isolated source with this id", blend_id=bid, path=self.path
                )
        return blends, isolated

    def _key_or_error(self, raw: Any) -> int:
        try:
            return self._key(raw)
        except KeyError:
            raise ModelDataError(f"bad blend id {raw!r}", path=self.path) from None

    def _isolated(self, source_id: int) -> IsolatedSourceData:
        try:
            return self.get_isolated(source_id)
        except ModelDataError as e:
            raise e.with_context(source_id=source_id, path=self.path) from None
        except KeyError:
            raise ModelDataError(
                "no such isolated source", source_id=source_id, path=self.path
            ) from None
        except DECODE_ERRORS as e:
            raise ModelDataError(
                f"cannot decode: {type(e).__name__}: {e}", source_id=source_id, path=self.path
            ) from e

    def close(self) -> None:
        """Release the file (a no-op for readers that hold none)."""

    def __enter__(self) -> ModelDataReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, format={self.source_format})"


class DictReader(ModelDataReader):
    """A decoded Rubin JSON document; blends are parsed when asked for."""

    def __init__(self, document: Any, path: str | None = None) -> None:
        from .rubin import parse_model_header

        try:
            model, self._raw_blends, self._raw_isolated = parse_model_header(document)
        except ModelDataError as e:
            raise e.with_context(path=path) from None
        super().__init__(model, path)
        self.source_format = _json_format_name(document)
        self._ids: dict[int, str] | None = None
        self._iso_ids: dict[int, str] | None = None

    def _index(self) -> dict[int, str]:
        if self._ids is None:
            self._ids = {as_id(k, NOWHERE, "blends"): k for k in self._raw_blends}
        return self._ids

    def blend_ids(self) -> list[int]:
        return list(self._index())

    def __contains__(self, blend_id: object) -> bool:
        try:
            return self._key(blend_id) in self._index()
        except KeyError:
            return False

    def _blend(self, blend_id: int) -> BlendData:
        from .rubin import parse_blend

        key = self._index()[blend_id]
        return parse_blend(self._raw_blends[key], blend_id)

    def isolated_ids(self) -> list[int]:
        if self._iso_ids is None:
            self._iso_ids = {as_id(k, NOWHERE, "isolated"): k for k in self._raw_isolated}
        return list(self._iso_ids)

    def get_isolated(self, source_id: int) -> IsolatedSourceData:
        from .rubin import parse_isolated

        self.isolated_ids()
        return parse_isolated(self._raw_isolated[self._iso_ids[source_id]], source_id)


def _json_format_name(document: Any) -> str:
    if isinstance(document, dict) and "version" in document:
        return f"rubin-json-{document.get('version')}"
    blends = document.get("blends") if isinstance(document, dict) else None
    if isinstance(blends, dict):
        for b in blends.values():
            if isinstance(b, dict) and "xy0" in b:
                return "rubin-legacy-a"
            break
    return "rubin-legacy-b"


class ArchiveReader(ModelDataReader):
    """A Rubin ``.scarlet`` archive: one JSON member per parent (or isolated source) id."""

    source_format = "rubin-archive"

    def __init__(self, path: str) -> None:
        from .rubin import ARCHIVE_META_MEMBERS, parse_model_header

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
        with self._zip.open(name) as f:
            return json.loads(f.read())

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
        from .rubin import parse_blend

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
        from .rubin import parse_blend, parse_isolated

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
        from .rubin import parse_isolated

        if source_id not in self._members:
            raise KeyError(source_id)
        doc = self._member(source_id)
        if self._kinds[source_id] != "isolated":
            raise KeyError(source_id)
        return parse_isolated(doc, source_id)

    def close(self) -> None:
        self._zip.close()


ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def open_reader(path: str | os.PathLike) -> ModelDataReader:
    """Open a model file of any supported format, recognised by its first bytes."""
    from .container import MAGIC, ContainerReader

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
    except OSError as e:
        raise ModelDataError(f"cannot open: {e}", path=path) from e
    if head == MAGIC:
        return ContainerReader(path)
    if head[:4] in ZIP_MAGICS:
        return ArchiveReader(path)
    if head.lstrip()[:1] in (b"{", b""):
        try:
            with open(path, "rb") as f, gc_paused():
                document = json.loads(f.read())
        except OSError as e:
            raise ModelDataError(f"cannot read: {e}", path=path) from e
        except DECODE_ERRORS as e:
            raise ModelDataError(f"not valid JSON: {type(e).__name__}: {e}", path=path) from e
        return DictReader(document, path)
    raise ModelDataError(
        "unrecognised format (not a vermilion container, a Rubin JSON file or a .scarlet archive)",
        path=path,
    )
