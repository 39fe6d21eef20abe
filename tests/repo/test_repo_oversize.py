"""FITS files whose headers declare more than the file holds: one clear error (issue 19).

Each read runs in a child process under an address-space limit; only the
format's clear error comes out and peak memory stays small.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from astropy.io import fits

ALLOWANCE = 64 << 20


def _set_card(raw: bytes, key: bytes, old: int, new: int, count: int = 0) -> bytes:
    pattern = key.ljust(8) + rb"= +" + str(old).encode() + rb"\b"

    def repl(m: re.Match) -> bytes:
        width = len(m.group(0))
        return (key.ljust(8) + b"= " + str(new).encode().rjust(width - 10))[:width]

    out, n = re.subn(pattern, repl, raw, count=count)
    assert n >= 1
    return out


def crafted_compressed(path) -> None:
    img = np.zeros((16, 16), np.float32)
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.CompImageHDU(img, name="IMAGE"),
            fits.CompImageHDU(img, name="VARIANCE"),
            fits.ImageHDU(np.ones((5, 5), np.float32), name="PSF"),
        ]
    )
    hdul.writeto(path)
    raw = path.read_bytes()
    for key in (b"ZNAXIS1", b"ZNAXIS2"):
        raw = _set_card(raw, key, 16, 50000)
    path.write_bytes(raw)


def crafted_plain(path) -> None:
    img = np.zeros((16, 16), np.float32)
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(img, name="IMAGE"),
            fits.ImageHDU(img, name="VARIANCE"),
            fits.ImageHDU(np.ones((5, 5), np.float32), name="PSF"),
        ]
    )
    hdul.writeto(path)
    raw = path.read_bytes()
    raw = _set_card(raw, b"NAXIS1", 16, 50000)
    raw = _set_card(raw, b"NAXIS2", 16, 50000)
    path.write_bytes(raw)


def crafted_catalog(path) -> None:
    from vermilion.detect.catalog import SourceCatalog

    SourceCatalog.empty(tract=1, patch=2, bands="gr").write(path)
    # the last table (HEAVYBANDS or PEAKS, no rows) declares 400 million rows
    raw = path.read_bytes()
    at = raw.rfind(b"NAXIS2  =")
    path.write_bytes(raw[:at] + _set_card(raw[at:], b"NAXIS2", 0, 400_000_000))


_CHILD = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    from vermilion.repo import Exposure
    from vermilion.detect.catalog import SourceCatalog
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        if sys.argv[2] == "catalog":
            SourceCatalog.read(sys.argv[1])
        else:
            Exposure.from_fits(sys.argv[1], band="g")
        print("OK")
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
    print(1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before))
    """
)


def _child(path, kind):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    line, peak = proc.stdout.strip().splitlines()
    return line, int(peak)


@pytest.mark.parametrize(
    ("make", "kind", "expected"),
    [
        (
            crafted_compressed,
            "exposure",
            "CorruptFileError: {p}: HDU IMAGE declares a 50000x50000 image (10000000000 "
            "bytes) in a {n}-byte file, more than 100 times its size (VERMILION_MAX_RATIO)",
        ),
        (
            crafted_plain,
            "exposure",
            "CorruptFileError: {p}: HDU IMAGE declares 50000x50000 (10000000000 bytes of "
            "data) but the file holds only {rest} bytes after its header",
        ),
        (
            crafted_catalog,
            "catalog",
            # catalogs are opened by the reader shared with afw's (an AfwTableError, a ValueError)
            "AfwTableError: {p}: HDU {name} declares {shape} ({size} bytes of data) but the "
            "file holds only {rest} bytes after its header",
        ),
    ],
)
def test_crafted_fits_headers(tmp_path, make, kind, expected):
    path = tmp_path / "crafted.fits"
    make(path)
    n = path.stat().st_size
    line, peak = _child(path, kind)
    with warnings.catch_warnings(), fits.open(path) as hdul:
        warnings.simplefilter("ignore")  # astropy: "File may have been truncated"
        hdu = hdul[-1] if kind == "catalog" else hdul["IMAGE"]
        rest = n - hdu.fileinfo()["datLoc"]
        naxis1 = hdu.header["NAXIS1"]
        name = hdu.name
    shape = f"{naxis1}x400000000"
    size = naxis1 * 400_000_000
    assert line == expected.format(p=path, n=n, rest=rest, shape=shape, size=size, name=name)
    assert peak < 10 * n + ALLOWANCE
