"""Benchmark of rebuilding stored blends and of per-band catalog footprints.

Creates a repository with one 4000 x 4000 px, 6-band patch exposure (noise images,
constant Gaussian PSFs; about 1.2 GB on disk), a model-data file of 10,000 synthetic
blends (`vermilion.io._synthetic`: 1 to 20 sources, boxes 15 to 150 px, moved inside
the patch) and a matching deblended catalog (parents with their box as footprint,
children with their peak), then times:

- rebuilding one blend as the seed document does it, through the butler, with the
  catalog already in memory: the one-blend model read (``parameters={"blend_ids":
  [id]}``), the 6-band cutout of its box (``MultibandExposure.fromButler`` with
  ``parameters={"bbox": box}``) and ``multibandDataToScarlet`` with the parent
  footprint; target <= 20 ms (median over random blends);
- the same through `vermilion.pipeline.restart.BlendLoader` (datasets resolved once);
- ``vermilion.update_catalog_footprints`` for one band of the whole patch: heavy
  footprints of the rendered models, and of the re-apportioned image; target <= 60 s.

Files are in the page cache (the usual case when a user inspects a patch). Wall and
process CPU seconds are printed: on a shared machine CPU time is the steadier figure.

Usage: python bench/bench_restart.py [--root DIR] [--size 4000] [--blends 10000]
       [--repeat 40] [--no-footprints]
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
RUN_COADD = "bench/coadd"
RUN_DEBLEND = "bench/deblend"


def describe(name: str, ms: list[float], target: float | None = None) -> None:
    med = statistics.median(ms)
    p90 = float(np.percentile(ms, 90))
    verdict = "" if target is None else ("  OK" if med <= target else "  OVER TARGET")
    tgt = "" if target is None else f" (target <= {target:g} ms)"
    print(f"{name:<58s} median {med:7.2f} ms  p90 {p90:7.2f} ms{tgt}{verdict}")


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def shift_inside(blend, size: int):
    """Move a synthetic blend (box, components, peaks, PSF centre) inside the patch."""
    (y0, x0), (h, w) = blend.origin, blend.shape
    dy = -y0 if y0 < 0 else min(0, size - (y0 + h))
    dx = -x0 if x0 < 0 else min(0, size - (x0 + w))
    if dy == 0 and dx == 0:
        return blend
    blend.origin = (y0 + dy, x0 + dx)
    if blend.psf_center is not None:
        blend.psf_center = (blend.psf_center[0] + dy, blend.psf_center[1] + dx)
    for src in blend.sources.values():
        for c in src.components:
            c.origin = (c.origin[0] + dy, c.origin[1] + dx)
            c.peak = (c.peak[0] + dy, c.peak[1] + dx)
    return blend


def make_patch(n_blends: int, size: int, seed: int):
    """Synthetic models inside the patch, keyed by catalog ids, and their catalog."""
    from astropy.table import vstack

    from vermilion.core.bbox import Box
    from vermilion.detect import Footprint, SourceCatalog, SpanSet, make_peaks
    from vermilion.detect.ids import make_source_id
    from vermilion.io._synthetic import synthetic_model_data
    from vermilion.pipeline import DeblendConfig

    model = synthetic_model_data(n_blends, seed=seed)
    model.metadata["deblend_config"] = DeblendConfig().to_dict()
    # ids as the pipeline gives them: parents first, then the children
    n_children = sum(len(b.sources) for b in model.blends.values())
    parent_ids = make_source_id(0, 0, np.arange(1, n_blends + 1))
    child_ids = iter(make_source_id(0, 0, np.arange(n_blends + 1, n_blends + 1 + n_children)))
    blends = {}
    parents, children, child_parent = [], [], []
    for bid, blend in zip(parent_ids.tolist(), model.blends.values()):
        shift_inside(blend, size)
        blend.sources = {int(next(child_ids)): src for src in blend.sources.values()}
        blends[bid] = blend
        ys, xs, pids = [], [], []
        for src in blend.sources.values():
            py, px = (round(float(v)) for v in src.components[0].peak)
            py = min(max(py, blend.origin[0]), blend.origin[0] + blend.shape[0] - 1)
            px = min(max(px, blend.origin[1]), blend.origin[1] + blend.shape[1] - 1)
            ys.append(py)
            xs.append(px)
            pids.append(src.peak_id)
            peak = make_peaks([py], [px], value=[1.0], id=[src.peak_id])
            children.append(Footprint(SpanSet([py], [px], [px]), peak))
            child_parent.append(bid)
        box = Box(blend.shape, blend.origin)
        parents.append(Footprint(SpanSet.from_box(box), make_peaks(ys, xs, value=1.0, id=pids)))
    model.blends = blends
    cat = SourceCatalog.from_footprints(parents, bands=list(BANDS))
    cat["deblend_nChild"] = np.array([len(b.sources) for b in blends.values()], np.int32)
    kids = SourceCatalog.from_footprints(children, bands=list(BANDS), first_seq=n_blends + 1)
    kids["parent"] = np.asarray(child_parent, np.int64)
    kids["deblend_isolatedParent"] = False
    catalog = vstack([cat, kids], join_type="exact", metadata_conflicts="silent")
    return model, catalog


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="directory for the repository (default: a temp dir)")
    ap.add_argument("--size", type=int, default=4000, help="patch height and width (px)")
    ap.add_argument("--blends", type=int, default=10000, help="blends in the model file")
    ap.add_argument("--repeat", type=int, default=40, help="blends timed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-footprints", action="store_true", help="skip update_catalog_footprints")
    args = ap.parse_args()

    tmp = Path(args.root or tempfile.mkdtemp(prefix="vermilion-bench-restart-"))
    repo = tmp / "repo"
    rng = np.random.default_rng(args.seed)
    try:
        t0 = time.perf_counter()
        from lsst.daf.butler import Butler

        from vermilion.io import multibandDataToScarlet
        from vermilion.io._synthetic import gaussian_psf
        from vermilion.pipeline.restart import BlendLoader
        from vermilion.repo import MultibandExposure, create_repo, ingest_arrays

        print(f"imports: {time.perf_counter() - t0:.2f} s")
        size = args.size
        t0 = time.perf_counter()
        create_repo(repo, "bench", BANDS, 1, (1, 1), (size, size), 0.2)
        shape = (len(BANDS), size, size)
        images = rng.standard_normal(shape, dtype=np.float32)
        variance = np.ones(shape, np.float32)
        mask = np.zeros(shape, np.int32)
        psfs = np.stack([gaussian_psf(1.5 + 0.1 * i, 25) for i in range(len(BANDS))])
        ingest_arrays(repo, images, variance, mask, psfs, BANDS, 0, 0, RUN_COADD)
        del images, variance, mask
        print(f"repository with a 6 x {size}x{size} px patch: {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        model, catalog = make_patch(args.blends, size, args.seed)
        n_sources = sum(len(b.sources) for b in model.blends.values())
        writer = Butler(repo, skymap="bench", run=RUN_DEBLEND, writeable=True)
        writer.collections.register(RUN_DEBLEND)
        writer.put(model, "deepCoadd_scarletModelData", tract=0, patch=0)
        writer.put(catalog, "deepCoadd_deblendedCatalog", tract=0, patch=0)
        print(
            f"models of {len(model.blends)} blends ({n_sources} sources) and their catalog "
            f"({len(catalog)} records) stored: {time.perf_counter() - t0:.1f} s"
        )
        del model

        butler = Butler(repo, skymap="bench", collections=[RUN_DEBLEND, RUN_COADD])
        t0 = time.perf_counter()
        catalog = butler.get("deepCoadd_deblendedCatalog", tract=0, patch=0)
        print(f"catalog read: {time.perf_counter() - t0:.2f} s")
        parent_rows = np.flatnonzero(np.asarray(catalog["parent"]) == 0)
        picks = rng.choice(parent_rows, size=args.repeat + 2, replace=False)
        ids = [int(catalog["id"][r]) for r in picks]
        bands = list(BANDS)

        def seed_steps(pid: int):
            parent = catalog.find(pid)
            md = butler.get(
                "deepCoadd_scarletModelData",
                tract=0,
                patch=0,
                parameters={"blend_ids": [pid]},
            )
            mexp = MultibandExposure.fromButler(
                butler,
                bands,
                "deepCoadd_calexp",
                parameters={"bbox": md.blends[pid].bbox},
                tract=0,
                patch=0,
            )
            return multibandDataToScarlet(
                modelData=md, blendId=pid, mExposure=mexp, footprint=parent.getFootprint()
            )

        seed_steps(ids[-1])  # warm the butler's caches
        print()
        c0 = time.process_time()
        ms = timed(seed_steps, ids[: args.repeat])
        cpu = (time.process_time() - c0) / args.repeat * 1e3
        describe("rebuild one blend, seed steps (model + cutout + rebuild)", ms, 20)
        print(f"{'':<58s} CPU    {cpu:7.2f} ms per blend")
        loader = BlendLoader(str(repo), 0, 0, collections=[RUN_DEBLEND, RUN_COADD])
        loader._catalog = catalog  # already read above
        loader.load(ids[-2])
        describe(
            "  BlendLoader.load (datasets resolved once)", timed(loader.load, ids[: args.repeat])
        )
        mds = {}

        def model_only(pid):
            mds[pid] = butler.get(
                "deepCoadd_scarletModelData", tract=0, patch=0, parameters={"blend_ids": [pid]}
            )

        describe("  one-blend model read through the butler", timed(model_only, ids[: args.repeat]))
        cuts = {}

        def cutout(pid):
            cuts[pid] = loader.exposure(mds[pid].blends[pid].bbox, bands)

        describe(
            "  6-band cutout of the blend box (resolved refs)", timed(cutout, ids[: args.repeat])
        )

        def rebuild(pid):
            multibandDataToScarlet(
                modelData=mds[pid],
                blendId=pid,
                mExposure=cuts[pid],
                footprint=catalog.find(pid).getFootprint(),
            )

        describe("  multibandDataToScarlet alone", timed(rebuild, ids[: args.repeat]))
        sizes = [mds[p].blends[p].bbox.area for p in ids[: args.repeat]]
        nsrc = [len(mds[p].blends[p].sources) for p in ids[: args.repeat]]
        print(
            f"{'':<58s} (blends of median {statistics.median(sizes):.0f} px, "
            f"{statistics.median(nsrc):.0f} sources)"
        )

        if args.no_footprints:
            return
        from vermilion import update_catalog_footprints

        print()
        band = "r"
        for label, with_image in (("rendered models", False), ("re-apportioned image", True)):
            cat = butler.get("deepCoadd_deblendedCatalog", tract=0, patch=0)
            t0 = time.perf_counter()
            md = butler.get("deepCoadd_scarletModelData", tract=0, patch=0)
            t_read = time.perf_counter() - t0
            image = None
            if with_image:
                t0 = time.perf_counter()
                image = butler.get("deepCoadd_calexp", tract=0, patch=0, band=band)
                t_read += time.perf_counter() - t0
            psf = butler.get("deepCoadd_calexp.psf", tract=0, patch=0, band=band)
            t0, c0 = time.perf_counter(), time.process_time()
            n = update_catalog_footprints(cat, md, band, psf, redistribute_image=image)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            verdict = "OK" if wall <= 60 else "OVER TARGET"
            print(
                f"update_catalog_footprints, band {band}, {label}: {n} children of "
                f"{len(parent_rows)} blends in {wall:.1f} s wall, {cpu:.1f} s CPU "
                f"(target <= 60 s) {verdict}; inputs read in {t_read:.1f} s; "
                f"{len(md.blends)} blends left in memory"
            )
            areas = np.asarray(cat["footprint_area"])[np.asarray(cat["parent"]) != 0]
            print(f"  heavy footprints: {areas.sum() / 1e6:.1f} M pixels in all")
            del md, cat, image
    finally:
        if not args.root:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
