"""The default local Dask cluster (issue 19): Ctrl-C to the process group ends every
process with one line, even with port 8787 busy (another run's dashboard)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from pipeline_testdata import BANDS, simulate
from test_interrupted import _group

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

SHAPE = (128, 128)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path_factory.mktemp("cluster") / "repo"
    butler = create_repo(root, skymap="c", bands=BANDS, tracts=1, patches=(1, 1), patch_shape=SHAPE)
    sim = simulate(seed=8, shape=SHAPE, density=400.0)
    ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, 0, 0)
    return root


def _start(root, run):
    argv = ["deblend", "--repo", str(root), "--tract", "0", "--patch", "0", "-j", "3",
            "--no-progress", "--output-run", run]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "vermilion.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_workers(proc, n=5, timeout=90):
    """Until the blend pool runs: main, resource tracker, Dask worker, pool workers."""
    deadline = time.time() + timeout
    while len(_group(proc.pid)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.2)


def test_ctrl_c_with_the_default_cluster_and_port_8787_busy(root):
    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 8787))  # as another run's dashboard would
        holder.listen()
    except OSError:
        pass  # already held by someone: the same situation
    try:
        proc = _start(root, "cluster/sigint")
        _wait_for_workers(proc)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
        out, err = proc.communicate(timeout=120)
    finally:
        holder.close()
    assert proc.returncode == 130
    assert out == ""
    # one line: no Dask tracebacks, no "Port 8787 is already in use", no numpy warnings
    assert err.strip() in (
        "vermilion: interrupted: no patch was written",
        "vermilion: interrupted: patch(es) 0 of tract 0 were written to run "
        "cluster/sigint before it; the others were not",
    )
    time.sleep(5)
    left = _group(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
