"""Box algebra and Image placement by overlap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vermilion.core import Box, Image, overlapped_slices

boxes = st.builds(
    lambda h, w, y0, x0: Box((h, w), (y0, x0)),
    st.integers(0, 12),
    st.integers(0, 12),
    st.integers(-10, 10),
    st.integers(-10, 10),
)


def coords(box: Box) -> np.ndarray:
    """Array on ``box`` whose pixels hold their own absolute (y, x) as y * 1000 + x."""
    y, x = np.indices(box.shape)
    return (y + box.origin[0]) * 1000 + (x + box.origin[1])


def pixel_set(box: Box) -> set[tuple[int, int]]:
    return {
        (y, x) for y in range(box.origin[0], box.stop[0]) for x in range(box.origin[1], box.stop[1])
    }


class TestBox:
    def test_properties(self):
        box = Box((3, 5), (10, -2))
        assert box.stop == (13, 3)
        assert box.area == 15
        assert box.center == (11.0, 0.0)
        assert box.slices == (slice(10, 13), slice(-2, 3))
        assert box.xy0 == (-2, 10) and box.extent == (5, 3)
        assert box.bounds == ((10, 13), (-2, 3))
        assert (12, 2) in box and (13, 2) not in box and (12, -3) not in box

    def test_intersection_and_union(self):
        a = Box((10, 8), (0, 0))
        b = Box((5, 20), (6, 3))
        assert a & b == Box((4, 5), (6, 3))
        assert a | b == Box((11, 23), (0, 0))
        disjoint = Box((2, 2), (50, 50))
        assert (a & disjoint).is_empty and (a & disjoint).area == 0
        assert not a.overlaps(disjoint) and a.overlaps(b)
        # The empty box is the identity of the union.
        assert a | Box((0, 0), (99, 99)) == a

    def test_grow_and_shift(self):
        box = Box((4, 6), (2, 3))
        assert box.grow(2) == Box((8, 10), (0, 1))
        assert box.grow((1, 0)) == Box((6, 6), (1, 3))
        assert box.grow(-2) == Box((0, 2), (4, 5))
        assert box.shifted_by((5, -3)) == Box((4, 6), (7, 0))
        assert box + (1, 1) == box.shifted_by((1, 1))  # noqa: RUF005
        assert box - (1, 1) == box.shifted_by((-1, -1))

    def test_from_bounds_and_data(self):
        assert Box.from_bounds((2, 5), (-1, 4)) == Box((3, 5), (2, -1))
        data = np.zeros((9, 7))
        data[2, 3] = data[5, 1] = 1
        assert Box.from_data(data) == Box((4, 3), (2, 1))
        assert Box.from_data(np.zeros((3, 3))).is_empty

    def test_slices_in(self):
        outer = Box((20, 30), (100, 200))
        inner = Box((4, 5), (103, 210))
        big = coords(outer)
        np.testing.assert_array_equal(big[inner.slices_in(outer)], coords(inner))

    def test_dimension_mismatch(self):
        with pytest.raises(ValueError, match="dimension"):
            Box((2, 2)) & Box((2, 2, 2))
        with pytest.raises(ValueError):
            Box((-1, 2))

    def test_band_concatenation(self):
        box = Box((5,)) @ Box((3, 4), (1, 2))
        assert box.shape == (5, 3, 4) and box.origin == (0, 1, 2)
        assert box[-2:] == Box((3, 4), (1, 2))

    @settings(max_examples=200, deadline=None)
    @given(boxes, boxes)
    def test_algebra_matches_pixel_sets(self, a, b):
        assert pixel_set(a & b) == pixel_set(a) & pixel_set(b)
        union = a | b
        assert pixel_set(a) | pixel_set(b) <= pixel_set(union)
        # The union is the smallest box holding both.
        if not a.is_empty and not b.is_empty:
            assert union.origin == tuple(map(min, a.origin, b.origin))
            assert union.stop == tuple(map(max, a.stop, b.stop))
        for r in (0, 1, 3):
            grown = a.grow(r)
            assert grown.shape == tuple(s + 2 * r for s in a.shape)
            assert pixel_set(a) <= pixel_set(grown)

    @settings(max_examples=200, deadline=None)
    @given(boxes, boxes)
    def test_overlapped_slices_select_the_same_pixels(self, a, b):
        sa, sb = overlapped_slices(a, b)
        assert a.overlapped_slices(b) == (sa, sb)
        np.testing.assert_array_equal(coords(a)[sa], coords(b)[sb])
        assert coords(a)[sa].size == (a & b).area
        np.testing.assert_array_equal(coords(a)[sa], coords(a & b))


class TestImage:
    def make(self, box: Box, bands=("g", "r", "i"), scale=1.0) -> Image:
        data = np.stack([coords(box) * scale + 1e6 * b for b in range(len(bands))])
        return Image(data.astype(np.float64), bands=bands, yx0=box.origin)

    def test_attributes(self):
        img = self.make(Box((4, 5), (2, 3)))
        assert img.bbox == Box((4, 5), (2, 3))
        assert img.n_bands == 3 and img.shape == (3, 4, 5) and img.yx0 == (2, 3)
        with pytest.raises(ValueError):
            Image(np.zeros((3, 4, 5)), bands=("g", "r"))
        with pytest.raises(ValueError):
            Image(np.zeros(5))

    def test_project(self):
        img = self.make(Box((6, 7), (10, 20)))
        target = Box((5, 5), (13, 24))
        out = img.project(target)
        assert out.bbox == target and out.bands == img.bands
        overlap = img.bbox & target
        s_out, s_img = overlapped_slices(target, img.bbox)
        np.testing.assert_array_equal(out.data[:, *s_out], img.data[:, *s_img])
        mask = np.zeros(target.shape, dtype=bool)
        mask[s_out] = True
        assert mask.sum() == overlap.area == 3 * 3
        assert np.all(out.data[:, ~mask] == 0)
        # Projecting back restores the overlap and zeros the rest.
        back = out.project(img.bbox)
        np.testing.assert_array_equal(back.data[:, *s_img], img.data[:, *s_img])
        assert back.data.sum() == img.data[:, *s_img].sum()

    def test_insert_and_add(self):
        base = Image(np.ones((2, 5, 5)), bands=("g", "r"), yx0=(0, 0))
        patch = Image(np.full((2, 3, 3), 4.0), bands=("g", "r"), yx0=(3, 3))
        inserted = base.copy().insert(patch)
        assert inserted.data[:, 3:, 3:].tolist() == np.full((2, 2, 2), 4.0).tolist()
        assert inserted.data.sum() == 2 * (21 + 4 * 4)
        added = base.copy().add(patch)
        assert np.all(added.data[:, 3:, 3:] == 5) and added.data.sum() == 2 * (21 + 4 * 5)
        # a + b lives on the union of both boxes.
        total = base + patch
        assert total.bbox == Box((6, 6), (0, 0))
        assert total.data.sum() == base.data.sum() + patch.data.sum()
        assert total.data[0, 3, 3] == 5 and total.data[0, 5, 5] == 4 and total.data[0, 0, 5] == 0

    def test_2d_into_3d_broadcasts(self):
        base = Image(np.zeros((3, 4, 4)), bands=("g", "r", "i"))
        plane = Image(np.arange(4.0).reshape(2, 2), yx0=(1, 1))
        base.add(plane)
        for b in range(3):
            np.testing.assert_array_equal(base.data[b, 1:3, 1:3], plane.data)

    def test_band_selection_by_name(self):
        img = self.make(Box((3, 4), (1, 2)))
        r = img["r"]
        assert r.bands == () and r.yx0 == (1, 2)
        np.testing.assert_array_equal(r.data, img.data[1])
        sub = img[["i", "g"]]
        assert sub.bands == ("i", "g") and sub.yx0 == img.yx0
        np.testing.assert_array_equal(sub.data, img.data[[2, 0]])
        with pytest.raises(KeyError, match="'u'"):
            img["u"]

    def test_copy_with(self):
        img = self.make(Box((3, 4), (1, 2)))
        same = img.copy_with()
        np.testing.assert_array_equal(same.data, img.data)
        same.data[0, 0, 0] = -1
        assert img.data[0, 0, 0] != -1  # the data was copied
        moved = img.copy_with(yx0=(7, 8))
        assert moved.bbox == Box((3, 4), (7, 8)) and moved.bands == img.bands
        new = np.zeros_like(img.data)
        replaced = img.copy_with(data=new, bands=("a", "b", "c"))
        assert replaced.data is new and replaced.bands == ("a", "b", "c") and replaced.yx0 == (1, 2)

    def test_multiply_on_overlap(self):
        a = Image(np.full((1, 4, 4), 2.0), bands=("g",), yx0=(0, 0))
        b = Image(np.full((1, 4, 4), 3.0), bands=("g",), yx0=(2, 1))
        prod = a * b
        assert prod.bbox == Box((2, 3), (2, 1))
        assert np.all(prod.data == 6)
        assert np.all((a * 0.5).data == 1)
