"""Exposures written by lsst.afw.image, compared with the file's values read by astropy."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES
from vermilion.repo.errors import CorruptFileError, PsfMissingError
from vermilion.repo.exposure import Exposure

AFW_EXPOSURE = Path(__file__).resolve().parents[1] / "data" / "afw" / "exposure-version-2.fits"


def gaussian_psf(size: int = 7, sigma: float = 1.2) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return (psf / psf.sum()).astype(np.float32)


def raw(path=AFW_EXPOSURE):
    """IMAGE, MASK, VARIANCE HDUs (found by EXTTYPE) as astropy reads them."""
    with fits.open(path) as hdul:
        by_type = {h.header.get("EXTTYPE"): h for h in hdul[1:4]}
        return {k: (np.array(h.data), h.header.copy()) for k, h in by_type.items()}


def raw_wcs(header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, naxis=2)


def edited_copy(tmp_path, name, edit) -> Path:
    """A copy of the afw file with ``edit(header)`` applied to the IMAGE, MASK, VARIANCE headers."""
    path = tmp_path / name
    shutil.copyfile(AFW_EXPOSURE, path)
    path.chmod(0o644)
    with fits.open(path, mode="update") as hdul:
        for hdu in hdul[1:4]:
            edit(hdu.header)
    return path


def check_against_file(exp: Exposure, path: Path, origin: tuple[int, int]) -> None:
    parts = raw(path)
    image, header = parts["IMAGE"]
    np.testing.assert_array_equal(exp.image, image.astype(np.float32))
    np.testing.assert_array_equal(exp.variance, parts["VARIANCE"][0].astype(np.float32))
    assert exp.bbox == Box(image.shape, origin)
    # pixel -> sky: the exposure's WCS is of parent pixels, astropy's of the file's
    wcs = raw_wcs(header)
    y0, x0 = origin
    for y, x in [(0, 0), (3, 7), (9, 2), (5.5, 4.25)]:
        np.testing.assert_allclose(
            exp.wcs.pixel_to_world_values(x + x0, y + y0),
            wcs.pixel_to_world_values(x, y),
            rtol=0,
            atol=1e-10,
        )


def test_read_afw_exposure_against_astropy():
    psf = gaussian_psf()
    exp = Exposure.read(AFW_EXPOSURE, psf=psf)
    check_against_file(exp, AFW_EXPOSURE, (0, 0))
    np.testing.assert_allclose(exp.psf.computeKernelImage(), psf / psf.sum(), rtol=1e-6)


def test_afw_mask_planes_are_remapped_bit_by_bit():
    mask, header = raw()["MASK"]
    afw_planes = {k[3:]: int(v) for k, v in header.items() if k.startswith("MP_")}
    assert {"BAD", "SAT", "EDGE", "NO_DATA", "CR", "DETECTED"} <= set(afw_planes)
    exp = Exposure.read(AFW_EXPOSURE, psf=gaussian_psf())
    assert set(exp.mask_planes) == set(afw_planes)
    for name, value in MASK_PLANES.items():  # our planes keep our bits
        assert exp.mask_planes[name] == value
    for name, bit in afw_planes.items():
        np.testing.assert_array_equal(exp.mask_plane(name), (mask & (1 << bit)) != 0, err_msg=name)
    # every bit of the mask belongs to a plane (nothing else is carried over)
    assert not (exp.mask & ~np.int32(sum(exp.mask_planes.values()))).any()
    # the component read gives the same remapped mask
    np.testing.assert_array_equal(Exposure.read(AFW_EXPOSURE, component="mask"), exp.mask)


def test_afw_mask_bits_without_a_plane_are_dropped(tmp_path):
    path = tmp_path / "extra.fits"
    shutil.copyfile(AFW_EXPOSURE, path)
    path.chmod(0o644)
    with fits.open(path, mode="update") as hdul:
        hdul[2].data[4, 4] |= 1 << 20  # no MP_ card names bit 20
    exp = Exposure.read(path, psf=gaussian_psf())
    assert not (exp.mask & ~np.int32(sum(exp.mask_planes.values()))).any()


def test_afw_origin_from_ltv_or_crval_a(tmp_path):
    def shift(header):
        header["LTV1"], header["LTV2"] = -100.0, -50.0
        header["CRVAL1A"], header["CRVAL2A"] = 100.0, 50.0

    path = edited_copy(tmp_path, "shifted.fits", shift)
    check_against_file(Exposure.read(path, psf=gaussian_psf()), path, (50, 100))

    def crval_only(header):
        shift(header)
        del header["LTV1"], header["LTV2"]

    path = edited_copy(tmp_path, "crval.fits", crval_only)
    exp = Exposure.read(path, psf=gaussian_psf())
    check_against_file(exp, path, (50, 100))
    # a box of parent pixels reads those pixels only
    box = Box((3, 4), (52, 103))
    cut = Exposure.read(path, bbox=box, psf=gaussian_psf())
    np.testing.assert_array_equal(cut.image, exp.image[2:5, 3:7])
    np.testing.assert_array_equal(cut.mask, exp.mask[2:5, 3:7])
    assert cut.bbox == box

    def disagree(header):
        shift(header)
        header["CRVAL1A"] = 7.0

    path = edited_copy(tmp_path, "disagree.fits", disagree)
    with pytest.raises(CorruptFileError, match=r"LTV1/LTV2 .* differs from CRVAL1A/CRVAL2A"):
        Exposure.read(path, psf=gaussian_psf())


def test_afw_tan_sip_wcs(tmp_path):
    def sip(header):
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
        header["A_ORDER"], header["B_ORDER"] = 2, 2
        header["A_0_2"], header["A_1_1"], header["A_2_0"] = 2e-5, -1e-5, 3e-5
        header["B_0_2"], header["B_1_1"], header["B_2_0"] = -2e-5, 1e-5, 4e-5
        header["LTV1"], header["LTV2"] = -20.0, -30.0
        header["CRVAL1A"], header["CRVAL2A"] = 20.0, 30.0

    path = edited_copy(tmp_path, "sip.fits", sip)
    exp = Exposure.read(path, psf=gaussian_psf())
    assert exp.wcs.sip is not None
    check_against_file(exp, path, (30, 20))
    # written in vermilion's layout and read back, the distorted WCS is the same
    exp.write(tmp_path / "ours.fits")
    back = Exposure.read(tmp_path / "ours.fits")
    for x, y in [(20, 30), (27.5, 36), (29, 39)]:
        np.testing.assert_allclose(
            back.wcs.pixel_to_world_values(x, y), exp.wcs.pixel_to_world_values(x, y), atol=1e-10
        )


def test_afw_exposure_without_psf_is_one_clear_error():
    with pytest.raises(PsfMissingError, match="psf=") as info:
        Exposure.read(AFW_EXPOSURE)
    assert "\n" not in str(info.value) and "CoaddPsf" in str(info.value)
    # the pixels alone need no PSF
    np.testing.assert_array_equal(
        Exposure.read(AFW_EXPOSURE, component="image"), raw()["IMAGE"][0].astype(np.float32)
    )
    assert Exposure.read(AFW_EXPOSURE, component="bbox") == Box((10, 10), (0, 0))


def test_from_fits_reads_afw_files(tmp_path):
    with pytest.raises(PsfMissingError):
        Exposure.from_fits(AFW_EXPOSURE, band="r")
    exp = Exposure.from_fits(AFW_EXPOSURE, band="r", psf=gaussian_psf())
    check_against_file(exp, AFW_EXPOSURE, (0, 0))
    assert exp.band == "r" and exp.mask_planes["NO_DATA"] == MASK_PLANES["NO_DATA"]


def test_a_fits_file_of_another_layout_names_its_hdus(tmp_path):
    path = tmp_path / "other.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.zeros((4, 5), np.float32), name="SCI"),
            fits.ImageHDU(np.zeros((4, 5), np.float32), name="ERR"),
        ]
    ).writeto(path)
    with pytest.raises(CorruptFileError) as info:
        Exposure.read(path)
    message = str(info.value)
    assert "not a vermilion exposure" in message and "lsst.afw.image" in message
    assert "SCI (image 5x4)" in message and "ERR (image 5x4)" in message
    assert "\n" not in message


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_headers_declaring_more_than_the_file_holds(tmp_path):
    # the MASK declares a shape the IMAGE does not have
    with fits.open(AFW_EXPOSURE) as hdul:
        hdus = [h.copy() for h in hdul[:4]]
    hdus[2] = fits.ImageHDU(np.zeros((10, 12), np.int32), header=hdus[2].header)
    fits.HDUList(hdus).writeto(tmp_path / "shape.fits")
    with pytest.raises(CorruptFileError, match=r"HDU MASK is \(10, 12\), the image is \(10, 10\)"):
        Exposure.read(tmp_path / "shape.fits", psf=gaussian_psf())
    # a file cut inside the VARIANCE data
    data = AFW_EXPOSURE.read_bytes()
    with fits.open(AFW_EXPOSURE) as hdul:
        cut = hdul.fileinfo(3)["datLoc"] + 100
    (tmp_path / "cut.fits").write_bytes(data[:cut])
    with pytest.raises(CorruptFileError, match=r"cut\.fits: HDU VARIANCE declares a 10x10 image"):
        Exposure.read(tmp_path / "cut.fits", psf=gaussian_psf())
    # a header that declares a bigger image than the file holds
    text = bytearray(data)
    with fits.open(AFW_EXPOSURE) as hdul:
        start = hdul.fileinfo(3)["hdrLoc"]
    card = b"NAXIS2  =                   10"
    at = text.index(card, start)
    text[at : at + len(card)] = b"NAXIS2  =               100000"
    (tmp_path / "big.fits").write_bytes(bytes(text))
    with pytest.raises(CorruptFileError, match=r"big\.fits: HDU VARIANCE is \(100000, 10\)"):
        Exposure.read(tmp_path / "big.fits", psf=gaussian_psf())
