"""Four processes writing different patches into one SQLite repository at the same time."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import traceback

import numpy as np
from repo_testdata import BANDS, SKYMAP, make_repo, patch_arrays

# (tract, patch, run): two workers share one run, two have their own
JOBS = [(0, 0, "shared"), (0, 3, "shared"), (1, 1, "own-a"), (1, 2, "own-b")]


def _worker(path: str, tract: int, patch: int, run: str, barrier, errors) -> None:
    try:
        from astropy.table import Table

        from vermilion.repo import ingest_arrays, open_repo

        butler = open_repo(path, writeable=True)
        images, variance, mask, psfs = patch_arrays(tract, patch)
        truth = Table({"tract": [tract], "patch": [patch]})
        barrier.wait(timeout=60)
        ingest_arrays(butler, images, variance, mask, psfs, BANDS, tract, patch, run, truth)
    except BaseException:
        errors.put(f"worker {tract}/{patch}: {traceback.format_exc()}")
        raise


def test_four_writers_lose_nothing(tmp_path):
    from lsst.daf.butler import Butler

    path = tmp_path / "repo"
    make_repo(path, patches=(2, 2))
    # a fresh server process forks the workers: they never share the parent's database
    # connection, and the butler is imported once, not once per worker
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["lsst.daf.butler", "astropy.table", "vermilion.repo.ingest"])
    barrier = ctx.Barrier(len(JOBS))
    errors = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(path), t, p, run, barrier, errors))
        for t, p, run in JOBS
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert not messages, "\n".join(messages)
    assert all(proc.exitcode == 0 for proc in procs), [proc.exitcode for proc in procs]

    runs = sorted({run for _, _, run in JOBS})
    butler = Butler(path, skymap=SKYMAP, collections=runs)
    refs = butler.query_datasets("deepCoadd_calexp", collections=runs, find_first=False)
    assert len(refs) == len(JOBS) * len(BANDS)
    assert len({(r.dataId["tract"], r.dataId["patch"], r.dataId["band"]) for r in refs}) == len(
        refs
    )
    truth = butler.query_datasets("truth_catalog", collections=runs, find_first=False)
    assert len(truth) == len(JOBS)
    for tract, patch, run in JOBS:
        images = patch_arrays(tract, patch)[0]
        for i, band in enumerate(BANDS):
            exp = butler.get(
                "deepCoadd_calexp", tract=tract, patch=patch, band=band, collections=run
            )
            np.testing.assert_array_equal(exp.image, images[i])
        t = butler.get("truth_catalog", tract=tract, patch=patch, collections=run)
        assert (t["tract"][0], t["patch"][0]) == (tract, patch)
    # every stored file is known to the datastore and the database is sound
    for ref in refs:
        assert butler.stored(ref)
    with sqlite3.connect(path / "gen3.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    leftovers = [p for p in path.rglob("*") if p.is_file() and p.name.startswith(".tmp")]
    assert not leftovers


def test_same_patch_twice_keeps_one(tmp_path):
    """Two writers of the same data id: one dataset, no error, no orphan file."""
    path = tmp_path / "repo"
    make_repo(path, tracts=1, patches=(1, 1))
    from lsst.daf.butler import Butler

    from vermilion.repo import ingest_arrays

    images, variance, mask, psfs = patch_arrays(0, 0)
    for _ in range(2):
        ingest_arrays(path, images, variance, mask, psfs, BANDS, 0, 0, "dup")
    butler = Butler(path, skymap=SKYMAP, collections="dup")
    assert len(butler.query_datasets("deepCoadd_calexp")) == len(BANDS)
    files = [p for p in (path / "dup").rglob("*.fits")]
    assert len(files) == len(BANDS)
