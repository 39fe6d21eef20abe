"""deblend_patches on a small repository: outputs through the butler, idempotence, resume."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_testdata import BANDS, simulate

from vermilion.cli import main_deblend
from vermilion.pipeline import DeblendConfig, DeblendTask, deblend_patch, deblend_patches

SKYMAP = "sim"
TRACT = 0
PATCHES = (0, 1, 2)
SHAPE = (96, 96)
CATALOG = "deepCoadd_deblendedCatalog"
MODELS = "deepCoadd_scarletModelData"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repository with three simulated 96 x 96 px patches (and a fourth without data)."""
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path_factory.mktemp("pipeline") / "repo"
    butler = create_repo(
        root, skymap=SKYMAP, bands=BANDS, tracts=1, patches=(4, 1), patch_shape=SHAPE
    )
    for p in PATCHES:
        sim = simulate(seed=10 + p, shape=SHAPE)
        ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, TRACT, p)
    return str(root)


def _butler(root, run):
    from vermilion.repo import open_repo

    return open_repo(root, collections=[run])


def _refs(root, run, name):
    butler = _butler(root, run)
    return {
        int(r.dataId["patch"]): r.id
        for r in butler.query_datasets(name, collections=run, find_first=False, explain=False)
    }


def test_patches_deblend_into_the_repository_and_read_back(repo):
    from vermilion.detect import DetectionConfig
    from vermilion.detect.detection import detect_sources
    from vermilion.repo import MultibandExposure

    run = "test/e2e"
    summary = deblend_patches(
        repo, TRACT, PATCHES, scheduler="synchronous", workers=1, output_run=run, progress=False
    )
    assert (summary.patches, summary.done, summary.skipped, summary.failed) == (3, 3, 0, 0)
    assert summary.sources > 0 and summary.sources_per_second > 0
    assert "3 deblended" in str(summary)
    butler = _butler(repo, run)
    data_id = {"skymap": SKYMAP, "tract": TRACT, "patch": 1}
    catalog = butler.get(CATALOG, data_id)
    model_data = butler.get(MODELS, data_id)
    # what was stored is what the task gives for that patch
    mexp = MultibandExposure.from_butler(
        _butler(repo, "vermilion/coadd"), list(BANDS), "deepCoadd_calexp", **data_id
    )
    parents = detect_sources(
        mexp.images,
        mexp.variance,
        mexp.mask,
        mexp.psfs,
        bands=mexp.bands,
        yx0=mexp.bbox.origin,
        mask_planes=mexp.mask_planes,
        tract=TRACT,
        patch=1,
    )
    expected_catalog, expected_models = DeblendTask(workers=1).run(mexp, parents)
    # deblend_patch adds where the data came from
    expected_models.metadata["skymap"] = SKYMAP
    assert catalog.equals(expected_catalog)
    assert model_data == expected_models
    assert catalog.meta["deblend_config"] == DeblendConfig().to_dict()
    # the detection settings are recorded the same way
    detect_config = DetectionConfig(mask_planes=mexp.mask_planes)
    assert DetectionConfig.from_dict(catalog.meta["detect_config"]) == detect_config
    n_children = np.asarray(catalog["parent"]) != 0
    assert int(n_children.sum()) == summary.results[1].n_sources
    # one blend alone, through the read parameter
    pid = int(catalog["id"][int(np.argmax(catalog["deblend_nChild"]))])
    one = butler.get(MODELS, data_id, parameters={"blend_ids": [pid]})
    assert list(one.blends) == [pid] and one.blends[pid] == model_data.blends[pid]
    blend = one.to_blend(pid)
    assert len(blend.sources) == catalog.find(pid)["deblend_nChild"]


def test_rerunning_finished_patches_does_nothing(repo):
    run = "test/rerun"
    deblend_patches(
        repo, TRACT, PATCHES[:2], scheduler="synchronous", workers=1, output_run=run, progress=False
    )
    before = (_refs(repo, run, CATALOG), _refs(repo, run, MODELS))
    summary = deblend_patches(
        repo,
        TRACT,
        PATCHES[:2],
        scheduler="synchronous",
        workers=1,
        output_run=run,
        progress=False,
    )
    assert (summary.done, summary.skipped, summary.sources) == (0, 2, 0)
    assert (_refs(repo, run, CATALOG), _refs(repo, run, MODELS)) == before
    # redo replaces them
    summary = deblend_patches(
        repo,
        TRACT,
        PATCHES[:1],
        scheduler="synchronous",
        workers=1,
        output_run=run,
        redo=True,
        progress=False,
    )
    assert summary.done == 1
    after = _refs(repo, run, CATALOG)
    assert after[0] != before[0][0] and after[1] == before[0][1]


def test_an_interrupted_run_resumes_without_duplicates(repo):
    run = "test/resume"
    seen = []

    def killed_after_first_patch(result):
        seen.append(result.patch)
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        deblend_patches(
            repo,
            TRACT,
            PATCHES,
            scheduler="synchronous",
            workers=1,
            output_run=run,
            progress=False,
            on_patch_done=killed_after_first_patch,
        )
    assert len(seen) == 1
    assert set(_refs(repo, run, CATALOG)) == set(seen) == set(_refs(repo, run, MODELS))
    summary = deblend_patches(
        repo, TRACT, PATCHES, scheduler="synchronous", workers=1, output_run=run, progress=False
    )
    assert (summary.done, summary.skipped) == (2, 1)
    for name in (CATALOG, MODELS):
        refs = _butler(repo, run).query_datasets(
            name, collections=run, find_first=False, explain=False
        )
        assert sorted(int(r.dataId["patch"]) for r in refs) == list(PATCHES)


def test_a_patch_with_one_output_is_redone(repo):
    run = "test/partial"
    result = deblend_patch(repo, TRACT, 2, output_run=run, workers=1, raise_errors=True)
    assert result.status == "done"
    from vermilion.repo import open_repo

    butler = open_repo(repo, writeable=True)
    (ref,) = butler.query_datasets(CATALOG, collections=run, explain=False)
    butler.pruneDatasets([ref], disassociate=True, unstore=True, purge=True)
    again = deblend_patch(repo, TRACT, 2, output_run=run, workers=1)
    assert again.status == "done" and again.n_sources == result.n_sources
    assert len(_refs(repo, run, CATALOG)) == 1 and len(_refs(repo, run, MODELS)) == 1


def test_a_patch_without_data_fails_alone_and_the_cli_reports_it(repo, capsys):
    run = "test/cli"
    code = main_deblend(
        [
            "--repo",
            repo,
            "--tract",
            str(TRACT),
            "--patch",
            "0",
            "3",
            "--scheduler",
            "synchronous",
            "-j",
            "1",
            "--output-run",
            run,
            "-c",
            "maxIter=25",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "1 failed" in out and "patch 3 failed" in out and "deepCoadd_calexp" in out
    catalog = _butler(repo, run).get(CATALOG, skymap=SKYMAP, tract=TRACT, patch=0)
    assert catalog.meta["deblend_config"]["maxIter"] == 25
    assert np.all(catalog["deblend_iterations"] <= 25)


@pytest.mark.slow
def test_default_local_dask_cluster(repo):
    run = "test/cluster"
    summary = deblend_patches(repo, TRACT, PATCHES[:2], workers=2, output_run=run, progress=False)
    assert (summary.done, summary.failed) == (2, 0), str(summary)
    assert set(_refs(repo, run, CATALOG)) == {0, 1}
