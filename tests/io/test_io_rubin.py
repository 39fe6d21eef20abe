"""The Rubin formats: the real v29 file, legacy A, versioned 1.0.x, archives, migrations."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from vermilion.io import ModelData, ModelDataError
from vermilion.io.migration import MigrationRegistry, parse_version
from vermilion.io.rubin_json import model_to_dict
from vermilion.io.schema import MODEL_MIGRATIONS


def test_v29_file_loads_both_blends(v29_path):
    raw = json.loads(v29_path.read_text())
    model = ModelData.read(v29_path)
    assert model.source_format == "rubin-legacy-b"
    assert set(model.blends) == {int(k) for k in raw["blends"]}
    assert model.bands == ("g", "i", "r", "y", "z")
    assert model.psf.shape == (15, 15)
    np.testing.assert_array_equal(model.psf.ravel(), np.float32(raw["psf"]))
    for key, rb in raw["blends"].items():
        b = model.blends[int(key)]
        assert b.origin == tuple(rb["origin"]) and b.shape == tuple(rb["shape"])
        assert b.xy0 == (rb["origin"][1], rb["origin"][0])
        assert b.extent == (rb["shape"][1], rb["shape"][0])
        # psf_center is stored (x, y); ours is (y, x)
        assert b.psf_center == (rb["psf_center"][1], rb["psf_center"][0])
        assert b.psf.shape == tuple(rb["psf_shape"])
        np.testing.assert_array_equal(b.psf.ravel(), np.float32(rb["psf"]))
        for skey, rs in rb["sources"].items():
            s = b.sources[int(skey)]
            assert s.peak_id == rs["peak_id"]
            (c,) = s.components
            (rc,) = rs["factorized"]
            assert c.origin == tuple(rc["origin"]) and c.peak == tuple(rc["peak"])
            np.testing.assert_array_equal(c.spectrum, np.float32(rc["spectrum"]))
            np.testing.assert_array_equal(c.morph, np.float32(rc["morph"]).reshape(rc["shape"]))


def test_v29_blends_rebuild_and_render(v29_path):
    from vermilion.core import NoDataObservation

    model = ModelData.read(v29_path)
    for bid, data in model.blends.items():
        blend = data.to_blend()
        assert isinstance(blend.observation, NoDataObservation)
        assert blend.bbox.origin == data.origin and blend.bbox.shape == data.shape
        (src,) = blend.sources
        assert src.metadata["peak_id"] == next(iter(data.sources.values())).peak_id
        raw = blend.get_model().data
        rendered = blend.get_model(convolve=True).data
        assert raw.shape == rendered.shape == (5, *data.shape)
        assert np.isfinite(rendered).all()
        # the stored model, spectrum times morphology, is what the blend holds
        (c,) = next(iter(data.sources.values())).components
        np.testing.assert_allclose(raw, c.spectrum[:, None, None] * c.morph[None], rtol=1e-6)
        # convolving with the (broader) observed PSF spreads the light: lower peak
        for band in range(5):
            assert rendered[band].max() < raw[band].max()
        # the flux kept on the box stays close to the model's (edge losses only)
        assert rendered.sum() == pytest.approx(raw.sum(), rel=0.2), bid


def test_v29_round_trips_through_every_format(tmp_path, v29_path):
    model = ModelData.read(v29_path)
    for name in ("a.vmd", "a.json", "a.scarlet"):
        model.write(tmp_path / name)
        again = ModelData.read(tmp_path / name)
        assert again == model, name
        for bid, b in model.blends.items():
            np.testing.assert_array_equal(again.blends[bid].psf, b.psf)


def test_round_trip_chain_is_exact_at_float32(tmp_path, small_model):
    small_model.write(tmp_path / "1.json")
    ModelData.read(tmp_path / "1.json").write(tmp_path / "2.scarlet")
    ModelData.read(tmp_path / "2.scarlet").write(tmp_path / "3.vmd")
    ModelData.read(tmp_path / "3.vmd").write(tmp_path / "4.json")
    final = ModelData.read(tmp_path / "4.json")
    assert final == small_model
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "4.json").read_bytes()


def test_written_json_is_versioned_rubin(tmp_path, small_model):
    small_model.write(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["model_type"] == "lsst" and doc["version"] == "1.0.1"
    meta = doc["metadata"]
    assert meta["bands"] == list(small_model.bands)
    assert set(meta["array_keys"]) == {"model_psf", "psf"}
    assert meta["model_psf_shape"] == list(small_model.psf.shape)
    assert meta["footprint"] is None
    bid, blend = next(iter(small_model.blends.items()))
    b = doc["blends"][str(bid)]
    assert b["blend_type"] == "blend" and b["origin"] == list(blend.origin)
    sid, src = next(iter(blend.sources.items()))
    s = b["sources"][str(sid)]
    assert s["metadata"]["peak_id"] == src.peak_id and s["metadata"]["id"] == sid
    c = s["components"][0]
    assert c["component_type"] in ("factorized", "component")


def test_archive_layout_matches_rubin(tmp_path, small_model):
    small_model.write(tmp_path / "m.scarlet")
    with zipfile.ZipFile(tmp_path / "m.scarlet") as zf:
        names = zf.namelist()
        assert {"metadata", "version"} <= set(names)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert json.loads(zf.read("version")) == "1.0.1"
        bid = next(iter(small_model.blends))
        assert json.loads(zf.read(str(bid)))["blend_type"] == "blend"
    # one blend from an archive: only its member
    one = ModelData.read(tmp_path / "m.scarlet", blend_ids=[bid])
    assert list(one.blends) == [bid]


def _legacy_a_document() -> dict:
    rng = np.random.default_rng(1)
    morph = rng.uniform(0, 1, (4, 5)).astype(np.float32)
    morph[2, 3] = 2.0  # its maximum: (2, 3) in the component box
    cube = rng.uniform(0, 1, (2, 3, 2)).astype(np.float32)
    cube[:, 1, 0] = 5.0
    return {
        "filters": ["g", "r"],
        "psfShape": [3, 3],
        "psf": (np.ones(9) / 9).tolist(),
        "blends": {
            "101": {
                "xy0": [200, 100],
                "extent": [10, 8],
                "psfCenter": [204.5, 103.0],
                "sources": {
                    "5001": {
                        "components": [
                            # cube written with the centre bug (centre == extent)
                            {
                                "xy0": [6, 4],
                                "extent": [2, 3],
                                "center": [2, 3],
                                "model": cube.ravel().tolist(),
                            },
                        ],
                        "factorized": [
                            # relative to the blend: box at x 2..7, y 1..5; centre (x 4, y 2)
                            {
                                "xy0": [2, 1],
                                "extent": [5, 4],
                                "center": [4, 2],
                                "sed": [1.0, 2.0],
                                "morph": morph.ravel().tolist(),
                            },
                            # pre-July-2022 bug: centre == extent
                            {
                                "xy0": [2, 1],
                                "extent": [5, 4],
                                "center": [5, 4],
                                "sed": [3.0, 4.0],
                                "morph": morph.ravel().tolist(),
                            },
                        ],
                        "peakId": 7,
                    }
                },
            }
        },
    }


def test_legacy_a(tmp_path):
    doc = _legacy_a_document()
    (tmp_path / "a.json").write_text(json.dumps(doc))
    model = ModelData.read(tmp_path / "a.json")
    assert model.source_format == "rubin-legacy-a"
    assert model.bands == ("g", "r")
    b = model.blends[101]
    assert b.origin == (100, 200) and b.shape == (8, 10)
    assert b.psf_center == (103.0, 204.5)
    src = b.sources[5001]
    assert src.peak_id == 7
    f1, f2, cube = src.components
    assert f1.origin == (101, 202) and f1.shape == (4, 5)
    assert f1.peak == (102, 204)  # the stored centre, made absolute
    assert f2.peak == (103, 205)  # centre bug: the morphology's maximum
    np.testing.assert_array_equal(f2.spectrum, [3, 4])
    assert cube.origin == (104, 206) and cube.model.shape == (2, 3, 2)
    assert cube.peak == (105, 206)  # centre bug: the cube's maximum
    # legacy files carry no observed PSF: rendering needs one
    with pytest.raises(ModelDataError, match="observed PSF") as err:
        b.to_blend()
    assert err.value.field == "psf"
    blend = b.to_blend(psf=np.ones((2, 5, 5), np.float32))
    assert blend.get_model(convolve=True).shape == (2, 8, 10)


def test_legacy_a_with_late_bands_field(tmp_path):
    doc = _legacy_a_document()
    del doc["filters"]
    doc["blends"]["101"]["bands"] = ["r", "g"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    model = ModelData.read(tmp_path / "a.json")
    assert model.blends[101].bands == ("r", "g")
    assert model.bands == ("r", "g")  # lifted: every blend agrees


def _versioned_1_0_0(with_hierarchy: bool = False) -> dict:
    morph = np.arange(12, dtype=np.float32).reshape(3, 4) / 12
    child = {
        "blend_type": "blend",
        "origin": [10, 20],
        "shape": [5, 6],
        "sources": {
            "9": {
                "source_type": "source",
                "components": [
                    {
                        "component_type": "factorized",
                        "origin": [11, 21],
                        "shape": [3, 4],
                        "peak": [12, 22],
                        "spectrum": [1.0, 0.5, 0.25],
                        "morph": morph.ravel().tolist(),
                        "version": "1.0.0",
                    },
                    {
                        "component_type": "component",
                        "origin": [10, 20],
                        "shape": [3, 1, 2],
                        "peak": [10, 21],
                        "model": [1, 2, 3, 4, 5, 6],
                        "version": "1.0.0",
                    },
                ],
                "metadata": {"peak_id": 3, "id": 9},
                "version": "1.0.0",
            }
        },
        "version": "1.0.0",
    }
    blends: dict = {"1001": child}
    if with_hierarchy:
        spans = np.ones((7, 8), bool)
        spans[0, 0] = False
        other = json.loads(json.dumps(child))
        other["origin"] = [14, 22]
        other["sources"] = {"10": other["sources"]["9"]}
        blends = {
            "1001": {
                "blend_type": "hierarchical",
                "children": {"1": child, "2": other},
                "metadata": {
                    "spans": spans.ravel().tolist(),
                    "spans_shape": [7, 8],
                    "spans_dtype": "bool",
                    "origin": [9, 19],
                    "array_keys": ["spans"],
                },
                "version": "1.0.0",
            }
        }
    return {
        "model_type": "lsst",
        "version": "1.0.0",
        "metadata": {
            "model_psf": [0.0, 1.0, 0.0, 1.0, 4.0, 1.0, 0.0, 1.0, 0.0],
            "model_psf_shape": [1, 3, 3],
            "psf": np.ones(3 * 9).tolist(),
            "psf_shape": [3, 3, 3],
            "bands": ["g", "r", "i"],
            "array_keys": ["model_psf", "psf"],
        },
        "blends": blends,
        "isolated": {
            "55": {
                "source_type": "isolated",
                "origin": [1, 2],
                "shape": [2, 2],
                "peak": [1.5, 2.5],
                "span_array": [1.0, 0.0, 1.0, 1.0],
                "version": "1.0.0",
            }
        },
    }


def test_versioned_1_0_0_migrates(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps(_versioned_1_0_0()))
    model = ModelData.read(tmp_path / "v.json")
    assert model.source_format == "rubin-json-1.0.0"
    assert model.version == "1.0.1"
    assert model.psf.shape == (3, 3)  # (1, 3, 3) normalised to 2D
    assert model.observed_psf.shape == (3, 3, 3)
    b = model.blends[1001]
    assert b.bands == ("g", "r", "i") and b.psf.shape == (3, 3, 3)  # inherited
    src = b.sources[9]
    assert src.peak_id == 3 and src.metadata is None
    f, c = src.components
    assert f.peak == (12, 22) and f.morph.shape == (3, 4)
    np.testing.assert_array_equal(c.model.ravel(), np.arange(1, 7))
    iso = model.isolated[55]
    assert iso.peak == (1.5, 2.5) and iso.span_array.shape == (2, 2)


def test_hierarchical_blend_is_flattened(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps(_versioned_1_0_0(with_hierarchy=True)))
    model = ModelData.read(tmp_path / "h.json")
    b = model.blends[1001]
    assert set(b.sources) == {9, 10}
    assert b.origin == (9, 19) and b.shape == (7, 8)
    assert b.footprint is not None and not b.footprint[0, 0] and b.footprint.sum() == 55
    # a flattened blend writes back as a flat blend with its footprint
    model.write(tmp_path / "h2.json")
    assert ModelData.read(tmp_path / "h2.json") == model


def test_old_archive_with_psf_members(tmp_path, v29_path):
    raw = json.loads(v29_path.read_text())
    path = tmp_path / "old.scarlet"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("psf", json.dumps(raw["psf"]))
        zf.writestr("psf_shape", json.dumps(raw["psfShape"]))
        for key, blend in raw["blends"].items():
            zf.writestr(key, json.dumps(blend))
    model = ModelData.read(path)
    assert model == ModelData.read(v29_path)
    bid = int(next(iter(raw["blends"])))
    assert list(ModelData.read(path, blend_ids=[bid]).blends) == [bid]


def test_archive_written_by_rubin_1_0_1(tmp_path):
    doc = _versioned_1_0_0()
    path = tmp_path / "new.scarlet"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata", json.dumps(doc["metadata"]))
        zf.writestr("version", json.dumps("1.0.1"))
        zf.writestr("1001", json.dumps(doc["blends"]["1001"]))
        zf.writestr("55", json.dumps(doc["isolated"]["55"]))
    with ModelData.open(path) as reader:
        assert list(reader) == [1001]
        assert reader.isolated_ids() == [55]
    model = ModelData.read(path)
    assert set(model.blends) == {1001} and set(model.isolated) == {55}


@pytest.mark.parametrize("version", ["1.0.2", "2.0.0", "1.1.0"])
def test_newer_version_is_refused_by_name(tmp_path, version):
    doc = _versioned_1_0_0()
    doc["version"] = version
    (tmp_path / "n.json").write_text(json.dumps(doc))
    with pytest.raises(ModelDataError, match=version.replace(".", r"\.")) as err:
        ModelData.read(tmp_path / "n.json")
    assert "newer" in str(err.value) and err.value.field == "version"


def test_newer_blend_version_names_the_blend(tmp_path):
    doc = _versioned_1_0_0()
    doc["blends"]["1001"]["version"] = "3.0.0"
    (tmp_path / "n.json").write_text(json.dumps(doc))
    with pytest.raises(ModelDataError, match=r"3\.0\.0") as err:
        ModelData.read(tmp_path / "n.json")
    assert err.value.blend_id == 1001


def test_newer_container_format_is_refused(tmp_path, container):
    import zlib

    data = bytearray(container.read_bytes())
    data[8:10] = (7).to_bytes(2, "little")
    # a newer file says so in its checksummed footer too (only the header: damaged)
    footer = len(data) - 64
    data[footer + 48 : footer + 50] = (7).to_bytes(2, "little")
    data[footer + 52 : footer + 56] = zlib.crc32(data[footer : footer + 52]).to_bytes(4, "little")
    container.write_bytes(bytes(data))
    with pytest.raises(ModelDataError, match="format version 7 is newer"):
        ModelData.read(container)


def test_migration_registry():
    reg = MigrationRegistry("thing", "1.2.0")

    @reg.register("1.0.0", "1.1.0")
    def _a(d):
        d["a"] = True
        return d

    @reg.register("1.1.0", "1.2.0")
    def _b(d):
        d["b"] = d["a"]
        return d

    assert reg.migrate({}, "1.0.0") == {"a": True, "b": True}
    assert reg.migrate({"x": 1}, "1.2.0") == {"x": 1}
    assert reg.known_versions == ["1.0.0", "1.1.0", "1.2.0"]
    with pytest.raises(ModelDataError, match=r"unknown thing schema version 0\.9\.0"):
        reg.migrate({}, "0.9.0")
    with pytest.raises(ModelDataError, match=r"1\.3\.0 is newer"):
        reg.migrate({}, "1.3.0")
    with pytest.raises(ModelDataError, match="malformed"):
        parse_version("1.0")
    with pytest.raises(ValueError):
        reg.register("1.2.0", "1.0.0")
    assert MODEL_MIGRATIONS.current == "1.0.1"
    assert "0.0.0" in MODEL_MIGRATIONS.known_versions


def test_model_to_dict_validates(small_model):
    bad = small_model.metadata_only()
    blend = next(iter(small_model.blends.values()))
    bad.blends[5] = blend
    doc = model_to_dict(bad)
    assert "5" in doc["blends"]
