"""The main job on the embedded default (``vermilion demo``), and the patch report.

`run_demo` simulates an LSST-like patch with known truth, makes a local
repository on the Rubin butler, ingests the patch, detects and deblends it on all
cores, rebuilds one blend exactly as a user would (the Rubin "Working with
scarlet-lite Models" steps), writes its pictures and the patch report, and prints
a summary with the accuracy against the simulation's truth.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vermilion.repo.butler import (
    CATALOG_DATASET,
    EXPOSURE_DATASET,
    MODEL_DATASET,
    default_collections,
)

__all__ = ["DemoSummary", "accuracy_against_truth", "run_demo", "write_patch_report"]

DEMO_SKYMAP = "demo"
DEMO_TRACT = 0
DEMO_PATCH = 0


@dataclass
class DemoSummary:
    """What `run_demo` did and measured."""

    out: Path
    repo: Path
    n_truth: int = 0
    blends: int = 0
    sources: int = 0
    failures: int = 0
    deblend_seconds: float = 0.0
    total_seconds: float = 0.0
    deblend_status: str = ""
    shown_blend: int | None = None
    shown_children: int = 0
    pictures: list[Path] = field(default_factory=list)
    report: Path | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def sources_per_second(self) -> float:
        return self.sources / self.deblend_seconds if self.deblend_seconds > 0 else 0.0

    def __str__(self) -> str:
        acc = self.accuracy
        lines = [
            f"vermilion demo: {self.out}",
            f"  repository   {self.repo} (skymap {DEMO_SKYMAP!r}, tract {DEMO_TRACT}, "
            f"patch {DEMO_PATCH})",
            f"  truth        {self.n_truth} simulated sources",
            f"  blends       {self.blends} deblended, {self.failures} failed",
            f"  sources      {self.sources} children "
            f"({self.sources_per_second:.0f} sources/s, deblending {self.deblend_seconds:.1f} s)",
        ]
        if acc:
            lines.append(
                f"  accuracy     {acc['matched']:.0f} children matched to truth; median |flux "
                f"error| {acc['median_abs_flux_error']:.3f} (S/N > 20: "
                f"{acc['median_abs_flux_error_snr20']:.3f}); completeness (S/N > 10) "
                f"{acc['completeness_snr10']:.1%}"
            )
        if self.shown_blend is not None:
            lines.append(
                f"  blend        {self.shown_blend} ({self.shown_children} children): "
                + ", ".join(p.name for p in self.pictures)
            )
        if self.report is not None:
            lines.append(f"  report       {self.report}")
        lines.append(f"  time         {self.total_seconds:.1f} s in all")
        return "\n".join(lines)


def accuracy_against_truth(catalog, truth, bands, max_sep: float = 2.0) -> dict[str, float]:
    """Match children to true sources by position; median relative flux error.

    The flux of a child is its re-apportioned flux (``deblend_reapportionedFlux_<band>``)
    and the error is relative to the true flux, over all bands of the matched pairs.
    """
    from vermilion.sim.metrics import match_to_truth

    children = catalog[np.asarray(catalog["parent"]) != 0]
    if len(children) == 0 or len(truth) == 0:
        return {}
    t_xy = np.stack([np.asarray(truth["x"], float), np.asarray(truth["y"], float)], axis=1)
    c_xy = np.stack(
        [np.asarray(children["peak_x"], float), np.asarray(children["peak_y"], float)], axis=1
    )
    ti, ci, _ = match_to_truth(t_xy, c_xy, max_sep)
    errors, errors20 = [], []
    snr = np.asarray(truth["snr"], float)
    for band in bands:
        column = f"deblend_reapportionedFlux_{band}"
        if column not in children.colnames:
            continue
        true = np.asarray(truth[f"flux_{band}"], float)[ti]
        measured = np.asarray(children[column], float)[ci]
        ok = true > 0
        rel = np.abs(measured[ok] - true[ok]) / true[ok]
        errors.append(rel)
        errors20.append(rel[snr[ti][ok] > 20])
    detectable = snr > 10
    found = np.zeros(len(truth), bool)
    found[ti] = True

    def median(parts: list[np.ndarray]) -> float:
        values = np.concatenate(parts) if parts else np.zeros(0)
        return float(np.median(values)) if values.size else np.nan

    return {
        "matched": float(len(ti)),
        "median_abs_flux_error": median(errors),
        "median_abs_flux_error_snr20": median(errors20),
        "completeness_snr10": float(found[detectable].mean()) if detectable.any() else np.nan,
    }


def _blend_info(blend, record) -> dict[str, Any]:
    flags = [
        name
        for name in (
            "deblend_failed",
            "deblend_skipped",
            "deblend_tooManyPeaks",
            "deblend_parentTooBig",
            "deblend_masked",
        )
        if name in record.colnames and bool(record[name])
    ]
    return {"n_children": int(record["deblend_nChild"]), "flags": flags}


def write_patch_report(
    repo,
    tract: int,
    patch: int,
    out_dir,
    collections=None,
    workers: int | None = None,
    max_blends: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the static HTML report of every deblended blend of one patch.

    Every parent with stored models is rebuilt on the patch's exposure (as the
    pipeline fitted it) and handed to `vermilion.display.write_report`.

    Returns the path of ``index.html``.
    """
    from vermilion.display import write_report
    from vermilion.io import multiband_data_to_blend
    from vermilion.repo import MultibandExposure, open_repo

    butler = open_repo(repo, collections=collections or default_collections())
    catalog = butler.get(CATALOG_DATASET, tract=tract, patch=patch)
    reader = butler.get(MODEL_DATASET, tract=tract, patch=patch)
    mexposure = MultibandExposure.from_butler(
        butler, reader.bands, EXPOSURE_DATASET, tract=tract, patch=patch
    )
    ids = [int(i) for i in reader.blends]
    if max_blends is not None:
        ids = ids[:max_blends]

    def blends():
        for blend_id in ids:
            record = catalog.find(blend_id)
            footprint = record.getFootprint()
            blend = multiband_data_to_blend(
                reader, blend_id, mexposure=mexposure, footprint=footprint
            )
            yield blend_id, blend, _blend_info(blend, record)

    out = write_report(
        blends(), out_dir, workers=workers, progress=progress, title=f"tract {tract}, patch {patch}"
    )
    return Path(out)


