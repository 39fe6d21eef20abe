"""Benchmark of the data repository: cutout reads and single-blend model reads.

Creates a repository with one 4000 x 4000 px, 6-band patch (about 1.2 GB on disk)
and a model-data file of many blends, then times, through the butler:

- a 6-band cutout of one blend's box (``MultibandExposure.from_butler`` with a
  ``bbox`` parameter), target <= 50 ms;
- the models of a single blend (``butler.get(..., parameters={"blend_ids": [id]})``),
  target <= 20 ms.

Figures are medians over random boxes / blends, with the files in the page cache
(the usual case when a user inspects several blends of one patch).

Usage: python bench/bench_repo.py [--root DIR] [--size 4000] [--blends 10000] [--repeat 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

BANDS = "ugrizy"


def timed(fn, repeat: int) -> list[float]:
    out = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def describe(name: str, ms: list[float], target: float | None = None) -> None:
    med = statistics.median(ms)
    p90 = float(np.percentile(ms, 90))
    verdict = "" if target is None else ("  OK" if med <= target else "  OVER TARGET")
    tgt = "" if target is None else f" (target <= {target:g} ms)"
    print(f"{name:<52s} median {med:7.2f} ms  p90 {p90:7.2f} ms{tgt}{verdict}")


def make_model_data(n_blends: int, bands: str, size: int, rng):
    from vermilion.io.data import BlendData, FactorizedComponentData, ModelData, SourceData

    psf = np.ones((len(bands), 25, 25), np.float32) / 625
    blends = {}
    for bid in range(1, n_blends + 1):
        h, w = rng.integers(20, 80, size=2)
        y0, x0 = rng.integers(0, size - 100, size=2)
        sources = {}
        for k in range(int(rng.integers(1, 5))):
            mh, mw = int(rng.integers(5, h)), int(rng.integers(5, w))
            comp = FactorizedComponentData(
                (int(y0), int(x0)),
                (float(y0 + mh // 2), float(x0 + mw // 2)),
                rng.uniform(1, 10, len(bands)).astype(np.float32),
                rng.uniform(0, 1, (mh, mw)).astype(np.float32),
            )
            sources[bid * 100 + k] = SourceData([comp], peak_id=bid * 100 + k)
        blends[bid] = BlendData(
            (int(y0), int(x0)), (int(h), int(w)), sources, (float(y0), float(x0)), psf
        )
    return ModelData(list(bands), np.ones((11, 11), np.float32) / 121, blends)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="directory for the repository (default: a temp dir)")
    ap.add_argument("--size", type=int, default=4000, help="patch height and width (px)")
    ap.add_argument("--blends", type=int, default=10000, help="blends in the model file")
    ap.add_argument("--box", type=int, default=100, help="cutout height and width (px)")
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()

    tmp = Path(args.root or tempfile.mkdtemp(prefix="vermilion-bench-"))
    repo = tmp / "repo"
    rng = np.random.default_rng(0)
    try:
        t0 = time.perf_counter()
        from lsst.daf.butler import Butler

        from vermilion.core.bbox import Box
        from vermilion.repo import MultibandExposure, create_repo, ingest_arrays
        from vermilion.repo.exposure import Exposure

        print(f"import lsst.daf.butler + vermilion.repo: {time.perf_counter() - t0:.2f} s")
        size = args.size
        t0 = time.perf_counter()
        create_repo(repo, "bench", BANDS, 1, (1, 1), (size, size), 0.2)
        print(f"create_repo: {time.perf_counter() - t0:.2f} s")

        shape = (len(BANDS), size, size)
        images = rng.standard_normal(shape, dtype=np.float32)
        variance = np.ones(shape, np.float32)
        mask = np.zeros(shape, np.int32)
        y, x = np.mgrid[-20:21, -20:21]
        psf = np.exp(-(x**2 + y**2) / 8.0).astype(np.float32)
        psfs = np.stack([psf / psf.sum()] * len(BANDS))
        t0 = time.perf_counter()
        ingest_arrays(repo, images, variance, mask, psfs, BANDS, 0, 0, "bench/coadd")
        print(f"ingest 6 x {size}x{size} px: {time.perf_counter() - t0:.2f} s")

        t0 = time.perf_counter()
        model = make_model_data(args.blends, BANDS, size, rng)
        writer = Butler(repo, skymap="bench", run="bench/deblend", writeable=True)
        writer.collections.register("bench/deblend")
        writer.put(model, "deepCoadd_scarletModelData", tract=0, patch=0)
        print(f"put model data of {args.blends} blends: {time.perf_counter() - t0:.2f} s")

        butler = Butler(repo, skymap="bench", collections=["bench/deblend", "bench/coadd"])
        b = args.box
        corners = rng.integers(0, size - b, size=(args.repeat + 3, 2))
        boxes = [Box((b, b), (int(cy), int(cx))) for cy, cx in corners]
        bands = list(BANDS)

        def cutout(i: int) -> None:
            m = MultibandExposure.from_butler(
                butler, bands, "deepCoadd_calexp", parameters={"bbox": boxes[i]}, tract=0, patch=0
            )
            assert m.images.shape == (6, b, b)

        cutout(args.repeat + 1)  # warm up the butler's caches
        print()
        describe(f"6-band {b}x{b} cutout through the butler", timed(cutout, args.repeat), 50)

        uri = butler.getURI("deepCoadd_calexp", tract=0, patch=0, band="r").ospath
        describe(
            f"  one band {b}x{b} cutout, file only (no butler)",
            timed(lambda i: Exposure.read(uri, bbox=boxes[i]), args.repeat),
        )
        describe(
            "  one band, butler get of the PSF component",
            timed(
                lambda i: butler.get("deepCoadd_calexp.psf", tract=0, patch=0, band="r"),
                args.repeat,
            ),
        )

        ids = rng.choice(np.arange(1, args.blends + 1), size=args.repeat + 1, replace=False)

        def one_blend(i: int) -> None:
            md = butler.get(
                "deepCoadd_scarletModelData",
                tract=0,
                patch=0,
                parameters={"blend_ids": [int(ids[i])]},
            )
            assert list(md.blends) == [int(ids[i])]

        one_blend(args.repeat)
        describe(
            f"single-blend model read through the butler ({args.blends} blends)",
            timed(one_blend, args.repeat),
            20,
        )
        from vermilion.io.data import ModelData

        model_uri = butler.getURI("deepCoadd_scarletModelData", tract=0, patch=0).ospath
        describe(
            "  single-blend model read, file only (no butler)",
            timed(lambda i: ModelData.read(model_uri, blend_ids=[int(ids[i])]), args.repeat),
        )
        t0 = time.perf_counter()
        butler.get("deepCoadd_scarletModelData", tract=0, patch=0)
        print(f"  (whole model file read: {(time.perf_counter() - t0) * 1e3:.0f} ms)")
    finally:
        if not args.root:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
