"""Rubin's versioned model-data JSON (``lsst.scarlet.lite`` schema 1.0.x), read and written.

Reading migrates every Rubin layout (legacy A and B, see `vermilion.io.rubin_legacy`;
versioned 1.0.0) to the current versioned form through `vermilion.io.schema` and
parses that form only. Writing produces versioned JSON (``model_type`` "lsst",
version 1.0.1). `vermilion.io.rubin_archive` stores the same dicts one per member.

Fields we add to a blend's ``metadata`` (Rubin readers keep them as metadata):
``psf`` / ``bands`` / ``model_psf`` where the blend's differ from the patch's,
``psf_center`` (x, y; Rubin's order for that name) and ``spans`` (the parent
footprint on the blend box).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np

from vermilion.core.files import atomic_write_file

from . import registry
from ._fields import (
    NOWHERE,
    Where,
    as_bands,
    as_dict,
    as_id,
    as_int,
    as_int_tuple,
    as_list,
    as_peak,
    as_shape,
    as_source_id,
    float_array,
    require,
)
from .components import (
    CubeComponentData,
    FactorizedComponentData,
    IsolatedSourceData,
    SourceData,
    argmax_peak,
    normalize_model_psf,
)
from .data import BlendData, ModelData
from .errors import ModelDataError
from .limits import check_blend_shape
from .metadata import decode_metadata, encode_metadata
from .migration import PRE_SCHEMA, MigrationRegistry
from .readers import DECODE_ERRORS, ModelDataReader, gc_paused
from .schema import (
    BLEND_MIGRATIONS,
    COMPONENT_VERSIONS,
    ISOLATED_VERSIONS,
    MODEL_MIGRATIONS,
    SOURCE_VERSIONS,
)

__all__ = [
    "DictReader",
    "UnknownModelTypeWarning",
    "blend_to_dict",
    "dumps",
    "isolated_to_dict",
    "model_from_dict",
    "model_metadata_to_dict",
    "model_to_dict",
    "parse_blend",
    "parse_isolated",
    "parse_model_header",
    "write_json",
]

MODEL_TYPES = ("lsst", "scarlet_model")


class UnknownModelTypeWarning(UserWarning):
    """A model file whose ``model_type`` is not one vermilion knows (it is read anyway)."""


HIERARCHICAL_TYPES = ("hierarchical", "hierarchical_blend")


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


def parse_blend(d: Any, blend_id: int, source_table: dict | None = None) -> BlendData:
    """A blend dict of any Rubin version -> `BlendData`.

    A hierarchical blend keeps its children (``BlendData.children``, nested as
    stored) and also lists all their sources as its own (``sources``).
    ``source_table``: ``{source_id: SourceData}`` when ``sources`` holds ids only
    (the children of a hierarchical blend in our container).
    """
    w = Where(blend_id)
    d = _migrate(BLEND_MIGRATIONS, as_dict(d, w, "blend"), w)
    btype = d.get("blend_type", "blend")
    if btype == "blend":
        return _parse_flat_blend(d, w, source_table)
    if btype in HIERARCHICAL_TYPES:
        return _parse_hierarchical(d, w, source_table)
    raise w.error(f"unknown blend type {str(btype)[:40]!r}", "blend_type")


def _parse_flat_blend(d: dict, w: Where, source_table: dict | None = None) -> BlendData:
    origin = as_int_tuple(require(d, "origin", w), 2, w, "origin")
    shape = as_shape(require(d, "shape", w), 2, w, "shape")
    check_blend_shape(shape, w)
    meta = decode_metadata(d.get("metadata"), w, "metadata")
    bands = meta.pop("bands", None)
    if bands is not None:
        bands = as_bands(bands, w, "metadata.bands")
    psf = meta.pop("psf", None)
    if psf is not None and (not isinstance(psf, np.ndarray) or psf.ndim != 3):
        raise w.error("the observed PSF must be a (bands, h, w) array", "metadata.psf")
    if psf is not None and bands is not None and psf.shape[0] != len(bands):
        raise w.error(f"{psf.shape[0]} PSF bands for {len(bands)} bands", "metadata.psf")
    if psf is not None:
        psf = psf.astype(np.float32, copy=False)
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
    if source_table is not None:
        for key in as_list(require(d, "sources", w), w, "sources"):
            sid = as_source_id(key, w, "sources")
            if sid not in source_table:
                raise w.source(sid).error("a child blend names a source the blend lacks", "sources")
            sources[sid] = source_table[sid]
    else:
        for key, s in as_dict(require(d, "sources", w), w, "sources").items():
            sid = as_source_id(key, w, "sources")
            sources[sid] = parse_source(s, w.source(sid))
    return BlendData(
        origin, shape, sources, psf_center, psf, bands, model_psf, footprint, meta or None
    )


def _parse_hierarchical(d: dict, w: Where, source_table: dict | None = None) -> BlendData:
    """A parent of several child blends: its children, and all their sources as its own."""
    children = as_dict(require(d, "children", w), w, "children")
    meta = decode_metadata(d.get("metadata"), w, "metadata")
    sources: dict = {}
    kids: dict[int, BlendData] = {}
    first: BlendData | None = None
    boxes = []
    for key, child in children.items():
        cid = as_id(key, w, "children")
        cb = parse_blend(child, cid, source_table)
        kids[cid] = cb
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
        children=kids,
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
    check_blend_shape(shape, w)
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
        # lsst.scarlet.lite reads the document whatever its model_type: so do we
        warnings.warn(
            f"model_type {str(mtype)[:40]!r} is not one of {list(MODEL_TYPES)}; "
            "read as a scarlet model, as lsst.scarlet.lite does",
            UnknownModelTypeWarning,
            stacklevel=2,
        )
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
    meta.setdefault("id", source_id if isinstance(source_id, str) else int(source_id))
    return {
        "source_type": "source",
        "components": [component_to_dict(c) for c in s.components],
        "metadata": encode_metadata(meta),
        "version": SOURCE_VERSIONS.current,
    }


def blend_to_dict(blend: BlendData, model: ModelData, source_ids_only: bool = False) -> dict:
    """The versioned Rubin dict of a blend (hierarchical blends with their children).

    ``source_ids_only``: list the sources' ids instead of the sources (our container
    stores the components of a hierarchical blend's children in its own table).
    """
    if blend.children is not None:
        return _hierarchical_to_dict(blend, model, source_ids_only)
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
    if source_ids_only:
        sources: Any = list(blend.sources)
    else:
        sources = {str(sid): source_to_dict(sid, s) for sid, s in blend.sources.items()}
    out = {
        "blend_type": "blend",
        "origin": [int(o) for o in blend.origin],
        "shape": [int(s) for s in blend.shape],
        "sources": sources,
        "version": BLEND_MIGRATIONS.current,
    }
    if meta:
        out["metadata"] = encode_metadata(meta)
    return out


def _hierarchical_to_dict(blend: BlendData, model: ModelData, source_ids_only: bool) -> dict:
    meta: dict[str, Any] = dict(blend.metadata or {})
    if blend.footprint is not None:
        meta["spans"] = np.asarray(blend.footprint, dtype=bool)
        meta["origin"] = [int(o) for o in blend.origin]
    out: dict[str, Any] = {
        "blend_type": "hierarchical",
        "children": {
            str(cid): blend_to_dict(child, model, source_ids_only)
            for cid, child in blend.children.items()
        },
        "version": "1.0.0",
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


def dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def write_json(model: ModelData, path: str | os.PathLike) -> None:
    """Write the versioned Rubin JSON document, atomically."""
    text = dumps(model_to_dict(model)).encode()
    atomic_write_file(path, lambda f: f.write(text))


# ---- the JSON document as a reader ------------------------------------------------


class DictReader(ModelDataReader):
    """A decoded Rubin JSON document; blends are parsed when asked for."""

    def __init__(self, document: Any, path: str | None = None) -> None:
        try:
            model, self._raw_blends, self._raw_isolated = parse_model_header(document)
        except ModelDataError as e:
            raise e.with_context(path=path) from None
        super().__init__(model, path)
        self.source_format = _json_format_name(document)
        self._ids: dict[int, str] | None = None
        self._iso_ids: dict[int, str] | None = None

    def _index(self) -> dict[int, str]:
        if self._ids is None:
            self._ids = {as_id(k, NOWHERE, "blends"): k for k in self._raw_blends}
        return self._ids

    def blend_ids(self) -> list[int]:
        return list(self._index())

    def __contains__(self, blend_id: object) -> bool:
        try:
            return self._key(blend_id) in self._index()
        except KeyError:
            return False

    def _blend(self, blend_id: int) -> BlendData:
        key = self._index()[blend_id]
        return parse_blend(self._raw_blends[key], blend_id)

    def isolated_ids(self) -> list[int]:
        if self._iso_ids is None:
            self._iso_ids = {as_id(k, NOWHERE, "isolated"): k for k in self._raw_isolated}
        return list(self._iso_ids)

    def get_isolated(self, source_id: int) -> IsolatedSourceData:
        self.isolated_ids()
        return parse_isolated(self._raw_isolated[self._iso_ids[source_id]], source_id)


def _json_format_name(document: Any) -> str:
    if isinstance(document, dict) and "version" in document:
        return f"rubin-json-{document.get('version')}"
    blends = document.get("blends") if isinstance(document, dict) else None
    if isinstance(blends, dict):
        for b in blends.values():
            if isinstance(b, dict) and "xy0" in b:
                return "rubin-legacy-a"
            break
    return "rubin-legacy-b"


def _read_json(path: str) -> DictReader:
    try:
        with open(path, "rb") as f, gc_paused():
            document = json.loads(f.read())
    except OSError as e:
        raise ModelDataError(f"cannot read: {e}", path=path) from e
    except DECODE_ERRORS as e:
        raise ModelDataError(f"not valid JSON: {type(e).__name__}: {e}", path=path) from e
    return DictReader(document, path)


def _write_json(model: ModelData, path: str | os.PathLike, **_options) -> None:
    write_json(model, path)


registry.register_format(
    "json",
    # a JSON object (leading white space allowed); an empty file is reported as bad JSON
    identify=lambda head: head.lstrip()[:1] in (b"{", b""),
    reader=_read_json,
    writer=_write_json,
    extensions=(".json",),
)
