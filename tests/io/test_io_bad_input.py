"""Bad input: every failure is a ModelDataError naming the blend, the source and the field."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from vermilion.io import (
    BlendData,
    FactorizedComponentData,
    ModelData,
    ModelDataError,
    ModelDataWriter,
    SourceData,
)
from vermilion.io import container as container_module


def _record_of(path, blend_id):
    with ModelData.open(path) as reader:
        row = next(r for r in reader.index() if int(r["id"]) == blend_id)
    return int(row["offset"]), int(row["length"])


# ---- our container ----------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -1, -64])
def test_truncated_container(container, keep):
    data = container.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    container.write_bytes(data[:n])
    with pytest.raises(ModelDataError, match=r"truncated|not a vermilion|unrecognised|JSON"):
        ModelData.read(container)


def test_truncated_container_says_so(container):
    container.write_bytes(container.read_bytes()[:-5])
    with pytest.raises(ModelDataError, match="truncated or was not closed") as err:
        ModelData.read(container)
    assert err.value.path == str(container)


def test_flipped_byte_fails_one_blend_only(container, small_model):
    ids = list(small_model.blends)
    victim = ids[7]
    offset, length = _record_of(container, victim)
    data = bytearray(container.read_bytes())
    data[offset + length // 2] ^= 0x5A
    container.write_bytes(bytes(data))

    with pytest.raises(ModelDataError, match="checksum") as err:
        ModelData.read(container, blend_ids=[victim])
    assert err.value.blend_id == victim and err.value.field == "crc"
    assert str(victim) in str(err.value)

    # the other blends still read, one by one or all at once
    others = [i for i in ids if i != victim]
    part = ModelData.read(container, blend_ids=others)
    assert part.blends.keys() == set(others)
    with ModelData.open(container) as reader:
        for bid in others[:5]:
            expected = small_model.own_view(small_model.blends[bid])
            assert small_model.own_view(reader[bid]) == expected
        with pytest.raises(ModelDataError):
            reader[victim]
    with pytest.raises(ModelDataError) as err:
        ModelData.read(container)
    assert err.value.blend_id == victim
    skipped = ModelData.read(container, on_error="skip")
    assert skipped.blends.keys() == set(others)
    assert list(skipped.errors) == [victim] and skipped.errors[victim].field == "crc"


def test_flipped_index_or_footer_is_caught(container):
    data = bytearray(container.read_bytes())
    data[-30] ^= 0xFF  # inside the footer
    container.write_bytes(bytes(data))
    with pytest.raises(ModelDataError, match="footer"):
        ModelData.read(container)


def test_flipped_index_entry_is_caught(container, small_model):
    bid = list(small_model.blends)[3]
    data = bytearray(container.read_bytes())
    with ModelData.open(container) as reader:
        pos = reader._index_offset + 3 * container_module.ENTRY.itemsize + 8  # its offset
        assert int(reader.index()[3]["id"]) == bid
    data[pos] ^= 0x10
    container.write_bytes(bytes(data))
    with pytest.raises(ModelDataError) as err:
        ModelData.read(container, blend_ids=[bid])
    assert err.value.blend_id == bid
    with pytest.raises(ModelDataError, match="index"):
        ModelData.read(container)  # the whole-file read checks the index CRC


def _one_blend(morph=None, spectrum=None, bands=2) -> BlendData:
    morph = np.ones((3, 4), np.float32) if morph is None else morph
    spectrum = np.ones(bands, np.float32) if spectrum is None else spectrum
    comp = FactorizedComponentData((0, 0), (1, 1), spectrum, morph)
    return BlendData((0, 0), (5, 5), {42: SourceData([comp], peak_id=1)})


def _meta(bands=("g", "r")) -> ModelData:
    return ModelData(bands, np.ones((3, 3), np.float32))


def test_writer_rejects_non_finite_values(tmp_path):
    morph = np.ones((3, 4), np.float32)
    morph[1, 2] = np.nan
    with ModelDataWriter(tmp_path / "x.vmd", _meta()) as writer:
        with pytest.raises(ModelDataError, match="non-finite") as err:
            writer.add_blend(9, _one_blend(morph))
    assert (err.value.blend_id, err.value.source_id) == (9, 42)
    assert err.value.field == "components[0].morph"
    for name in ("x.json", "x.scarlet"):
        model = _meta()
        model.blends[9] = _one_blend(spectrum=np.array([1, np.inf], np.float32))
        with pytest.raises(ModelDataError, match="non-finite") as err:
            model.write(tmp_path / name)
        assert err.value.field == "components[0].spectrum" and err.value.blend_id == 9
        assert not (tmp_path / name).exists()


def test_writer_rejects_wrong_band_counts(tmp_path):
    with ModelDataWriter(tmp_path / "x.vmd", _meta(("g", "r", "i"))) as writer:
        with pytest.raises(ModelDataError, match="expected 3 bands") as err:
            writer.add_blend(9, _one_blend())
        assert (err.value.blend_id, err.value.source_id) == (9, 42)
        assert err.value.field == "components[0].spectrum"
        blend = _one_blend()
        blend.psf = np.ones((4, 5, 5), np.float32)
        blend.bands = ("g", "r")
        with pytest.raises(ModelDataError, match="expected 2 bands") as err:
            writer.add_blend(10, blend)
        assert err.value.field == "psf"


def test_writer_rejects_unknown_component_types(tmp_path):
    blend = _one_blend()
    blend.sources[42].components.append("a sersic profile")
    with ModelDataWriter(tmp_path / "x.vmd", _meta()) as writer:
        with pytest.raises(ModelDataError, match="unknown component type") as err:
            writer.add_blend(9, blend)
    assert err.value.field == "components[1]" and err.value.source_id == 42


def test_non_finite_in_a_container_is_named(tmp_path, monkeypatch):
    morph = np.ones((3, 4), np.float32)
    morph[2, 0] = np.inf
    monkeypatch.setattr(BlendData, "validate", lambda self, *args: None)
    with ModelDataWriter(tmp_path / "x.vmd", _meta()) as writer:
        writer.add_blend(9, _one_blend(morph))
    monkeypatch.undo()
    with pytest.raises(ModelDataError, match="non-finite") as err:
        ModelData.read(tmp_path / "x.vmd")
    assert (err.value.blend_id, err.value.source_id) == (9, 42)
    assert err.value.field == "components[0].morph"


def test_unknown_component_type_in_a_container(tmp_path, monkeypatch):
    real = container_module.blend_record

    def sersic(*args):
        header, arrays = real(*args)
        header["components"][0][0] = 7
        return header, arrays

    monkeypatch.setattr(container_module, "blend_record", sersic)
    with ModelDataWriter(tmp_path / "x.vmd", _meta()) as writer:
        writer.add_blend(9, _one_blend())
    monkeypatch.undo()
    with pytest.raises(ModelDataError, match="unknown component type 7") as err:
        ModelData.read(tmp_path / "x.vmd")
    assert err.value.blend_id == 9 and err.value.field == "components"


def test_wrong_array_size_in_a_container(tmp_path, monkeypatch):
    real = container_module.blend_record

    def bigger(*args):
        header, arrays = real(*args)
        header["components"][0][6] += 1  # claims one more row than stored
        return header, arrays

    monkeypatch.setattr(container_module, "blend_record", bigger)
    with ModelDataWriter(tmp_path / "x.vmd", _meta()) as writer:
        writer.add_blend(9, _one_blend())
    monkeypatch.undo()
    with pytest.raises(ModelDataError, match="needs") as err:
        ModelData.read(tmp_path / "x.vmd")
    assert err.value.blend_id == 9 and err.value.field == "components"


# ---- Rubin JSON ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def v29_doc(v29_path) -> dict:
    return json.loads(v29_path.read_text())


def _read_doc(tmp_path, doc) -> ModelData:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    return ModelData.read(path)


def _first(doc):
    bid = next(iter(doc["blends"]))
    blend = doc["blends"][bid]
    sid = next(iter(blend["sources"]))
    return int(bid), blend, int(sid), blend["sources"][sid]


def test_json_wrong_array_size(tmp_path, v29_doc):
    doc = copy.deepcopy(v29_doc)
    bid, _, sid, src = _first(doc)
    src["factorized"][0]["morph"].pop()
    with pytest.raises(ModelDataError, match="252") as err:
        _read_doc(tmp_path, doc)
    assert (err.value.blend_id, err.value.source_id) == (bid, sid)
    assert err.value.field == "components[0].morph"
    assert f"blend {bid}, source {sid}, field 'components[0].morph'" in str(err.value)


def test_json_wrong_psf_size(tmp_path, v29_doc):
    doc = copy.deepcopy(v29_doc)
    bid, blend, _, _ = _first(doc)
    blend["psf_shape"] = [5, 25, 24]
    with pytest.raises(ModelDataError, match="shape") as err:
        _read_doc(tmp_path, doc)
    assert err.value.blend_id == bid and err.value.field == "metadata.psf"


@pytest.mark.parametrize(
    ("where", "key", "field"),
    [
        ("blend", "origin", "origin"),
        ("blend", "sources", "sources"),
        ("component", "morph", "factorized[0].morph"),
        ("component", "shape", "factorized[0].shape"),
        ("component", "spectrum", "factorized[0].spectrum"),
        ("model", "psfShape", "psfShape"),
    ],
)
def test_json_missing_fields(tmp_path, v29_doc, where, key, field):
    doc = copy.deepcopy(v29_doc)
    bid, blend, sid, src = _first(doc)
    target = {"blend": blend, "component": src["factorized"][0], "model": doc}[where]
    del target[key]
    with pytest.raises(ModelDataError, match="missing field") as err:
        _read_doc(tmp_path, doc)
    assert err.value.field == field
    if where != "model":
        assert err.value.blend_id == bid
    if where == "component":
        assert err.value.source_id == sid


def test_versioned_missing_component_type(tmp_path, small_model):
    small_model.write(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    bid, _, sid, src = _first(doc)
    del src["components"][0]["component_type"]
    with pytest.raises(ModelDataError, match="missing field") as err:
        _read_doc(tmp_path, doc)
    assert (err.value.blend_id, err.value.source_id) == (bid, sid)
    assert err.value.field == "components[0].component_type"


def test_json_non_finite_values(tmp_path, v29_doc):
    doc = copy.deepcopy(v29_doc)
    bid, _, sid, src = _first(doc)
    src["factorized"][0]["spectrum"][2] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(doc))  # Python writes NaN, as some writers did
    with pytest.raises(ModelDataError, match="non-finite") as err:
        ModelData.read(path)
    assert (err.value.blend_id, err.value.source_id) == (bid, sid)
    assert err.value.field == "components[0].spectrum"


def test_json_unknown_component_type(tmp_path, small_model):
    small_model.write(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    bid, _, sid, src = _first(doc)
    src["components"][0]["component_type"] = "sersic"
    with pytest.raises(ModelDataError, match="unknown component type 'sersic'") as err:
        _read_doc(tmp_path, doc)
    assert (err.value.blend_id, err.value.source_id) == (bid, sid)
    assert err.value.field == "components[0].component_type"


def test_json_unknown_blend_and_source_types(tmp_path, small_model):
    small_model.write(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    bid, blend, sid, src = _first(doc)
    src["source_type"] = "galaxy"
    with pytest.raises(ModelDataError, match="unknown source type") as err:
        _read_doc(tmp_path, doc)
    assert (err.value.blend_id, err.value.source_id) == (bid, sid)
    src["source_type"] = "source"
    blend["blend_type"] = "pyramid"
    with pytest.raises(ModelDataError, match="unknown blend type") as err:
        _read_doc(tmp_path, doc)
    assert err.value.blend_id == bid and err.value.field == "blend_type"


def test_json_bad_types(tmp_path, v29_doc):
    doc = copy.deepcopy(v29_doc)
    bid, blend, _, _ = _first(doc)
    blend["origin"] = ["a", "b"]
    with pytest.raises(ModelDataError, match="integer") as err:
        _read_doc(tmp_path, doc)
    assert err.value.blend_id == bid and err.value.field == "origin"
    doc = copy.deepcopy(v29_doc)
    doc["blends"]["not-an-id"] = doc["blends"].pop(next(iter(doc["blends"])))
    with pytest.raises(ModelDataError, match="decimal"):
        _read_doc(tmp_path, doc)


def test_not_a_model_file(tmp_path):
    for content in (b"", b"hello", b"{}", b"[1, 2]", b"PK\x03\x04broken", b'{"blends": 3}'):
        path = tmp_path / "x.bin"
        path.write_bytes(content)
        with pytest.raises(ModelDataError):
            ModelData.read(path)
    with pytest.raises(ModelDataError, match="cannot open"):
        ModelData.read(tmp_path / "does-not-exist.vmd")


def test_error_is_a_value_error_and_pickles():
    import pickle

    err = ModelDataError("bad", blend_id=1, source_id=2, field="morph", path="/x")
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.blend_id, back.source_id, back.field, back.path) == (1, 2, "morph", "/x")
    assert str(back) == "file /x, blend 1, source 2, field 'morph': bad"
