"""Damaged lsst.afw.image exposure files: a clear error, or the intact pixels with a warning.

Never a crash of another kind, and never silently different pixels: a file cut short in
its archive (which vermilion does not use) still gives the exposure's exact pixels, and
astropy's warning that the file is truncated reaches the caller.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vermilion.repo.errors import RepoError
from vermilion.repo.exposure import Exposure

AFW_EXPOSURE = Path(__file__).resolve().parents[1] / "data" / "afw" / "exposure-version-2.fits"
RAW = AFW_EXPOSURE.read_bytes()
PSF = np.full((5, 5), 1 / 25, np.float32)
INTACT = Exposure.read(AFW_EXPOSURE, psf=PSF)
BLOCK = 2880
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read_damaged(tmp_path, data: bytes):
    path = tmp_path / "damaged.fits"
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exposure = Exposure.read(path, psf=PSF)
        except RepoError as err:
            assert str(err), "the error says what is wrong"
            return None, caught
    return exposure, caught


def _same_pixels(exposure) -> bool:
    return (
        np.array_equal(exposure.image, INTACT.image, equal_nan=True)
        and np.array_equal(exposure.mask, INTACT.mask)
        and np.array_equal(exposure.variance, INTACT.variance, equal_nan=True)
        and exposure.bbox == INTACT.bbox
    )


@SETTINGS
@given(cut=st.integers(1, len(RAW) - 1))
def test_truncated_file(tmp_path, cut):
    exposure, caught = _read_damaged(tmp_path, RAW[:cut])
    if exposure is not None:
        assert _same_pixels(exposure)
        assert caught, "a truncated file that still reads says so"


@SETTINGS
@given(block=st.integers(0, len(RAW) // BLOCK - 1), data=st.data())
def test_a_corrupted_block(tmp_path, block, data):
    """Random bytes over one 2880-byte block: an error, or what astropy itself reads."""
    noise = data.draw(st.binary(min_size=BLOCK, max_size=BLOCK))
    damaged = RAW[: block * BLOCK] + noise + RAW[(block + 1) * BLOCK :]
    exposure, _ = _read_damaged(tmp_path, damaged)
    if exposure is not None and block >= 8:
        # past the pixel HDUs (primary, IMAGE, MASK, VARIANCE: the first 8 blocks) only
        # the archive is hit, which vermilion does not read
        assert _same_pixels(exposure)


def test_missing_pixel_hdus(tmp_path):
    """A file without its MASK HDU (header blocks 3-4, data block 5) is refused by name."""
    path = tmp_path / "no_mask.fits"
    path.write_bytes(RAW[: 3 * BLOCK] + RAW[6 * BLOCK :])
    try:
        Exposure.read(path, psf=PSF)
    except RepoError as err:
        assert "MASK" in str(err) or "IMAGE" in str(err), err
    else:
        raise AssertionError("an exposure without its MASK HDU was read")
