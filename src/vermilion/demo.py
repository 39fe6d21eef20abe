"""The main job on the embedded default (``vermilion demo``), and the patch report.

`run_demo` simulates an LSST-like patch with known truth, makes a local
repository on the Rubin butler, ingests the patch, detects and deblends it on all
cores, rebuilds one blend exactly as a user would (the Rubin "Working with
scarlet-lite Models" steps), writes its pictures and the patch report, and prints
a summary with the accuracy against the simulation's truth.

Each step is a function of the piece it belongs to (`vermilion.sim.simulate_patch`,
`vermilion.pipeline.ingest_simulated_patch`, `vermilion.pipeline.deblend_patches`,
`vermilion.sim.metrics.accuracy_against_truth`, `vermilion.pipeline.load_blend`,
`vermilion.display.save_blend_pictures`, `vermilion.pipeline.patch_blends` and
`vermilion.display.write_report`); this module chains them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .sim.metrics import accuracy_against_truth

__all__ = [
    "DemoSummary",
    "accuracy_against_truth",
    "run_demo",
    "shown_blend",
    "write_patch_report",
]

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

    def record_deblend(self, catalog, result, truth, bands) -> Any:
        """Count the blends, children and failures of the deblended ``catalog``, take the
        timing of ``result`` (a `DeblendSummary`) and measure the accuracy against ``truth``.

        Returns the parent rows of the catalog.
        """
        parents = catalog[np.asarray(catalog["parent"]) == 0]
        self.blends = int(np.sum(np.asarray(parents["deblend_nChild"]) > 0))
        self.sources = int(np.sum(np.asarray(catalog["parent"]) != 0))
        self.failures = int(np.sum(np.asarray(parents["deblend_failed"])))
        self.deblend_status = result.results[0].status
        self.deblend_seconds = result.results[0].deblend_seconds or result.seconds
        self.accuracy = accuracy_against_truth(catalog, truth, bands)
        return parents

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
    pipeline fitted it, `vermilion.pipeline.patch_blends`) and handed to
    `vermilion.display.write_report`.

    Returns the path of ``index.html``.
    """
    from vermilion.display import write_report
    from vermilion.pipeline import patch_blends

    blends = patch_blends(repo, tract, patch, collections, max_blends)
    title = f"tract {tract}, patch {patch}"
    return Path(write_report(blends, out_dir, workers=workers, progress=progress, title=title))


def shown_blend(parents) -> tuple[int, int]:
    """The blend the demo shows: the first parent with 5 children, else the largest.

    Returns ``(parent id, number of children)``.
    """
    n_child = np.asarray(parents["deblend_nChild"])
    pick = np.flatnonzero(n_child == 5)
    k = int(pick[0]) if pick.size else int(np.argmax(n_child))
    return int(parents["id"][k]), int(n_child[k])


@contextmanager
def _timed(summary: DemoSummary, step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    summary.timings[step] = time.perf_counter() - t0


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
    from vermilion.core import weight_sources
    from vermilion.display import save_blend_pictures
    from vermilion.pipeline import (
        DeblendConfig,
        deblend_patches,
        ingest_simulated_patch,
        load_blend,
    )
    from vermilion.repo import open_repo
    from vermilion.repo.butler import CATALOG_DATASET, default_collections
    from vermilion.sim import simulate_patch

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    repo = out / "repo"
    summary = DemoSummary(out=out, repo=repo)
    say = print if verbose else (lambda *a, **k: None)
    with _timed(summary, "simulate"):
        say(f"simulating a {size} x {size} px {bands} patch (seed {seed}) ...")
        sim = simulate_patch(
            (size, size), bands=bands, density=density, seed=seed, progress=progress
        )
    summary.n_truth = len(sim.truth)
    with _timed(summary, "ingest"):
        ingest_simulated_patch(repo, sim, DEMO_TRACT, DEMO_PATCH, skymap=DEMO_SKYMAP, create=True)
    with _timed(summary, "deblend"):
        say("detecting and deblending on all cores ...")
        run = {"workers": workers, "scheduler": "synchronous", "progress": progress}
        result = deblend_patches(repo, DEMO_TRACT, [DEMO_PATCH], config=DeblendConfig(), **run)
    if result.failed:
        raise RuntimeError(f"deblending failed: {result.results[0].error}")

    butler = open_repo(repo, collections=default_collections())
    catalog = butler.get(CATALOG_DATASET, tract=DEMO_TRACT, patch=DEMO_PATCH)
    parents = summary.record_deblend(catalog, result, sim.truth, sim.bands)

    # The Rubin workflow on one blend.
    with _timed(summary, "pictures"):
        summary.shown_blend, summary.shown_children = shown_blend(parents)
        blend, _parent = load_blend(repo, DEMO_TRACT, DEMO_PATCH, summary.shown_blend)
        weight_sources(blend)
        summary.pictures = save_blend_pictures(blend, out, f"blend_{summary.shown_blend}")
    if report:
        with _timed(summary, "report"):
            say("writing the patch report ...")
            summary.report = write_patch_report(
                repo, DEMO_TRACT, DEMO_PATCH, out / "report", workers=workers, progress=progress
            )
    summary.total_seconds = time.perf_counter() - start
    say(str(summary))
    return summary
