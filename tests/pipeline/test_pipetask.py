"""The deblender as a Rubin PipelineTask: ``pipetask run`` with the shipped pipeline.

Runs the venv's ``pipetask`` in a subprocess against a small repository and compares
its outputs with ``vermilion deblend --output`` on the same patches.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pipeline_testdata import BANDS, simulate

pytest.importorskip("lsst.pipe.base", reason='needs the extra: pip install "vermilion[rubin]"')

from vermilion.cli import main_deblend
from vermilion.pipeline import DeblendConfig

SKYMAP = "sim"
TRACT = 0
PATCHES = (0, 1, 2)
BAD_PATCH = 2  # a source with absurd pixels: its blend's fit diverges
SHAPE = (96, 96)
CATALOG = "deepCoadd_deblendedCatalog"
MODELS = "deepCoadd_scarletModelData"
PIPELINE = "resource://vermilion/pipelines/deblend.yaml"


def pipetask_command() -> str:
    """The ``pipetask`` of this interpreter's environment."""
    path = Path(sys.executable).parent / "pipetask"
    if not path.exists():
        pytest.skip(f"no pipetask next to {sys.executable} (lsst-ctrl-mpexec not installed)")
    return str(path)


def pipetask(repo, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [pipetask_command(), "run", "-b", str(repo), "-p", PIPELINE, *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed:\n{output}")
    return proc


def where(patches) -> str:
    listed = ", ".join(str(p) for p in patches)
    return f"skymap='{SKYMAP}' AND tract={TRACT} AND patch IN ({listed})"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Three simulated 96 x 96 px patches; the third with a source of absurd pixels."""
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path_factory.mktemp("pipetask") / "repo"
    butler = create_repo(
        root, skymap=SKYMAP, bands=BANDS, tracts=1, patches=(3, 1), patch_shape=SHAPE
    )
    for p in PATCHES:
        sim = simulate(seed=10 + p, shape=SHAPE)
        images = sim.images.copy()
        if p == BAD_PATCH:
            y, x = np.unravel_index(np.argmax(images.sum(axis=0)), SHAPE)
            images[:, y - 1 : y + 2, x - 1 : x + 2] = 1e30
        ingest_arrays(butler, images, sim.variance, sim.mask, sim.psfs, sim.bands, TRACT, p)
    return str(root)


@pytest.fixture(scope="module")
def both(repo):
    """Outputs of ``pipetask run`` and of ``vermilion deblend --output`` on every patch."""
    pipetask(
        repo,
        *("-i", "vermilion/coadd", "-o", "u/test/pipetask", "-d", where(PATCHES)),
        *("-j", "2", "--register-dataset-types", "-c", "deblend:maxIter=100"),
    )
    args = ["--repo", repo, "--tract", str(TRACT), "--patch", *map(str, PATCHES)]
    args += ["--output", "u/test/vermilion", "-c", "maxIter=100", "--scheduler", "synchronous"]
    assert main_deblend([*args, "-j", "1", "--no-progress"]) == 0
    return "u/test/pipetask", "u/test/vermilion"


def _get(repo, collection, name, patch):
    from lsst.daf.butler import Butler

    butler = Butler(repo, collections=[collection])
    return butler.get(name, skymap=SKYMAP, tract=TRACT, patch=patch)


@pytest.mark.parametrize("patch", PATCHES)
def test_pipetask_writes_what_vermilion_deblend_writes(repo, both, patch):
    ours, theirs = (
        {name: _get(repo, coll, name, patch) for name in (CATALOG, MODELS)} for coll in both
    )
    cat, ref = ours[CATALOG], theirs[CATALOG]
    assert len(cat) == len(ref) > 0
    for column in ("id", "parent", "deblend_nChild", "deblend_failed", "deblend_failReason"):
        assert list(cat[column]) == list(ref[column]), column
    for band in BANDS:
        for kind in ("scarletFlux", "reapportionedFlux"):
            column = f"deblend_{kind}_{band}"
            assert np.array_equal(np.asarray(cat[column]), np.asarray(ref[column]), equal_nan=True)
    models, ref_models = ours[MODELS], theirs[MODELS]
    assert list(models.blends) == list(ref_models.blends)
    for pid, blend in ref_models.blends.items():
        other = models.blends[pid]
        assert list(other.sources) == list(blend.sources)
        for sid, source in blend.sources.items():
            for a, b in zip(other.sources[sid].components, source.components, strict=True):
                assert a.morph.tobytes() == b.morph.tobytes()
                assert a.spectrum.tobytes() == b.spectrum.tobytes()
    # -c deblend:maxIter=100 reached the task as -c maxIter=100 reaches vermilion deblend
    for model_data in (models, ref_models):
        assert model_data.metadata["deblend_config"]["maxIter"] == 100


def test_a_failing_blend_is_flagged_as_vermilion_deblend_flags_it(repo, both):
    catalog = _get(repo, both[0], CATALOG, BAD_PATCH)
    failed = np.asarray(catalog["deblend_failed"]) & (np.asarray(catalog["parent"]) == 0)
    assert failed.sum() >= 1
    assert all(str(r) for r in np.asarray(catalog["deblend_failReason"])[failed])
    # the patch's other blends were deblended all the same
    assert np.sum(np.asarray(catalog["parent"]) != 0) > 0


@pytest.mark.parametrize("which", [0, 1])
def test_both_output_collections_find_the_coadds_the_catalog_and_the_models(repo, both, which):
    from lsst.daf.butler import Butler

    butler = Butler(repo, collections=[both[which]])
    info = butler.collections.get_info(both[which])
    assert info.type.name == "CHAINED"
    assert info.children[0].startswith(f"{both[which]}/") and "vermilion/coadd" in info.children
    for name, n in (("deepCoadd_calexp", len(PATCHES) * len(BANDS)), (CATALOG, 3), (MODELS, 3)):
        assert len(butler.query_datasets(name, explain=False)) == n, name


def test_skip_existing_in_resumes_without_duplicates(repo, both):
    out = "u/test/resume"
    common = ["-i", "vermilion/coadd", "-o", out, "-c", "deblend:maxIter=100"]
    pipetask(repo, *common, "-d", where(PATCHES[:1]))
    pipetask(repo, *common, "-d", where(PATCHES), "--skip-existing-in", out, "-j", "2")
    from lsst.daf.butler import Butler

    butler = Butler(repo, collections=[out])
    refs = butler.query_datasets(CATALOG, find_first=False, explain=False)
    assert sorted(int(r.dataId["patch"]) for r in refs) == list(PATCHES)
    assert len(butler.collections.get_info(out).children) == 3  # two runs, the coadds
    first = _get(repo, out, CATALOG, PATCHES[0])
    assert list(first["id"]) == list(_get(repo, both[1], CATALOG, PATCHES[0])["id"])


# ---- the config and the module ---------------------------------------------------------------


def test_the_config_carries_every_deblend_config_field():
    from vermilion.pipeline.pipetask import DeblendPipelineConfig

    config = DeblendPipelineConfig()
    doc = DeblendConfig.__doc__
    for f in dataclasses.fields(DeblendConfig):
        field = DeblendPipelineConfig._fields[f.name]
        value = getattr(config, f.name)
        assert (list(value) if isinstance(value, list) else value) == (
            list(f.default) if isinstance(f.default, tuple) else f.default
        ), f.name
        assert field.doc and field.doc.split()[0] in doc, f.name
    assert config.deblend_config() == DeblendConfig()
    config.maxIter = 7
    config.badMask = ["BAD"]
    assert config.deblend_config() == DeblendConfig(maxIter=7, badMask=("BAD",))


def test_a_bad_value_fails_validation_with_the_deblend_config_message():
    from vermilion.pipeline.pipetask import DeblendPipelineConfig

    config = DeblendPipelineConfig()
    config.modelPsfSize = 10
    with pytest.raises(ValueError, match="modelPsfSize"):
        config.validate()


def test_dataset_type_names_are_set_by_config():
    from lsst.pipe.base import PipelineGraph

    from vermilion.pipeline.pipetask import DeblendPipelineConfig, DeblendPipelineTask

    config = DeblendPipelineConfig()
    config.connections.coadds = "goodSeeingCoadd_calexp"
    config.connections.deblendedCatalog = "goodSeeingCoadd_deblendedCatalog"
    graph = PipelineGraph()
    graph.add_task("deblend", DeblendPipelineTask, config)
    node = graph.tasks["deblend"]
    assert {e.parent_dataset_type_name for e in node.inputs.values()} == {"goodSeeingCoadd_calexp"}
    assert {e.parent_dataset_type_name for e in node.outputs.values()} >= {
        "goodSeeingCoadd_deblendedCatalog",
        MODELS,
    }


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_vermilion_stays_light_and_the_task_module_names_the_extra():
    light = _python(
        "import sys, vermilion, vermilion.pipeline\n"
        "assert 'lsst.pipe.base' not in sys.modules, 'pipe_base imported'\n"
    )
    assert light.returncode == 0, light.stderr
    blocked = _python(
        "import sys\nsys.modules['lsst.pipe.base'] = None\nimport vermilion.pipeline.pipetask\n"
    )
    assert blocked.returncode != 0
    assert 'pip install "vermilion[rubin]"' in blocked.stderr


def test_a_failing_quantum_leaves_the_other_patches_outputs_whole(repo, both, tmp_path):
    """One patch's coadd file damaged: its quantum fails, the other patch is written whole."""
    import shutil

    from lsst.daf.butler import Butler

    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    damaged = Butler(str(copy)).getURI(
        "deepCoadd_calexp", skymap=SKYMAP, tract=TRACT, patch=PATCHES[1], band=BANDS[0],
        collections="vermilion/coadd",
    )  # fmt: skip
    Path(damaged.ospath).write_bytes(b"SIMPLE  =                    T" + b" " * 50)  # cut short
    out = "u/test/quantum"
    proc = pipetask(
        copy, "-i", "vermilion/coadd", "-o", out, "-c", "deblend:maxIter=100",
        "-d", where(PATCHES[:2]), "-j", "2", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    butler = Butler(str(copy), collections=[out])
    for name in (CATALOG, MODELS):
        refs = butler.query_datasets(name, explain=False)
        assert [int(r.dataId["patch"]) for r in refs] == [PATCHES[0]], name
    written = _get(copy, out, CATALOG, PATCHES[0])
    reference = _get(repo, both[1], CATALOG, PATCHES[0])
    assert list(written["id"]) == list(reference["id"])
    assert np.array_equal(
        np.asarray(written[f"deblend_reapportionedFlux_{BANDS[0]}"]),
        np.asarray(reference[f"deblend_reapportionedFlux_{BANDS[0]}"]),
        equal_nan=True,
    )
    assert len(_get(copy, out, MODELS, PATCHES[0]).blends) > 0


# ---- a patch without one of the bands (issue 18: loud failures) -----------------------------

SHORT = 1  # the patch of `short_repo` without an i coadd


@pytest.fixture(scope="module")
def short_repo(tmp_path_factory):
    """A gri repository of two patches: patch 0 with g, r, i coadds, patch 1 with g and r only."""
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path_factory.mktemp("pipetask-short") / "repo"
    butler = create_repo(
        root, skymap=SKYMAP, bands=BANDS, tracts=1, patches=(2, 1), patch_shape=SHAPE
    )
    for p in (0, SHORT):
        sim = simulate(seed=20 + p, shape=SHAPE)
        n = len(BANDS) if p != SHORT else 2
        ingest_arrays(
            butler, sim.images[:n], sim.variance[:n], sim.mask[:n], sim.psfs[:n],
            sim.bands[:n], TRACT, p,
        )  # fmt: skip
    return str(root)


def _output(proc: subprocess.CompletedProcess) -> str:
    return " ".join(f"{proc.stdout}\n{proc.stderr}".split())  # log lines joined, as one text


def test_bands_asked_for_refuse_a_patch_without_one_at_graph_build(short_repo):
    from lsst.daf.butler import Butler

    out = "u/test/gri"
    proc = pipetask(
        short_repo, "-i", "vermilion/coadd", "-o", out, "-d", where((0, SHORT)),
        "--register-dataset-types", "-c", "deblend:bands=g,r,i", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    text = _output(proc)
    assert "MissingBandsError: 1 patch(es) lack coadds of bands asked for:" in text
    assert (
        f"skymap '{SKYMAP}' tract {TRACT} patch {SHORT} has deepCoadd_calexp in band(s) g,r "
        "only: missing i of the bands asked for (deblend:bands=g,r,i)"
    ) in text
    assert "patch 0 has" not in text  # the whole patch is not named
    # refused before anything ran: no output collection at all
    assert not Butler(short_repo).collections.query(f"{out}*")


def test_bands_unset_deblend_the_bands_each_patch_has_and_warn(short_repo):
    out = "u/test/unset"
    proc = pipetask(
        short_repo, "-i", "vermilion/coadd", "-o", out, "-d", where((0, SHORT)),
        "--register-dataset-types", "-c", "deblend:maxIter=50",
    )  # fmt: skip
    text = _output(proc)
    assert (
        f"deblend: skymap '{SKYMAP}' tract {TRACT} patch {SHORT} has deepCoadd_calexp in "
        "band(s) g,r only, not i as other patches of this graph: it is deblended in g,r"
    ) in text
    assert "patch 0 has deepCoadd_calexp" not in text
    columns = _get(short_repo, out, CATALOG, SHORT).colnames
    assert "deblend_scarletFlux_r" in columns and "deblend_scarletFlux_i" not in columns
    assert "deblend_scarletFlux_i" in _get(short_repo, out, CATALOG, 0).colnames


def test_bands_asked_for_leave_the_other_bands_out(short_repo):
    out = "u/test/gr"
    pipetask(
        short_repo, "-i", "vermilion/coadd", "-o", out, "-d", where((0, SHORT)),
        "--register-dataset-types", "-c", "deblend:bands=g,r", "-c", "deblend:maxIter=50",
    )  # fmt: skip
    for p in (0, SHORT):
        catalog = _get(short_repo, out, CATALOG, p)
        assert "deblend_scarletFlux_r" in catalog.colnames, p
        assert "deblend_scarletFlux_i" not in catalog.colnames, p
        assert list(_get(short_repo, out, MODELS, p).bands) == ["g", "r"]


def test_a_coadd_file_gone_after_the_graph_was_built_fails_the_quantum(short_repo, tmp_path):
    """The i coadd's file deleted from patch 0: the executor drops it, the task refuses."""
    import shutil

    from lsst.daf.butler import Butler

    copy = tmp_path / "repo"
    shutil.copytree(short_repo, copy)
    gone = Butler(str(copy)).getURI(
        "deepCoadd_calexp", skymap=SKYMAP, tract=TRACT, patch=0, band="i",
        collections="vermilion/coadd",
    )  # fmt: skip
    Path(gone.ospath).unlink()
    out = "u/test/gone"
    proc = pipetask(
        copy, "-i", "vermilion/coadd", "-o", out, "-d", where((0,)),
        "--register-dataset-types", "-c", "deblend:bands=g,r,i", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    text = _output(proc)
    assert (
        f"skymap '{SKYMAP}' tract {TRACT} patch 0 has deepCoadd_calexp in band(s) g,r only: "
        "missing i of the bands asked for (deblend:bands=g,r,i)"
    ) in text
    assert Butler(str(copy), collections=[out]).query_datasets(CATALOG, explain=False) == []


def test_the_bands_field_refuses_repeated_bands():
    from vermilion.pipeline.pipetask import DeblendPipelineConfig

    config = DeblendPipelineConfig()
    assert list(config.bands) == []
    config.bands = ["g", "r", "g"]
    with pytest.raises(ValueError, match="distinct band names"):
        config.validate()


def test_the_pipelines_config_entry_for_bands_sets_them():
    from importlib.resources import files

    from lsst.pipe.base import Pipeline

    text = files("vermilion").joinpath("pipelines/deblend.yaml").read_text()
    entry = "    # config:\n    #   bands: [g, r, i]\n"
    assert entry in text
    text = text.replace(entry, "    config:\n      bands: [g, r, i]\n")
    graph = Pipeline.fromString(text).to_graph()
    assert list(graph.tasks["deblend"].config.bands) == ["g", "r", "i"]
