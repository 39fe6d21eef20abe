"""Benchmark of stored model data: our container against the Rubin JSON and ``.scarlet`` archive.

A synthetic patch (`vermilion.io._synthetic`: 10,000 blends, 1 to 20 sources each,
boxes 15 to 150 px, 6 bands, smooth thresholded profiles with no exact symmetry) is
written in the three formats, then each is timed:

- size on disk and bytes per source;
- write time (the whole patch);
- read all blends (``ModelData.read(path)``);
- read one blend from a closed file (``ModelData.read(path, blend_ids=[id])``: open,
  find, read, parse, close), median and 95th percentile over random blends, and from
  an open reader (``ModelData.open(path)[id]``);
- one-blend reads from files of 100, 1,000 and 10,000 blends (must not grow).

Targets (issue 5): file >= 5x smaller than the archive; one blend <= 5 ms and >= 3x
faster than from the archive, not growing with the number of blends; all blends >= 10x
faster than from the archive or the JSON. Wall and CPU (process) seconds are printed:
on a shared machine CPU time is the steadier figure. Files are in the page cache.

Usage: python bench/bench_io.py [--n-blends 10000] [--repeat 50] [--seed 0] [--keep DIR]
       [--hdf5]   (also a plain HDF5 layout, if h5py is importable: the carrier comparison)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vermilion.io import ModelData, ModelDataWriter
from vermilion.io._synthetic import synthetic_model_data

FORMATS = {"container": "patch.vmd", "json": "patch.json", "archive": "patch.scarlet"}


def clock(fn):
    """(wall s, cpu s, result) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def best(fn, repeat: int):
    runs = [clock(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


def one_blend_ms(path: Path, ids: list[int]) -> tuple[float, float, float]:
    """Median wall ms, 95th percentile wall ms and median CPU ms of cold one-blend reads."""
    walls, cpus = [], []
    for bid in ids:
        w, c, model = clock(lambda b=bid: ModelData.read(path, blend_ids=[b]))
        assert list(model.blends) == [bid]
        walls.append(w * 1e3)
        cpus.append(c * 1e3)
    walls.sort()
    return statistics.median(walls), walls[int(0.95 * (len(walls) - 1))], statistics.median(cpus)


def open_reader_ms(path: Path, ids: list[int]) -> float:
    with ModelData.open(path) as reader:
        times = []
        for bid in ids:
            w, _, _ = clock(lambda b=bid: reader[b])
            times.append(w * 1e3)
    return statistics.median(times)


def subset(model: ModelData, n: int) -> ModelData:
    out = model.metadata_only()
    for bid in list(model.blends)[:n]:
        out.blends[bid] = model.blends[bid]
    return out


def hdf5_layout(model: ModelData, path: Path, ids: list[int]) -> dict:
    """A plain HDF5 layout (group per blend, gzip+shuffle datasets) for the carrier comparison."""
    import h5py

    def write():
        with h5py.File(path, "w") as f:
            f.attrs["bands"] = list(model.bands)
            f["model_psf"] = model.psf
            for bid, blend in model.blends.items():
                g = f.create_group(str(bid))
                g.attrs["origin"] = blend.origin
                g.attrs["shape"] = blend.shape
                for sid, src in blend.sources.items():
                    s = g.create_group(str(sid))
                    s.attrs["peak_id"] = -1 if src.peak_id is None else src.peak_id
                    for i, c in enumerate(src.components):
                        arr = c.morph if hasattr(c, "morph") else c.model
                        d = s.create_dataset(
                            f"c{i}", data=arr, compression="gzip", shuffle=True, chunks=True
                        )
                        d.attrs["origin"] = c.origin
                        d.attrs["peak"] = c.peak
                        if hasattr(c, "spectrum"):
                            d.attrs["spectrum"] = c.spectrum

    def read_blend(f, bid):
        g = f[str(bid)]
        return {sid: [d[()] for d in s.values()] for sid, s in g.items()}

    def read_all():
        with h5py.File(path, "r") as f:
            return [read_blend(f, k) for k in f if k != "model_psf"]

    def read_one(bid):
        with h5py.File(path, "r") as f:
            return read_blend(f, bid)

    w_write, c_write, _ = clock(write)
    w_all, c_all, _ = best(read_all, 1)
    ones = sorted(clock(lambda b=b: read_one(b))[0] * 1e3 for b in ids)
    return {
        "bytes": path.stat().st_size,
        "write": (w_write, c_write),
        "read_all": (w_all, c_all),
        "one_ms": statistics.median(ones),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-blends", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50, help="blends for one-blend reads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--hdf5", action="store_true", help="also time a plain HDF5 layout")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-io-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        model = synthetic_model_data(args.n_blends, seed=args.seed)
        n_sources = sum(len(b.sources) for b in model.blends.values())
        n_comp = sum(len(s.components) for b in model.blends.values() for s in b.sources.values())
        n_px = sum(
            c.shape[0] * c.shape[1]
            for b in model.blends.values()
            for s in b.sources.values()
            for c in s.components
        )
        print(
            f"synthetic patch: {len(model.blends)} blends, {n_sources} sources, {n_comp} "
            f"components, {n_px / 1e6:.1f} M model pixels x {len(model.bands)} bands "
            f"({time.perf_counter() - t0:.1f} s to make)"
        )
        rng = np.random.default_rng(1)
        ids = [int(i) for i in rng.choice(list(model.blends), args.repeat, replace=False)]

        results: dict[str, dict] = {}
        for name, filename in FORMATS.items():
            path = root / filename
            w, c, _ = clock(lambda p=path: model.write(p))
            r: dict = {"path": path, "bytes": path.stat().st_size, "write": (w, c)}
            repeat = 3 if name == "container" else 1
            w, c, back = best(lambda p=path: ModelData.read(p), repeat)
            assert back == model, f"{name} did not round-trip"
            del back
            r["read_all"] = (w, c)
            if name == "json":
                # one blend from the JSON: the whole document must be decoded
                w, c, _ = clock(lambda p=path: ModelData.read(p, blend_ids=ids[:1]))
                r["one"] = (w * 1e3, w * 1e3, c * 1e3)
            else:
                r["one"] = one_blend_ms(path, ids)
                r["open_one"] = open_reader_ms(path, ids)
            results[name] = r
            print(f"  {name}: done", flush=True)

        print()
        header = (
            f"{'format':10s} {'MB':>8s} {'B/source':>9s} {'write s':>8s} "
            f"{'read all s (cpu)':>17s} {'one blend ms med/p95 (cpu)':>27s} {'open[id] ms':>11s}"
        )
        print(header)
        print("-" * len(header))
        for name, r in results.items():
            one = r["one"]
            print(
                f"{name:10s} {r['bytes'] / 1e6:8.1f} {r['bytes'] / n_sources:9.0f} "
                f"{r['write'][0]:8.2f} {r['read_all'][0]:9.2f} ({r['read_all'][1]:5.2f}) "
                f"{one[0]:11.2f} / {one[1]:6.2f} ({one[2]:5.2f}) "
                f"{r.get('open_one', float('nan')):11.3f}"
            )

        # one-blend reads as the file grows (container and archive)
        print("\none blend (median wall ms, cold open) against the number of blends in the file:")
        scaling: dict[str, list[float]] = {"container": [], "archive": []}
        sizes = [n for n in (100, 1000, 10_000, 100_000) if n <= args.n_blends]
        for n in sizes:
            part = subset(model, n) if n < args.n_blends else model
            part_ids = [int(i) for i in rng.choice(list(part.blends), min(args.repeat, n), False)]
            for name, ext in (("container", "vmd"), ("archive", "scarlet")):
                path = root / f"scale_{n}.{ext}"
                if n == args.n_blends:
                    path = results[name]["path"]
                else:
                    part.write(path)
                scaling[name].append(one_blend_ms(path, part_ids)[0])
        print(f"  {'blends':>10s} " + " ".join(f"{n:>9d}" for n in sizes))
        for name, ms in scaling.items():
            print(f"  {name:>10s} " + " ".join(f"{m:9.3f}" for m in ms))

        # a streaming write, as the pipeline does it
        path = root / "stream.vmd"

        def stream():
            with ModelDataWriter(path, model) as writer:
                for bid, blend in model.blends.items():
                    writer.add_blend(bid, blend)

        w, c, _ = clock(stream)
        print(f"\nstreaming writer (ModelDataWriter.add_blend per blend): {w:.2f} s ({c:.2f} cpu)")

        if args.hdf5:
            try:
                h5 = hdf5_layout(model, root / "patch.h5", ids)
            except ImportError:
                print("\nh5py is not importable: no HDF5 comparison")
            else:
                print(
                    f"\nHDF5 (group per blend, gzip+shuffle dataset per component): "
                    f"{h5['bytes'] / 1e6:.1f} MB, {h5['bytes'] / n_sources:.0f} B/source, "
                    f"write {h5['write'][0]:.2f} s, read all {h5['read_all'][0]:.2f} s "
                    f"({h5['read_all'][1]:.2f} cpu), one blend {h5['one_ms']:.2f} ms"
                )

        c, j, a = results["container"], results["json"], results["archive"]
        growth = scaling["container"][-1] / scaling["container"][0] if sizes else 1.0
        checks = [
            ("size: archive / container", a["bytes"] / c["bytes"], ">=", 5),
            ("one blend, median ms", c["one"][0], "<=", 5),
            ("one blend: archive / container", a["one"][0] / c["one"][0], ">=", 3),
            (f"one blend: {sizes[-1] if sizes else 0}-blend / 100-blend file", growth, "<=", 1.5),
            ("read all: archive / container (wall)", a["read_all"][0] / c["read_all"][0], ">=", 10),
            ("read all: JSON / container (wall)", j["read_all"][0] / c["read_all"][0], ">=", 10),
            ("read all: archive / container (cpu)", a["read_all"][1] / c["read_all"][1], ">=", 10),
            ("read all: JSON / container (cpu)", j["read_all"][1] / c["read_all"][1], ">=", 10),
        ]
        print("\ntargets:")
        ok = True
        for label, value, op, need in checks:
            passed = value >= need if op == ">=" else value <= need
            ok &= passed
            print(f"  [{'ok' if passed else 'MISS'}] {label}: {value:.2f} (target {op} {need})")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
