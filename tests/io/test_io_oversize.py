"""Crafted files declaring huge sizes: only ModelDataError, memory bounded (issue 19).

Each read runs in a child process under an address-space limit
(``resource.setrlimit(RLIMIT_AS)``); the child reports the error and its peak
resident memory above what it had before reading.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import pytest
import zstandard

from vermilion.io import ModelData, ModelDataError, ModelDataWriter
from vermilion.io._synthetic import synthetic_model_data
from vermilion.io.container_records import blend_record
from vermilion.io.limits import read_limits, read_limits_set, set_read_limits

ALLOWANCE = 64 << 20  # bytes of peak memory allowed beyond 10x the file size


def _one_blend():
    model = synthetic_model_data(1, n_bands=2, seed=3, max_sources=1, min_box=3, max_box=4)
    return model, next(iter(model.blends.items()))


def crafted_container(path, side: int) -> int:
    """A container whose one record declares a ``side`` x ``side`` blend (valid checksums)."""
    model, (bid, blend) = _one_blend()
    w = ModelDataWriter(path, model.metadata_only(), codec="zstd")
    header, _ = blend_record(bid, blend, w.model.own_fields(blend), w.model)
    header["shape"] = [side, side]
    header["components"] = [[0, *blend.origin, *header["components"][0][3:5], 2, side, side]]
    header["sources"] = [[header["sources"][0][0], header["sources"][0][1], 1]]
    hdr = json.dumps(header, separators=(",", ":")).encode()
    left = 4 * (2 + side * side)
    raw_length = 4 + len(hdr) + left
    cobj = zstandard.ZstdCompressor(level=1).compressobj(size=raw_length)
    parts = [cobj.compress(struct.pack("<I", len(hdr)) + hdr)]
    chunk = bytes(64 << 20)
    while left:
        k = min(left, len(chunk))
        parts.append(cobj.compress(chunk[:k]))
        left -= k
    parts.append(cobj.flush())
    comp = b"".join(parts)
    offset = w._append(comp)
    entry = (bid, offset, len(comp), raw_length, zlib.crc32(comp), 1, *blend.origin, side, side)
    w._blends.append(entry)
    w.close()
    return bid


def crafted_archive(path, size: int) -> int:
    """A ``.scarlet`` archive with a deflated member inflating to ``size`` bytes."""
    model, (bid, _) = _one_blend()
    model.write(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open(str(bid + 1), "w", force_zip64=True) as f:
            chunk = b" " * (16 << 20)
            left = size
            while left:
                k = min(left, len(chunk))
                f.write(chunk[:k])
                left -= k
    return bid + 1


_CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    from vermilion.io import ModelData, ModelDataError
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = []
    for mode in ("read", "open"):
        try:
            if mode == "read":
                ModelData.read(sys.argv[1])
            else:
                with ModelData.open(sys.argv[1]) as reader:
                    for key in list(reader):
                        reader[key]
            out.append("OK")
        except ModelDataError as e:
            out.append(f"ModelDataError: {e}")
        except BaseException as e:
            out.append(f"OTHER {type(e).__name__}: {e}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print("\\n".join(out))
    print(peak * 1024)
    """
)


def _read_in_child(path) -> tuple[list[str], int]:
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    import os

    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    *lines, peak = proc.stdout.strip().splitlines()
    return lines, int(peak)


def test_container_declaring_a_huge_blend(tmp_path):
    path = tmp_path / "huge.vmd"
    bid = crafted_container(path, 23170)
    size = path.stat().st_size
    assert size < 200_000
    lines, peak = _read_in_child(path)
    expected = (
        f"ModelDataError: file {path}, blend {bid}, field 'record': declares "
        "2147395790 bytes decompressed, more than the limit of 268435456 "
        "(VERMILION_MAX_RECORD_BYTES)"
    )
    assert lines == [expected, expected]
    assert peak < 10 * size + ALLOWANCE


def test_container_record_above_the_ratio(tmp_path):
    path = tmp_path / "ratio.vmd"
    bid = crafted_container(path, 6000)  # 144 MB from a few kB: under the size limit
    lines, peak = _read_in_child(path)
    assert len(lines) == 2 and lines[0] == lines[1]
    assert lines[0].startswith(f"ModelDataError: file {path}, blend {bid}, field 'record': ")
    assert "a ratio above the limit of 100 (VERMILION_MAX_RATIO)" in lines[0]
    assert peak < 10 * path.stat().st_size + ALLOWANCE


@pytest.mark.parametrize("size", [300 << 20, 100 << 20])
def test_archive_member_bomb(tmp_path, size):
    path = tmp_path / "bomb.scarlet"
    member = crafted_archive(path, size)
    lines, peak = _read_in_child(path)
    assert len(lines) == 2 and lines[0] == lines[1]
    prefix = f"ModelDataError: file {path}, blend {member}, field \"archive member '{member}'\": "
    assert lines[0].startswith(prefix + f"declares {size} bytes decompressed")
    assert peak < 10 * path.stat().st_size + ALLOWANCE


def test_limits_are_configurable(tmp_path):
    path = tmp_path / "ratio.vmd"
    crafted_container(path, 300)  # 360 kB raw: under the ratio floor, read
    model = ModelData.read(path, on_error="skip")
    assert not model.errors or "declares" not in str(next(iter(model.errors.values())))
    with read_limits_set(max_record_bytes=100_000):
        with pytest.raises(ModelDataError, match="more than the limit of 100000"):
            ModelData.read(path)
    assert read_limits().max_record_bytes == 256 << 20
    with pytest.raises(ValueError, match="positive integer"):
        set_read_limits(max_ratio=0)


@pytest.mark.parametrize("suffix", [".vmd", ".json", ".scarlet"])
def test_blend_box_beyond_the_limit(tmp_path, suffix):
    model, (bid, blend) = _one_blend()
    blend.shape = (23170, 23170)  # tiny components in a huge box: a small, valid file
    path = tmp_path / f"box{suffix}"
    model.write(path)
    assert path.stat().st_size < 100_000
    lines, peak = _read_in_child(path)
    assert lines[0] == lines[1]
    assert lines[0].startswith("ModelDataError: file ")
    assert lines[0].endswith(
        f"blend {bid}, field 'shape': declares a 23170 x 23170 blend (536848900 pixels), "
        "more than the limit of 16777216 (VERMILION_MAX_BLEND_PIXELS)"
    )
    assert peak < 10 * path.stat().st_size + ALLOWANCE
