"""Benchmark: deblending accuracy against the truth of simulated blends, next to the noise floor.

Deblends a fixed, seeded set of simulated 6-band LSST 10-year blends (2 to 6 sources each,
at least 200 sources in all) with the engine (`vermilion.core`), then deblends every source
alone (its neighbours' true noiseless images subtracted from the same noisy image) to
measure the noise floor, and prints the accuracy summary of both.

Peaks are the true positions (rounded) of the sources with S/N > 5, so that the figures
measure deblending, not detection.

The figure tracked (issue 3): median |relative flux error| of the re-apportioned fluxes over
(source, band) pairs with S/N > 20 in that band whose nearest neighbour lies more than 2 PSF
FWHM away, as a ratio to the same figure for the sources deblended alone. Goal: <= 1.5.

    python bench/bench_accuracy.py             # 60 blends, ~240 sources
    python bench/bench_accuracy.py --blends 20 # quicker look
"""

from __future__ import annotations

import argparse
import itertools
import time
from functools import partial

import numpy as np

GOAL_RATIO = 1.5


def blend_set(n_blends: int, seed: int):
    """The fixed set of blends: (seed, n_sources, separations in px) per blend."""
    from vermilion.sim.survey import band_parameters

    i_band = band_parameters("i")[0]
    fwhm_px = i_band.psf_fwhm / i_band.pixel_scale
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_blends):
        n = 2 + k % 5
        seps = rng.uniform(0.75, 5.0, n - 1) * fwhm_px
        out.append((seed + k, n, seps))
    return out


def deblend(images, variance, psfs, bands, centers, args):
    """Deblend one image with the engine; return children dicts for the metrics."""
    from vermilion.core import (
        Blend,
        Observation,
        init_adaprox_component,
        init_all_sources,
        weight_sources,
    )

    obs = Observation(images, variance, psfs=psfs, bands=bands)
    sources = init_all_sources(obs, centers)
    blend = Blend(sources, obs).parameterize(
        partial(init_adaprox_component, bg_thresh=args.bg_thresh)
    )
    blend.fit(args.max_iter, e_rel=args.e_rel, min_iter=args.min_iter, resize=args.resize)
    weight_sources(blend)
    children = []
    for source in blend.sources:
        if source.is_null or source.peak is None:
            continue
        model = obs.convolve(source.get_model(bbox=blend.bbox), mode="real")
        child = {"x": float(source.peak[1]), "y": float(source.peak[0])}
        child["model"], child["model_box"] = model.data, model.bbox
        if source.flux is not None:
            child["flux"], child["flux_box"] = source.flux.data, source.flux.bbox
        children.append(child)
    return children, blend.it


def without_neighbours(patch, keep: int) -> np.ndarray:
    """The noisy image minus the true noiseless images of every source but ``keep``."""
    images = patch.images.astype(np.float64)
    full = patch.bbox
    for j, s in enumerate(patch.source_images):
        if j == keep or not s.box.overlaps(full):
            continue
        a, b = full.overlapped_slices(s.box)
        images[(slice(None), *a)] -= s.image[(slice(None), *b)]
    return images.astype(np.float32)


def median_abs(values: np.ndarray) -> float:
    v = np.abs(values[np.isfinite(values)])
    return float(np.median(v)) if v.size else np.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blends", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--e-rel", type=float, default=1e-3)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--min-iter", type=int, default=15)
    parser.add_argument("--resize", type=int, default=10)
    parser.add_argument("--bg-thresh", type=float, default=0.25)
    parser.add_argument("--min-snr", type=float, default=5.0, help="peaks: true S/N above this")
    args = parser.parse_args()

    from vermilion.sim import simulate_blend
    from vermilion.sim.metrics import concatenate, evaluate_patch

    blended, isolated = [], []
    n_sources = n_peaks = n_failed = 0
    t_blend = t_iso = 0.0
    iterations = []
    for seed, n, seps in blend_set(args.blends, args.seed):
        patch = simulate_blend(n, separations=seps, seed=seed)
        truth = patch.truth_array
        n_sources += len(truth)
        centers, keep = [], []
        for k, row in enumerate(truth):
            c = (round(row["y"]), round(row["x"]))
            inside = 0 <= c[0] < patch.shape[0] and 0 <= c[1] < patch.shape[1]
            if row["snr"] > args.min_snr and inside and c not in centers:
                centers.append(c)
                keep.append(k)
        n_peaks += len(centers)
        args_ = (patch.variance, patch.psfs, patch.bands)
        t0 = time.perf_counter()
        try:
            children, it = deblend(patch.images, *args_, centers, args)
            iterations.append(it)
        except Exception as err:  # a failed blend counts as all sources missed
            print(f"blend seed {seed}: deblending failed: {err}")
            children, n_failed = [], n_failed + 1
        t_blend += time.perf_counter() - t0

        t0 = time.perf_counter()
        alone = []
        for k, c in zip(keep, centers):
            try:
                kids, _ = deblend(without_neighbours(patch, k), *args_, [c], args)
                alone.extend(kids)
            except Exception as err:
                print(f"blend seed {seed}, source {k} alone: deblending failed: {err}")
        t_iso += time.perf_counter() - t0
        blended.append(evaluate_patch(patch, children))
        isolated.append(evaluate_patch(patch, alone))

    ev, floor = concatenate(blended), concatenate(isolated)
    print(
        f"{args.blends} blends, {n_sources} sources, {n_peaks} peaks (true S/N > {args.min_snr:g}),"
        f" {n_failed} failed; e_rel {args.e_rel:g}, min_iter {args.min_iter}, max_iter "
        f"{args.max_iter}, resize {args.resize}, bg_thresh {args.bg_thresh:g}"
    )
    print(
        f"deblend time: blends {t_blend:.1f} s (median {np.median(iterations):.0f} iterations), "
        f"sources alone {t_iso:.1f} s"
    )
    print("\n== blended ==")
    print(ev.format_summary())
    print("\n== each source alone (noise floor) ==")
    print(floor.format_summary())

    print("\n== median |flux error| of re-apportioned fluxes: blended / alone ==")
    snr_bins = (5, 10, 20, 50, 100, 1000, np.inf)
    for lo, hi in itertools.pairwise(snr_bins):
        cells = []
        for e in (ev, floor):
            snr = e.truth_snr_band[e.truth_index]
            sel = (snr >= lo) & (snr < hi)
            cells.append(median_abs(e.flux_err_flux[sel]))
        print(f"  S/N {lo:g}-{hi:g}: {cells[0]:.4f} / {cells[1]:.4f}")

    blended_fig = ev.tracked_flux_error(snr_min=20, min_nn_fwhm=2)
    floor_fig = floor.tracked_flux_error(snr_min=20, min_nn_fwhm=2)
    n_sel = int(ev.selection(20, 2).sum())
    ratio = blended_fig / floor_fig
    print(
        f"\nTRACKED: median |flux error| (S/N > 20, nearest neighbour > 2 FWHM; {n_sel} "
        f"source-bands): blended {blended_fig:.4f}, alone {floor_fig:.4f}, "
        f"ratio {ratio:.2f} (goal <= {GOAL_RATIO}) {'OK' if ratio <= GOAL_RATIO else 'OVER'}"
    )


if __name__ == "__main__":
    main()
