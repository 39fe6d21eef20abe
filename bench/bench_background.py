"""Benchmark: children's fluxes with a sky left in the coadd, per seed and background mode.

On a 160 x 160 gri patch (`vermilion.sim.simulate_patch`, 60 sources per arcmin^2, i = 19
to 24) per seed: every pixel + 20 nJy, deblended with ``background="auto"`` and ``"fit"``;
printed per band, the largest ``|F / F_free - 1|`` over the children with S/N > 50 (matched
by peak) against the background-free run (``background="auto"`` on the clean patch), and
the fitted levels' range. ``--floor`` also prints the deblender's own reproducibility: the
same figure for the clean patch shifted by 0.01, -0.03 and +0.03 nJy (``"none"``) and
deblended with ``"fit"``.

    python bench/bench_background.py                  # seeds 1 to 4
    python bench/bench_background.py --seeds 1 2 3 4 5 6 7 8 --floor
"""

from __future__ import annotations

import argparse

import numpy as np

from vermilion.detect.detection import detect_sources
from vermilion.pipeline import DeblendConfig, DeblendTask
from vermilion.sim import simulate_patch


class _Shifted:
    """A simulated patch with a constant added to every pixel."""

    def __init__(self, sim, offset: float) -> None:
        self.images = sim.images + np.float32(offset)
        self.variance, self.mask, self.psfs = sim.variance, sim.mask, sim.psfs
        self.bands, self.bbox = sim.bands, sim.bbox


def _run(patch, **config):
    parents = detect_sources(
        patch.images, patch.variance, patch.mask, patch.psfs, bands=patch.bands
    )
    catalog, _ = DeblendTask(DeblendConfig(**config), workers=1).run(patch, parents)
    children = catalog[np.asarray(catalog["parent"]) != 0]
    return catalog, {(int(r["peak_y"]), int(r["peak_x"])): r for r in children}


def _deviation(k0, k1, band: str) -> tuple[float, int]:
    common = sorted(set(k0) & set(k1))
    a = np.array([k0[k][f"deblend_reapportionedFlux_{band}"] for k in common], float)
    b = np.array([k1[k][f"deblend_reapportionedFlux_{band}"] for k in common], float)
    bright = a / np.array([k0[k][f"flux_err_{band}"] for k in common], float) > 50
    return float(np.max(np.abs(b[bright] / a[bright] - 1), initial=0)), int(bright.sum())


def _row(label: str, k0, k1, catalog=None) -> str:
    out = [f"{b} {100 * d:5.2f}% (n={n:2d})" for b in "gri" for d, n in [_deviation(k0, k1, b)]]
    if catalog is not None and "deblend_backgroundLevel_r" in catalog.colnames:
        v = np.concatenate([np.asarray(catalog[f"deblend_backgroundLevel_{b}"]) for b in "gri"])
        v = v[np.isfinite(v)]
        out.append(f"levels {v.min():.3f} to {v.max():.3f}")
    return f"{label:24s} " + ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--floor", action="store_true", help="the deblender's own floor")
    args = parser.parse_args()
    for seed in args.seeds:
        patch = simulate_patch((160, 160), bands="gri", density=60, seed=seed, mag_range=(19, 24))
        _, k0 = _run(patch)
        for mode in ("auto", "fit"):
            catalog, k1 = _run(_Shifted(patch, 20.0), background=mode)
            print(_row(f"seed {seed} +20 {mode}", k0, k1, catalog), flush=True)
        if args.floor:
            for offset in (0.01, -0.03, 0.03):
                _, k1 = _run(_Shifted(patch, offset), background="none")
                print(_row(f"seed {seed} {offset:+.2f} none", k0, k1), flush=True)
            catalog, k1 = _run(patch, background="fit")
            print(_row(f"seed {seed} clean fit", k0, k1, catalog), flush=True)


if __name__ == "__main__":
    main()
