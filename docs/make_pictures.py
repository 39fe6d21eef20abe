"""Regenerate the pictures in docs/ from the HSC COSMOS blend shipped in vermilion.data.

Run from the repository root: ``.venv/bin/python docs/make_pictures.py``.
Writes docs/hsc_scene.png (model, rendered, observed, residual) and
docs/hsc_sources.png (the first four sources), made exactly as a user would,
following the seed tutorial's display calls.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np

import vermilion.data
from vermilion.core import (
    Blend,
    Observation,
    init_adaprox_component,
    init_all_sources,
    parameterize_sources,
    weight_sources,
)
from vermilion.display import AsinhMapping, save_figure, show_scene, show_sources

DOCS = Path(__file__).resolve().parent


def main() -> None:
    data = np.load(vermilion.data.path("hsc_cosmos_35.npz"))
    bands = [str(b) for b in data["filters"]]
    observation = Observation(data["images"], data["variance"], psfs=data["psfs"], bands=bands)
    centers = [(int(c["y"]), int(c["x"])) for c in data["catalog"]]
    sources = init_all_sources(observation, centers)
    sources = parameterize_sources(sources, observation, init_adaprox_component)
    blend = Blend(sources, observation)
    it, log_l = blend.fit(100, e_rel=1e-4)
    weight_sources(blend)
    print(f"fit: {it} iterations, logL = {log_l:.1f}")

    norm = AsinhMapping(minimum=0, stretch=0.1, Q=10)
    fig = show_scene(
        blend,
        norm=norm,
        show_model=True,
        show_rendered=True,
        show_observed=True,
        show_residual=True,
        pyplot=False,
    )
    print("wrote", save_figure(fig, DOCS / "hsc_scene.png", dpi=80))
    fig = show_sources(
        blend,
        sources=blend.sources[:4],
        norm=norm,
        show_model=True,
        show_rendered=True,
        show_observed=True,
        show_spectrum=True,
        pyplot=False,
    )
    print("wrote", save_figure(fig, DOCS / "hsc_sources.png", dpi=60))


if __name__ == "__main__":
    main()
