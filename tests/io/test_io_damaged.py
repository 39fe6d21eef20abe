"""Damaged containers say so (issue 19): a byte appended is read anyway, a 0-byte file
and a flipped version byte are called damaged, not "not valid JSON" or "upgrade"."""

from __future__ import annotations

import numpy as np
import pytest

from vermilion.io import ModelData, ModelDataError
from vermilion.io._synthetic import synthetic_model_data


@pytest.fixture
def vmd(tmp_path):
    model = synthetic_model_data(3, seed=4)
    path = tmp_path / "m.vmd"
    model.write(path)
    return model, path


def test_bytes_appended_are_ignored(vmd):
    model, path = vmd
    with open(path, "ab") as f:
        f.write(b"\x00")
    back = ModelData.read(path)
    assert list(back.blends) == list(model.blends)
    for bid, blend in model.blends.items():
        for src, src2 in zip(blend.sources.values(), back.blends[bid].sources.values()):
            for c, c2 in zip(src.components, src2.components):
                np.testing.assert_array_equal(c.morph, c2.morph)
    with ModelData.open(path) as reader:
        assert reader.trailing_bytes == 1
        assert len(reader) == len(model.blends)


def test_empty_file_is_damaged(tmp_path):
    path = tmp_path / "empty.vmd"
    path.write_bytes(b"")
    with pytest.raises(ModelDataError) as info:
        ModelData.read(path)
    assert str(info.value) == f"file {path}: the file is empty (0 bytes): it is damaged"


@pytest.mark.parametrize("flip", [0xFF, 0x02])
def test_flipped_version_byte_is_damaged(vmd, flip):
    _, path = vmd
    raw = bytearray(path.read_bytes())
    raw[8] ^= flip
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelDataError) as info:
        ModelData.read(path)
    version = 1 ^ flip
    assert str(info.value) == (
        f"file {path}, field 'format_version': the file is damaged: its header says format "
        f"version {version}, codec 2; its (checksummed) footer says version 1, codec 2"
    )
