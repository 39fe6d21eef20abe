"""Atomic writes: all or nothing, no temporary file left behind."""

from __future__ import annotations

import os

import pytest

from vermilion.core.files import atomic_write, atomic_write_file


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "models.vmd"
    target.write_bytes(b"old")

    def broken(f):
        f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_file(target, broken)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["models.vmd"]


def test_a_write_replaces_the_file_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "picture.png"
    out = atomic_write(target, lambda tmp: open(tmp, "wb").write(b"new"))
    assert out == target and target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(os.listdir(target.parent)) == ["picture.png"]


def test_the_temporary_name_keeps_the_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "x.fits", lambda tmp: (seen.append(tmp), open(tmp, "w").close()))
    assert seen[0].endswith(".fits") and os.path.dirname(seen[0]) == str(tmp_path)
