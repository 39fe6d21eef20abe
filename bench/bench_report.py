"""Benchmark: the HTML report of a 1000-blend, 6-band patch (prints its figures).

Run: ``.venv/bin/python bench/bench_report.py [n_blends] [workers]``.
Blends have 1 to 12 children (geometric, mean about 2.5) on boxes of 30 to 150 px,
like the parents of a deep coadd patch. Only `write_report` is timed.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "display"))

from display_helpers import make_blend

from vermilion.display import write_report


def patch(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        k = int(min(rng.geometric(0.4), 12))
        side = int(min(30 + 10 * k + rng.integers(0, 20), 150))
        shape = (side, int(min(side + rng.integers(-10, 20), 150)))
        centers = tuple(
            (int(rng.integers(6, shape[0] - 6)), int(rng.integers(6, shape[1] - 6)))
            for _ in range(k)
        )
        spectra = tuple(rng.uniform(0.2, 10, 6) * rng.uniform(0.1, 3) for _ in range(k))
        blend = make_blend(6, centers=centers, spectra=spectra, shape=shape, seed=i,
                           sigma=float(rng.uniform(1.5, 4)))  # fmt: skip
        flags = ["edge"] if rng.random() < 0.05 else []
        items.append((i + 2**40, blend, {"n_children": k, "flags": flags}))
    return items


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    t0 = time.perf_counter()
    items = patch(n)
    t1 = time.perf_counter()
    children = sum(info["n_children"] for _, _, info in items)
    with tempfile.TemporaryDirectory() as tmp:
        cpu0 = _cpu()
        t2 = time.perf_counter()
        write_report(items, tmp, workers=workers, progress=False)
        t3 = time.perf_counter()
        cpu = _cpu() - cpu0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*"))
    print(f"blends: {n}, children: {children}, workers: {workers}")
    print(f"make blends: {t1 - t0:.1f} s (not timed below)")
    print(f"write_report: {t3 - t2:.1f} s ({1e3 * (t3 - t2) / n:.1f} ms per blend)")
    print(f"CPU time (this process and workers): {cpu:.1f} s ({1e3 * cpu / n:.1f} ms per blend)")
    print(
        f"wall time on {workers} idle cores would be about {cpu / workers:.0f} s; "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"report size: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
