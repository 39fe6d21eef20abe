"""Rubin's legacy model-data JSON (before schema versions) rewritten in the versioned form.

Two layouts were written before ``lsst.scarlet.lite`` versioned its files:

- legacy A (``lsst.meas.extensions.scarlet`` up to 2023): blends with x-first
  ``xy0``/``extent``, component boxes and centres relative to the blend, ``sed`` and
  ``morph`` in ``factorized`` and cube ``model`` in ``components``;
- legacy B (v29): absolute ``(y, x)`` ``origin``/``shape``/``peak``, the observed PSF
  per blend (``psf``, ``psf_shape``, ``psf_center``), ``factorized`` components, and
  ``components`` that are either cubes or factorized components tagged
  ``component_type``.

The functions here are the ``0.0.0 -> 1.0.0`` migrations that
`vermilion.io.schema` registers; they know nothing of the data classes.
"""

from __future__ import annotations

from typing import Any

from ._fields import (
    NOWHERE,
    Where,
    as_dict,
    as_float,
    as_int_tuple,
    as_list,
    as_source_id,
    require,
)

__all__ = ["blend_pre_schema", "model_pre_schema"]


def model_pre_schema(d: dict) -> dict:
    """Legacy A/B top level (``psfShape``, ``psf``, ``bands``/``filters``) -> metadata."""
    if d.get("metadata") is None:  # absent, or null as lsst's as_dict() writes it
        meta: dict[str, Any] = {}
        if "psf" in d or "psfShape" in d:
            meta["model_psf"] = require(d, "psf", NOWHERE, "psf")
            meta["model_psf_shape"] = require(d, "psfShape", NOWHERE, "psfShape")
            meta["array_keys"] = ["model_psf"]
        bands = d.pop("bands", None)
        filters = d.pop("filters", None)
        if bands is None:
            bands = filters
        if bands is not None:
            meta["bands"] = bands
        d.pop("psf", None)
        d.pop("psfShape", None)
        d["metadata"] = meta
    d.setdefault("model_type", "lsst")
    d.setdefault("isolated", {})
    return d


def blend_pre_schema(b: dict) -> dict:
    """Legacy A (``xy0``/``extent``, x-first, relative) or B (``origin``/``factorized``)."""
    if "xy0" in b:
        return _legacy_a_blend(b)
    sources = b.get("sources")
    legacy_b = "psf_center" in b or "psf" in b
    if isinstance(sources, dict):
        legacy_b = legacy_b or any(
            isinstance(s, dict) and "factorized" in s for s in sources.values()
        )
    if legacy_b:
        return _legacy_b_blend(b)
    b.setdefault("blend_type", "blend")
    return b


def _center_to_peak(c: dict, blend_yx0, rel_origin_yx, shape_hw, w, f):
    """Legacy A centre (x, y, relative to the blend's ``xy0``) -> absolute (y, x), or None.

    Writer bugs stored the component's extent as its centre; such a centre, or one
    outside the component box, means "fall back to the model's maximum".
    """
    center = c.get("center")
    if center is None or center == c.get("extent"):
        return None
    vals = as_list(center, w, f)
    if len(vals) != 2:
        raise w.error(f"expected (x, y), got {len(vals)} values", f)
    cx, cy = (as_float(v, w, f) for v in vals)
    ry, rx = cy - rel_origin_yx[0], cx - rel_origin_yx[1]
    if not (0 <= ry < shape_hw[0] and 0 <= rx < shape_hw[1]):
        return None
    return [blend_yx0[0] + cy, blend_yx0[1] + cx]


def _legacy_blend(b: dict, origin, shape, meta: dict, factorized, cube) -> dict:
    """A legacy blend rewritten in the 1.0.0 form.

    ``factorized(c, where, field)`` and ``cube(c, where, field)`` convert one stored
    component dict of each kind.
    """
    w = NOWHERE
    sources = {}
    for key, s in as_dict(require(b, "sources", w), w, "sources").items():
        ws = Where(source_id=as_source_id(key, w, "sources"))
        s = as_dict(s, ws, "source")
        comps = []
        for kind, convert in (("factorized", factorized), ("components", cube)):
            for i, c in enumerate(as_list(s.get(kind, []), ws, kind)):
                c = as_dict(c, ws, f"{kind}[{i}]")
                if kind == "components" and c.get("component_type") == "factorized":
                    # a versioned factorized component in a legacy B list (lsst's own
                    # legacy test writes these)
                    comps.append(dict(c))
                else:
                    comps.append(convert(c, ws, f"{kind}[{i}]"))
        peak_id = s.get("peak_id", s.get("peakId"))
        smeta = _merge_encoded(s.get("metadata"), {} if peak_id is None else {"peak_id": peak_id})
        sources[key] = {"source_type": "source", "components": comps, "metadata": smeta}
    return {
        "blend_type": "blend",
        "origin": origin,
        "shape": shape,
        "sources": sources,
        "metadata": _merge_encoded(b.get("metadata"), meta),
        "version": "1.0.0",
    }


