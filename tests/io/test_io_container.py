"""Our container: round trips, one-blend reads through the index, streaming and atomic writes."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from vermilion.core.files import default_file_mode
from vermilion.io import (
    BlendData,
    ContainerReader,
    FactorizedComponentData,
    IsolatedSourceData,
    ModelData,
    ModelDataError,
    ModelDataWriter,
    SourceData,
)
from vermilion.io._synthetic import iter_synthetic_blends
from vermilion.io.container import ENTRY, FOOTER, HEADER


def test_round_trip_is_exact(container, small_model):
    back = ModelData.read(container)
    assert back == small_model
    assert back.source_format == "vermilion-container-1"
    assert back.bands == small_model.bands
    np.testing.assert_array_equal(back.psf, small_model.psf)
    np.testing.assert_array_equal(back.observed_psf, small_model.observed_psf)
    for bid, blend in small_model.blends.items():
        got = back.blends[bid]
        assert got.origin == blend.origin and got.shape == blend.shape
        for sid, src in blend.sources.items():
            for c0, c1 in zip(src.components, got.sources[sid].components, strict=True):
                assert type(c0) is type(c1)
                assert c1.get_model().dtype == np.float32
                np.testing.assert_array_equal(c0.get_model(), c1.get_model())


def test_zlib_codec_round_trip(tmp_path, small_model):
    path = tmp_path / "zlib.vmd"
    small_model.write(path, codec="zlib", compression_level=1)
    assert ModelData.read(path) == small_model


def test_blends_inherit_the_patch_fields(container, small_model):
    blend = ModelData.read(container, blend_ids=[next(iter(small_model.blends))])
    (b,) = blend.blends.values()
    assert b.bands == small_model.bands
    assert b.psf is not None and b.psf.shape == small_model.observed_psf.shape
    np.testing.assert_array_equal(b.model_psf, small_model.psf)


def test_read_some_blends(container, small_model):
    ids = list(small_model.blends)[3:6]
    part = ModelData.read(container, blend_ids=ids)
    assert list(part.blends) == ids
    for bid in ids:
        assert part.own_view(part.blends[bid]) == small_model.own_view(small_model.blends[bid])


def test_missing_blend_id_is_named(container):
    with pytest.raises(ModelDataError) as err:
        ModelData.read(container, blend_ids=[12345])
    assert err.value.blend_id == 12345


def test_open_is_a_lazy_mapping(container, small_model):
    with ModelData.open(container) as reader:
        assert isinstance(reader, ContainerReader)
        assert len(reader) == len(small_model.blends)
        assert sorted(reader) == sorted(small_model.blends)
        bid = list(small_model.blends)[10]
        assert bid in reader and 999 not in reader and "x" not in reader
        assert small_model.own_view(reader[bid]) == small_model.own_view(small_model.blends[bid])
        with pytest.raises(KeyError):
            reader[999]
        assert reader.get(999) is None
        assert reader.bands == small_model.bands


def test_index_describes_blends_without_reading_them(container, small_model):
    with ModelData.open(container) as reader:
        table = reader.index()
    assert table.dtype == ENTRY
    rows = {int(r["id"]): r for r in table}
    for bid, blend in small_model.blends.items():
        r = rows[bid]
        assert int(r["n_sources"]) == len(blend.sources)
        assert (int(r["y0"]), int(r["x0"])) == blend.origin
        assert (int(r["height"]), int(r["width"])) == blend.shape


def test_one_blend_read_touches_only_its_record(container, small_model):
    """Corrupt every other blend's record: the one asked for still reads."""
    ids = list(small_model.blends)
    keep = ids[20]
    with ModelData.open(container) as reader:
        table = reader.index().copy()
    data = bytearray(container.read_bytes())
    for row in table:
        if int(row["id"]) != keep:
            start = int(row["offset"])
            data[start : start + int(row["length"])] = b"\0" * int(row["length"])
    container.write_bytes(bytes(data))
    got = ModelData.read(container, blend_ids=[keep])
    assert got.own_view(got.blends[keep]) == small_model.own_view(small_model.blends[keep])


def test_file_layout(container, small_model):
    data = container.read_bytes()
    magic, version, codec, _ = HEADER.unpack_from(data)
    assert magic == b"\x89VML\r\n\x1a\n" and version == 1 and codec == 2
    fields = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    assert fields[-1] == b"VMLINDEX"
    assert fields[1] == len(small_model.blends)


def test_streaming_writer(tmp_path):
    meta = ModelData(("g", "r", "i"), np.ones((5, 5), np.float32))
    path = tmp_path / "stream.vmd"
    blends = dict(iter_synthetic_blends(20, n_bands=3, seed=3, max_box=40))
    with ModelDataWriter(path, meta) as writer:
        for bid, blend in blends.items():
            writer.add_blend(bid, blend)
        assert not path.exists()  # nothing visible until closed
        assert writer.n_blends == 20
    back = ModelData.read(path)
    assert back.blends.keys() == blends.keys()
    for bid, blend in blends.items():
        assert back.own_view(back.blends[bid]) == back.own_view(blend)
    assert [p.name for p in tmp_path.iterdir()] == ["stream.vmd"]


def test_writer_is_atomic_on_error(tmp_path, small_model):
    path = tmp_path / "patch.vmd"
    small_model.write(path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), ModelDataWriter(path, small_model) as writer:
        writer.add_blend(1, next(iter(small_model.blends.values())))
        raise RuntimeError("worker died")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patch.vmd"]


