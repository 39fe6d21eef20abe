"""Metadata with arrays, encoded as Rubin encodes it: flat ``key`` + ``key_shape`` (+ dtype).

Used by the Rubin JSON formats and by our container (record headers are JSON).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._fields import Where, as_dict, as_int, as_list, as_shape, as_str, float_array, require

__all__ = ["decode_metadata", "encode_metadata"]


def decode_metadata(m: Any, w: Where, field: str) -> dict[str, Any]:
    """Decode Rubin metadata: arrays as flat ``key`` + ``key_shape`` (+ ``key_dtype``)."""
    if m is None:
        return {}
    m = dict(as_dict(m, w, field))
    keys = m.pop("array_keys", [])
    for key in as_list(keys, w, f"{field}.array_keys"):
        key = as_str(key, w, f"{field}.array_keys")
        values = require(m, key, w, f"{field}.{key}")
        shape = m.pop(f"{key}_shape", None)
        if shape is None:
            shape = m.pop(f"{key}Shape", None)
        if shape is None:
            raise w.error("missing field", f"{field}.{key}_shape")
        shape = as_shape(shape, None, w, f"{field}.{key}_shape")
        dtype = m.pop(f"{key}_dtype", "float32")
        if dtype == "bool":
            arr = float_array(values, shape, w, f"{field}.{key}") != 0
        elif isinstance(dtype, str) and dtype.startswith(("int", "uint")):
            vals = as_list(values, w, f"{field}.{key}")
            if len(vals) != math.prod(shape):
                raise w.error(
                    f"array has {len(vals)} values but its shape {shape} needs {math.prod(shape)}",
                    f"{field}.{key}",
                )
            arr = np.array([as_int(v, w, f"{field}.{key}") for v in vals], dtype=np.int64)
            arr = arr.reshape(shape)
        elif isinstance(dtype, str) and dtype.startswith("float"):
            arr = float_array(values, shape, w, f"{field}.{key}")
        else:
            raise w.error(f"unsupported array dtype {dtype!r}", f"{field}.{key}_dtype")
        m[key] = arr
    return m


def encode_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    array_keys = []
    for key, value in meta.items():
        if isinstance(value, np.ndarray):
            out[key] = value.ravel().tolist()
            out[f"{key}_dtype"] = str(value.dtype)  # "bool" for masks
            out[f"{key}_shape"] = list(value.shape)
            array_keys.append(key)
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    if array_keys:
        out["array_keys"] = array_keys
    return out
