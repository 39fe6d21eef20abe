"""Checked conversion of untrusted values (decoded JSON, container headers) into typed fields.

Every function raises `ModelDataError` naming the blend, the source and the field;
nothing else escapes for bad input.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .errors import ModelDataError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Largest array side we accept from a file (far beyond any blend or PSF).
MAX_SIDE = 1 << 16
# Largest number of elements in one stored array.
MAX_ELEMENTS = 1 << 30

# Longest string source id accepted.
MAX_ID_CHARS = 256

_ID_RE = re.compile(r"-?[0-9]{1,20}")


class Where:
    """Where a value sits (blend and source ids), for error messages."""

    __slots__ = ("blend_id", "source_id")

    def __init__(self, blend_id: int | None = None, source_id: int | str | None = None) -> None:
        self.blend_id = blend_id
        self.source_id = source_id

    def source(self, source_id: int | str | None) -> Where:
        return Where(self.blend_id, source_id)

    def error(self, reason: str, field: str | None = None) -> ModelDataError:
        return ModelDataError(reason, blend_id=self.blend_id, source_id=self.source_id, field=field)


NOWHERE = Where()


def require(d: Any, key: str, where: Where, field: str | None = None) -> Any:
    """``d[key]``, with an error naming ``field`` if ``d`` is not a dict or lacks the key."""
    if not isinstance(d, dict):
        raise where.error(f"expected an object, got {type(d).__name__}", field)
    try:
        return d[key]
    except KeyError:
        raise where.error("missing field", field or key) from None


def as_dict(v: Any, where: Where, field: str) -> dict:
    if not isinstance(v, dict):
        raise where.error(f"expected an object, got {type(v).__name__}", field)
    return v


def as_list(v: Any, where: Where, field: str) -> list:
    if type(v) is list:
        return v
    if not isinstance(v, (list, tuple)):
        raise where.error(f"expected a list, got {type(v).__name__}", field)
    return v if isinstance(v, list) else list(v)


def as_int(v: Any, where: Where, field: str) -> int:
    """An integer (an integral float is accepted), within int64."""
    if type(v) is int and INT64_MIN <= v <= INT64_MAX:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise where.error(f"expected an integer, got {type(v).__name__}", field)
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v) or v != int(v):
            raise where.error(f"expected an integer, got {v!r}", field)
    v = int(v)
    if not INT64_MIN <= v <= INT64_MAX:
        raise where.error(f"integer {v} does not fit in 64 bits", field)
    return v


def as_float(v: Any, where: Where, field: str) -> float:
    if type(v) is float and math.isfinite(v):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise where.error(f"expected a number, got {type(v).__name__}", field)
    try:
        f = float(v)
    except OverflowError:
        raise where.error(f"number {v!r} is out of range", field) from None
    if not math.isfinite(f):
        raise where.error(f"non-finite value {f!r}", field)
    return f


def as_int_tuple(v: Any, n: int, where: Where, field: str) -> tuple[int, ...]:
    v = as_list(v, where, field)
    if len(v) != n:
        raise where.error(f"expected {n} integers, got {len(v)}", field)
    return tuple(as_int(x, where, field) for x in v)


def as_shape(v: Any, ndim: int | None, where: Where, field: str) -> tuple[int, ...]:
    """A non-negative shape of ``ndim`` dimensions (any if None), each side bounded."""
    if type(v) is list and len(v) == ndim == 2 and type(v[0]) is type(v[1]) is int:
        if 0 <= v[0] <= MAX_SIDE and 0 <= v[1] <= MAX_SIDE:
            return (v[0], v[1])
    v = as_list(v, where, field)
    if ndim is not None and len(v) != ndim:
        raise where.error(f"expected a {ndim}-dimensional shape, got {len(v)} entries", field)
    shape = tuple(as_int(x, where, field) for x in v)
    if any(s < 0 or s > MAX_SIDE for s in shape):
        raise where.error(f"shape {shape} has a side outside [0, {MAX_SIDE}]", field)
    if math.prod(shape) > MAX_ELEMENTS:
        raise where.error(f"shape {shape} is too large", field)
    return shape


def as_peak(v: Any, where: Where, field: str) -> tuple[float | int, float | int]:
    """A ``(y, x)`` position; integral values are kept as ints."""
    v = as_list(v, where, field)
    if len(v) != 2:
        raise where.error(f"expected 2 coordinates, got {len(v)}", field)
    out = []
    for x in v:
        f = as_float(x, where, field)
        out.append(int(f) if f.is_integer() and abs(f) < 2**53 else f)
    return (out[0], out[1])


def as_id(v: Any, where: Where, field: str) -> int:
    """A 64-bit id from an int or a decimal string (JSON object keys)."""
    if isinstance(v, str):
        if not _ID_RE.fullmatch(v):
            raise where.error(f"id {v[:40]!r} is not a decimal integer", field)
        v = int(v)
    return as_int(v, where, field)


def as_source_id(v: Any, where: Where, field: str) -> int | str:
    """A source id: a 64-bit integer (from an int or a decimal string), else a string id.

    lsst.scarlet.lite accepts any id for a source (its tests use ``"peak-0"``); a
    string that is not a decimal integer is kept as that string.
    """
    if isinstance(v, str) and not _ID_RE.fullmatch(v):
        if not v or len(v) > MAX_ID_CHARS:
            raise where.error(f"a string id must have 1 to {MAX_ID_CHARS} characters", field)
        return v
    return as_id(v, where, field)


def as_bands(v: Any, where: Where, field: str) -> tuple[str, ...]:
    v = as_list(v, where, field)
    if not all(isinstance(b, str) for b in v):
        raise where.error("band names must be strings", field)
    if len(set(v)) != len(v):
        raise where.error(f"duplicate band names in {v}", field)
    return tuple(v)


def as_str(v: Any, where: Where, field: str) -> str:
    if not isinstance(v, str):
        raise where.error(f"expected a string, got {type(v).__name__}", field)
    return v


def float_array(
    values: Any, shape: tuple[int, ...], where: Where, field: str, dtype: Any = np.float32
) -> np.ndarray:
    """A flat list of numbers as a finite array of ``shape`` (float32 unless ``dtype``)."""
    values = as_list(values, where, field)
    n = math.prod(shape)
    if len(values) != n:
        raise where.error(f"array has {len(values)} values but its shape {shape} needs {n}", field)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.array(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise where.error("array values must be numbers", field) from None
    if arr.ndim != 1 or arr.size != n:
        raise where.error("array values must be a flat list of numbers", field)
    check_finite(arr, where, field)
    return arr.reshape(shape)


def check_finite(arr: np.ndarray, where: Where, field: str) -> None:
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise where.error(f"{bad} non-finite value(s)", field)


def user_array(
    arr: Any, ndim: int, where: Where, field: str, first_dim: int | None = None
) -> np.ndarray:
    """Check an array handed in by a caller: ``ndim`` dimensions, finite, as float32."""
    try:
        a = np.asarray(arr, dtype=np.float32)
    except (TypeError, ValueError):
        raise where.error("not an array of numbers", field) from None
    if a.ndim != ndim:
        raise where.error(f"expected {ndim} dimensions, got shape {a.shape}", field)
    if first_dim is not None and a.shape[0] != first_dim:
        raise where.error(f"expected {first_dim} bands, got shape {a.shape}", field)
    check_finite(a, where, field)
    return a
