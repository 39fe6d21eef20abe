"""Benchmark: simulate one LSST-like patch and report time and peak memory.

Goal (issue 3): a 4000 x 4000 px 6-band patch at LSST 10-year depth in under 10 minutes and
under 8 GiB on the project machine (2 cores).

    python bench/bench_sim.py                       # the full 4000 x 4000 patch
    python bench/bench_sim.py --size 2000 2000      # a quarter of it
"""

from __future__ import annotations

import argparse
import resource
import time

GOAL_SECONDS = 600.0
GOAL_GIB = 8.0
FULL_PATCH_PIXELS = 4000 * 4000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(4000, 4000), metavar=("H", "W"))
    parser.add_argument("--bands", default="ugrizy")
    parser.add_argument("--density", type=float, default=100.0, help="sources per arcmin^2")
    parser.add_argument("--depth", default="10yr")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from vermilion.sim import simulate_patch

    patch = simulate_patch(
        tuple(args.size), bands=args.bands, density=args.density, seed=args.seed, depth=args.depth
    )
    elapsed = time.perf_counter() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    h, w = args.size
    n = patch.n_sources

    print(f"patch {h} x {w} px, bands {args.bands}, depth {args.depth}, seed {args.seed}")
    n_stars = int(patch.truth_array["is_star"].sum())
    print(f"sources: {n} ({args.density:g} per arcmin^2; {n_stars} stars)")
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in patch.timings.items()))
    print(f"total time: {elapsed:.1f} s ({1e3 * elapsed / max(n, 1):.2f} ms per source)")
    print(f"peak memory (maxrss): {peak_gib:.2f} GiB")
    scale = FULL_PATCH_PIXELS / (h * w)
    if scale != 1:
        print(
            f"extrapolated to 4000 x 4000 (x{scale:.2f}, linear in area): "
            f"~{elapsed * scale:.0f} s; memory grows about linearly in area too"
        )
    else:
        ok_t = "OK" if elapsed < GOAL_SECONDS else "OVER"
        ok_m = "OK" if peak_gib < GOAL_GIB else "OVER"
        print(f"goal < {GOAL_SECONDS:.0f} s: {ok_t}; goal < {GOAL_GIB:.0f} GiB: {ok_m}")


if __name__ == "__main__":
    main()
