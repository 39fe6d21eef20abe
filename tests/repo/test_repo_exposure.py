"""Exposure, ImagePsf and MultibandExposure without a repository."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from vermilion.core.bbox import Box
from vermilion.core.masks import MASK_PLANES
from vermilion.repo.errors import BBoxError, CorruptFileError, FormatVersionError
from vermilion.repo.exposure import Exposure, ImagePsf, MultibandExposure


def gaussian_psf(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return (psf / psf.sum()).astype(np.float32)


def tan_wcs(crpix=(50.0, 40.0)) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = list(crpix)
    w.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]
    return w


class Point:
    """An lsst.geom.Point2D look-alike (x first)."""

    def __init__(self, x: float, y: float) -> None:
        self._x, self._y = x, y

    def getX(self) -> float:
        return self._x

    def getY(self) -> float:
        return self._y


@pytest.fixture
def exposure() -> Exposure:
    rng = np.random.default_rng(1)
    shape = (30, 40)
    image = rng.normal(size=shape).astype(np.float32)
    mask = np.zeros(shape, np.int32)
    mask[3, 4] = MASK_PLANES["SAT"]
    mask[5:7, 1] = MASK_PLANES["NO_DATA"] | 16
    planes = {**MASK_PLANES, "DETECTED": 16}
    variance = rng.uniform(0.5, 2, size=shape).astype(np.float32)
    return Exposure(
        image, mask, variance, gaussian_psf(), Box(shape, (100, 200)), tan_wcs(), "r", planes
    )


def test_constant_psf_is_normalised_and_ignores_position():
    raw = gaussian_psf() * 7
    psf = ImagePsf(raw)
    k = psf.computeKernelImage((3, 4))
    assert k.dtype == np.float32 and k.shape == (11, 11)
    np.testing.assert_allclose(k.sum(), 1, rtol=1e-6)
    np.testing.assert_allclose(k, raw / raw.sum(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(psf), k)


def test_grid_psf_interpolates_bilinearly_and_clamps():
    a, b = gaussian_psf(9, 1.0), gaussian_psf(9, 2.0)
    grid = np.stack([np.stack([a, b]), np.stack([b, b])])  # (2, 2, 9, 9)
    psf = ImagePsf(grid, grid_y=[0, 100], grid_x=[0, 200])
    np.testing.assert_allclose(psf.computeKernelImage((0, 0)), a, rtol=1e-5)
    np.testing.assert_allclose(psf.computeKernelImage((-50, -80)), a, rtol=1e-5)  # clamped
    np.testing.assert_allclose(psf.computeKernelImage((0, 100)), (a + b) / 2, rtol=1e-5)
    np.testing.assert_allclose(psf.computeKernelImage(Point(x=100, y=0)), (a + b) / 2, rtol=1e-5)
    # grid centre (50, 100): weights a 1/4, b 3/4
    np.testing.assert_allclose(psf.computeKernelImage(), 0.25 * a + 0.75 * b, rtol=1e-5)


@pytest.mark.parametrize(
    ("image", "kw", "match"),
    [
        (np.ones((10, 11)), {}, "odd"),
        (np.ones((3, 11, 11)), {}, "grid"),
        (np.ones((2, 2, 5, 5)), {}, "grid_y"),
        (np.ones((2, 2, 5, 5)), {"grid_y": [0, 1], "grid_x": [1]}, "grid_x"),
        (np.ones((2, 2, 5, 5)), {"grid_y": [1, 0], "grid_x": [0, 1]}, "increase"),
        (np.full((5, 5), np.nan), {}, "NaN"),
    ],
)
def test_bad_psf_images_are_refused(image, kw, match):
    with pytest.raises(ValueError, match=match):
        ImagePsf(image, **kw)


def test_exposure_round_trip(tmp_path, exposure):
    path = tmp_path / "exp.fits"
    exposure.write(path)
    back = Exposure.read(path)
    np.testing.assert_array_equal(back.image, exposure.image)
    np.testing.assert_array_equal(back.mask, exposure.mask)
    np.testing.assert_array_equal(back.variance, exposure.variance)
    assert back.psf == exposure.psf
    assert back.bbox == exposure.bbox
    assert back.band == "r"
    assert back.mask_planes == exposure.mask_planes
    np.testing.assert_array_equal(back.mask_plane("DETECTED"), exposure.mask_plane("DETECTED"))
    assert back.mask_plane("DETECTED").sum() == 2
    # the WCS maps parent pixels the same way
    ra0, dec0 = exposure.wcs.pixel_to_world_values(210.0, 120.0)
    ra1, dec1 = back.wcs.pixel_to_world_values(210.0, 120.0)
    np.testing.assert_allclose([ra1, dec1], [ra0, dec0], rtol=0, atol=1e-10)
    # and the file's own WCS maps file pixels (FITS viewers)
    hdr = fits.getheader(path, "IMAGE")
    file_wcs = WCS(hdr)
    np.testing.assert_allclose(file_wcs.pixel_to_world_values(10.0, 20.0), (ra0, dec0), atol=1e-10)
    assert (hdr["LTV1"], hdr["LTV2"]) == (-200, -100)


def test_bbox_read_and_components_return_exact_sub_arrays(tmp_path, exposure):
    path = tmp_path / "exp.fits"
    exposure.write(path)
    box = Box((7, 9), (110, 215))
    local = (slice(10, 17), slice(15, 24))
    cut = Exposure.read(path, bbox=box)
    assert cut.bbox == box
    np.testing.assert_array_equal(cut.image, exposure.image[local])
    np.testing.assert_array_equal(cut.mask, exposure.mask[local])
    np.testing.assert_array_equal(cut.variance, exposure.variance[local])
    assert cut.image.dtype == np.float32 and cut.image.dtype.isnative
    np.testing.assert_array_equal(Exposure.read(path, box, "image"), exposure.image[local])
    np.testing.assert_array_equal(Exposure.read(path, box, "mask"), exposure.mask[local])
    np.testing.assert_array_equal(Exposure.read(path, box, "variance"), exposure.variance[local])
    assert Exposure.read(path, component="psf") == exposure.psf
    assert Exposure.read(path, component="bbox") == exposure.bbox
    assert Exposure.read(path, box, "bbox") == box
    w = Exposure.read(path, component="wcs")
    np.testing.assert_allclose(w.wcs.crpix, exposure.wcs.wcs.crpix)
    # subset in memory agrees with the read
    np.testing.assert_array_equal(exposure[box].image, cut.image)


def test_grid_psf_round_trip(tmp_path, exposure):
    grid = np.stack([np.stack([gaussian_psf(9, s), gaussian_psf(9, s + 0.5)]) for s in (1, 2, 3)])
    exposure.psf = ImagePsf(grid, [100, 110, 129], [200, 239])
    exposure.write(tmp_path / "g.fits")
    back = Exposure.read(tmp_path / "g.fits", component="psf")
    assert back == exposure.psf
    np.testing.assert_array_equal(back.grid_y, [100, 110, 129])


@pytest.mark.parametrize(
    "box", [Box((5, 5), (98, 200)), Box((5, 5), (100, 238)), Box((0, 5), (100, 200))]
)
def test_bbox_outside_is_refused(tmp_path, exposure, box):
    exposure.write(tmp_path / "e.fits")
    with pytest.raises(BBoxError, match="not inside"):
        Exposure.read(tmp_path / "e.fits", bbox=box)
    with pytest.raises(BBoxError):
        exposure.subset(box)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_corrupted_files(tmp_path, exposure):
    path = tmp_path / "e.fits"
    exposure.write(path)
    data = path.read_bytes()
    (tmp_path / "trunc.fits").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=r"trunc\.fits"):
        Exposure.read(tmp_path / "trunc.fits")
    (tmp_path / "junk.fits").write_bytes(b"not a fits file at all" * 200)
    with pytest.raises(CorruptFileError, match=r"junk\.fits"):
        Exposure.read(tmp_path / "junk.fits")
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(tmp_path / "other.fits")
    with pytest.raises(CorruptFileError, match="not a vermilion exposure"):
        Exposure.read(tmp_path / "other.fits")


def test_future_format_version_is_refused(tmp_path, exposure):
    path = tmp_path / "e.fits"
    exposure.write(path)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["VMLNVER"] = 99
    with pytest.raises(FormatVersionError, match="version 99"):
        Exposure.read(path)


def test_user_coadd_layouts(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.normal(size=(20, 30)).astype(np.float32)
    ivar = np.full(image.shape, 4.0, np.float32)
    ivar[0, 0] = 0
    psf = gaussian_psf(7)
    # primary image, IVAR, compressed PSF-less layout variants
    hdul = fits.HDUList(
        [fits.PrimaryHDU(image), fits.ImageHDU(ivar, name="IVAR"), fits.ImageHDU(psf, name="PSF")]
    )
    hdul[0].header["BAND"] = "i"
    hdul.writeto(tmp_path / "a.fits")
    exp = Exposure.from_fits(tmp_path / "a.fits", origin=(5, 6))
    np.testing.assert_array_equal(exp.image, image)
    assert exp.variance[1, 1] == pytest.approx(0.25) and np.isinf(exp.variance[0, 0])
    assert exp.band == "i" and exp.bbox == Box((20, 30), (5, 6)) and exp.wcs is None
    # compressed image with LTV origin and a WCS
    img_hdu = fits.CompImageHDU(image, name="IMAGE", compression_type="GZIP_2", quantize_level=0.0)
    img_hdu.header.update(tan_wcs().to_header())
    img_hdu.header["LTV1"], img_hdu.header["LTV2"] = -40, -30
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            img_hdu,
            fits.ImageHDU(np.ones_like(image), name="VARIANCE"),
            fits.ImageHDU(psf, name="PSF"),
        ]
    ).writeto(tmp_path / "b.fits")
    exp = Exposure.from_fits(tmp_path / "b.fits", band="g")
    np.testing.assert_array_equal(exp.image, image)
    assert exp.bbox.origin == (30, 40)
    # WCS of parent pixels = file WCS shifted by the origin
    np.testing.assert_allclose(
        exp.wcs.pixel_to_world_values(40.0, 30.0), tan_wcs().pixel_to_world_values(0.0, 0.0)
    )
    fits.HDUList([fits.PrimaryHDU(image), fits.ImageHDU(ivar, name="VARIANCE")]).writeto(
        tmp_path / "nopsf.fits"
    )
    with pytest.raises(CorruptFileError, match="no PSF"):
        Exposure.from_fits(tmp_path / "nopsf.fits")


def _mexp(bands=("g", "r", "i")) -> MultibandExposure:
    rng = np.random.default_rng(3)
    shape = (len(bands), 20, 25)
    psfs = [ImagePsf(gaussian_psf(7 + 2 * i)) for i in range(len(bands))]
    return MultibandExposure(
        bands,
        rng.normal(size=shape),
        rng.uniform(1, 2, size=shape),
        np.zeros(shape, np.int32),
        psfs,
        Box(shape[1:], (10, 20)),
    )


def test_multiband_selection():
    m = _mexp()
    assert m.images.shape == (3, 20, 25) and m.images.dtype == np.float32
    r = m["r"]
    assert isinstance(r, Exposure) and r.band == "r"
    np.testing.assert_array_equal(r.image, m.images[1])
    gi = m[["g", "i"]]
    assert gi.bands == ("g", "i")
    np.testing.assert_array_equal(gi.images, m.images[[0, 2]])
    assert m["g":"r"].bands == ("g", "r")
    box = Box((4, 5), (12, 30))
    cut = m[:, box]
    assert cut.bbox == box
    np.testing.assert_array_equal(cut.images, m.images[:, 2:6, 10:15])
    np.testing.assert_array_equal(cut.variance, m.variance[:, 2:6, 10:15])
    np.testing.assert_array_equal(m["i", box].image, m.images[2, 2:6, 10:15])
    np.testing.assert_array_equal(m[box].images, cut.images)
    with pytest.raises(KeyError, match="No band 'z'"):
        m["z"]
    with pytest.raises(BBoxError):
        m[Box((4, 5), (0, 0))]


def test_multiband_psfs_are_padded_to_one_shape():
    m = _mexp()
    psfs = m.psfs
    assert psfs.shape == (3, 11, 11)
    np.testing.assert_allclose(psfs.sum(axis=(1, 2)), 1, rtol=1e-5)
    np.testing.assert_allclose(psfs[0, 2:9, 2:9], gaussian_psf(7), rtol=1e-5)
    assert psfs[0, 0].sum() == 0
    np.testing.assert_array_equal(m.computePsfKernelImage((0, 0)), psfs)


def test_from_exposures_checks_boxes(exposure):
    other = exposure.subset(Box((10, 10), (100, 200)))
    with pytest.raises(ValueError, match="covers"):
        MultibandExposure.from_exposures(["r", "i"], [exposure, other])
    m = MultibandExposure.fromExposures(["r", "r2"], [exposure, exposure])
    assert m.images.shape == (2, 30, 40) and m.bbox == exposure.bbox
    assert m.mask_planes["DETECTED"] == 16


def test_to_observation_weights_mask_bad_pixels():
    m = _mexp()
    m.mask[1, 3, 4] = MASK_PLANES["SAT"]
    obs = m.to_observation()
    weights = np.asarray(obs.weights.data if hasattr(obs.weights, "data") else obs.weights)
    assert weights[1, 3, 4] == 0
    assert weights[0, 3, 4] == pytest.approx(1 / m.variance[0, 3, 4], rel=1e-5)


def test_files_the_fast_reader_leaves_to_astropy(tmp_path, exposure):
    """A compressed copy of an exposure file is still read (through astropy)."""
    path = tmp_path / "e.fits"
    exposure.write(path)
    with fits.open(path) as hdul:
        comp = fits.CompImageHDU(
            hdul["IMAGE"].data, hdul["IMAGE"].header, compression_type="GZIP_2", quantize_level=0.0
        )
        comp.name = "IMAGE"
        fits.HDUList([hdul[0], comp, hdul["MASK"], hdul["VARIANCE"], hdul["PSF"]]).writeto(
            tmp_path / "c.fits"
        )
    box = Box((4, 6), (105, 210))
    back = Exposure.read(tmp_path / "c.fits", bbox=box)
    np.testing.assert_array_equal(back.image, exposure.image[5:9, 10:16])
    np.testing.assert_array_equal(back.mask, exposure.mask[5:9, 10:16])
    assert back.psf == exposure.psf and back.band == "r"


def test_fast_reader_card_values():
    from vermilion.repo._fits import _parse_value

    assert _parse_value(" 'it''s r '   / comment") == "it's r"
    assert _parse_value("                   T / flag") is True
    assert _parse_value("                 -32 / bits") == -32
    assert _parse_value("  1.5E-3") == pytest.approx(1.5e-3)
    assert _parse_value("  2.0D2") == pytest.approx(200.0)


def test_importing_repo_loads_neither_butler_nor_astropy():
    import subprocess
    import sys

    code = (
        "import sys, vermilion.repo as r\n"
        "r.Exposure, r.MultibandExposure, r.ImagePsf, r.SkyMap, r.RepoError, r.get_exposures\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lsst', 'astropy')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rubin_mask_bits_are_remapped_by_plane_name():
    mask = np.zeros((4, 5), np.int32)
    rubin = {"BAD": 1, "SAT": 2, "EDGE": 16, "DETECTED": 32, "NO_DATA": 256}
    mask[0, 0] = 16  # EDGE
    mask[1, 1] = 256 | 32  # NO_DATA + DETECTED
    mask[2, 2] = 2  # SAT
    exp = Exposure(np.zeros((4, 5)), mask, np.ones((4, 5)), mask_planes=rubin)
    exp.with_standard_mask_planes()
    assert exp.mask_planes["EDGE"] == 8 and exp.mask_planes["NO_DATA"] == 4
    det = exp.mask_planes["DETECTED"]
    assert det >= 16
    assert exp.mask[0, 0] == 8 and exp.mask[1, 1] == 4 | det and exp.mask[2, 2] == 2
    assert exp.mask.sum() == 8 + 4 + det + 2
    before = exp.mask.copy()
    assert exp.with_standard_mask_planes() is exp
    np.testing.assert_array_equal(exp.mask, before)
