"""Property-based: damaged lsst.afw.table files give AfwTableError or exactly the file's data."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from afw_reference import HEAVY, HSC, PRE_SPANSETS, decode
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_afw_catalog import check_catalog, check_footprint

from vermilion.detect.catalog import SourceCatalog
from vermilion.io.afw_fits import AfwTableError

SETTINGS = settings(
    max_examples=int(os.environ.get("VERMILION_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
WORK = Path(tempfile.mkdtemp(prefix="vermilion-afw-fuzz-"))
FILES = [HSC, HEAVY, PRE_SPANSETS]


def _blocks(path: Path) -> list[tuple[int, int]]:
    """(start, end) of the data section of every table HDU."""
    with fits.open(path) as hdul:
        return [
            (hdul.fileinfo(i)["datLoc"], hdul.fileinfo(i)["datLoc"] + hdul.fileinfo(i)["datSpan"])
            for i in range(1, len(hdul))
        ]


def _check(path: Path) -> None:
    """Either our typed error, or the same data as the independent decoder gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cat = SourceCatalog.read(path)
        except AfwTableError:
            return
        ref = decode(path)  # must succeed when ours did
        if ref["records"] is not None:
            ref["hdul"].close()
            check_catalog(cat, path)
        else:
            assert len(cat) == len(ref["footprints"])
            for oid, fp in zip(cat["id"], cat["footprint"]):
                check_footprint(fp, ref["footprints"][int(oid)])
            ref["hdul"].close()


@SETTINGS
@given(which=st.sampled_from(FILES), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_file(which, cut):
    raw = which.read_bytes()
    path = WORK / "truncated.fits"
    path.write_bytes(raw[: int(cut * len(raw))])
    _check(path)


@SETTINGS
@given(which=st.sampled_from(FILES), data=st.data())
def test_shuffled_bytes_in_a_table(which, data):
    raw = bytearray(which.read_bytes())
    blocks = [b for b in _blocks(which) if b[1] > b[0]]
    start, end = data.draw(st.sampled_from(blocks))
    a = data.draw(st.integers(start, end - 1))
    b = data.draw(st.integers(a + 1, min(end, a + 64)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    window = np.frombuffer(bytes(raw[a:b]), np.uint8).copy()
    np.random.default_rng(seed).shuffle(window)
    raw[a:b] = window.tobytes()
    path = WORK / "shuffled.fits"
    path.write_bytes(bytes(raw))
    _check(path)


@SETTINGS
@given(which=st.sampled_from(FILES), data=st.data())
def test_missing_hdu(which, data):
    raw = which.read_bytes()
    with fits.open(which) as hdul:
        n = len(hdul)
        drop = data.draw(st.integers(1, n - 1))
        start = hdul.fileinfo(drop)["hdrLoc"]
        end = hdul.fileinfo(drop)["datLoc"] + hdul.fileinfo(drop)["datSpan"]
    path = WORK / "missing.fits"
    path.write_bytes(raw[:start] + raw[end:])
    _check(path)


@SETTINGS
@given(
    which=st.sampled_from(FILES),
    column=st.sampled_from(["id", "cat.archive", "cat.persistable", "row0", "nrows"]),
    data=st.data(),
)
def test_wrong_archive_ids(which, column, data):
    path = WORK / "wrong_ids.fits"
    path.write_bytes(which.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, mode="update") as hdul:
            at = 1 if which != HSC else 2
            if which == HSC and data.draw(st.booleans()):
                table, column = hdul[1].data, "footprint"
            else:
                table = hdul[at].data
            row = data.draw(st.integers(0, len(table) - 1))
            table[column][row] = data.draw(st.integers(-3, 40))
    _check(path)
