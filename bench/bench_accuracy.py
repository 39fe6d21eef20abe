"""Benchmark: deblending accuracy against the truth, on two independent scene families.

Families (each with truth, each with tuning seeds and held-out seeds never looked at while
tuning the engine):

- ``sim``: `vermilion.sim.simulate_blend`, 6-band LSST 10-year blends of 2 to 6 sources
  at 0.75 to 5 i-band FWHM (the demo's generator);
- ``galsim``: `scenes_galsim` (this folder), GalSim bulge+disk (+knots) galaxies and stars
  of different colours, sub-pixel centres, per-band Moffat PSFs, pairs at 0.5 to 3 FWHM and
  groups of 3 to 8, drawn without any code of `vermilion.sim`.

Every blend is deblended as the pipeline does it with a `DeblendConfig` (its defaults, or
``-c key=value``): `init_all_sources`, proximal ADAM, `Blend.fit`, `weight_sources`. Peaks are
the true centres (rounded to the pixel) of the sources with S/N > 5, so that the figures
measure deblending, not detection. Every such source is also deblended alone (its
neighbours' true noiseless images subtracted from the same noisy image): the isolated
reference, so that the blended-to-isolated ratio is visible.

Seeds looked at while tuning besides the tuning sets (never the held-out ones): GalSim
500-539 and 1000-1199, `sim_scenes` seeds 3000 and 11000; only checked, once per change:
GalSim 540-679 and 20000-20199, `sim_scenes` seeds 5000 and 7000.

Printed per family and seed set: median and mean |relative flux error| of the re-apportioned
and of the model fluxes, median |colour error| (mag, adjacent bands), median centroid error
(px), over (source, band) pairs with S/N > 10 in that band (colours: both bands), per S/N
bin and per blendedness bin, blended and alone; the tendril figures (`tendril_fraction`:
the share of a source's model flux in structures one pixel wide or cut off from its peak).

    python bench/bench_accuracy.py                 # both families, tuning + held-out seeds
    python bench/bench_accuracy.py --quick         # a quarter of the scenes
    python bench/bench_accuracy.py --sets tuning   # never the held-out seeds (while tuning)
    python bench/bench_accuracy.py -c monotonicSlack=0 --save out.npz
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from scenes_galsim import HELD_OUT_SEEDS, TUNING_SEEDS, Scene, galsim_scene

SNR_BINS = (10, 20, 50, 200, np.inf)
BLEND_BINS = (0, 0.05, 0.2, 0.5, 1.0)
SNR_MIN = 10.0
SIM_TUNING_SEED, SIM_HELD_OUT_SEED = 1000, 7000


# ---- scenes -------------------------------------------------------------------------


def sim_scenes(n_blends: int, seed: int) -> list[Scene]:
    """``n_blends`` `vermilion.sim` blends (2 to 6 sources at 0.75 to 5 i-band FWHM)."""
    from vermilion.sim import simulate_blend
    from vermilion.sim.survey import band_parameters

    i_band = band_parameters("i")[0]
    fwhm_px = i_band.psf_fwhm / i_band.pixel_scale
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_blends):
        n = 2 + k % 5
        seps = rng.uniform(0.75, 5.0, n - 1) * fwhm_px
        patch = simulate_blend(n, separations=seps, seed=seed + k)
        full = patch.bbox
        true = np.zeros((len(patch.source_images), *patch.images.shape), dtype=np.float32)
        for j, s in enumerate(patch.source_images):
            if s.box.overlaps(full):
                a, b = full.overlapped_slices(s.box)
                true[(j, slice(None), *a)] = s.image[(slice(None), *b)]
        t = patch.truth_array
        out.append(
            Scene(
                f"sim seed {seed + k}",
                patch.images,
                patch.variance,
                patch.psfs,
                tuple(patch.bands),
                true,
                np.stack([t["y"], t["x"]], axis=1).astype(np.float64),
                np.asarray(t["is_star"], dtype=bool),
            )
        )
    return out


def scene_sets(args) -> dict[str, list[Scene]]:
    q = 4 if args.quick else 1
    n_sim, n_gal = args.sim_blends // q, args.galsim_scenes // q
    sets = {}
    if "tuning" in args.sets:
        sets["sim tuning"] = lambda: sim_scenes(n_sim, SIM_TUNING_SEED)
        sets["galsim tuning"] = lambda: [galsim_scene(s) for s in TUNING_SEEDS[:n_gal]]
    if "held-out" in args.sets:
        sets["sim held-out"] = lambda: sim_scenes(n_sim // 2, SIM_HELD_OUT_SEED)
        sets["galsim held-out"] = lambda: [galsim_scene(s) for s in HELD_OUT_SEEDS[: n_gal // 2]]
    return {k: v for k, v in sets.items() if k.split()[0] in args.families}


# ---- deblending ---------------------------------------------------------------------


def deblend(images: np.ndarray, scene: Scene, centers: list, config) -> list[dict]:
    """Deblend as the pipeline does; per peak: model/flux sums, centroid, tendril fraction."""
    from vermilion.core import (
        Blend,
        Observation,
        init_all_sources,
        tendril_fraction,
        weight_sources,
    )

    obs = Observation(images, scene.variance, psfs=scene.psfs, bands=scene.bands)
    sources = init_all_sources(obs, centers, **config.init_options())
    blend = Blend(sources, obs).parameterize(config.parameterization())
    with np.errstate(all="ignore"):
        blend.fit(
            config.maxIter,
            e_rel=config.relativeError,
            min_iter=config.minIter,
            resize=config.resizeFrequency or None,
        )
    weight_sources(blend)
    out = []
    n_bands = len(scene.bands)
    for source in blend.sources:
        row = {"model": np.zeros(n_bands), "flux": np.zeros(n_bands), "yx": (np.nan, np.nan)}
        row["tendril"] = 0.0
        if not source.is_null:
            model = source.get_model(bbox=blend.bbox).data.astype(np.float64)
            row["model"] = model.sum(axis=(1, 2))
            plane = model.sum(axis=0)
            yy, xx = np.indices(plane.shape)
            if plane.sum() > 0:
                row["yx"] = (
                    float((yy * plane).sum() / plane.sum()),
                    float((xx * plane).sum() / plane.sum()),
                )
            row["tendril"] = tendril_fraction(source)
            if source.flux is not None:
                row["flux"] = source.flux.data.sum(axis=(1, 2), dtype=np.float64)
        out.append(row)
    return out, blend.it


def run_set(scenes: list[Scene], config, alone: bool) -> dict[str, np.ndarray]:
    """Per kept source: truth, blended and (with ``alone``) isolated measurements."""
    from vermilion.core.measure import blendedness

    keys = (
        "true",
        "snr",
        "blend",
        "model",
        "flux",
        "err_yx",
        "tendril",
        "model_alone",
        "flux_alone",
        "err_yx_alone",
    )
    acc = {k: [] for k in keys}
    iters = []
    for scene in scenes:
        snr_b = scene.snr_band
        snr = np.sqrt(np.sum(snr_b**2, axis=1))
        h, w = scene.images.shape[1:]
        centers, keep = [], []
        for k, (y, x) in enumerate(scene.centers):
            c = (round(y), round(x))
            if snr[k] > 5 and 0 <= c[0] < h and 0 <= c[1] < w and c not in centers:
                centers.append(c)
                keep.append(k)
        if not keep:
            continue
        total = scene.true_images.sum(axis=0)
        rows, it = deblend(scene.images, scene, centers, config)
        iters.append(it)
        for k, c, row in zip(keep, centers, rows):
            acc["true"].append(scene.true_images[k].sum(axis=(1, 2), dtype=np.float64))
            acc["snr"].append(snr_b[k])
            acc["blend"].append(blendedness(scene.true_images[k], total))
            acc["model"].append(row["model"])
            acc["flux"].append(row["flux"])
            acc["err_yx"].append(np.hypot(*(np.array(row["yx"]) - scene.centers[k])))
            acc["tendril"].append(row["tendril"])
            if alone:
                (one,), _ = deblend(scene.without_neighbours(k), scene, [c], config)
                acc["model_alone"].append(one["model"])
                acc["flux_alone"].append(one["flux"])
                acc["err_yx_alone"].append(np.hypot(*(np.array(one["yx"]) - scene.centers[k])))
    out = {k: np.array(v) for k, v in acc.items() if v}
    out["iterations"] = np.array(iters)
    return out


# ---- figures ------------------------------------------------------------------------------


def rel_err(est: np.ndarray, true: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(est / true - 1)


def colour_err(est: np.ndarray, true: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        c_est = -2.5 * np.log10(est[:, :-1] / est[:, 1:])
        c_true = -2.5 * np.log10(true[:, :-1] / true[:, 1:])
        return np.abs(c_est - c_true)


def stat(values: np.ndarray, fn=np.median) -> float:
    v = values[np.isfinite(values)]
    return float(fn(v)) if v.size else np.nan


def figures(r: dict, suffix: str = "") -> dict[str, float]:
    """The headline figures of one run (``suffix`` "_alone": the isolated reference)."""
    sel = r["snr"] > SNR_MIN
    colour_sel = (r["snr"][:, :-1] > SNR_MIN) & (r["snr"][:, 1:] > SNR_MIN)
    f = rel_err(r["flux" + suffix], r["true"])
    m = rel_err(r["model" + suffix], r["true"])
    # a flux that is not finite (no model) counts as a 100% error
    f, m = np.where(np.isfinite(f), f, 1.0), np.where(np.isfinite(m), m, 1.0)
    src_sel = np.sqrt(np.sum(r["snr"] ** 2, axis=1)) > SNR_MIN
    return {
        "n": int(sel.sum()),
        "flux_med": stat(f[sel]),
        "flux_mean": stat(f[sel], np.mean),
        "model_med": stat(m[sel]),
        "model_mean": stat(m[sel], np.mean),
        "colour_med": stat(colour_err(r["flux" + suffix], r["true"])[colour_sel]),
        "colour_mean": stat(
            np.minimum(colour_err(r["flux" + suffix], r["true"])[colour_sel], 1.0), np.mean
        ),
        "centroid_med": stat(r["err_yx" + suffix][src_sel]),
    }


def print_set(name: str, r: dict, seconds: float) -> None:
    alone = "flux_alone" in r
    print(
        f"\n== {name}: {len(r['true'])} sources, {int((r['snr'] > SNR_MIN).sum())} "
        f"source-bands at S/N > {SNR_MIN:g}; "
        f"median {np.median(r['iterations']):.0f} iterations; {seconds:.0f} s =="
    )
    cols = (
        "flux_med",
        "flux_mean",
        "model_med",
        "model_mean",
        "colour_med",
        "colour_mean",
        "centroid_med",
    )
    print(f"  {'':<10}" + "".join(f"{c:>13}" for c in cols))
    for label, suffix in (("blended", ""), ("alone", "_alone"))[: 2 if alone else 1]:
        fig = figures(r, suffix)
        print(f"  {label:<10}" + "".join(f"{fig[c]:>13.4f}" for c in cols))
    f = rel_err(r["flux"], r["true"])
    fa = rel_err(r["flux_alone"], r["true"]) if alone else None
    print("  median |re-apportioned flux error| per band S/N bin: blended / alone (n)")
    for lo, hi in itertools.pairwise(SNR_BINS):
        sel = (r["snr"] >= lo) & (r["snr"] < hi)
        a = f"{stat(fa[sel]):.4f}" if alone else "-"
        print(f"    S/N {lo:>4g}-{hi:<4g} {stat(f[sel]):.4f} / {a} ({int(sel.sum())})")
    print("  ... per blendedness bin (S/N > 10): blended / alone (n)")
    blend = np.repeat(r["blend"][:, None], r["true"].shape[1], axis=1)
    for lo, hi in itertools.pairwise(BLEND_BINS):
        sel = (blend >= lo) & (blend < hi if hi < 1 else blend <= hi) & (r["snr"] > SNR_MIN)
        a = f"{stat(fa[sel]):.4f}" if alone else "-"
        print(f"    blendedness {lo:>4g}-{hi:<4g} {stat(f[sel]):.4f} / {a} ({int(sel.sum())})")
    t = r["tendril"]
    print(
        f"  tendrils: mean {t.mean():.4f}, 90th percentile {np.percentile(t, 90):.4f}, "
        f"max {t.max():.4f}, "
        f"sources over 0.01: {int((t > 0.01).sum())} of {t.size}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the scenes")
    parser.add_argument("--sim-blends", type=int, default=60)
    parser.add_argument("--galsim-scenes", type=int, default=40)
    parser.add_argument("--families", nargs="+", default=["sim", "galsim"])
    parser.add_argument("--sets", nargs="+", default=["tuning", "held-out"])
    parser.add_argument("--no-alone", action="store_true", help="skip the isolated reference")
    parser.add_argument("-c", "--config", nargs="*", default=[], help="DeblendConfig key=value")
    parser.add_argument("--save", help="write every set's per-source arrays to this .npz")
    args = parser.parse_args()

    from vermilion.pipeline.config import DeblendConfig

    config = DeblendConfig.from_args(args.config)
    print(
        f"DeblendConfig: relativeError {config.relativeError:g}, minIter {config.minIter}, "
        f"resize {config.resizeFrequency}, backgroundThresh {config.backgroundThresh:g}, "
        f"monotonicSlack {config.monotonicSlack:g}, minSNR {config.minSNR:g}, "
        f"sourceModel {config.sourceModel}"
    )
    saved = {}
    for name, make in scene_sets(args).items():
        t0 = time.perf_counter()
        r = run_set(make(), config, alone=not args.no_alone)
        print_set(name, r, time.perf_counter() - t0)
        saved.update({f"{name.replace(' ', '_')}/{k}": v for k, v in r.items()})
    if args.save:
        np.savez(args.save, **saved)


if __name__ == "__main__":
    main()
