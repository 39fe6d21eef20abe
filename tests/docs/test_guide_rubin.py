"""The guide's pipetask and bps commands (docs/guide/03-repository.md) run, in a shell.

The blocks marked ``<!-- norun: ... test_guide_rubin.py -->`` run here, in order, with
bash in a working folder whose ``vermilion-demo/repo`` is a repository of four small
simulated patches under the demo's skymap; the ``<!-- file: ... -->`` blocks are written
there first. They need the extras (``vermilion[rubin]``, ``vermilion[bps]`` for bps).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from guide_helpers import GUIDE, parse_blocks

pytest.importorskip("lsst.ctrl.mpexec", reason='needs the extra: pip install "vermilion[rubin]"')

PAGE = GUIDE / "03-repository.md"
MARK = "test_guide_rubin.py"
PATCHES = 4
SHAPE = (64, 64)


def blocks(kind: str):
    return [
        b
        for b in parse_blocks(PAGE)
        if b.marker == "norun" and MARK in b.marker_arg and (kind in b.code)
    ]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working folder with ``vermilion-demo/repo``: 4 patches of skymap ``demo``."""
    from vermilion.repo import create_repo, ingest_arrays
    from vermilion.sim import simulate_patch

    folder = tmp_path_factory.mktemp("guide_rubin")
    butler = create_repo(
        folder / "vermilion-demo" / "repo",
        skymap="demo",
        bands="gri",
        tracts=1,
        patches=(PATCHES, 1),
        patch_shape=SHAPE,
    )
    for p in range(PATCHES):
        sim = simulate_patch(SHAPE, bands="gri", density=150, seed=30 + p)
        ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, 0, p)
    for block in parse_blocks(PAGE):
        if block.marker == "file":
            (folder / block.marker_arg).write_text(block.code)
    return folder


def bash(code: str, cwd: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "VIRTUAL_ENV": sys.prefix,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PWD": str(cwd),
        "PYTHONWARNINGS": "ignore",
    }
    proc = subprocess.run(
        ["bash", "-e", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"{code}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def catalogs(work: Path, collection: str) -> list:
    from lsst.daf.butler import Butler

    butler = Butler(str(work / "vermilion-demo" / "repo"), collections=[collection])
    return butler.query_datasets("deepCoadd_deblendedCatalog", find_first=False, explain=False)


def test_the_guide_has_the_blocks():
    assert len(blocks("pipetask run")) == 2 and len(blocks("bps submit")) == 1


def test_the_guides_pipetask_commands_run_and_resume(work):
    first, resume = blocks("pipetask run")
    bash(first.code, work)
    assert [int(r.dataId["patch"]) for r in catalogs(work, "u/me/pipetask")] == [0]
    bash(resume.code, work)
    refs = catalogs(work, "u/me/pipetask")
    assert sorted(int(r.dataId["patch"]) for r in refs) == list(range(PATCHES))  # no duplicate


@pytest.mark.slow
def test_the_guides_bps_submit_runs_the_graph_with_parsl(work):
    pytest.importorskip(
        "lsst.ctrl.bps.parsl", reason='needs the BPS Parsl plugin: pip install "vermilion[bps]"'
    )
    (block,) = blocks("bps submit")
    bash(block.code, work)
    from lsst.daf.butler import Butler

    refs = catalogs(work, "u/me/bps")
    assert sorted(int(r.dataId["patch"]) for r in refs) == list(range(PATCHES))
    butler = Butler(str(work / "vermilion-demo" / "repo"))
    chain = butler.collections.get_info("u/me/bps").children
    assert chain[0].startswith("u/me/bps/") and chain[1:] == ("vermilion/coadd",)
