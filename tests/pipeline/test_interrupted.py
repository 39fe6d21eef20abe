"""kill -9 of `vermilion deblend` at three moments (detection, blend pool, model write):
no process of the run is left 5 s later, the rerun is bit-identical to an uninterrupted
run, and no temporary file is left in the repository (issue 19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from pipeline_testdata import BANDS, simulate

pytestmark = pytest.mark.slow

SHAPE = (96, 96)
SKYMAP = "kill"

# Holds the run at a chosen moment (and says so in a marker file) until it is killed.
_DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    moment, marker = sys.argv[1], Path(sys.argv[2])

    def hold():
        marker.write_text(str(os.getpid()))
        time.sleep(120)

    if moment == "detection":
        import vermilion.detect.detection as mod
        real = mod.detect_sources
        def detect_sources(*a, **k):
            real(*a, **k)
            hold()
        mod.detect_sources = detect_sources
    elif moment == "pool":
        import vermilion.pipeline.task as mod
        import holdchunk
        mod.run_chunk = holdchunk.run_chunk
    elif moment == "write":
        import vermilion.io.container as mod
        real = mod.ModelDataWriter.add_blend
        def add_blend(self, *a, **k):
            real(self, *a, **k)
            self._file.flush()
            hold()
        mod.ModelDataWriter.add_blend = add_blend
    from vermilion.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)

# imported by the pool workers (spawned): the first chunk waits to be killed
_HOLDCHUNK = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from vermilion.pipeline._worker import run_chunk as real

    def run_chunk(jobs):
        Path(os.environ["HOLD_MARKER"]).write_text(str(os.getpid()))
        time.sleep(120)
        return real(jobs)
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vermilion.repo import create_repo, ingest_arrays

    base = tmp_path_factory.mktemp("kill")
    root = base / "repo"
    butler = create_repo(
        root, skymap=SKYMAP, bands=BANDS, tracts=1, patches=(1, 1), patch_shape=SHAPE
    )
    sim = simulate(seed=21, shape=SHAPE)
    ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, 0, 0)
    (base / "holdchunk.py").write_text(_HOLDCHUNK)
    return base, root


def _argv(root, run):
    return ["deblend", "--repo", str(root), "--tract", "0", "--patch", "0", "--output-run", run,
            "--scheduler", "synchronous", "-j", "2", "--no-progress"]  # fmt: skip


def _env(base, marker):
    # the child imports vermilion as this process does (the installed package, or the
    # caller's PYTHONPATH); ``base`` holds the hook that holds it at the chosen moment
    path = os.pathsep.join([str(base), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "HOLD_MARKER": str(marker)}


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry))
    return out


def _outputs(root, run):
    from vermilion.io import ModelData
    from vermilion.repo import open_repo

    butler = open_repo(root)
    refs = {
        r.datasetType.name: r
        for r in butler.query_datasets("deepCoadd_scarletModelData", collections=run, explain=False)
        + butler.query_datasets("deepCoadd_deblendedCatalog", collections=run, explain=False)
    }
    paths = {name: Path(butler.getURI(ref).ospath) for name, ref in refs.items()}
    model = ModelData.read(paths["deepCoadd_scarletModelData"])
    catalog = butler.get(refs["deepCoadd_deblendedCatalog"])
    return model, catalog


def _run(base, root, run, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vermilion.cli", *_argv(root, run)],
        capture_output=True, text=True, env=env or _env(base, base / "unused"), timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reference(setup):
    base, root = setup
    proc = _run(base, root, "ref")
    assert proc.returncode == 0, proc.stderr
    return _outputs(root, "ref")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("moment", ["detection", "pool", "write"])
def test_kill_and_rerun(setup, reference, moment):
    base, root = setup
    run = f"killed/{moment}"
    marker = base / f"marker-{moment}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, moment, str(marker), *_argv(root, run)],
        env=_env(base, marker),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before reaching {moment}"
        assert time.time() < deadline
        time.sleep(0.1)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(5)
    left = _group(proc.pid)
    for pid in left:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []

    again = _run(base, root, run)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("patches: 1 (1 deblended, 0 already done, 0 failed)\n")
    model, catalog = _outputs(root, run)
    ref_model, ref_catalog = reference
    assert list(model.blends) == list(ref_model.blends)
    for bid, blend in ref_model.blends.items():
        for (sid, src), (sid2, src2) in zip(
            blend.sources.items(), model.blends[bid].sources.items()
        ):
            assert sid == sid2
            for c, c2 in zip(src.components, src2.components):
                for name in ("morph", "spectrum", "model"):
                    if hasattr(c, name):
                        assert np.array_equal(getattr(c, name), getattr(c2, name))
    assert catalog.colnames == ref_catalog.colnames
    for name in catalog.colnames:
        if name != "footprint":
            np.testing.assert_array_equal(catalog[name], ref_catalog[name], err_msg=name)
    hidden = [p for p in root.rglob(".*") if p.is_file() and p.name.endswith(".tmp")]
    hidden += [p for p in root.rglob(".*.vmd*")] + [p for p in root.rglob(".*.fits*")]
    assert hidden == []
