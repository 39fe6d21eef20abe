"""Ingest validates what it stores (issue 19): bands given twice, a band re-ingested with
other pixels, a file whose BAND card names another band, and model files that are not."""

from __future__ import annotations

import numpy as np
import pytest

from vermilion.cli import main
from vermilion.io._synthetic import synthetic_model_data


def _psf(size: int = 7, sigma: float = 1.3) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return (psf / psf.sum()).astype(np.float32)


def _coadd(path, band: str, value: float) -> str:
    from vermilion.repo import Exposure

    image = np.full((20, 20), value, np.float32)
    Exposure(image, None, np.ones_like(image), _psf(), (0, 0), band=band).write(path)
    return str(path)


@pytest.fixture
def repo(tmp_path):
    from vermilion.repo import create_repo

    path = tmp_path / "repo"
    create_repo(path, skymap="s", bands="gr", tracts=1, patches=(1, 1), patch_shape=(20, 20))
    return path


def _stored(repo, band):
    from lsst.daf.butler import Butler

    butler = Butler(repo, skymap="s")
    refs = butler.query_datasets(
        "deepCoadd_calexp", collections="*", band=band, explain=False, find_first=False
    )
    return [butler.get(r).image for r in refs]


def _ingest(repo, *items):
    return main(["ingest", "coadd", "--repo", str(repo), "--tract", "0", "--patch", "0", *items])


def test_band_given_twice(repo, tmp_path, capsys):
    a = _coadd(tmp_path / "a.fits", "g", 1.0)
    b = _coadd(tmp_path / "b.fits", "g", 2.0)
    assert _ingest(repo, f"g={a}", f"g={b}") == 1
    assert capsys.readouterr().err.strip() == (
        f"vermilion: error: ValueError: band 'g' is given twice ({a} and {b}); give it once"
    )
    assert _stored(repo, "g") == []


def test_reingest_with_other_pixels_needs_replace(repo, tmp_path, capsys):
    a = _coadd(tmp_path / "a.fits", "g", 1.0)
    b = _coadd(tmp_path / "b.fits", "g", 2.0)
    assert _ingest(repo, f"g={a}") == 0
    assert capsys.readouterr().out.strip() == (
        f"ingested 1 dataset(s) into {repo} (tract 0, patch 0, run vermilion/coadd): g={a}"
    )
    assert _ingest(repo, f"g={a}") == 0  # the same file again: idempotent
    capsys.readouterr()
    assert _ingest(repo, f"g={b}") == 1
    assert capsys.readouterr().err.strip() == (
        "vermilion: error: RepoError: deepCoadd_calexp (tract 0, patch 0, band g) already "
        "holds other pixels in run 'vermilion/coadd'; nothing was stored: pass --replace "
        "(overwrite=True) to replace it"
    )
    (image,) = _stored(repo, "g")
    assert np.all(image == 1.0)
    assert _ingest(repo, f"g={b}", "--replace") == 0
    assert capsys.readouterr().out.strip().endswith(f"run vermilion/coadd): g={b}")
    (image,) = _stored(repo, "g")
    assert np.all(image == 2.0)


def test_band_card_disagrees(repo, tmp_path, capsys):
    g = _coadd(tmp_path / "g.fits", "g", 1.0)
    assert _ingest(repo, f"r={g}") == 1
    assert capsys.readouterr().err.strip() == (
        f"vermilion: error: DataIdError: {g} is a 'g'-band file (its BAND card) but was "
        f"given as band 'r'; give it as g={g}"
    )
    assert _stored(repo, "r") == []


def _ingest_models(repo, path):
    argv = ["ingest", "models", "--repo", str(repo), "--tract", "0", "--patch", "0", str(path)]
    return main(argv)


def _model_datasets(repo):
    from lsst.daf.butler import Butler

    butler = Butler(repo)
    return butler.query_datasets(
        "deepCoadd_scarletModelData", collections="*", explain=False, find_first=False
    )


@pytest.mark.parametrize("kind", ["text", "truncated", "crafted"])
def test_ingest_models_validates_content(repo, tmp_path, capsys, kind):
    path = tmp_path / "m.vmd"
    synthetic_model_data(3, seed=2).write(path)
    data = path.read_bytes()
    if kind == "text":
        path.write_text("hello, this is not a model file\n")
        reason = (
            "not ingested: file {p}: unrecognised format (not a vermilion container, a "
            "Rubin JSON file or a .scarlet archive)"
        )
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
        reason = (
            "not ingested: file {p}, field 'footer': file is truncated or was not closed "
            "(no footer at the end)"
        )
    else:  # a record byte flipped
        raw = bytearray(data)
        raw[100] ^= 0xFF
        path.write_bytes(bytes(raw))
        reason = (
            "not ingested: file {p}, blend {b}, field 'crc': checksum mismatch: the stored "
            "bytes are corrupted"
        )
    assert _ingest_models(repo, path) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    first = min(synthetic_model_data(3, seed=2).blends)
    assert err == "vermilion: error: CorruptFileError: " + reason.format(p=path, b=first)
    assert _model_datasets(repo) == []
    assert not any(p.suffix == ".vmd" for p in repo.rglob("*"))