def _merge_encoded(stored: Any, extra: dict) -> dict:
    """Rubin-encoded metadata stored with a legacy object, plus the legacy fields lifted into it."""
    if not isinstance(stored, dict):
        return extra
    out = dict(stored)
    for key, value in extra.items():
        if key == "array_keys":
            out[key] = [*as_list(out.get(key, []), NOWHERE, "metadata.array_keys"), *value]
        else:
            out[key] = value
    return out


def _legacy_a_blend(b: dict) -> dict:
    """Legacy A: x-first ``xy0``/``extent``; component boxes and centres relative to the blend."""
    w = NOWHERE
    x0, y0 = as_int_tuple(require(b, "xy0", w), 2, w, "xy0")
    width, height = as_int_tuple(require(b, "extent", w), 2, w, "extent")
    meta: dict[str, Any] = {}
    if b.get("psfCenter") is not None:
        meta["psf_center"] = b["psfCenter"]
    if b.get("bands") is not None:
        meta["bands"] = b["bands"]

    def box(c: dict, ws: Where, f: str):
        cx0, cy0 = as_int_tuple(require(c, "xy0", ws, f"{f}.xy0"), 2, ws, f"{f}.xy0")
        cw, ch = as_int_tuple(require(c, "extent", ws, f"{f}.extent"), 2, ws, f"{f}.extent")
        peak = _center_to_peak(c, (y0, x0), (cy0, cx0), (ch, cw), ws, f"{f}.center")
        return [y0 + cy0, x0 + cx0], ch, cw, peak

    def factorized(c: dict, ws: Where, f: str) -> dict:
        origin, ch, cw, peak = box(c, ws, f)
        return {
            "component_type": "factorized",
            "origin": origin,
            "shape": [ch, cw],
            "peak": peak,
            "spectrum": require(c, "sed", ws, f"{f}.sed"),
            "morph": require(c, "morph", ws, f"{f}.morph"),
        }

    def cube(c: dict, ws: Where, f: str) -> dict:
        origin, ch, cw, peak = box(c, ws, f)
        model = as_list(require(c, "model", ws, f"{f}.model"), ws, f"{f}.model")
        if ch * cw <= 0 or len(model) % (ch * cw):
            raise ws.error(
                f"{len(model)} values are not a whole number of {ch}x{cw} bands", f"{f}.model"
            )
        shape = [len(model) // (ch * cw), ch, cw]
        return {
            "component_type": "component",
            "origin": origin,
            "shape": shape,
            "peak": peak,
            "model": model,
        }

    return _legacy_blend(b, [y0, x0], [height, width], meta, factorized, cube)


def _legacy_b_blend(b: dict) -> dict:
    """Legacy B (v29): absolute (y, x) ``origin``/``shape``/``peak``; the observed PSF per blend."""
    w = NOWHERE
    meta: dict[str, Any] = {}
    if b.get("psf_center") is not None:
        meta["psf_center"] = b["psf_center"]
    if b.get("psf") is not None:
        meta["psf"] = b["psf"]
        meta["psf_shape"] = require(b, "psf_shape", w)
        meta["array_keys"] = ["psf"]
    if b.get("bands") is not None:
        meta["bands"] = b["bands"]

    def common(c: dict, ws: Where, f: str, kind: str) -> dict:
        return {
            "component_type": kind,
            "origin": require(c, "origin", ws, f"{f}.origin"),
            "shape": require(c, "shape", ws, f"{f}.shape"),
            "peak": c.get("peak", c.get("center")),
        }

    def factorized(c: dict, ws: Where, f: str) -> dict:
        out = common(c, ws, f, "factorized")
        out["spectrum"] = (
            c["spectrum"] if "spectrum" in c else require(c, "sed", ws, f"{f}.spectrum")
        )
        out["morph"] = require(c, "morph", ws, f"{f}.morph")
        return out

    def cube(c: dict, ws: Where, f: str) -> dict:
        out = common(c, ws, f, "component")
        out["model"] = require(c, "model", ws, f"{f}.model")
        return out

    return _legacy_blend(b, require(b, "origin", w), require(b, "shape", w), meta, factorized, cube)
