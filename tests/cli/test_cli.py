"""The vermilion command: help, one-line errors, and the demo job end to end (small)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vermilion.cli import build_parser, main

SUBCOMMANDS = ["demo", "repo", "ingest", "deblend", "show", "report", "simulate"]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text


@pytest.mark.parametrize(
    "argv",
    [[name, "--help"] for name in SUBCOMMANDS]
    + [["repo", "create", "--help"], ["repo", "info", "--help"]]
    + [["ingest", what, "--help"] for what in ("coadd", "models", "sim")],
)
def test_every_subcommand_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vermilion")
    # every option is described
    parser_help = out.split("options:")[-1]
    assert "-h, --help" in parser_help


def test_errors_are_one_line_and_non_zero(tmp_path, capsys):
    code = main(
        [
            "show",
            "--repo",
            str(tmp_path / "missing"),
            "--tract",
            "0",
            "--patch",
            "0",
            "--blend",
            "1",
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vermilion: error:")
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vermilion.cli", "--debug", "repo", "info", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_parser_builds_without_heavy_imports():
    code = (
        "import sys; from vermilion.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('lsst.daf.butler', 'matplotlib', 'galsim', 'astropy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_runs_end_to_end(tmp_path, capsys):
    from vermilion.demo import run_demo

    out = tmp_path / "demo"
    args = ["--out", str(out), "--size", "160", "--seed", "3", "--no-report", "--no-progress"]
    assert main(["demo", *args, "-j", "1"]) == 0
    text = capsys.readouterr().out
    assert "vermilion demo:" in text and "sources/s" in text and "median |flux error|" in text
    pictures = sorted(p.name for p in out.glob("blend_*.png"))
    assert len(pictures) == 3
    assert all((out / p).stat().st_size > 5000 for p in pictures)

    # A rerun reuses the repository: the patch is not deblended again, and the summary
    # is measured from what is stored, not decorative.
    summary = run_demo(
        out=out, size=160, seed=3, workers=1, report=False, progress=False, verbose=False
    )
    assert summary.deblend_status == "skipped"
    assert summary.blends > 0 and summary.sources >= summary.blends and summary.failures == 0
    assert summary.accuracy["matched"] >= 0.8 * summary.sources
    assert 0 < summary.accuracy["median_abs_flux_error"] < 0.5
    assert sorted(p.name for p in summary.pictures) == pictures


def test_build_parser_is_reusable():
    args = build_parser().parse_args(["simulate", "--out", "x.npz", "--size", "64", "64"])
    assert args.size == [64, 64] and args.func.__name__ == "_cmd_simulate"


def test_ingest_default_run_is_where_deblend_reads():
    from vermilion.repo import DEFAULT_COADD_RUN

    for what in ("coadd", "sim"):
        args = build_parser().parse_args(
            ["ingest", what, "--repo", "r", "--tract", "0", "--patch", "0", "g=x.fits"][
                : 8 if what == "sim" else 9
            ]
        )
        assert args.run == DEFAULT_COADD_RUN
