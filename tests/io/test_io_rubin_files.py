"""Model files laid out as lsst.scarlet.lite / meas_extensions_scarlet write them.

Each case is a file the Rubin library reads; each is read here and then written and
read back in every format (container, versioned JSON, ``.scarlet`` archive) with the
data compared exactly (pixels, ids, peaks, boxes, band order, metadata and dtypes).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vermilion.io import BlendData, ModelData, SourceData
from vermilion.io.rubin_json import UnknownModelTypeWarning

BANDS = ["g", "r", "i"]
FORMATS = (".vmd", ".json", ".scarlet")


def _array(a: np.ndarray) -> dict:
    """``lsst.scarlet.lite.io.utils.numpy_to_json``."""
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.ravel().tolist()}


def _encode(meta: dict) -> dict:
    """``lsst.scarlet.lite.io.utils.encode_metadata``."""
    out, keys = {}, []
    for key, value in meta.items():
        if isinstance(value, np.ndarray):
            enc = _array(value)
            out[key], out[f"{key}_shape"], out[f"{key}_dtype"] = (
                enc["data"],
                enc["shape"],
                enc["dtype"],
            )
            keys.append(key)
        else:
            out[key] = value
    if keys:
        out["array_keys"] = keys
    return out


def _morph(seed: int, h: int = 5, w: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (h, w)).astype(np.float32)


def _factorized(seed: int, origin=(10, 20), peak=(12, 21)) -> dict:
    """``FactorizedComponentData.as_dict()``."""
    morph = _morph(seed)
    spectrum = np.float32([1.5, 2.25, 3.0]) * (seed + 1)
    return {
        "component_type": "factorized",
        "origin": list(origin),
        "shape": list(morph.shape),
        "peak": list(peak),
        "spectrum": spectrum.tolist(),
        "morph": morph.ravel().tolist(),
        "version": "1.0.0",
    }


def _cube(seed: int, origin=(11, 19), peak=(13, 20)) -> dict:
    """``ComponentCubeData.as_dict()``."""
    model = np.random.default_rng(seed).uniform(0, 1, (3, 4, 3)).astype(np.float32)
    return {
        "component_type": "component",
        "origin": list(origin),
        "shape": list(model.shape),
        "peak": list(peak),
        "model": model.ravel().tolist(),
        "version": "1.0.0",
    }


def _source(components: list, metadata: dict | None = None) -> dict:
    out = {"source_type": "source", "components": components, "version": "1.0.0"}
    if metadata is not None:
        out["metadata"] = _encode(metadata)
    return out


def _blend(sources: dict, origin=(8, 16), shape=(12, 12), metadata: dict | None = None) -> dict:
    out = {
        "blend_type": "blend",
        "origin": list(origin),
        "shape": list(shape),
        "sources": sources,
        "version": "1.0.0",
    }
    if metadata is not None:
        out["metadata"] = _encode(metadata)
    return out


def _model_metadata() -> dict:
    psf = np.zeros((3, 3), np.float32)
    psf[1, 1] = 1
    return {"model_psf": psf, "psf": np.stack([psf] * 3), "bands": BANDS}


def _document(blends: dict, model_type: str = "lsst", metadata: dict | None = None) -> dict:
    """``ScarletModelData.as_dict()``."""
    return {
        "model_type": model_type,
        "version": "1.0.1",
        "metadata": _encode({**_model_metadata(), **(metadata or {})}),
        "blends": blends,
        "isolated": {},
    }


def _read(tmp_path, document: dict, name: str = "rubin.json") -> ModelData:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return ModelData.read(path)


def _round_trips(tmp_path, model: ModelData) -> list[ModelData]:
    """``model`` written and read back in every format, each equal to it."""
    out = []
    for ext in FORMATS:
        path = tmp_path / f"again{ext}"
        model.write(path)
        back = ModelData.read(path)
        assert back == model, ext
        out.append(back)
    return out


def _check_factorized(c, d: dict) -> None:
    assert c.origin == tuple(d["origin"]) and c.peak == tuple(d["peak"])
    np.testing.assert_array_equal(c.spectrum, np.float32(d["spectrum"]))
    np.testing.assert_array_equal(c.morph.ravel(), np.float32(d["morph"]))
    assert c.morph.shape == tuple(d["shape"])


# ---- 1. a legacy file with a blend-level psf and versioned factorized components ----


def test_legacy_blend_with_psf_and_typed_components(tmp_path):
    # as lsst.scarlet.lite's test_legacy_json builds it: blend.to_data().as_dict() with
    # psf / psf_shape / bands / psf_center added, versions removed, model psf on top
    comps = [_factorized(0), _factorized(1, origin=(9, 18), peak=(10, 19))]
    blend = _blend({"0": _source(comps[:1]), "1": _source(comps[1:])})
    psfs = np.random.default_rng(5).uniform(0, 1, (3, 5, 5)).astype(np.float32)
    blend.update(
        psf=psfs.ravel().tolist(), psf_shape=list(psfs.shape), bands=BANDS, psf_center=[10, 10]
    )
    blend.pop("version")
    for s in blend["sources"].values():
        s.pop("version")
        for c in s["components"]:
            c.pop("version")
    model_psf = _morph(7, 3, 3)
    document = {
        "model_type": "lsst",
        "metadata": None,
        "blends": {"1": blend},
        "psf": model_psf.ravel().tolist(),
        "psfShape": [3, 3],
    }
    model = _read(tmp_path, document)
    np.testing.assert_array_equal(model.psf, model_psf)
    data = model.blends[1]
    assert data.bands == tuple(BANDS)
    np.testing.assert_array_equal(data.psf, psfs)
    assert data.psf_center == (10.0, 10.0)
    assert (data.origin, data.shape) == ((8, 16), (12, 12))
    assert list(data.sources) == [0, 1]
    for sid, comp in zip((0, 1), comps):
        (c,) = data.sources[sid].components
        _check_factorized(c, comp)
    _round_trips(tmp_path, model)


# ---- 2. string source ids ------------------------------------------------------------


def test_string_source_ids_are_kept(tmp_path):
    sources = {
        f"peak-{i}": _source([_factorized(i)], {"id": f"peak-{i}", "peak_id": i}) for i in range(3)
    }
    sources["peak-2"]["components"].append(_cube(9))
    model = _read(tmp_path, _document({"4": _blend(sources)}))
    data = model.blends[4]
    assert list(data.sources) == ["peak-0", "peak-1", "peak-2"]
    assert [s.peak_id for s in data.sources.values()] == [0, 1, 2]
    _check_factorized(data.sources["peak-1"].components[0], sources["peak-1"]["components"][0])
    for back in _round_trips(tmp_path, model):
        assert list(back.blends[4].sources) == ["peak-0", "peak-1", "peak-2"]
    # and through the engine: the id is the source's metadata["id"], stored again as is
    from vermilion.io import blend_to_data

    rebuilt = blend_to_data(model.to_blend(4))
    assert list(rebuilt.sources) == ["peak-0", "peak-1", "peak-2"]


# ---- 3. equality with arrays in the metadata -----------------------------------------


def test_equality_with_array_metadata():
    def model(values):
        source = SourceData([], metadata={"flux": np.float64(values)})
        blend = BlendData((0, 0), (2, 2), {1: source}, metadata={"weights": np.array(values)})
        return ModelData(BANDS, metadata={"zp": np.array(values, np.int32)}, blends={1: blend})

    assert model([1, 2]) == model([1, 2])
    assert model([1, 2]).blends[1] == model([1, 2]).blends[1]
    assert model([1, 2]) != model([1, 3])
    assert model([1, 2]).blends[1] != model([1, 3]).blends[1]
    a, b = model([1, 2]), model([1, 2])
    b.metadata["zp"] = b.metadata["zp"].astype(np.int64)  # same values, another dtype
    assert a != b


# ---- 4. metadata dtypes ----------------------------------------------------------------


def test_metadata_dtypes_are_kept(tmp_path):
    f64 = np.array([0.1, 1e-300, 3.0], np.float64)
    i32 = np.array([[1, -2], [3, 2**31 - 1]], np.int32)
    extra = {"f64": f64, "i32": i32, "u8": np.uint8([0, 255]), "note": "kept"}
    sources = {"7": _source([_factorized(0)], {"f64": f64, "i32": i32})}
    document = _document({"3": _blend(sources, metadata=extra)}, metadata=extra)
    model = _read(tmp_path, document)
    for meta in (model.metadata, model.blends[3].metadata, model.blends[3].sources[7].metadata):
        assert meta["f64"].dtype == np.float64 and meta["i32"].dtype == np.int32
        np.testing.assert_array_equal(meta["f64"], f64)
        np.testing.assert_array_equal(meta["i32"], i32)
    assert model.metadata["u8"].dtype == np.uint8 and model.metadata["note"] == "kept"
    for back in _round_trips(tmp_path, model):
        assert back.metadata["f64"].dtype == np.float64
        assert back.blends[3].sources[7].metadata["i32"].dtype == np.int32
        np.testing.assert_array_equal(back.blends[3].metadata["f64"], f64)


# ---- 5. hierarchical blends ------------------------------------------------------------


def test_hierarchical_blend_keeps_children_and_nesting(tmp_path):
    inner = {
        "blend_type": "hierarchical",
        "children": {
            "31": _blend({"5": _source([_cube(5)])}, origin=(30, 40), shape=(6, 6)),
            "32": _blend({"6": _source([_factorized(6, (33, 45), (35, 46))])}, (33, 44), (8, 8)),
        },
        "version": "1.0.0",
    }
    top = {
        "blend_type": "hierarchical",
        "children": {
            "2": _blend({"1": _source([_factorized(1)]), "2": _source([_cube(2)])}),
            "3": inner,
        },
        "metadata": _encode({"level": "top"}),
        "version": "1.0.0",
    }
    model = _read(tmp_path, _document({"1": top}))
    data = model.blends[1]
    assert list(data.children) == [2, 3]
    assert list(data.children[3].children) == [31, 32]
    assert data.children[3].children[31].origin == (30, 40)
    assert set(data.sources) == {1, 2, 5, 6}  # all the children's sources
    assert data.metadata == {"level": "top"}
    for back in _round_trips(tmp_path, model):
        b = back.blends[1]
        assert list(b.children) == [2, 3] and list(b.children[3].children) == [31, 32]
        assert list(b.children[3].children[32].sources) == [6]
        assert b.children[2].sources == data.children[2].sources


# ---- 6. an unknown model_type ----------------------------------------------------------


def test_unknown_model_type_is_read_with_a_warning(tmp_path):
    document = _document({"4": _blend({"1": _source([_factorized(1)])})}, "scarlet_lite_v2")
    with pytest.warns(UnknownModelTypeWarning, match="scarlet_lite_v2"):
        model = _read(tmp_path, document)
    _check_factorized(model.blends[4].sources[1].components[0], _factorized(1))
    _round_trips(tmp_path, model)