def run_demo(
    out: str | os.PathLike = "vermilion-demo",
    size: int = 1000,
    bands: str = "ugrizy",
    density: float = 100.0,
    seed: int = 1,
    workers: int | None = None,
    report: bool = True,
    progress: bool = True,
    verbose: bool = True,
) -> DemoSummary:
    """Simulate, ingest, detect, deblend, rebuild a blend, draw it, report, summarise.

    Parameters
    ----------
    out
        Output folder (the repository goes in ``out/repo``). Re-running reuses the
        repository and skips the work already done.
    size
        Patch width and height in pixels.
    bands, density, seed
        The simulated sky (see `vermilion.sim.simulate_patch`).
    workers
        Cores for deblending (default: all).
    report
        Also write the HTML report of the patch.
    """
    from vermilion.display import default_norm, show_scene, show_sources
    from vermilion.pipeline import DeblendConfig, deblend_patches
    from vermilion.repo import create_repo, ingest_arrays, open_repo
    from vermilion.sim import simulate_patch

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    repo = out / "repo"
    summary = DemoSummary(out=out, repo=repo)
    say = print if verbose else (lambda *a, **k: None)

    t0 = time.perf_counter()
    say(f"simulating a {size} x {size} px {bands} patch (seed {seed}) ...")
    patch = simulate_patch((size, size), bands=bands, density=density, seed=seed, progress=progress)
    summary.n_truth = len(patch.truth)
    summary.timings["simulate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    create_repo(
        repo,
        skymap=DEMO_SKYMAP,
        bands=patch.bands,
        tracts=1,
        patches=(1, 1),
        patch_shape=(size, size),
        exist_ok=True,
    )
    ingest_arrays(
        repo,
        patch.images,
        patch.variance,
        patch.mask,
        patch.psfs,
        patch.bands,
        tract=DEMO_TRACT,
        patch=DEMO_PATCH,
        truth=patch.truth,
        skymap=DEMO_SKYMAP,
    )
    summary.timings["ingest"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("detecting and deblending on all cores ...")
    result = deblend_patches(
        repo,
        DEMO_TRACT,
        [DEMO_PATCH],
        config=DeblendConfig(),
        workers=workers,
        scheduler="synchronous",
        progress=progress,
    )
    summary.timings["deblend"] = time.perf_counter() - t0
    if result.failed:
        raise RuntimeError(f"deblending failed: {result.results[0].error}")

    butler = open_repo(repo, collections=default_collections())
    catalog = butler.get(CATALOG_DATASET, tract=DEMO_TRACT, patch=DEMO_PATCH)
    parents = catalog[np.asarray(catalog["parent"]) == 0]
    children = catalog[np.asarray(catalog["parent"]) != 0]
    summary.blends = int(np.sum(np.asarray(parents["deblend_nChild"]) > 0))
    summary.sources = len(children)
    summary.failures = int(np.sum(np.asarray(parents["deblend_failed"])))
    run_result = result.results[0]
    summary.deblend_status = run_result.status
    summary.deblend_seconds = run_result.deblend_seconds or result.seconds
    summary.accuracy = accuracy_against_truth(catalog, patch.truth, patch.bands)

    # The Rubin workflow on one blend: the first parent with 5 children.
    n_child = np.asarray(parents["deblend_nChild"])
    pick = np.flatnonzero(n_child == 5)
    if pick.size == 0:
        pick = [int(np.argmax(n_child))]
    parent_id = int(parents["id"][pick[0]])
    from vermilion.pipeline.restart import load_blend

    t0 = time.perf_counter()
    blend, _parent = load_blend(repo, DEMO_TRACT, DEMO_PATCH, parent_id)
    from vermilion.core import weight_sources

    weight_sources(blend)
    # The seed's AsinhMapping(minimum=0, stretch=0.1, Q=10) suits HSC counts; our images
    # are in nJy, so let the display tune the stretch to the data and its noise.
    norm = default_norm(blend)
    pictures = []
    fig = show_scene(
        blend,
        norm=norm,
        show_model=True,
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        linear=False,
        figsize=(12, 4),
        pyplot=False,
    )
    pictures.append(out / f"blend_{parent_id}_scene.png")
    fig.savefig(pictures[-1], dpi=100)
    for use_flux in (False, True):
        fig = show_sources(
            blend,
            norm=norm,
            show_model=True,
            show_rendered=True,
            show_observed=True,
            show_spectrum=True,
            use_flux=use_flux,
            pyplot=False,
        )
        pictures.append(out / f"blend_{parent_id}_sources{'_flux' if use_flux else ''}.png")
        fig.savefig(pictures[-1], dpi=80)
    summary.pictures = pictures
    summary.shown_blend = parent_id
    summary.shown_children = int(n_child[pick[0]])
    summary.timings["pictures"] = time.perf_counter() - t0

    if report:
        t0 = time.perf_counter()
        say("writing the patch report ...")
        summary.report = write_patch_report(
            repo, DEMO_TRACT, DEMO_PATCH, out / "report", workers=workers, progress=progress
        )
        summary.timings["report"] = time.perf_counter() - t0
    summary.total_seconds = time.perf_counter() - start
    say(str(summary))
    return summary
