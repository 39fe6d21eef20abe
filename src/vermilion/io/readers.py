"""`ModelDataReader`: the lazy read-only mapping every format's reader is.

`vermilion.io.registry.open_reader(path)` recognises the format by content (not by
name) and returns the format's reader: a mapping ``{blend_id: BlendData}`` that
reads blends on demand (through the index for our container, one member each for
a Rubin archive; a Rubin JSON document is decoded once and its blends parsed on
demand).
"""

from __future__ import annotations

import contextlib
import gc
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._fields import NOWHERE, as_id
from .components import IsolatedSourceData
from .data import BlendData, ModelData
from .errors import ModelDataError, describe_ids

__all__ = ["DECODE_ERRORS", "ModelDataReader", "gc_paused"]

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
                    "no blend or isolated source with this id; "
                    + describe_ids(self.blend_ids(), "blend"),
                    blend_id=bid,
                    path=self.path,
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
