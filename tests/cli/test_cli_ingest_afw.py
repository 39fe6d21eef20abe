"""`vermilion ingest coadd` with an lsst.afw.image exposure and `--psf BAND=FILE`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from vermilion.cli import main

AFW_EXPOSURE = Path(__file__).resolve().parents[1] / "data" / "afw" / "exposure-version-2.fits"


def _psf(size: int = 7, sigma: float = 1.3) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return (psf / psf.sum()).astype(np.float32)


def _repo(tmp_path) -> Path:
    from vermilion.repo import create_repo

    path = tmp_path / "repo"
    create_repo(path, skymap="afw", bands="gr", tracts=1, patches=(1, 1), patch_shape=(20, 20))
    return path


def test_ingest_afw_exposure_with_psf_files(tmp_path, capsys):
    from lsst.daf.butler import Butler

    repo = _repo(tmp_path)
    psfs = {"g": _psf(7, 1.2), "r": _psf(9, 1.6)}
    for band, psf in psfs.items():
        fits.PrimaryHDU(psf).writeto(tmp_path / f"psf_{band}.fits")
    argv = ["ingest", "coadd", "--repo", str(repo), "--tract", "0", "--patch", "0"]
    argv += [f"{b}={AFW_EXPOSURE}" for b in psfs]
    argv += [f"--psf={b}={tmp_path / f'psf_{b}.fits'}" for b in psfs]
    assert main(argv) == 0
    assert "ingested 2 dataset(s)" in capsys.readouterr().out

    with fits.open(AFW_EXPOSURE) as hdul:
        image = np.array(hdul[1].data, np.float32)
        mask = np.array(hdul[2].data)
        sat_bit = int(hdul[2].header["MP_SAT"])
        no_data_bit = int(hdul[2].header["MP_NO_DATA"])
    butler = Butler(repo, skymap="afw", collections="vermilion/coadd")
    for band, psf in psfs.items():
        exp = butler.get("deepCoadd_calexp", tract=0, patch=0, band=band)
        np.testing.assert_array_equal(exp.image, image)
        np.testing.assert_array_equal(exp.mask_plane("SAT"), (mask >> sat_bit) & 1 == 1)
        np.testing.assert_array_equal(exp.mask_plane("NO_DATA"), (mask >> no_data_bit) & 1 == 1)
        np.testing.assert_allclose(exp.psf.computeKernelImage(), psf / psf.sum(), rtol=1e-6)
        assert exp.band == band and exp.bbox.origin == (0, 0)


def test_ingest_afw_exposure_without_psf_is_one_error_line(tmp_path, capsys):
    repo = _repo(tmp_path)
    argv = ["ingest", "coadd", "--repo", str(repo), "--tract", "0", "--patch", "0"]
    assert main([*argv, f"g={AFW_EXPOSURE}"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vermilion: error: PsfMissingError")
    assert "--psf BAND=FILE" in lines[0]
    # a --psf for a band without a coadd file is refused too
    assert main([*argv, f"g={AFW_EXPOSURE}", "--psf", f"r={AFW_EXPOSURE}"]) == 1
    assert "no coadd file" in capsys.readouterr().err