def test_container_file_like_the_other_formats(tmp_path, small_model):
    """Same permissions as the JSON written through core.files, parent folders created."""
    json_path, path = tmp_path / "m.json", tmp_path / "new" / "sub" / "m.vmd"
    small_model.write(json_path)
    small_model.write(path)
    assert os.stat(path).st_mode == os.stat(json_path).st_mode
    assert os.stat(path).st_mode & 0o777 == default_file_mode()
    assert ModelData.read(path) == small_model


def test_writer_rejects_duplicates_and_closed_use(tmp_path, small_model):
    blend = next(iter(small_model.blends.values()))
    with ModelDataWriter(tmp_path / "a.vmd", small_model) as writer:
        writer.add_blend(7, blend)
        with pytest.raises(ModelDataError, match="twice") as err:
            writer.add_blend(7, blend)
        assert err.value.blend_id == 7
    with pytest.raises(ValueError, match="closed"):
        writer.add_blend(8, blend)


def test_concurrent_adds_from_threads(tmp_path):
    meta = ModelData(("g", "r"), np.ones((3, 3), np.float32))
    blends = dict(iter_synthetic_blends(40, n_bands=2, seed=5, max_box=30))
    items = list(blends.items())
    path = tmp_path / "threads.vmd"
    with ModelDataWriter(path, meta) as writer:
        threads = [
            threading.Thread(target=lambda part: [writer.add_blend(*kv) for kv in part], args=(p,))
            for p in (items[::2], items[1::2])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    back = ModelData.read(path)
    assert back.blends.keys() == blends.keys()
    with ModelData.open(path) as reader:
        results = {}

        def read_some(ids):
            results.update({i: reader[i] for i in ids})

        threads = [
            threading.Thread(target=read_some, args=(p,))
            for p in (list(blends)[::2], list(blends)[1::2])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(back.own_view(results[b]) == back.own_view(blends[b]) for b in blends)


def test_isolated_sources_and_metadata_survive(tmp_path):
    span = np.zeros((4, 5), np.float32)
    span[1:3, 1:4] = 1
    model = ModelData(
        ("g", "r"),
        np.ones((3, 3), np.float32),
        metadata={"tract": 9813, "patch": 42, "note": "hello"},
    )
    model.blends[2**62 + 5] = BlendData(
        (10, 20),
        (8, 9),
        {
            -3: SourceData(
                [FactorizedComponentData((10, 20), (12.5, 23), np.ones(2), np.ones((4, 4)))],
                peak_id=None,
                metadata={"flag": True, "tags": ["a", "b"]},
            )
        },
        psf_center=(13.25, 24.5),
        psf=np.ones((2, 5, 5), np.float32),
        footprint=np.eye(8, 9, dtype=bool),
        metadata={"parent_flux": 12.5},
    )
    model.isolated[77] = IsolatedSourceData((1, 2), (3, 4), span, {"kind": "star"})
    for name in ("m.vmd", "m.json", "m.scarlet"):
        model.write(tmp_path / name)
        back = ModelData.read(tmp_path / name)
        assert back == model, name
        assert back.isolated[77] == model.isolated[77]
        assert back.metadata == model.metadata
    only = ModelData.read(tmp_path / "m.vmd", blend_ids=[77])
    assert not only.blends and list(only.isolated) == [77]


def test_bands_of_a_blend_may_differ_from_the_patch(tmp_path, small_model):
    model = small_model.metadata_only()
    bid, blend = next(iter(small_model.blends.items()))
    model.blends[bid] = BlendData(
        blend.origin,
        blend.shape,
        blend.sources,
        bands=tuple(reversed(small_model.bands)),
        psf=np.ones((6, 3, 3), np.float32),
    )
    model.write(tmp_path / "x.vmd")
    back = ModelData.read(tmp_path / "x.vmd")
    assert back.blends[bid].bands == tuple(reversed(small_model.bands))
    assert back.blends[bid].psf.shape == (6, 3, 3)


def test_one_blend_read_does_not_grow_with_the_file(tmp_path):
    """The bytes read for one blend are the same in a 20- and a 2000-blend file."""
    sizes = {}
    for n in (20, 2000):
        meta = ModelData(("g",), np.ones((3, 3), np.float32))
        path = tmp_path / f"{n}.vmd"
        with ModelDataWriter(path, meta, compression_level=1) as writer:
            comp = FactorizedComponentData((0, 0), (1, 1), np.ones(1), np.ones((3, 3)))
            one = BlendData((0, 0), (3, 3), {1: SourceData([comp])})
            for i in range(n):
                writer.add_blend(i, one)
        reads = []
        real = os.pread

        def counting(fd, size, offset, reads=reads, real=real):
            reads.append(size)
            return real(fd, size, offset)

        with ModelData.open(path) as reader:
            os.pread = counting
            try:
                reader[n // 2]
            finally:
                os.pread = real
        sizes[n] = (len(reads), sum(reads))
    # binary search: a few more 8-byte probes for 100x more blends, same record bytes
    assert sizes[2000][0] - sizes[20][0] <= 8
    assert sizes[2000][1] - sizes[20][1] <= 8 * 8


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, vermilion.io; "
        "heavy = ('zstandard', 'astropy', 'scipy', 'matplotlib', 'galsim', 'dask', 'lsst'); "
        "print([m for m in sys.modules if m.split('.')[0] in heavy])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
