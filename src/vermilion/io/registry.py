"""The one place where model-file formats are recognised and reads and writes dispatched.

As astropy's ``Table.read`` registry: each format registers, under a name, an
``identify(head)`` test on the first bytes of a file, a ``reader(path)`` returning a
`vermilion.io.ModelDataReader`, a ``writer(model, path, **options)`` and the file
extensions it is written under. `ModelData.read`, `ModelData.open` and
`ModelData.write` go through `open_reader` and `write_model`; nothing else in the
package chooses a format.

This module imports none of the formats (they import it and register themselves
when ``vermilion.io`` is imported), so that the data classes can call it without
an import cycle.

Adding a format: write its module (a reader subclassing `ModelDataReader` and a
writer), call `register_format` at its end, and import it in ``vermilion/io/__init__.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ModelDataError

__all__ = [
    "DEFAULT_FORMAT",
    "HEAD_SIZE",
    "FileFormat",
    "format_for_path",
    "formats",
    "identify_format",
    "open_reader",
    "register_format",
    "write_model",
]

#: Bytes read from the start of a file for the formats' ``identify`` tests.
HEAD_SIZE = 8
#: The format written when neither ``format=`` nor the extension names one.
DEFAULT_FORMAT = "container"


@dataclass(frozen=True)
class FileFormat:
    """One registered format.

    Attributes
    ----------
    name
        The name given as ``format=`` to `ModelData.write`.
    identify
        ``identify(head) -> bool`` on the first `HEAD_SIZE` bytes of a file.
    reader
        ``reader(path)`` -> a `vermilion.io.ModelDataReader` (None: write-only).
    writer
        ``writer(model, path, **options)`` (None: read-only).
    extensions
        Lower-case file name endings written in this format by default (``".json"``).
    """

    name: str
    identify: Callable[[bytes], bool]
    reader: Callable[[str], Any] | None = None
    writer: Callable[..., None] | None = None
    extensions: tuple[str, ...] = ()


_FORMATS: dict[str, FileFormat] = {}


def register_format(
    name: str,
    *,
    identify: Callable[[bytes], bool],
    reader: Callable[[str], Any] | None = None,
    writer: Callable[..., None] | None = None,
    extensions: tuple[str, ...] = (),
) -> FileFormat:
    """Register (or replace) the format ``name``; formats are tried in registration order."""
    fmt = FileFormat(name, identify, reader, writer, tuple(e.lower() for e in extensions))
    _FORMATS[name] = fmt
    return fmt


def formats() -> list[FileFormat]:
    """The registered formats, in the order they are tried."""
    return list(_FORMATS.values())


def identify_format(path: str | os.PathLike) -> FileFormat:
    """The readable format of the file at ``path``, recognised by its content (not its name)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_SIZE)
    except OSError as e:
        raise ModelDataError(f"cannot open: {e}", path=path) from e
    if not head:
        raise ModelDataError("the file is empty (0 bytes): it is damaged", path=path)
    for fmt in _FORMATS.values():
        if fmt.reader is not None and fmt.identify(head):
            return fmt
    raise ModelDataError(
        "unrecognised format (not a vermilion container, a Rubin JSON file or a .scarlet archive)",
        path=path,
    )


def open_reader(path: str | os.PathLike) -> Any:
    """Open a model file of any registered format: a `vermilion.io.ModelDataReader`."""
    path = os.fspath(path)
    return identify_format(path).reader(path)


def format_for_path(path: str | os.PathLike) -> str:
    """The format a file is written in by default: from its extension, else `DEFAULT_FORMAT`."""
    p = os.fspath(path).lower()
    for fmt in _FORMATS.values():
        if fmt.writer is not None and fmt.extensions and p.endswith(fmt.extensions):
            return fmt.name
    return DEFAULT_FORMAT


def write_model(model: Any, path: str | os.PathLike, format: str | None = None, **options) -> None:
    """Write ``model`` (a `vermilion.io.ModelData`) to ``path`` in ``format``.

    ``format`` defaults to `format_for_path`; ``options`` go to the format's writer,
    which ignores those that do not apply to it.
    """
    name = format or format_for_path(path)
    fmt = _FORMATS.get(name)
    if fmt is None or fmt.writer is None:
        raise ModelDataError(f"unknown format {name!r}", path=os.fspath(path))
    fmt.writer(model, path, **options)
