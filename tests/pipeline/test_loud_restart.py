"""`add_source` refuses a duplicate of an existing peak (issue 18); the guide's recipe too."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vermilion.core import Blend, Observation
from vermilion.pipeline.restart import add_source


def _blend() -> Blend:
    """Two Gaussian sources on a 3-band, 40 x 40 px observation, initialized as the pipeline."""
    from vermilion.core import Chi2InitParameters, init_main_source

    y, x = np.indices((40, 40))
    psf = np.exp(-((np.indices((11, 11)) - 5) ** 2).sum(0) / (2 * 1.5**2))
    psfs = np.stack([psf / psf.sum()] * 3).astype(np.float32)
    images = np.zeros((3, 40, 40), np.float32)
    for cy, cx, flux in ((12, 14, 300.0), (26, 25, 200.0)):
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 2.0**2))
        images += flux * blob / blob.sum() * np.array([1.0, 1.5, 2.0])[:, None, None]
    images += np.random.default_rng(1).normal(0, 0.05, images.shape).astype(np.float32)
    obs = Observation(images, np.full_like(images, 0.0025), psfs=psfs, bands=("g", "r", "i"))
    init = Chi2InitParameters(obs, None)
    sources = [init_main_source(peak, init) for peak in ((12, 14), (26, 25))]
    for i, s in enumerate(sources):
        s.metadata["id"] = 100 + i
    return Blend(sources, obs)


def test_add_source_refuses_a_peak_next_to_an_existing_one():
    blend = _blend()
    with pytest.raises(ValueError) as err:
        add_source(blend, (13, 14))
    assert str(err.value) == (
        "the new peak (y, x)=(13, 14) is 1.0 px from the peak (12, 14) of source 0 (id 100), "
        "closer than min_separation=2.0 px: it would duplicate that source (pass a smaller "
        "min_separation to add it anyway)"
    )
    assert len(blend.sources) == 2  # nothing added
    with pytest.raises(ValueError, match=re.escape("is 2.2 px from the peak (26, 25)")):
        add_source(blend, (28, 26), min_separation=3)
    add_source(blend, (13, 14), min_separation=0)  # when told
    assert len(blend.sources) == 3
    add_source(blend, (30, 8))  # far from both
    assert len(blend.sources) == 4 and blend.sources[-1].peak == (30, 8)


def test_the_guides_recipe_leaves_out_pixels_near_existing_peaks():
    """The largest chi^2 sits on an existing source (a brighter core than the model): the
    guide's lines pick a pixel at least 3 px from every peak."""
    blend = _blend()
    blend.observation._images[:, 12, 15] += 5.0  # a residual next to the peak at (12, 14)
    page = Path(__file__).resolve().parents[2] / "docs" / "guide" / "02-working-with-models.md"
    text = page.read_text()
    lines = [
        "chi2[~blend.far_from_peaks(min_separation=3)] = 0  # not on a source already there",
        "blend.check_new_peak((y, x), min_separation=3)  # raises naming the source it would "
        "duplicate",
    ]
    assert all(line in text for line in lines)
    observation = blend.observation
    residual = observation.images.data - blend.get_model(convolve=True).data
    chi2 = np.sum(observation.weights.data * residual**2, axis=0)
    worst = np.unravel_index(np.argmax(chi2), chi2.shape)
    assert np.hypot(worst[0] - 12, worst[1] - 14) < 2  # the naive pick: a duplicate
    chi2[~blend.far_from_peaks(min_separation=3)] = 0
    y, x = (int(v) for v in np.unravel_index(np.argmax(chi2), chi2.shape))
    blend.check_new_peak((y, x), min_separation=3)
    assert min(np.hypot(y - py, x - px) for py, px in ((12, 14), (26, 25))) >= 3
