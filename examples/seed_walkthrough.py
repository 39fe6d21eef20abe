"""Every step of "Working with scarlet-lite models", with vermilion, on a data repository.

    python examples/seed_walkthrough.py REPO --tract T --patch P --out DIR

The steps follow the seed document in its order and with its calls (the LSST names
map to vermilion's: ``lsst.daf.butler.Butler`` is the same package,
``mes.io.multibandDataToScarlet`` is `vermilion.io.multibandDataToScarlet`,
``lsst.afw.image.MultibandExposure`` is `vermilion.repo.MultibandExposure`,
``scarlet.display`` / ``scarlet.lite.display`` are `vermilion.display`, and the
``scarlet.lite`` engine is `vermilion.core`):

1. load the catalog and the model data of the patch through the butler;
2. pick the first parent with 5 children (else the parent with the most, said so);
3. rebuild its blend from the observed PSFs only, and draw its model;
4. rebuild it from a cutout of its box in every band with the parent footprint;
5. re-apportion the flux (``weight_sources``);
6. show the scene, the sources, and the sources' re-apportioned flux;
7. add a source (at ``--position Y X``, absolute pixels, or where the residual is
   largest), parameterize every source as the pipeline does, refit, re-apportion
   and show the scene again (optionally save the refit into ``--save-run``).

Each picture is written into ``--out`` (PNG); the script prints what it does.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np


def _say(text: str) -> None:
    print(text, flush=True)


def pick_parent(catalog, n_children: int = 5):
    """The first parent with ``n_children`` children, else the one with the most."""
    parents = catalog[(np.asarray(catalog["parent"]) == 0)]
    with_n = parents[parents["deblend_nChild"] == n_children]
    if len(with_n):
        return with_n[0], f"the first parent with exactly {n_children} children"
    n_child = np.asarray(parents["deblend_nChild"])
    if len(parents) == 0 or n_child.max() == 0:
        raise SystemExit("the catalog has no deblended parent")
    best = int(np.argmax(n_child))
    return (
        parents[best],
        f"no parent has {n_children} children: using the parent with the most "
        f"({int(n_child[best])})",
    )


def largest_residual(blend, footprint) -> tuple[int, int]:
    """Absolute ``(y, x)`` of the largest chi^2 residual inside the footprint, off the peaks."""
    obs = blend.observation
    rendered = blend.get_model(convolve=True).data
    chi2 = np.sum(obs.weights.data * (obs.images.data - rendered) ** 2, axis=0)
    inside = footprint.spans.as_mask(obs.bbox)
    chi2 = np.where(inside, chi2, 0)
    oy, ox = obs.bbox.origin
    for src in blend.sources:  # not on top of an existing peak
        if src.peak is not None:
            py, px = src.peak[0] - oy, src.peak[1] - ox
            chi2[max(py - 2, 0) : py + 3, max(px - 2, 0) : px + 3] = 0
    y, x = np.unravel_index(int(np.argmax(chi2)), chi2.shape)
    return int(y) + oy, int(x) + ox


def run(args: argparse.Namespace) -> dict:
    import matplotlib

    matplotlib.use("Agg")  # files only
    from lsst.daf.butler import Butler
    from matplotlib.figure import Figure

    from vermilion.core import (
        Blend,
        Box,
        Chi2InitParameters,
        init_adaprox_component,
        init_main_source,
        parameterize_sources,
        weight_sources,
    )
    from vermilion.display import (
        AsinhMapping,
        channels_to_rgb,
        default_norm,
        img_to_rgb,
        save_figure,
        show_scene,
        show_sources,
    )
    from vermilion.io import multibandDataToScarlet
    from vermilion.pipeline import DEFAULT_DEBLEND_RUN
    from vermilion.pipeline.restart import restart_config, save_blend
    from vermilion.repo import DEFAULT_COADD_RUN, MultibandExposure, default_skymap

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tract, patch = args.tract, args.patch
    collections = args.collections or [DEFAULT_DEBLEND_RUN, DEFAULT_COADD_RUN]
    skymap = args.skymap or default_skymap(Butler(args.repo))
    pictures: dict[str, Path] = {}
    t0 = time.perf_counter()

    # --- Loading: the butler, the catalog and the models of the patch
    butler = Butler(args.repo, skymap=skymap, collections=collections)
    catalog = butler.get("deepCoadd_deblendedCatalog", tract=tract, patch=patch)
    modelData = butler.get("deepCoadd_scarletModelData", tract=tract, patch=patch)
    _say(
        f"loaded {len(catalog)} records and the models of {len(modelData.blends)} blends "
        f"(bands {''.join(modelData.bands)}) of tract {tract} patch {patch}"
    )

    # --- Reconstructing a blend from the observed PSFs only
    parent, why = pick_parent(catalog, args.n_children)
    _say(f"parent {parent.getId()}: {why}")
    observedPsfs = [
        butler.get("deepCoadd_calexp.psf", tract=tract, patch=patch, band=band)
        for band in modelData.bands
    ]
    blend = multibandDataToScarlet(
        modelData=modelData, blendId=parent.getId(), observedPsfs=observedPsfs
    )
    _say(f"rebuilt from the PSFs: {blend} on {type(blend.observation).__name__}")

    n_bands = len(modelData.bands)
    if n_bands == 6:  # as the seed: hide the first (bluest) band
        channelMap = np.zeros((3, 6))
        channelMap[:, 1:] = channels_to_rgb(5)
        first = 1
    else:
        channelMap = channels_to_rgb(n_bands)
        first = 0
    if args.auto_norm:  # scaled to this blend's pixels
        norm = default_norm(blend, channelMap)
    else:  # the seed's mapping
        norm = AsinhMapping(minimum=0, stretch=0.1, Q=10)
    model = blend.get_model(convolve=True)[first:]
    mask = ~parent.getFootprint().spans.asArray()
    rgb = img_to_rgb(model, channel_map=channelMap[:, first:], norm=norm, mask=mask)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.imshow(rgb, origin="lower")
    ax.axis("off")
    pictures["reconstructed_blend"] = save_figure(fig, out / "reconstructed_blend.png")

    # --- Reconstructing it on a cutout of its box in every band
    blendData = modelData.blends[parent.getId()]
    bbox = Box(blendData.shape, blendData.origin)
    mExposure = MultibandExposure.fromButler(
        butler,
        modelData.bands,
        "deepCoadd_calexp",
        parameters={"bbox": bbox},
        tract=tract,
        patch=patch,
    )
    blend = multibandDataToScarlet(
        modelData=modelData,
        blendId=parent.getId(),
        mExposure=mExposure,
        footprint=parent.getFootprint(),
    )
    weight_sources(blend)
    logl_stored = blend.log_likelihood
    _say(f"rebuilt on the {bbox} cutout: logL of the stored models {logl_stored:.1f}")

    # --- Displaying the blend and its sources
    # the seed's scene, drawn before and after the refit
    draw_scene = partial(
        show_scene,
        norm=norm,
        channel_map=channelMap,
        show_model=True,
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        linear=False,
        figsize=(10, 10),
        pyplot=False,
    )
    fig = draw_scene(blend)
    pictures["scene"] = save_figure(fig, out / "scene.png")
    for name, use_flux in (("sources", False), ("sources_flux", True)):
        fig = show_sources(
            blend,
            sources=blend.sources[:4],
            channel_map=channelMap,
            norm=norm,
            show_model=True,
            show_rendered=True,
            show_observed=True,
            show_spectrum=False,
            use_flux=use_flux,
            pyplot=False,
        )
        pictures[name] = save_figure(fig, out / f"{name}.png")

    # --- Updating the blend: a new source and a warm restart
    if args.position is not None:
        y, x = args.position
        where = "given"
    else:
        y, x = largest_residual(blend, parent.getFootprint())
        where = "the largest residual in the footprint"
    _say(f"adding a source at (y, x) = ({y}, {x}): {where}")
    init = Chi2InitParameters(blend.observation, None)
    source = init_main_source((y, x), init)
    blend.sources.append(source)
    config = restart_config(modelData)  # the configuration the pipeline ran with
    parameterization = partial(
        init_adaprox_component,
        bg_thresh=config.backgroundThresh,
        max_prox_iter=config.maxProxIter,
    )
    sources = parameterize_sources(blend.sources, blend.observation, parameterization)
    blend = Blend(sources, blend.observation)
    blend.fit(args.max_iter, e_rel=1e-4, min_iter=10)
    weight_sources(blend)
    logl_refit = blend.log_likelihood
    _say(
        f"refitted {len(blend.sources)} sources in {blend.it} iterations: "
        f"logL {logl_stored:.1f} -> {logl_refit:.1f}"
    )
    fig = draw_scene(blend)
    pictures["scene_refit"] = save_figure(fig, out / "scene_refit.png")
    saved = None
    if args.save_run:
        saved = save_blend(
            args.repo,
            blend,
            parent.getId(),
            tract,
            patch,
            args.save_run,
            base_model_data=modelData,
            skymap=skymap,
            catalog=catalog,
        )
        _say(f"saved the refit into run {saved.run!r}")
    for name, path in pictures.items():
        _say(f"  {name}: {path}")
    _say(f"done in {time.perf_counter() - t0:.1f} s")
    return {
        "parent_id": parent.getId(),
        "why": why,
        "position": (y, x),
        "logL_stored": logl_stored,
        "logL_refit": logl_refit,
        "pictures": pictures,
        "saved": saved,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo", help="data repository (deblended by vermilion)")
    ap.add_argument("--tract", type=int, required=True)
    ap.add_argument("--patch", type=int, required=True)
    ap.add_argument("--out", required=True, help="folder for the pictures")
    ap.add_argument("--skymap", default=None, help="sky map (default: the repository's)")
    ap.add_argument(
        "--collections",
        nargs="+",
        default=None,
        help="collections (default: the pipeline's deblend run and the coadd run)",
    )
    ap.add_argument("--n-children", type=int, default=5, help="children of the parent to pick")
    ap.add_argument(
        "--position",
        type=int,
        nargs=2,
        metavar=("Y", "X"),
        default=None,
        help="absolute pixel of the source to add (default: the largest residual)",
    )
    ap.add_argument("--max-iter", type=int, default=100, help="iterations of the refit")
    ap.add_argument(
        "--auto-norm",
        action="store_true",
        help="scale the colours to the blend (default: the seed's AsinhMapping(0, 0.1, Q=10))",
    )
    ap.add_argument("--save-run", default=None, help="save the refitted blend into this run")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
