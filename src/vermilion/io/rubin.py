"""The Rubin model-data formats: legacy JSON (A and B / v29), versioned JSON and ``.scarlet``.

Reading migrates every format to the versioned form (model schema 1.0.1, blend
schema 1.0.0) through the registries in `vermilion.io.migration` and parses that
form only. Writing produces versioned JSON (``model_type`` "lsst", version 1.0.1),
either as one document or as a Rubin archive (a ZIP of one JSON member per parent
id plus ``metadata`` and ``version``, stored uncompressed).

Fields we add to a blend's ``metadata`` (Rubin readers keep them as metadata):
``psf`` / ``bands`` / ``model_psf`` where the blend's differ from the patch's,
``psf_center`` (x, y; Rubin's order for that name) and ``spans`` (the parent
footprint on the blend box).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any

import numpy as np

from vermilion.core.files import atomic_write_file

from ._fields import (
    NOWHERE,
    Where,
    as_bands,
    as_dict,
    as_float,
    as_id,
    as_int,
    as_int_tuple,
    as_list,
    as_peak,
    as_shape,
    as_str,
    float_array,
    require,
)
from .data import (
    CURRENT_SCHEMA,
    BlendData,
    CubeComponentData,
    FactorizedComponentData,
    IsolatedSourceData,
    ModelData,
    SourceData,
    argmax_peak,
    normalize_model_psf,
)
from .errors import ModelDataError
from .migration import PRE_SCHEMA, MigrationRegistry

__all__ = [
    "BLEND_MIGRATIONS",
    "MODEL_MIGRATIONS",
    "model_from_dict",
    "model_to_dict",
    "write_archive",
    "write_json",
]

MODEL_MIGRATIONS = MigrationRegistry("model", CURRENT_SCHEMA)
BLEND_MIGRATIONS = MigrationRegistry("blend", "1.0.0")
# Leaves with a version field but no migrations yet: only the version check applies.
SOURCE_VERSIONS = MigrationRegistry("source", "1.0.0")
COMPONENT_VERSIONS = MigrationRegistry("component", "1.0.0")
ISOLATED_VERSIONS = MigrationRegistry("isolated source", "1.0.0")

MODEL_TYPES = ("lsst", "scarlet_model")
HIERARCHICAL_TYPES = ("hierarchical", "hierarchical_blend")
ARCHIVE_META_MEMBERS = ("metadata", "version", "psf", "psf_shape")


# ---- migrations ---------------------------------------------------------------------


@MODEL_MIGRATIONS.register(PRE_SCHEMA, "1.0.0")
def _model_pre_schema(d: dict) -> dict:
    """Legacy A/B top level (``psfShape``, ``psf``, ``bands``/``filters``) -> metadata."""
    if "metadata" not in d:
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


@MODEL_MIGRATIONS.register("1.0.0", "1.0.1")
def _model_1_0_0(d: dict) -> dict:
    """1.0.1 only adds ``footprint: null`` to the metadata."""
    meta = d.get("metadata")
    if meta is None:
        d["metadata"] = meta = {}
    if isinstance(meta, dict):
        meta.setdefault("footprint", None)
    return d


@BLEND_MIGRATIONS.register(PRE_SCHEMA, "1.0.0")
def _blend_pre_schema(b: dict) -> dict:
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
        ws = Where(source_id=as_id(key, w, "sources"))
        s = as_dict(s, ws, "source")
        comps = []
        for kind, convert in (("factorized", factorized), ("components", cube)):
            for i, c in enumerate(as_list(s.get(kind, []), ws, kind)):
                comps.append(convert(as_dict(c, ws, f"{kind}[{i}]"), ws, f"{kind}[{i}]"))
        peak_id = s.get("peak_id", s.get("peakId"))
        sources[key] = {
            "source_type": "source",
            "components": comps,
            "metadata": {} if peak_id is None else {"peak_id": peak_id},
        }
    return {
        "blend_type": "blend",
        "origin": origin,
        "shape": shape,
        "sources": sources,
        "metadata": meta,
        "version": "1.0.0",
    }


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


# ---- metadata arrays ----------------------------------------------------------------


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


# ---- parsing the versioned form -----------------------------------------------------


def parse_component(c: Any, w: Where, f: str) -> FactorizedComponentData | CubeComponentData:
    c = as_dict(c, w, f)
    ctype = require(c, "component_type", w, f"{f}.component_type")
    if "version" in c:
        COMPONENT_VERSIONS.check(c["version"], f"{f}.version")
    origin = as_int_tuple(require(c, "origin", w, f"{f}.origin"), 2, w, f"{f}.origin")
    peak_raw = require(c, "peak", w, f"{f}.peak")
    if ctype == "factorized":
        shape = as_shape(require(c, "shape", w, f"{f}.shape"), 2, w, f"{f}.shape")
        spec_raw = as_list(require(c, "spectrum", w, f"{f}.spectrum"), w, f"{f}.spectrum")
        spectrum = float_array(spec_raw, (len(spec_raw),), w, f"{f}.spectrum")
        morph = float_array(require(c, "morph", w, f"{f}.morph"), shape, w, f"{f}.morph")
        peak = argmax_peak(morph, origin) if peak_raw is None else as_peak(peak_raw, w, f"{f}.peak")
        return FactorizedComponentData(origin, peak, spectrum, morph)
    if ctype in ("component", "cube"):
        shape = as_shape(require(c, "shape", w, f"{f}.shape"), 3, w, f"{f}.shape")
        model = float_array(require(c, "model", w, f"{f}.model"), shape, w, f"{f}.model")
        peak = argmax_peak(model, origin) if peak_raw is None else as_peak(peak_raw, w, f"{f}.peak")
        return CubeComponentData(origin, peak, model)
    raise w.error(f"unknown component type {str(ctype)[:40]!r}", f"{f}.component_type")


def parse_source(s: Any, w: Where) -> SourceData:
    s = as_dict(s, w, "source")
    stype = s.get("source_type", "source")
    if stype != "source":
        raise w.error(f"unknown source type {str(stype)[:40]!r}", "source_type")
    if "version" in s:
        SOURCE_VERSIONS.check(s["version"], "version")
    raw = as_list(require(s, "components", w, "components"), w, "components")
    comps = [parse_component(c, w, f"components[{i}]") for i, c in enumerate(raw)]
    meta = decode_metadata(s.get("metadata"), w, "metadata")
    peak_id = meta.pop("peak_id", None)
    if peak_id is not None:
        peak_id = as_int(peak_id, w, "metadata.peak_id")
    if "id" in meta and meta["id"] == w.source_id:
        del meta["id"]
    return SourceData(comps, peak_id, meta or None)


def _migrate(registry: MigrationRegistry, d: dict, w: Where) -> dict:
    try:
        return registry.migrate(d, d.get("version", PRE_SCHEMA))
    except ModelDataError as e:
        raise e.with_context(blend_id=w.blend_id, source_id=w.source_id) from None


def parse_blend(d: Any, blend_id: int) -> BlendData:
    """A blend dict of any Rubin version -> `BlendData` (hierarchical blends flattened)."""
    w = Where(blend_id)
    d = _migrate(BLEND_MIGRATIONS, as_dict(d, w, "blend"), w)
    btype = d.get("blend_type", "blend")
    if btype == "blend":
        return _parse_flat_blend(d, w)
    if btype in HIERARCHICAL_TYPES:
        return _parse_hierarchical(d, w)
    raise w.error(f"unknown blend type {str(btype)[:40]!r}", "blend_type")


def _parse_flat_blend(d: dict, w: Where) -> BlendData:
    origin = as_int_tuple(require(d, "origin", w), 2, w, "origin")
    shape = as_shape(require(d, "shape", w), 2, w, "shape")
    meta = decode_metadata(d.get("metadata"), w, "metadata")
    bands = meta.pop("bands", None)
    if bands is not None:
        bands = as_bands(bands, w, "metadata.bands")
    psf = meta.pop("psf", None)
    if psf is not None and (not isinstance(psf, np.ndarray) or psf.ndim != 3):
        raise w.error("the observed PSF must be a (bands, h, w) array", "metadata.psf")
    if psf is not None and bands is not None and psf.shape[0] != len(bands):
        raise w.error(f"{psf.shape[0]} PSF bands for {len(bands)} bands", "metadata.psf")
    model_psf = meta.pop("model_psf", None)
    if model_psf is not None:
        model_psf = normalize_model_psf(model_psf, w, "metadata.model_psf")
    psf_center = meta.pop("psf_center", None)
    if psf_center is not None:
        x, y = as_peak(psf_center, w, "metadata.psf_center")
        psf_center = (float(y), float(x))
    footprint = meta.pop("spans", None)
    if footprint is not None:
        footprint = np.asarray(footprint) != 0
        if footprint.shape != shape:
            raise w.error(
                f"spans shape {footprint.shape} differs from the blend shape {shape}",
                "metadata.spans",
            )
    sources = {}
    for key, s in as_dict(require(d, "sources", w), w, "sources").items():
        sid = as_id(key, w, "sources")
        sources[sid] = parse_source(s, w.source(sid))
    return BlendData(
        origin, shape, sources, psf_center, psf, bands, model_psf, footprint, meta or None
    )


def _parse_hierarchical(d: dict, w: Where) -> BlendData:
    """A parent of several child blends: one `BlendData` with all their sources."""
    children = as_dict(require(d, "children", w), w, "children")
    meta = decode_metadata(d.get("metadata"), w, "metadata")
    sources: dict[int, SourceData] = {}
    first: BlendData | None = None
    boxes = []
    for key, child in children.items():
        cid = as_id(key, w, "children")
        cb = parse_blend(child, cid)
        first = first or cb
        boxes.append((cb.origin, cb.shape))
        for sid, src in cb.sources.items():
            if sid in sources:
                raise w.source(sid).error("source id appears in two child blends", "children")
            sources[sid] = src
    spans = meta.pop("spans", None)
    footprint = None
    if spans is not None:
        footprint = np.asarray(spans) != 0
        if footprint.ndim != 2:
            raise w.error("spans must be a 2D array", "metadata.spans")
        origin = as_int_tuple(
            require(meta, "origin", w, "metadata.origin"), 2, w, "metadata.origin"
        )
        meta.pop("origin")
        shape = footprint.shape
    elif boxes:
        y0 = min(o[0] for o, _ in boxes)
        x0 = min(o[1] for o, _ in boxes)
        y1 = max(o[0] + s[0] for o, s in boxes)
        x1 = max(o[1] + s[1] for o, s in boxes)
        origin, shape = (y0, x0), (y1 - y0, x1 - x0)
    else:
        raise w.error("a hierarchical blend needs children or spans", "children")
    return BlendData(
        origin,
        tuple(shape),
        sources,
        first.psf_center if first else None,
        first.psf if first else None,
        first.bands if first else None,
        first.model_psf if first else None,
        footprint,
        meta or None,
    )


def parse_isolated(d: Any, source_id: int) -> IsolatedSourceData:
    w = Where(source_id=source_id)
    d = as_dict(d, w, "isolated")
    stype = d.get("source_type", "isolated")
    if stype != "isolated":
        raise w.error(f"unknown source type {str(stype)[:40]!r}", "source_type")
    if "version" in d:
        ISOLATED_VERSIONS.check(d["version"], "version")
    origin = as_int_tuple(require(d, "origin", w), 2, w, "origin")
    shape = as_shape(require(d, "shape", w), 2, w, "shape")
    peak = as_peak(require(d, "peak", w), w, "peak")
    span = float_array(require(d, "span_array", w), shape, w, "span_array")
    meta = decode_metadata(d.get("metadata"), w, "metadata")
    return IsolatedSourceData(origin, peak, span, meta or None)


def parse_model_header(d: Any) -> tuple[ModelData, dict, dict]:
    """The model-level part of a Rubin document: (metadata-only `ModelData`, blends, isolated).

    The blends and isolated sources are returned still encoded, to be parsed on demand.
    """
    d = as_dict(d, NOWHERE, "model")
    if "version" not in d and "blends" not in d:
        raise ModelDataError("not a model-data document (no 'blends' and no 'version')")
    d = MODEL_MIGRATIONS.migrate(d, d.get("version", PRE_SCHEMA))
    mtype = d.get("model_type", "scarlet_model")
    if mtype not in MODEL_TYPES:
        raise ModelDataError(f"unknown model type {str(mtype)[:40]!r}", field="model_type")
    meta = decode_metadata(d.get("metadata"), NOWHERE, "metadata")
    model_psf = meta.pop("model_psf", None)
    psf = meta.pop("psf", None)
    bands = meta.pop("bands", None)
    if meta.get("footprint", 0) is None:
        del meta["footprint"]
    if bands is not None:
        bands = as_bands(bands, NOWHERE, "metadata.bands")
    if psf is not None and (not isinstance(psf, np.ndarray) or psf.ndim != 3):
        raise ModelDataError("the observed PSF must be a (bands, h, w) array", field="metadata.psf")
    if model_psf is not None and not isinstance(model_psf, np.ndarray):
        raise ModelDataError("the model PSF must be an array", field="metadata.model_psf")
    model = ModelData(bands, model_psf, observed_psf=psf, metadata=meta)
    blends = d.get("blends")
    isolated = d.get("isolated")
    blends = {} if blends is None else as_dict(blends, NOWHERE, "blends")
    isolated = {} if isolated is None else as_dict(isolated, NOWHERE, "isolated")
    return model, blends, isolated


def model_from_dict(d: Any, blend_ids=None) -> ModelData:
    """A whole decoded Rubin JSON document -> `ModelData` (only ``blend_ids`` if given)."""
    from .readers import DictReader

    return DictReader(d).read(blend_ids)


# ---- writing ------------------------------------------------------------------------


def _peak_list(peak) -> list:
    return [int(p) if float(p).is_integer() else float(p) for p in peak]


def component_to_dict(c) -> dict:
    if isinstance(c, FactorizedComponentData):
        return {
            "component_type": "factorized",
            "origin": [int(o) for o in c.origin],
            "shape": [int(s) for s in c.morph.shape],
            "peak": _peak_list(c.peak),
            "spectrum": c.spectrum.tolist(),
            "morph": c.morph.ravel().tolist(),
            "version": COMPONENT_VERSIONS.current,
        }
    if isinstance(c, CubeComponentData):
        return {
            "component_type": "component",
            "origin": [int(o) for o in c.origin],
            "shape": [int(s) for s in c.model.shape],
            "peak": _peak_list(c.peak),
            "model": c.model.ravel().tolist(),
            "version": COMPONENT_VERSIONS.current,
        }
    raise ModelDataError(f"unknown component type {type(c).__name__}", field="components")


def source_to_dict(source_id: int, s: SourceData) -> dict:
    meta: dict[str, Any] = dict(s.metadata or {})
    if s.peak_id is not None:
        meta["peak_id"] = int(s.peak_id)
    meta.setdefault("id", int(source_id))
    return {
        "source_type": "source",
        "components": [component_to_dict(c) for c in s.components],
        "metadata": encode_metadata(meta),
        "version": SOURCE_VERSIONS.current,
    }


def blend_to_dict(blend: BlendData, model: ModelData) -> dict:
    meta: dict[str, Any] = dict(blend.metadata or {})
    own = model.own_fields(blend)
    if "bands" in own:
        meta["bands"] = list(own["bands"])
    if "psf" in own:
        meta["psf"] = own["psf"]
    if "model_psf" in own:
        meta["model_psf"] = own["model_psf"]
    if blend.psf_center is not None:
        meta["psf_center"] = [float(blend.psf_center[1]), float(blend.psf_center[0])]
    if blend.footprint is not None:
        meta["spans"] = np.asarray(blend.footprint, dtype=bool)
    out = {
        "blend_type": "blend",
        "origin": [int(o) for o in blend.origin],
        "shape": [int(s) for s in blend.shape],
        "sources": {str(sid): source_to_dict(sid, s) for sid, s in blend.sources.items()},
        "version": BLEND_MIGRATIONS.current,
    }
    if meta:
        out["metadata"] = encode_metadata(meta)
    return out


def isolated_to_dict(iso: IsolatedSourceData) -> dict:
    out = {
        "source_type": "isolated",
        "origin": [int(o) for o in iso.origin],
        "shape": [int(s) for s in iso.span_array.shape],
        "peak": _peak_list(iso.peak),
        "span_array": iso.span_array.ravel().tolist(),
        "version": ISOLATED_VERSIONS.current,
    }
    if iso.metadata:
        out["metadata"] = encode_metadata(iso.metadata)
    return out


def model_metadata_to_dict(model: ModelData) -> dict:
    meta: dict[str, Any] = dict(model.metadata)
    if model.psf is not None:
        meta["model_psf"] = model.psf
    if model.observed_psf is not None:
        meta["psf"] = model.observed_psf
    if model.bands is not None:
        meta["bands"] = list(model.bands)
    meta.setdefault("footprint", None)
    return encode_metadata(meta)


def model_to_dict(model: ModelData) -> dict:
    """The versioned Rubin form (``model_type`` "lsst", version 1.0.1) of a whole model."""
    model.validate()
    return {
        "model_type": "lsst",
        "version": MODEL_MIGRATIONS.current,
        "metadata": model_metadata_to_dict(model),
        "blends": {str(bid): blend_to_dict(b, model) for bid, b in model.blends.items()},
        "isolated": {str(sid): isolated_to_dict(s) for sid, s in model.isolated.items()},
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def write_json(model: ModelData, path: str | os.PathLike) -> None:
    """Write the versioned Rubin JSON document, atomically."""
    text = _dumps(model_to_dict(model)).encode()
    atomic_write_file(path, lambda f: f.write(text))


def write_archive(model: ModelData, path: str | os.PathLike) -> None:
    """Write a Rubin ``.scarlet`` archive (ZIP, members stored), atomically."""
    model.validate()

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for bid, blend in model.blends.items():
                zf.writestr(str(bid), _dumps(blend_to_dict(blend, model)))
            for sid, iso in model.isolated.items():
                zf.writestr(str(sid), _dumps(isolated_to_dict(iso)))
            zf.writestr("metadata", _dumps(model_metadata_to_dict(model)))
            zf.writestr("version", _dumps(MODEL_MIGRATIONS.current))

    atomic_write_file(path, write)
