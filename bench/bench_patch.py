"""Benchmark of the patch deblender: detection and deblending of a simulated patch.

Simulates a 6-band LSST-like patch at 10-year depth (`vermilion.sim`, cached as
``.npz`` so that a rerun skips it), detects its parents
(`vermilion.detect.detect_sources`) and deblends it with `DeblendTask` on 1 and
on 2 worker processes, with the default `DeblendConfig` (relativeError 1e-2).

Printed per run: wall time, CPU seconds (this process and its workers), sources
per second (wall), the speed-up from 1 to 2 workers, and the peak resident
memory of the process tree (sampled every 50 ms). The outputs of the two runs
are checked to be identical. The load average before and after is printed
because the machine may be shared: with a load above the number of cores,
wall-clock figures are slower than on an idle machine and CPU seconds are the
better guide.

Targets (2-core machine): >= 100 deblended sources per second on 2 workers,
near-linear scaling from 1 to 2 workers, peak memory < 4 GiB.

Usage: python bench/bench_patch.py [--size 2000] [--density 100] [--seed 0]
       [--workers 1 2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BANDS = "ugrizy"


class PeakMemory:
    """Samples the resident memory of this process and all its children."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load_patch(size: int, density: float, seed: int, cache: Path):
    """The simulated patch (from the cache when there)."""
    from types import SimpleNamespace

    from vermilion.core import Box

    path = cache / f"patch_{size}_{density:g}_{seed}.npz"
    if path.exists():
        d = np.load(path)
        return SimpleNamespace(
            images=d["images"],
            variance=d["variance"],
            mask=d["mask"],
            psfs=d["psfs"],
            bands=tuple(BANDS),
            bbox=Box(d["images"].shape[1:]),
            n_sources=int(d["n_sources"]),
        ), 0.0
    from vermilion.sim import simulate_patch

    t0 = time.perf_counter()
    p = simulate_patch((size, size), bands=BANDS, density=density, seed=seed, depth="10yr")
    seconds = time.perf_counter() - t0
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        images=p.images,
        variance=p.variance,
        mask=p.mask,
        psfs=p.psfs,
        n_sources=p.n_sources,
    )
    os.replace(tmp, path)
    return p, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--density", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vermilion")
    args = parser.parse_args()

    from vermilion.detect.detection import detect_sources
    from vermilion.pipeline import DeblendConfig, DeblendTask

    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    patch, sim_seconds = load_patch(args.size, args.density, args.seed, args.cache)
    print(
        f"patch: {args.size} x {args.size} px, bands {BANDS}, 10-year depth, "
        f"{patch.n_sources} simulated sources"
        + (f" (simulated in {sim_seconds:.0f} s)" if sim_seconds else " (cached)")
    )

    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), cpu_seconds()
        parents = detect_sources(
            patch.images, patch.variance, patch.mask, patch.psfs, bands=patch.bands
        )
        detect_wall, detect_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    n_peaks = np.asarray(parents["deblend_nPeaks"])
    print(
        f"detection: {detect_wall:.1f} s wall, {detect_cpu:.1f} s CPU; {len(parents)} parents, "
        f"{int(n_peaks.sum())} peaks ({int(np.sum(n_peaks == 1))} isolated, "
        f"largest blend {int(n_peaks.max())} peaks), peak memory {mem.peak / 2**30:.2f} GiB"
    )

    config = DeblendConfig()
    rows = []
    outputs = {}
    for workers in args.workers:
        task = DeblendTask(config, workers=workers)
        with PeakMemory() as mem:
            t0, c0 = time.perf_counter(), cpu_seconds()
            catalog, model_data = task.run(patch, parents)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        children = np.asarray(catalog["parent"]) != 0
        n_sources = int(children.sum())
        is_parent = ~children
        n_failed = int(np.sum(np.asarray(catalog["deblend_failed"]) & is_parent))
        n_skipped = int(np.sum(np.asarray(catalog["deblend_skipped"]) & is_parent))
        iters = np.asarray(catalog["deblend_iterations"])[
            is_parent & ~np.asarray(catalog["deblend_failed"])
        ]
        outputs[workers] = (catalog, model_data)
        rows.append((workers, wall, cpu, n_sources, mem.peak))
        print(
            f"deblend, {workers} worker(s): {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"{len(model_data.blends)} blends, {n_sources} sources, {n_failed} failed, "
            f"{n_skipped} skipped; {n_sources / wall:.0f} sources/s "
            f"({n_sources / cpu:.0f} per CPU second); median {np.median(iters):.0f} iterations "
            f"({np.mean(catalog['deblend_converged'][is_parent]):.0%} converged); "
            f"peak memory {mem.peak / 2**30:.2f} GiB; stages {task.timing}"
        )
    if len(outputs) > 1:
        first, *rest = outputs.values()
        same = all(c.equals(first[0]) and m == first[1] for c, m in rest)
        print(f"outputs identical across worker counts: {same}")
    base = next((r for r in rows if r[0] == 1), None)
    for workers, wall, _, _, _ in rows:
        if base is not None and workers != 1:
            speedup = base[1] / wall
            print(
                f"speed-up 1 -> {workers} workers: {speedup:.2f}x "
                f"({speedup / workers:.0%} of linear)"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
