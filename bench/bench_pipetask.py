"""Benchmark: one patch through ``pipetask run -j 2`` and through ``vermilion deblend -j 2``.

Puts a simulated 6-band patch (2000 x 2000 px by default, the `bench_patch` simulation,
cached) into a fresh repository, then deblends it twice, each in a subprocess:

- ``vermilion deblend --output u/bench/vermilion -j 2`` (a local Dask cluster, the
  patch's blends on 2 processes);
- ``pipetask run -p resource://vermilion/pipelines/deblend.yaml -o u/bench/pipetask
  -j 2 -c deblend:numProcesses=2`` (one quantum: the patch; its blends on 2
  processes, as ``-j 2`` alone would run 2 patches at once, one process each).

Printed for each: wall time and peak resident memory of the process tree (sampled
every 50 ms). For pipetask also the quantum's execution time (from its log) and the
rest (start-up, graph building, writing the graph's provenance), which must stay
under 10% of the deblend time. The two outputs are checked to be identical.

Measured here (2 cores shared, load average 6; 3945 sources; outputs identical):
vermilion deblend -j 2: 135.8 s, 1.97 GiB; pipetask run -j 2: 109.5 s, 2.49 GiB, of
which the quantum 101.3 s and the rest 8.2 s (8.1% of the deblend time). With the
machine that loaded, wall times move by tens of percent from run to run.

Usage: python bench/bench_pipetask.py [--size 2000] [--density 100] [--seed 0]
       [--cache DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_patch import BANDS, PeakMemory, load_patch

PIPELINE = "resource://vermilion/pipelines/deblend.yaml"
QUANTUM_TIME = re.compile(r"Execution of task 'deblend' on quantum .* took ([0-9.]+) seconds")


def run(cmd: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak memory (bytes) of the process tree and the output of ``cmd``."""
    import psutil

    start = time.perf_counter()
    with PeakMemory() as mem:
        proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-4000:]}")
    return seconds, mem.peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--density", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vermilion")
    parser.add_argument("--keep", type=Path, default=None, help="make the repository here")
    args = parser.parse_args()

    from lsst.daf.butler import Butler

    from vermilion.repo import create_repo, ingest_arrays

    patch, sim_seconds = load_patch(args.size, args.density, args.seed, args.cache)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_pipetask_"))
    repo = work / "repo"
    butler = create_repo(
        repo,
        skymap="bench",
        bands=BANDS,
        tracts=1,
        patches=(1, 1),
        patch_shape=patch.images.shape[1:],
    )
    ingest_arrays(butler, patch.images, patch.variance, patch.mask, patch.psfs, BANDS, 0, 0)
    print(
        f"patch {args.size} x {args.size} px, {len(BANDS)} bands (simulated in {sim_seconds:.0f} s)"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")

    bin_dir = Path(sys.executable).parent
    vermilion = [str(bin_dir / "vermilion"), "deblend", "--repo", str(repo), "--tract", "0"]
    vermilion += ["--patch", "0", "--output", "u/bench/vermilion", "-j", "2", "--no-progress"]
    v_wall, v_mem, _ = run(vermilion)

    where = "skymap='bench' AND tract=0 AND patch=0"
    pipetask = [str(bin_dir / "pipetask"), "run", "-b", str(repo), "-p", PIPELINE]
    pipetask += ["-i", "vermilion/coadd", "-o", "u/bench/pipetask", "-d", where, "-j", "2"]
    pipetask += ["--register-dataset-types", "-c", "deblend:numProcesses=2"]
    p_wall, p_mem, out = run(pipetask)
    match = QUANTUM_TIME.search(out)
    quantum = float(match.group(1)) if match else float("nan")
    overhead = p_wall - quantum

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'':24s}{'wall (s)':>10s}{'peak memory (GiB)':>20s}")
    print(f"{'vermilion deblend -j 2':24s}{v_wall:10.1f}{v_mem / 2**30:20.2f}")
    print(f"{'pipetask run -j 2':24s}{p_wall:10.1f}{p_mem / 2**30:20.2f}")
    print(
        f"pipetask: quantum {quantum:.1f} s, the rest (start-up, graph, provenance) "
        f"{overhead:.1f} s = {100 * overhead / quantum:.1f}% of the deblend time"
    )

    read = Butler(str(repo))
    outputs = []
    for coll in ("u/bench/vermilion", "u/bench/pipetask"):
        cat = read.get(
            "deepCoadd_deblendedCatalog", skymap="bench", tract=0, patch=0, collections=coll
        )
        outputs.append(cat)
    same = len(outputs[0]) == len(outputs[1]) and all(
        np.array_equal(np.asarray(outputs[0][c]), np.asarray(outputs[1][c]), equal_nan=True)
        for c in ("id", "parent", *(f"deblend_scarletFlux_{b}" for b in BANDS))
    )
    print(
        f"sources: {int(np.sum(np.asarray(outputs[0]['parent']) != 0))}; outputs identical: {same}"
    )


if __name__ == "__main__":
    main()
