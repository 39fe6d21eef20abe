"""Benchmark: reading an ``lsst.afw.table`` catalog with footprints, next to astropy's own read.

Reads ``tests/data/afw/deepCoadd_meas_HSC_v2.fits`` (210 kB: 10 records, 263 columns,
237 flag bits, 10 footprints in a Footprint -> SpanSet archive with peaks) N times each way
and prints the median time of

* astropy ``Table.read`` of the record table alone (HDU 1),
* astropy ``Table.read`` of every table HDU (record table and archive),
* `SourceCatalog.read` (records, one boolean column per flag bit, units and descriptions,
  and every footprint with its spans and peaks).

The target (issue 17): `SourceCatalog.read` at most a few milliseconds more than astropy's
own table read.

    python bench/bench_afw_catalog.py            # 30 runs each
    python bench/bench_afw_catalog.py --runs 100
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "afw" / "deepCoadd_meas_HSC_v2.fits"


def median_ms(fn, runs: int) -> float:
    fn()  # warm up (imports, unit parsing caches)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)

    from astropy.io import fits
    from astropy.table import Table

    from vermilion.detect.catalog import SourceCatalog

    def astropy_records():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns about afw's units
            return Table.read(PATH, hdu=1)

    def astropy_all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(PATH, memmap=False) as hdul:
                return [Table.read(hdul, hdu=i) for i in range(1, len(hdul))]

    records = median_ms(astropy_records, args.runs)
    every = median_ms(astropy_all, args.runs)
    ours = median_ms(lambda: SourceCatalog.read(PATH), args.runs)
    cat = SourceCatalog.read(PATH)
    print(f"file: {PATH.name} ({PATH.stat().st_size / 1e3:.0f} kB), median of {args.runs} runs")
    print(f"  astropy Table.read, record table (HDU 1):  {records:8.2f} ms")
    print(f"  astropy Table.read, every table HDU:       {every:8.2f} ms")
    print(
        f"  SourceCatalog.read (records + footprints): {ours:8.2f} ms "
        f"({len(cat)} records, {len(cat.colnames)} columns, "
        f"{sum(fp is not None for fp in cat['footprint'])} footprints)"
    )
    print(f"  difference to the record-table read:       {ours - records:+8.2f} ms")


if __name__ == "__main__":
    main()
