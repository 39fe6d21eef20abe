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
