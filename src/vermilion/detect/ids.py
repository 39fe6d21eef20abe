"""64-bit source ids, unique in a repository.

Bit layout of a source id (a signed 64-bit integer whose sign bit is always 0)::

    bit 63        sign, always 0 (ids are positive)
    bits 47..62   tract     (16 bits, 0 .. 65535)
    bits 31..46   patch     (16 bits, 0 .. 65535; a sky map's sequential patch index)
    bits  0..30   sequence  (31 bits, 1 .. 2**31 - 1, unique within one tract/patch)

Sequence number 0 is reserved: with tract 0 and patch 0 it would give id 0, which
means "no parent" in a catalog's ``parent`` column.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PATCH_BITS",
    "SEQ_BITS",
    "TRACT_BITS",
    "make_source_id",
    "unpack_source_id",
]

TRACT_BITS = 16
PATCH_BITS = 16
SEQ_BITS = 31

_SEQ_SHIFT = 0
_PATCH_SHIFT = SEQ_BITS
_TRACT_SHIFT = SEQ_BITS + PATCH_BITS

MAX_TRACT = (1 << TRACT_BITS) - 1
MAX_PATCH = (1 << PATCH_BITS) - 1
MAX_SEQ = (1 << SEQ_BITS) - 1


def _check_range(name: str, value, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return arr


def make_source_id(tract, patch, seq):
    """Pack ``(tract, patch, seq)`` into a 64-bit source id.

    Parameters
    ----------
    tract
        Tract number, 0 .. 65535 (16 bits).
    patch
        Sequential patch index within the tract, 0 .. 65535 (16 bits).
    seq
        Sequence number within the patch, 1 .. 2**31 - 1 (31 bits).

    Returns
    -------
    int or numpy.ndarray
        A Python ``int`` for scalar input, an ``int64`` array for array input
        (broadcast over the three arguments).

    Raises
    ------
    ValueError
        If any argument is not an integer or lies outside its range.
    """
    t = _check_range("tract", tract, 0, MAX_TRACT)
    p = _check_range("patch", patch, 0, MAX_PATCH)
    s = _check_range("seq", seq, 1, MAX_SEQ)
    out = (t << _TRACT_SHIFT) | (p << _PATCH_SHIFT) | (s << _SEQ_SHIFT)
    if out.ndim == 0:
        return int(out)
    return out.astype(np.int64)


def unpack_source_id(source_id):
    """Split a source id into ``(tract, patch, seq)``.

    Parameters
    ----------
    source_id
        One id (int) or an integer array of ids.

    Returns
    -------
    tuple
        ``(tract, patch, seq)`` as ints (scalar input) or int64 arrays.

    Raises
    ------
    ValueError
        If an id is negative, not an integer, or has sequence number 0.
    """
    ids = np.asarray(source_id)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"source ids must be integers, got {source_id!r}")
    if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
        raise ValueError(f"source ids must fit in 63 bits, got {source_id!r}")
    ids = ids.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError(f"source ids must not be negative, got {source_id!r}")
    tract = (ids >> _TRACT_SHIFT) & MAX_TRACT
    patch = (ids >> _PATCH_SHIFT) & MAX_PATCH
    seq = (ids >> _SEQ_SHIFT) & MAX_SEQ
    if seq.size and seq.min() == 0:
        raise ValueError(f"source id with sequence number 0 is not valid: {source_id!r}")
    if ids.ndim == 0:
        return int(tract), int(patch), int(seq)
    return tract, patch, seq