def test_ingest_models_good_file(repo, tmp_path, capsys):
    path = tmp_path / "m.vmd"
    synthetic_model_data(3, seed=2).write(path)
    assert _ingest_models(repo, path) == 0
    assert capsys.readouterr().out.strip() == (
        f"ingested {path} into {repo} (tract 0, patch 0, run models)"
    )
    assert len(_model_datasets(repo)) == 1


def _coadd_with(path, variance=None, psf=None, mask_card=None) -> str:
    from astropy.io import fits

    _coadd(path, "g", 1.0)
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    for h in hdus:
        if h.name == "VARIANCE" and variance is not None:
            h.data = np.full(h.data.shape, variance, h.data.dtype)
        if h.name == "PSF" and psf is not None:
            h.data = np.full(h.data.shape, psf, h.data.dtype)
        if h.name == "MASK" and mask_card is not None:
            h.header[mask_card[0]] = mask_card[1]
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return str(path)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("variance", "no pixel has a positive variance (all zero, negative or not finite)"),
        ("zero variance", "no pixel has a positive variance (all zero, negative or not finite)"),
        ("psf", "the PSF image sums to 0 (all zero or negative)"),
        ("negative psf", "the PSF image sums to -49 (all zero or negative)"),
        ("mask card", "mask plane EVIL is bit 99 (card MP_EVIL); a 32-bit mask has bits 0 to 30"),
    ],
)
def test_unusable_exposures_are_refused(repo, tmp_path, capsys, kind, reason):
    path = tmp_path / "bad.fits"
    if kind == "variance":
        f = _coadd_with(path, variance=-1.0)
    elif kind == "zero variance":
        f = _coadd_with(path, variance=0.0)
    elif kind == "psf":
        f = _coadd_with(path, psf=0.0)
    elif kind == "negative psf":
        f = _coadd_with(path, psf=-1.0)
    else:
        f = _coadd_with(path, mask_card=("MP_EVIL", 99))
    assert _ingest(repo, f"g={f}") == 1
    assert capsys.readouterr().err.strip() == (
        f"vermilion: error: RepoError: {f} (band 'g'): {reason}: not stored"
    )
    assert _stored(repo, "g") == []


def test_some_non_positive_variance_is_flagged(repo, tmp_path, caplog):
    import logging

    from astropy.io import fits

    path = tmp_path / "some.fits"
    _coadd(path, "g", 1.0)
    with fits.open(path) as hdul:
        hdus = [h.copy() for h in hdul]
    var = next(h for h in hdus if h.name == "VARIANCE")
    var.data[2, 3] = 0.0
    var.data[4, 5] = -2.0
    fits.HDUList(hdus).writeto(path, overwrite=True)
    with caplog.at_level(logging.WARNING):
        assert _ingest(repo, f"g={path}") == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} (band 'g'): 2 pixel(s) with variance <= 0 stored with the NO_DATA bit "
        "(no weight in the fit)"
    ]
    from lsst.daf.butler import Butler

    exp = Butler(repo, skymap="s", collections="vermilion/coadd").get(
        "deepCoadd_calexp", tract=0, patch=0, band="g"
    )
    no_data = exp.mask_plane("NO_DATA")
    assert no_data[2, 3] and no_data[4, 5] and no_data.sum() == 2
    assert np.isinf(exp.variance[2, 3]) and np.isinf(exp.variance[4, 5])


def test_crafted_header_is_one_line(repo, tmp_path, capsys):
    path = tmp_path / "crafted.fits"
    _coadd(path, "g", 1.0)
    raw = path.read_bytes()
    at = raw.index(b"NAXIS1  =", raw.index(b"IMAGE"))
    card = b"NAXIS1  = " + b"50000".rjust(20)
    path.write_bytes(raw[:at] + card + raw[at + len(card) :])
    assert _ingest(repo, f"g={path}") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"vermilion: error: CorruptFileError: {path}: HDU IMAGE declares 50000x20 (4000000 "
        "bytes of data) but the file holds only "
    )
    assert len(err.splitlines()) == 1
    assert _stored(repo, "g") == []
