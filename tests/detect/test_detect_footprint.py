"""SpanSet, Footprint and HeavyFootprint behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from vermilion.core.bbox import Box
from vermilion.detect.footprint import Footprint, HeavyFootprint, SpanSet, disk, make_peaks

masks = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@given(masks, st.integers(-50, 50), st.integers(-50, 50))
def test_mask_round_trip(mask, y0, x0):
    spans = SpanSet.from_mask(mask, (y0, x0))
    assert spans.area == mask.sum()
    box = Box(mask.shape, (y0, x0))
    np.testing.assert_array_equal(spans.as_mask(box), mask)
    if mask.any():
        local = Box.from_data(mask)
        assert spans.bbox == local.shifted_by((y0, x0))
        np.testing.assert_array_equal(spans.asArray(), mask[local.slices])
    ys, xs = spans.indices()
    assert len(ys) == spans.area
    assert mask[ys - y0, xs - x0].all()
    assert spans.y.dtype == np.int32


def test_x1_is_inclusive():
    one = SpanSet([5], [3], [3])
    assert one.area == 1
    assert one.bbox == Box((1, 1), (5, 3))
    assert one.as_array().shape == (1, 1)
    assert one.contains((5, 3)) and not one.contains((5, 4))
    assert SpanSet([0], [0], [9]).area == 10
    with pytest.raises(ValueError, match="x1 >= x0"):
        SpanSet([0], [3], [2])


def test_normalize_merges_overlapping_and_touching_spans():
    s = SpanSet([1, 1, 1, 0, 1], [0, 3, 2, 5, 10], [1, 5, 9, 5, 10])
    np.testing.assert_array_equal(s.y, [0, 1])
    np.testing.assert_array_equal(s.x0, [5, 0])
    np.testing.assert_array_equal(s.x1, [5, 10])
    assert s.area == 1 + 11


@settings(max_examples=60)
@given(masks, masks, st.integers(-6, 6), st.integers(-6, 6))
def test_union_and_intersection_match_boolean_ops(m1, m2, dy, dx):
    a = SpanSet.from_mask(m1, (0, 0))
    b = SpanSet.from_mask(m2, (dy, dx))
    box = Box((30, 30), (-10, -10))
    ma, mb = a.as_mask(box), b.as_mask(box)
    np.testing.assert_array_equal(a.union(b).as_mask(box), ma | mb)
    np.testing.assert_array_equal(a.intersection(b).as_mask(box), ma & mb)
    np.testing.assert_array_equal((a | b).as_mask(box), ma | mb)
    assert a.union(b) == SpanSet.from_mask(ma | mb, box.origin)


@given(masks, st.integers(0, 4))
def test_dilation_matches_scipy(mask, r):
    spans = SpanSet.from_mask(mask, (3, -2))
    box = Box(mask.shape, (3, -2)).grow(r + 1)
    ref = spans.as_mask(box)
    if r:
        ref = ndimage.binary_dilation(ref, structure=disk(r))
    np.testing.assert_array_equal(spans.dilated(r).as_mask(box), ref)


def test_one_pixel_footprint():
    fp = Footprint(SpanSet([4], [7], [7]), make_peaks([4], [7], value=[3.0], id=[1]))
    assert fp.area == 1
    assert fp.getBBox() == Box((1, 1), (4, 7))
    assert fp.spans.asArray().tolist() == [[True]]
    assert fp.centroid == (4.0, 7.0)
    grown = fp.grow(1)
    assert grown.area == 5  # a radius-1 disk is a plus sign
    assert grown.n_peaks == 1
    assert fp.intersection(grown) == fp


def test_footprint_peaks_sorted_and_filtered():
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    peaks = make_peaks([3, 6, 5], [3, 6, 2], value=[1.0, 5.0, 2.0], id=[11, 12, 13])
    fp = Footprint(mask, peaks, yx0=(100, 200))
    np.testing.assert_array_equal(fp.peaks["id"], [12, 13, 11])
    assert fp.getPeaks() is fp.peaks
    assert fp.area == 36
    assert fp.bbox == Box((6, 6), (102, 202))
    assert fp.centroid == (104.5, 204.5)
    cut = fp.clipped_to(Box((3, 10), (100, 200)))
    assert cut.area == 6 * 1  # rows 102..102
    assert cut.n_peaks == 0
    other = Footprint(SpanSet([5], [6], [8]), make_peaks([5], [6], value=[9.0], id=[12]))
    both = fp.union(other)
    assert both.area == 36 + 3 - 0  # (5, 6..8) lies outside fp's pixels (they start at 102)
    np.testing.assert_array_equal(np.sort(both.peaks["id"]), [11, 12, 13])
    shifted = fp.shifted_by((1, -1))
    assert shifted.bbox == fp.bbox.shifted_by((1, -1))
    np.testing.assert_array_equal(shifted.peaks["x"], fp.peaks["x"] - 1)


def test_peaks_from_pairs_and_structured():
    fp = Footprint(Box((3, 3), (0, 0)), [(1, 1), (0, 2)])
    assert fp.n_peaks == 2 and np.isnan(fp.peaks["value"]).all()
    fp.add_peak(2, 2, value=4.0, id=9)
    assert fp.peaks[0]["id"] == 9


def test_heavy_footprint_round_trip():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(3, 20, 30)).astype(np.float32)
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:20] = True
    mask[12, 3:5] = True
    fp = Footprint(mask, [(6, 12)], yx0=(50, 60))
    heavy = HeavyFootprint.from_image(fp, images, yx0=(50, 60), bands="gri")
    assert heavy.values.shape == (3, fp.area)
    assert heavy.bands == ("g", "r", "i")
    arr = heavy.as_image_array()
    box = fp.bbox
    local = (
        slice(box.origin[0] - 50, box.origin[0] - 50 + box.shape[0]),
        slice(box.origin[1] - 60, box.origin[1] - 60 + box.shape[1]),
    )
    expect = np.where(fp.as_array(), images[:, local[0], local[1]], 0)
    np.testing.assert_array_equal(arr, expect)
    out = np.zeros_like(images)
    heavy.insert(out, (50, 60))
    np.testing.assert_array_equal(out, np.where(mask, images, 0))
    assert heavy == heavy.copy()
    assert heavy != HeavyFootprint(fp.spans, fp.peaks, heavy.values * 2, "gri")
    with pytest.raises(ValueError, match="n_bands"):
        HeavyFootprint(fp.spans, None, np.zeros((3, fp.area + 1)))


def test_heavy_from_pixels_outside_image_are_zero():
    fp = Footprint(SpanSet([0, 1], [-2, 0], [1, 1]))
    heavy = HeavyFootprint.from_image(fp, np.ones((1, 4, 4)))
    np.testing.assert_array_equal(heavy.values, [[0, 0, 1, 1, 1, 1]])
