"""Loud failures of the engine (issue 18): nonsense fit arguments, 2-D images, duplicate peaks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from core_helpers import known_sources, synthetic_psfs

from vermilion.core import Blend, NoDataObservation, Observation

BANDS = ("g", "r", "i")


def _blend() -> Blend:
    rng = np.random.default_rng(3)
    images = rng.normal(0, 1, (3, 40, 44)).astype(np.float32)
    obs = Observation(images, np.ones_like(images), psfs=synthetic_psfs(3), bands=BANDS)
    return Blend(known_sources(BANDS), obs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"e_rel": -1}, "e_rel must be a finite number >= 0 (a relative change of logL, "
         "e.g. 1e-4), got -1"),
        ({"e_rel": float("nan")}, "e_rel must be a finite number >= 0"),
        ({"e_rel": "1e-4"}, "e_rel must be a finite number >= 0"),
        ({"max_iter": -5}, "max_iter must be an integer >= 0, got -5"),
        ({"max_iter": 2.5}, "max_iter must be an integer >= 0, got 2.5"),
        ({"max_iter": True}, "max_iter must be an integer >= 0, got True"),
        ({"min_iter": -1}, "min_iter must be an integer >= 0, got -1"),
        ({"resize": 0}, "resize must be None or an integer >= 1 (iterations), got 0"),
        ({"keep_best": "yes"}, "keep_best must be True or False, got 'yes'"),
    ],
)  # fmt: skip
def test_fit_refuses_nonsense_arguments_and_changes_nothing(kwargs, message):
    blend = _blend()
    before = blend.get_model().data.copy()
    args = {"max_iter": 10, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        blend.fit(**args)
    assert blend.it == 0 and blend.loss == []
    np.testing.assert_array_equal(blend.get_model().data, before)


def test_a_2d_image_says_images_must_be_bands_h_w():
    image = np.zeros((20, 20), np.float32)
    with pytest.raises(ValueError) as err:
        Observation(image, np.ones_like(image), psfs=synthetic_psfs(1), bands=("r",))
    assert str(err.value) == (
        "images must be (bands, h, w), got a 2-D image of shape (20, 20): for one band give "
        "images[None] (and variance[None], psfs[None])"
    )
    # as the message says
    obs = Observation(image[None], np.ones((1, 20, 20)), psfs=synthetic_psfs(1), bands=("r",))
    assert obs.shape == (1, 20, 20)


def test_a_new_peak_next_to_an_existing_one_is_refused_naming_it():
    blend = _blend()
    blend.sources[1].metadata["id"] = 77
    peak = blend.sources[1].peak  # (21, 27)
    assert blend.nearest_peak((peak[0] + 1, peak[1])) == (1, 1.0)
    with pytest.raises(ValueError) as err:
        blend.check_new_peak((peak[0] + 1, peak[1]))
    assert str(err.value) == (
        f"the new peak (y, x)=({peak[0] + 1}, {peak[1]}) is 1.0 px from the peak {peak} of "
        "source 1 (id 77), closer than min_separation=2.0 px: it would duplicate that source "
        "(pass a smaller min_separation to add it anyway)"
    )
    blend.check_new_peak((peak[0] + 1, peak[1]), min_separation=1.0)  # allowed when asked
    blend.check_new_peak((peak[0] + 3, peak[1]))  # far enough
    with pytest.raises(ValueError, match="min_separation must be >= 0"):
        blend.check_new_peak(peak, min_separation=-1)
    # the map of where a new peak may go: False within the distance of every peak
    far = blend.far_from_peaks(3)
    assert far.shape == blend.bbox.shape
    for source in blend.sources:
        y, x = source.peak
        assert not far[y, x] and not far[y + 2, x] and far[y + 3, x]
    assert far.mean() > 0.9


def test_the_blend_repr_shows_bands_and_logl():
    blend = _blend()
    text = repr(blend)
    assert text == (
        f"Blend(sources=3, bands=gri, bbox={blend.bbox}, it=0, logL={blend.log_likelihood:.1f})"
    )
    render_only = Blend(blend.sources, NoDataObservation(synthetic_psfs(3), None, BANDS,
                                                         blend.bbox))  # fmt: skip
    assert repr(render_only).endswith("it=0, logL=n/a (no data))")
