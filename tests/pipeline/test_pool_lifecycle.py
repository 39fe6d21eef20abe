"""Infrastructure failures and interruptions are told apart from results (issue 19):
a pool that cannot start fails the patch, a patch whose files were deleted is redone,
a lost race, an unknown tract or patch and Ctrl-C after a commit each say what happened."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pipeline_testdata import BANDS, simulate

from vermilion.cli import main
from vermilion.pipeline import DeblendTask, deblend_patch
from vermilion.pipeline.pool import PoolError

SHAPE = (96, 96)


def die_at_start(settings, parent=None):
    """A pool initializer whose worker dies at once (a pool that never starts)."""
    os._exit(3)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path_factory.mktemp("lifecycle") / "repo"
    butler = create_repo(
        root, skymap="life", bands=BANDS, tracts=1, patches=(2, 1), patch_shape=SHAPE
    )
    sim = simulate(seed=5, shape=SHAPE)
    ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, 0, 0)
    return root


def _files(root, run):
    return sorted(p for p in (Path(root) / run).rglob("*") if p.is_file())


def test_a_pool_that_never_starts_fails_the_patch(scene, monkeypatch, repo):
    import vermilion.pipeline.task as task

    monkeypatch.setattr(task, "init_worker", die_at_start)
    patch, parents = scene
    with pytest.raises(PoolError) as info:
        DeblendTask(workers=2).run(patch, parents)
    assert str(info.value) == (
        "the blend worker processes cannot run (a worker died on a blend run alone, and a "
        "fresh pool cannot run an empty task); the patch is not marked done"
    )
    result = deblend_patch(repo, 0, 0, output_run="pool/broken", workers=2)
    assert result.status == "failed"
    assert result.error.startswith("PoolError: the blend worker processes cannot run")
    assert _files(repo, "pool/broken") == []


def test_a_patch_whose_files_were_deleted_is_redone(repo):
    first = deblend_patch(repo, 0, 0, output_run="deleted", workers=1)
    assert first.status == "done"
    files = _files(repo, "deleted")
    assert len(files) == 2
    assert deblend_patch(repo, 0, 0, output_run="deleted", workers=1).status == "skipped"
    models = next(p for p in files if "ModelData" in str(p))
    models.unlink()
    again = deblend_patch(repo, 0, 0, output_run="deleted", workers=1)
    assert again.status == "done"
    assert models.exists() and len(_files(repo, "deleted")) == 2


def test_a_lost_race_says_another_run_wrote_it(repo, monkeypatch, caplog):
    from lsst.daf.butler.registry import ConflictingDefinitionError

    import vermilion.pipeline.patches as patches

    def lose(*args, **kwargs):
        raise ConflictingDefinitionError("a long butler message\nwith many lines")

    monkeypatch.setattr(patches, "_write", lose)
    with caplog.at_level(logging.WARNING, logger="vermilion.pipeline.patches"):
        result = deblend_patch(repo, 0, 0, output_run="race", workers=1)
    assert result.status == "skipped"
    assert result.error == "another run wrote tract 0 patch 0 to race first"
    assert [r.getMessage() for r in caplog.records] == [
        "tract 0 patch 0 skipped: another run wrote tract 0 patch 0 to race first"
    ]


def test_a_failed_patch_is_one_log_line(repo, caplog):
    with caplog.at_level(logging.WARNING, logger="vermilion.pipeline.patches"):
        result = deblend_patch(repo, 0, 1, output_run="nodata", workers=1)
    assert result.status == "failed"
    assert [r.getMessage() for r in caplog.records] == [
        "tract 0 patch 1 failed: LookupError: No deepCoadd_calexp for tract 0 patch 1 in "
        "['vermilion/coadd']"
    ]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (["--tract", "0", "--patch", "7"],
         "Patch 7 is not in tract 0 of skymap 'life' (patches 0 to 1)"),
        (["--tract", "4", "--patch", "0"], "Tract 4 is not in skymap 'life' (tracts [0])"),
    ],
)  # fmt: skip
def test_unknown_tract_or_patch_is_one_line(repo, capsys, where, message):
    before = sorted(Path(repo).rglob("*"))
    argv = ["deblend", "--repo", str(repo), *where, "--scheduler", "synchronous", "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"vermilion: error: DataIdError: {message}"
    assert captured.out == ""
    assert sorted(Path(repo).rglob("*")) == before


@pytest.mark.parametrize("committed", [[0], []])
def test_ctrl_c_says_what_was_committed(repo, monkeypatch, capsys, committed):
    import vermilion.pipeline as pipeline
    from vermilion.pipeline.patches import PatchResult

    def interrupted(*args, on_patch_done=None, **kwargs):
        for p in committed:
            on_patch_done(PatchResult(0, p, "done"))
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "deblend_patches", interrupted)
    argv = ["deblend", "--repo", str(repo), "--tract", "0", "--patch", "0", "1"]
    assert main(argv) == 130
    said = (
        "patch(es) 0 of tract 0 were written to collection vermilion/deblend before it; the "
        "others "
        "were not"
        if committed
        else "no patch was written"
    )
    assert capsys.readouterr().err.strip() == f"vermilion: interrupted: {said}"
