"""Atomic file writes: a temporary file beside the target, then a rename.

Readers never see a half-written file, and a failed write leaves the old file
(if any) in place and no temporary file behind. A writer killed mid-write (kill -9)
leaves its temporary file; the next write of the same file removes it
(`remove_stale_temps`). Every layer writes through here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_file",
    "default_file_mode",
    "remove_stale_temps",
    "temp_prefix",
]


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


_TEMP_TAG = ".vmltmp"


def temp_prefix(path: str | os.PathLike) -> str:
    """The name start of this process's temporary files for ``path``: ``.NAME.vmltmpPID.``.

    Parameters
    ----------
    path
        The file that will be written.

    Returns
    -------
    str
        The prefix for ``tempfile.mkstemp``.
    """
    return f".{os.path.basename(os.fspath(path))}{_TEMP_TAG}{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[str]:
    """Remove temporary files beside ``path`` left by writers that died (killed mid-write).

    A temporary file is named ``.NAME.vmltmpPID.XXXX...`` (`temp_prefix`); it is stale
    when no process ``PID`` runs on this machine any more. Every stale one in the
    folder goes (the butler writes each dataset under a fresh temporary name, so a
    rerun does not write the same name again); those of live processes (a
    concurrent writer) are left alone.

    Parameters
    ----------
    path
        The file about to be written (its folder is cleaned).

    Returns
    -------
    list of str
        The files removed.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(".") or _TEMP_TAG not in name:
            continue
        pid = name.rsplit(_TEMP_TAG, 1)[1].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


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
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(
        prefix=temp_prefix(path), suffix=path.suffix or ".tmp", dir=path.parent
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
