"""How much a reader may allocate for what a file declares, checked before allocating.

A model file declares the sizes of its parts (a container record's decompressed
length, a ``.scarlet`` member's inflated size); a crafted file can declare gigabytes
in a few kilobytes. Every reader checks each declaration against `read_limits`
before it decompresses or allocates anything, and raises `ModelDataError` naming
the blend otherwise:

- ``max_record_bytes``: the largest decompressed record or archive member
  (default 256 MiB; environment variable ``VERMILION_MAX_RECORD_BYTES``);
- ``max_ratio``: the largest decompressed / compressed size of a record larger
  than ``ratio_floor`` bytes (default 100; ``VERMILION_MAX_RATIO``), so that
  memory stays within a small multiple of the file's size;
- ``max_blend_pixels``: the largest blend box a file may declare (default 2**24
  pixels; ``VERMILION_MAX_BLEND_PIXELS``): rebuilding a blend allocates bands x box.

Change them for a session with `set_read_limits`, or for a block with
``with read_limits_set(max_record_bytes=...)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from ._fields import Where

__all__ = [
    "ReadLimits",
    "check_blend_shape",
    "check_declared_size",
    "check_fits_sizes",
    "fits_size_problem",
    "open_fits_checked",
    "read_limits",
    "read_limits_set",
    "set_read_limits",
]


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class ReadLimits:
    """Limits on what a reader allocates for one record or archive member."""

    #: Largest decompressed record (container) or member (``.scarlet``), in bytes.
    max_record_bytes: int = 256 << 20
    #: Largest decompressed / compressed size ratio (for records above ``ratio_floor``).
    max_ratio: int = 100
    #: Records up to this many decompressed bytes are not held to ``max_ratio``.
    ratio_floor: int = 1 << 20
    #: Largest blend box (pixels): rebuilding a blend allocates bands x its box.
    max_blend_pixels: int = 1 << 24


_LIMITS = ReadLimits(
    max_record_bytes=_env_int("VERMILION_MAX_RECORD_BYTES", ReadLimits.max_record_bytes),
    max_ratio=_env_int("VERMILION_MAX_RATIO", ReadLimits.max_ratio),
    max_blend_pixels=_env_int("VERMILION_MAX_BLEND_PIXELS", ReadLimits.max_blend_pixels),
)


def read_limits() -> ReadLimits:
    """The limits in force."""
    return _LIMITS


def set_read_limits(**changes: int) -> ReadLimits:
    """Change fields of the limits in force; return the previous limits.

    Parameters
    ----------
    **changes
        ``max_record_bytes``, ``max_ratio``, ``ratio_floor`` or ``max_blend_pixels``
        (positive integers).
    """
    global _LIMITS
    for key, value in changes.items():
        if key not in ReadLimits.__dataclass_fields__:
            raise TypeError(f"unknown read limit {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"read limit {key} must be a positive integer, got {value!r}")
    previous, _LIMITS = _LIMITS, replace(_LIMITS, **changes)
    return previous


@contextmanager
def read_limits_set(**changes: int) -> Iterator[ReadLimits]:
    """Change the limits inside a ``with`` block."""
    global _LIMITS
    previous = set_read_limits(**changes)
    try:
        yield _LIMITS
    finally:
        _LIMITS = previous


def check_declared_size(raw: int, compressed: int, where: Where, field: str = "record") -> None:
    """Raise `ModelDataError` if a part declaring ``raw`` bytes from ``compressed`` is too big.

    Parameters
    ----------
    raw
        Declared decompressed size in bytes.
    compressed
        Its size in the file, in bytes.
    where, field
        What the part is, for the message.
    """
    limits = _LIMITS
    if raw < 0 or compressed < 0:
        raise where.error(f"declares a negative size ({raw} from {compressed} bytes)", field)
    if raw > limits.max_record_bytes:
        raise where.error(
            f"declares {raw} bytes decompressed, more than the limit of "
            f"{limits.max_record_bytes} (VERMILION_MAX_RECORD_BYTES)",
            field,
        )
    if raw > limits.ratio_floor and raw > limits.max_ratio * max(compressed, 1):
        raise where.error(
            f"declares {raw} bytes decompressed from {compressed}: a ratio above the "
            f"limit of {limits.max_ratio} (VERMILION_MAX_RATIO)",
            field,
        )


def check_blend_shape(shape: tuple[int, ...], where: Where) -> None:
    """Raise `ModelDataError` if a blend box of ``shape`` is beyond ``max_blend_pixels``."""
    n = math.prod(shape)
    if n > _LIMITS.max_blend_pixels:
        raise where.error(
            f"declares a {' x '.join(map(str, shape))} blend ({n} pixels), more than the "
            f"limit of {_LIMITS.max_blend_pixels} (VERMILION_MAX_BLEND_PIXELS)",
            "shape",
        )


def fits_size_problem(hdul: Any, file_size: int) -> str | None:
    """What is wrong with the sizes an (astropy) FITS file's headers declare, or None.

    An uncompressed HDU must fit in the file; a tile-compressed image may declare
    at most ``max_ratio`` times the file's size (and at least ``ratio_floor``
    bytes), so that a crafted header cannot make the reader allocate gigabytes.

    Parameters
    ----------
    hdul
        An opened ``astropy.io.fits.HDUList``.
    file_size
        The file's size in bytes.

    Returns
    -------
    str or None
        A one-line description of the first HDU at fault.
    """
    limits = _LIMITS
    for i, hdu in enumerate(hdul):
        header = hdu.header
        naxis = header.get("NAXIS", 0)
        if not isinstance(naxis, int) or naxis < 0 or naxis > 999:
            return f"HDU {i} has a bad NAXIS {naxis!r}"
        dims = [header.get(f"NAXIS{k}", 0) for k in range(1, naxis + 1)]
        bitpix = header.get("BITPIX", 8)
        if not all(isinstance(d, int) and d >= 0 for d in dims) or not isinstance(bitpix, int):
            return f"HDU {i} has bad NAXISn or BITPIX cards"
        declared = abs(bitpix) // 8 * math.prod(dims) if naxis else 0
        declared += max(int(header.get("PCOUNT", 0) or 0), 0) if not _compressed(hdu) else 0
        name = hdu.name or str(i)
        shape = "x".join(str(d) for d in dims)
        if _compressed(hdu):
            allowed = max(limits.ratio_floor, limits.max_ratio * file_size)
            if declared > allowed:
                return (
                    f"HDU {name} declares a {shape} image ({declared} bytes) in a "
                    f"{file_size}-byte file, more than {limits.max_ratio} times its size "
                    "(VERMILION_MAX_RATIO)"
                )
            continue
        start = hdu.fileinfo()["datLoc"] if hasattr(hdu, "fileinfo") else 0
        if start is not None and start + declared > file_size:
            return (
                f"HDU {name} declares {shape} ({declared} bytes of data) but the file "
                f"holds only {max(file_size - start, 0)} bytes after its header"
            )
    return None


def _compressed(hdu: Any) -> bool:
    return type(hdu).__name__ == "CompImageHDU"


def check_fits_sizes(hdul: Any, path: str | os.PathLike, error: type = ValueError) -> None:
    """Raise ``error`` when an HDU of ``hdul`` declares data the file cannot hold.

    Called right after ``astropy.io.fits.open``, before any pixel or table is read.

    Parameters
    ----------
    hdul
        The opened ``HDUList`` of ``path``.
    path
        Its file (for the size and the message).
    error
        The exception type to raise (the caller's "corrupt file" error).
    """
    problem = fits_size_problem(hdul, os.path.getsize(path))
    if problem is not None:
        raise error(f"{os.fspath(path)}: {problem}")


@contextmanager
def open_fits_checked(
    path: str | os.PathLike, error: type = ValueError, **kwargs: Any
) -> Iterator[Any]:
    """``astropy.io.fits.open(path, **kwargs)``, refused by `check_fits_sizes` if need be."""
    import warnings

    from astropy.io import fits

    with warnings.catch_warnings():
        # said better by check_fits_sizes (astropy warns as it opens and loads headers)
        warnings.filterwarnings("ignore", message="File may have been truncated")
        hdul = fits.open(path, **kwargs)
        try:
            check_fits_sizes(hdul, path, error)
        except BaseException:
            hdul.close()
            raise
    with hdul:
        yield hdul
