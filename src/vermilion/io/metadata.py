"""Metadata with arrays, encoded as Rubin encodes it: flat ``key`` + ``key_shape`` (+ dtype).

Used by the Rubin JSON formats and by our container (record headers are JSON).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._fields import Where, as_dict, as_int, as_list, as_shape, as_str, float_array, require

__all__ = ["BACKGROUND_LEVEL_KEY", "RECORDED_CONFIG_KEY", "decode_metadata", "encode_metadata"]

#: The model-data metadata entry where the deblender records its settings (a dict of
#: `vermilion.pipeline.DeblendConfig` fields). A rebuild reads three of them as its
#: defaults, so that the observation is the one the models were fitted to:
#: ``badMask``, ``useWeights`` and ``convolutionType``. The pipeline writes it under this name.
RECORDED_CONFIG_KEY = "deblend_config"

#: The blend metadata entry (``BlendData.metadata``) holding the sky levels fitted with
#: the blend's sources, ``{band: level}`` (``DeblendConfig.background="fit"``). A rebuild
#: (`vermilion.io.data_to_blend`) gives the blend that `vermilion.core.BackgroundComponent`.
BACKGROUND_LEVEL_KEY = "background_level"

# Array dtypes kept exactly through every format -> numpy kind.
_ARRAY_DTYPES = {
    "bool": "b",
    **{f"int{n}": "i" for n in (8, 16, 32, 64)},
    **{f"uint{n}": "u" for n in (8, 16, 32, 64)},
    **{f"float{n}": "f" for n in (16, 32, 64)},
}


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
        dtype = m.pop(f"{key}_dtype", "float32")  # Rubin's default (legacy files)
        m_field = f"{field}.{key}"
        kind = _ARRAY_DTYPES.get(dtype) if isinstance(dtype, str) else None
        if kind is None:
            raise w.error(f"unsupported array dtype {str(dtype)[:40]!r}", f"{m_field}_dtype")
        if kind == "b":
            arr = float_array(values, shape, w, m_field) != 0
        elif kind in "iu":
            vals = as_list(values, w, m_field)
            if len(vals) != math.prod(shape):
                raise w.error(
                    f"array has {len(vals)} values but its shape {shape} needs {math.prod(shape)}",
                    m_field,
                )
            info = np.iinfo(dtype)
            ints = [as_int(v, w, m_field) for v in vals]
            if ints and not (info.min <= min(ints) and max(ints) <= info.max):
                raise w.error(f"a value does not fit in {dtype}", m_field)
            arr = np.array(ints, dtype=dtype).reshape(shape)
        else:
            arr = float_array(values, shape, w, m_field, dtype=dtype)
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
