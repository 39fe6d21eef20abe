"""Loud failures and clear errors of the command line (issue 18): each message as a user sees it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vermilion.cli import build_parser, main

SHAPE = (48, 48)


def _repo(path: Path, bands: str = "gri") -> Path:
    from vermilion.repo import create_repo

    create_repo(
        path, skymap="loud", bands=bands, tracts=1, patches=(1, 1), patch_shape=SHAPE,
        center=(0.0, 0.0),
    )  # fmt: skip
    return path


def _coadd_files(tmp_path: Path, bands: str, wcs=None) -> list[str]:
    """One FITS coadd per band (vermilion's layout), from a small simulated patch."""
    from vermilion.repo import Exposure
    from vermilion.sim import simulate_patch

    sim = simulate_patch(SHAPE, bands=bands, density=150.0, seed=4)
    out = []
    for i, band in enumerate(bands):
        path = tmp_path / f"coadd_{band}.fits"
        Exposure(sim.images[i], sim.mask[i], sim.variance[i], sim.psfs[i], (0, 0), wcs, band).write(
            path
        )
        out.append(f"{band}={path}")
    return out


def _ingest(repo: Path, files: list[str]) -> list[str]:
    return ["ingest", "coadd", "--repo", str(repo), "--tract", "0", "--patch", "0", *files]


def _deblend(repo: Path, *extra: str) -> list[str]:
    base = ["deblend", "--repo", str(repo), "--tract", "0", "--patch", "0"]
    return [*base, "--scheduler", "synchronous", "-j", "1", "--no-progress", *extra]


def test_missing_bands_warn_at_ingest_and_stop_the_deblend(tmp_path, capsys):
    repo = _repo(tmp_path / "repo")
    assert main(_ingest(repo, _coadd_files(tmp_path, "gr"))) == 0
    err = capsys.readouterr().err
    assert (
        "vermilion: warning: patch 0 of tract 0 now has coadds in band(s) gr of run "
        "'vermilion/coadd', but the repository's bands are gri: band(s) i are missing. "
        "Ingest them, or deblend this patch with the bands it has (--bands gr, or "
        "bands=['g', 'r'])."
    ) in err

    # deblend refuses the patch (asked: every band of the repository) ...
    assert main(_deblend(repo)) == 1
    out = capsys.readouterr().out
    assert (
        "tract 0 patch 0 failed: LookupError: tract 0 patch 0 has coadds in band(s) gr only, "
        "not in i of the repository's bands (gri) in ['vermilion/coadd']: ingest the missing "
        "band(s), or deblend the bands it has with --bands gr (bands=['g', 'r'])"
    ) in out
    from vermilion.repo import open_repo

    butler = open_repo(repo, collections=["vermilion/deblend"])
    assert not butler.query_datasets(
        "deepCoadd_deblendedCatalog", collections="vermilion/deblend", explain=False
    )
    # ... or bands it lacks when asked for them ...
    assert main(_deblend(repo, "--bands", "gi")) == 1
    assert "not in i of the bands asked for (gi)" in capsys.readouterr().out
    # ... and deblends the bands it has when told
    assert main(_deblend(repo, "--bands", "gr")) == 0
    butler = open_repo(repo, collections=["vermilion/deblend"])
    model = butler.get("deepCoadd_scarletModelData", skymap="loud", tract=0, patch=0)
    assert tuple(model.bands) == ("g", "r")

    # an unknown blend id says which ids exist, in a short list
    parents = sorted(model.blends)
    argv = ["show", "--repo", str(repo), "--tract", "0", "--patch", "0", "--blend", "999999"]
    assert main([*argv, "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    shown = ", ".join(str(p) for p in parents[:5])
    assert err.startswith("vermilion: error: ValueError: blend 999999: no record with this id ")
    assert f"(deblended parents: it holds {len(parents)} parent" in err and shown in err
    assert len(err) < 300
    # the report's rows get each child's catalog columns (id, fluxes, flags)
    from vermilion.pipeline.restart import patch_blends

    catalog = butler.get("deepCoadd_deblendedCatalog", skymap="loud", tract=0, patch=0)
    for pid, _blend, info in patch_blends(repo, 0, 0, max_blends=2):
        children = catalog.children(pid)
        assert sorted(info["sources"]) == sorted(int(i) for i in children["id"])
        for sid, columns in info["sources"].items():
            assert columns["id"] == sid and columns["parent"] == pid
            assert "deblend_reapportionedFlux_g" in columns and "footprint" not in columns


def test_a_coadd_wcs_far_from_the_sky_map_warns_naming_both(tmp_path, capsys):
    from astropy.wcs import WCS

    repo = _repo(tmp_path / "repo", bands="g")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [24.5, 24.5]
    wcs.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]
    with pytest.warns(UserWarning) as record:
        from vermilion.repo import IngestWarning, ingest_coadd

        path = _coadd_files(tmp_path, "g", wcs=wcs)[0].split("=", 1)[1]
        ingest_coadd(repo, {"g": path}, 0, 0)
    (warning,) = [w for w in record if issubclass(w.category, IngestWarning)]
    text = str(warning.message)
    assert text.startswith(f"{path} (band 'g'): the file's WCS puts the coadd's centre")
    assert "at RA 150.1000, Dec 2.2000 deg" in text and "at RA 0.0000, Dec 0.0000 deg" in text
    assert "The file's WCS is used" in text
    from vermilion.repo import open_repo

    stored = open_repo(repo, collections=["vermilion/coadd"]).get(
        "deepCoadd_calexp", skymap="loud", tract=0, patch=0, band="g"
    )
    ra, dec = stored.wcs.all_pix2world([23.5], [23.5], 0)
    assert ra[0] == pytest.approx(150.1) and dec[0] == pytest.approx(2.2)
    # a WCS that agrees with the sky map is stored in silence
    from vermilion.repo import get_skymap

    agree = get_skymap(open_repo(repo))[0].wcs
    with pytest.warns(UserWarning) as record:  # (pytest.warns needs one: the bands warning)
        import warnings

        warnings.warn("sentinel", UserWarning, stacklevel=1)
        path = _coadd_files(tmp_path, "g", wcs=agree)[0].split("=", 1)[1]
        ingest_coadd(repo, {"g": path}, 0, 0, overwrite=True)
    assert [str(w.message) for w in record] == ["sentinel"]


def test_clear_errors_of_the_repository_commands(tmp_path, capsys):
    repo = _repo(tmp_path / "repo")
    # --exist-ok, not the Python keyword
    assert main(["repo", "create", str(repo)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"vermilion: error: RepoError: {repo} is already a data repository "
        "(pass --exist-ok to add to it)"
    )
    # repo info: the sky map's geometry
    assert main(["repo", "info", str(repo)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["skymap_geometry"] == {
        "loud": {
            "tracts": {"0": [0.0, 0.0]},
            "patches": [1, 1],
            "patch_shape": list(SHAPE),
            "pixel_scale": 0.2,
            "patch_border": 0,
        }
    }
    # report on a patch never deblended: run vermilion deblend
    assert main(["report", "--repo", str(repo), "--tract", "0", "--patch", "0", "--out",
                 str(tmp_path / "rep")]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vermilion: error: DatasetMissingError: No deepCoadd_deblendedCatalog ")
    assert err.endswith(
        f"was it deblended? run `vermilion deblend --repo {repo} --tract 0 --patch 0` "
        "(vermilion.pipeline.deblend_patches) first"
    )
    # a tract the sky map does not have
    assert main(["ingest", "sim", "--repo", str(repo), "--tract", "0", "--patch", "0",
                 "--bands", "gri", "--density", "100"]) == 0  # fmt: skip
    assert f"simulated and ingested a {SHAPE[0]} x {SHAPE[1]} px patch" in capsys.readouterr().out
    assert main(["deblend", "--repo", str(repo), "--tract", "7", "--patch", "0",
                 "--scheduler", "synchronous", "--no-progress"]) == 1  # fmt: skip
    # refused before any work, in one line (as every unknown tract or patch)
    assert capsys.readouterr().err.strip() == (
        "vermilion: error: DataIdError: Tract 7 is not in skymap 'loud' (tracts [0])"
    )
    assert main(["show", "--repo", str(repo), "--tract", "7", "--patch", "0", "--blend", "1",
                 "--out", str(tmp_path / "x.png")]) == 1  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "vermilion: error: DataIdError: Tract 7 is not in skymap 'loud' (tracts [0])"
    )


def test_repo_info_into_a_closed_pipe_is_quiet(tmp_path):
    """`vermilion repo info | head`: the reader goes away before the JSON is written."""
    repo = _repo(tmp_path / "repo")
    shell = f"set -o pipefail; {sys.executable} -m vermilion.cli repo info {repo} | true"
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=False)
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr == ""
    assert proc.returncode in (0, 141)  # 141: the pipe closed before the output was written


def _options(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prefix} {name}".strip())
        elif action.option_strings and action.dest != "help" and not action.required:
            yield prefix, action


def test_every_option_states_its_default():
    from vermilion.cli import add_deblend_arguments

    options = list(_options(build_parser()))
    assert len(options) > 40
    missing = [
        f"{cmd} {a.option_strings[-1]}" for cmd, a in options if "default" not in (a.help or "")
    ]
    assert missing == []
    # the standalone `vermilion deblend` parser too
    alone = add_deblend_arguments(argparse.ArgumentParser())
    assert all("default" in (a.help or "") for _, a in _options(alone))
    # the defaults are the program's: ingest sim simulates the patch's own shape
    args = build_parser().parse_args(
        ["ingest", "sim", "--repo", "r", "--tract", "0", "--patch", "0"]
    )
    assert args.size is None


def test_the_guide_names_the_programs_default_runs():
    from vermilion.pipeline import DEFAULT_DEBLEND_RUN
    from vermilion.repo import DEFAULT_COADD_RUN

    page = Path(__file__).resolve().parents[2] / "docs" / "guide" / "01-deblending-a-patch.md"
    text = " ".join(page.read_text().split())
    assert f"`{DEFAULT_COADD_RUN}` (`vermilion.repo.DEFAULT_COADD_RUN`)" in text
    assert f"`{DEFAULT_DEBLEND_RUN}` (`vermilion.pipeline.DEFAULT_DEBLEND_RUN`)" in text
    help_text = build_parser()._subparsers._group_actions[0].choices["deblend"].format_help()
    assert f"(default: {DEFAULT_DEBLEND_RUN} " in " ".join(help_text.split())
