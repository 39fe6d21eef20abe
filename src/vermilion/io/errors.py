"""The one error type that the model-data readers and writers raise."""

from __future__ import annotations

__all__ = ["ModelDataError", "describe_ids"]


class ModelDataError(ValueError):
    """Stored model data that cannot be read or written as asked.

    Every reader and writer in `vermilion.io` raises this (and only this) for bad
    input: a truncated or corrupted file, a failed checksum, a missing field, an
    array of the wrong size, a non-finite value, an unknown component type or a
    schema version newer than this package knows.

    Parameters
    ----------
    reason
        What is wrong, in words.
    blend_id
        The parent (blend) id concerned, if any.
    source_id
        The source id concerned, if any.
    field
        The field concerned (e.g. ``"morph"``, ``"components[1].spectrum"``), if any.
    path
        The file concerned, if any.

    Attributes
    ----------
    reason, blend_id, source_id, field, path
        As given; the message names each of them that is known.
    """

    def __init__(
        self,
        reason: str,
        *,
        blend_id: int | None = None,
        source_id: int | str | None = None,
        field: str | None = None,
        path: str | None = None,
    ) -> None:
        self.reason = reason
        self.blend_id = blend_id
        self.source_id = source_id
        self.field = field
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"file {self.path}")
        if self.blend_id is not None:
            where.append(f"blend {self.blend_id}")
        if self.source_id is not None:
            where.append(f"source {self.source_id}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def with_context(
        self,
        *,
        blend_id: int | None = None,
        source_id: int | str | None = None,
        field: str | None = None,
        path: str | None = None,
    ) -> ModelDataError:
        """A copy with the missing context filled in (what is already set is kept)."""
        return ModelDataError(
            self.reason,
            blend_id=self.blend_id if self.blend_id is not None else blend_id,
            source_id=self.source_id if self.source_id is not None else source_id,
            field=self.field if self.field is not None else field,
            path=self.path if self.path is not None else path,
        )

    def __reduce__(self):
        # keyword-only arguments: make the error picklable for process pools
        return (
            _rebuild,
            (self.reason, self.blend_id, self.source_id, self.field, self.path),
        )


def _rebuild(reason, blend_id, source_id, field, path) -> ModelDataError:
    return ModelDataError(reason, blend_id=blend_id, source_id=source_id, field=field, path=path)


def describe_ids(ids, what: str = "blend", limit: int = 5) -> str:
    """A short phrase listing the ids that exist, for an error on an unknown id.

    Parameters
    ----------
    ids
        The ids that exist.
    what
        What they are the ids of (``"blend"``, ``"source"``).
    limit
        At most this many ids are written; the rest are counted.

    Returns
    -------
    str
        E.g. ``"it holds 3 blends: 1, 2, 5"``, or with more ids than ``limit``
        ``"it holds 40 blends: 1, 2, 3, 4, 5, ... (35 more)"``.
    """
    ids = sorted(int(i) for i in ids)
    if not ids:
        return f"it holds no {what}s"
    shown = ", ".join(str(i) for i in ids[:limit])
    more = f", ... ({len(ids) - limit} more)" if len(ids) > limit else ""
    plural = what if len(ids) == 1 else f"{what}s"
    return f"it holds {len(ids)} {plural}: {shown}{more}"
