"""Atomic file writes: a temporary file beside the target, then a rename.

Readers never see a half-written file, and a failed write leaves the old file
(if any) in place and no temporary file behind. Every layer writes through here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_file", "default_file_mode"]


def default_file_mode() -> int:
    """The mode a plainly created file gets: ``0666`` less the process umask.

    Returns
    -------
    int
        The permission bits.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then move it into place.

    The temporary name keeps the target's suffix, so writers that choose a format
    from it (matplotlib, astropy) behave as for the target. The file gets the usual
    permissions (``0666`` less the umask) rather than ``mkstemp``'s ``0600``.

    Returns the target path.

    Parameters
    ----------
    path
        The file to write.
    write
        Called with the temporary file's path; writes the content.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_file(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Like `atomic_write`, handing ``write`` an open binary file, synced before the rename.

    Parameters
    ----------
    path
        The file to write.
    write
        Called with the open temporary file; writes the content.

    Returns
    -------
    Path
        ``path``.
    """

    def to_file(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, to_file)
