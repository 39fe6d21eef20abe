"""Run and collection names are checked before anything touches the disk (issue 19)."""

from __future__ import annotations

import os

import pytest

from vermilion.cli import main
from vermilion.io._synthetic import synthetic_model_data
from vermilion.repo import CollectionNameError, check_collection_names, check_run_name


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("names")
    repo = base / "inside" / "R"
    assert main(["repo", "create", str(repo), "--patches", "2", "2", "--patch-shape", "64", "64",
                 "--bands", "gr"]) == 0  # fmt: skip
    model = base / "m.vmd"
    synthetic_model_data(2).write(model)
    return base, repo, model


def _tree(path):
    return sorted(
        os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
    )


@pytest.mark.parametrize(
    "name", ["../../escaped", "/abs/run", "a/../../b", "a//b", ".hidden", "a/", "", "a\\b", "x y"]
)
def test_bad_run_names_are_refused(name):
    with pytest.raises(CollectionNameError):
        check_run_name(name)
    with pytest.raises(CollectionNameError):
        check_collection_names([name])


@pytest.mark.parametrize("name", ["vermilion/coadd", "u/me/run-1.2", "HSC/runs/RC2+w_2024@x"])
def test_good_run_names_pass(name):
    assert check_run_name(name) == name


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "models", "--run", "../../escaped"],
        ["ingest", "coadd", "--run", "../../escaped", "g=x.fits"],
        ["deblend", "--output-run", "../../escaped"],
        ["deblend", "--input", "../../escaped"],
    ],
)
def test_cli_refuses_escaping_runs(small_repo, argv, capsys):
    base, repo, model = small_repo
    before = _tree(base)
    extra = [str(model)] if argv[1] == "models" else []
    if argv[0] == "deblend":
        argv = [*argv, "--no-progress"]
    code = main([*argv, "--repo", str(repo), "--tract", "0", "--patch", "0", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "vermilion: error: CollectionNameError: invalid "
        + ("collection" if "--input" in argv else "run")
        + " name '../../escaped': use '/'-separated parts of letters, digits and '_.+-@', "
        "each starting with a letter, a digit or '_' (no '..', no leading '/')"
    ]
    assert _tree(base) == before  # nothing written, inside or outside the repository
    assert not (base.parent / "escaped").exists() and not (base / "escaped").exists()


def test_repo_that_is_a_file_or_a_plain_folder(small_repo, tmp_path, capsys):
    _, _, model = small_repo
    assert main(["repo", "info", str(model)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"vermilion: error: RepoError: {model} is a file, not a data repository folder"
    )
    assert main(["repo", "info", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"vermilion: error: RepoError: {tmp_path} is not a data repository (it has no butler.yaml)"
    )
    assert os.listdir(tmp_path) == []
