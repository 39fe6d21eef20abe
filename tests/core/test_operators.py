"""Proximal operators: the monotonicity projection, sparsity and connectivity."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import radial_morph
from hypothesis import given, settings
from hypothesis import strategies as st

from vermilion.core import Box, FactorizedComponent, prox_connected, prox_monotonic, prox_sparsity
from vermilion.core.operators import _NBR, MonotonicityTables, find_peak

_TABLES = MonotonicityTables(80)


def reference_levels(
    morph: np.ndarray, peak: tuple[int, int], slack: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the reference level of its 8-neighbours nearer the peak (float64).

    The weighted mean with the `MonotonicityTables` weights (cosine of the angle
    between the directions to the peak and to the neighbour, closer neighbours
    only), renormalised over the neighbours that lie inside the array, moved a
    fraction ``slack`` of the way to the brightest of them. Returns the levels and
    the summed weights (0 only at the peak).
    """
    h, w = morph.shape
    py, px = peak
    r = _TABLES.radius
    y, x = np.indices((h, w))
    wts = _TABLES.weights[y - py + r, x - px + r].astype(np.float64)  # (h, w, 8)
    padded = np.zeros((h + 2, w + 2))
    padded[1:-1, 1:-1] = morph
    inside = np.zeros((h + 2, w + 2), dtype=bool)
    inside[1:-1, 1:-1] = True
    level = np.zeros((h, w))
    total = np.zeros((h, w))
    brightest = np.full((h, w), -np.inf)
    for j, (ny, nx) in enumerate(_NBR):
        sl = (slice(1 + ny, 1 + ny + h), slice(1 + nx, 1 + nx + w))
        wj = np.where(inside[sl], wts[..., j], 0)
        level += wj * padded[sl]
        total += wj
        brightest = np.where(wj > 0, np.maximum(brightest, padded[sl]), brightest)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, level / total, np.inf)
        return np.where(total > 0, mean + slack * (brightest - mean), np.inf), total


def assert_monotonic(morph: np.ndarray, peak: tuple[int, int], slack: float = 0.0) -> None:
    if morph.size == 1:
        return
    level, total = reference_levels(morph, peak, slack)
    off_peak = np.ones(morph.shape, dtype=bool)
    off_peak[peak] = False
    # Every pixel but the peak has a closer neighbour inside the box.
    assert np.all(total[off_peak] > 0) and total[peak] == 0
    excess = morph.astype(np.float64) - level
    tol = 1e-6 * max(float(np.abs(morph).max()), 1e-30)
    assert excess[off_peak].max() <= tol, (
        f"pixel brighter than its inner neighbours by {excess.max()}"
    )


def test_tables_weights():
    t = MonotonicityTables(5)
    r = t.radius
    # Straight out along an axis only the neighbour towards the peak counts... (cos 1)
    # plus the two diagonal ones (cos 1/sqrt(2) each): all three closer.
    w = t.weights[r + 3, r]  # offset (3, 0): below the peak
    expected = np.zeros(8)
    expected[[0, 1, 2]] = [1 / np.sqrt(2), 1, 1 / np.sqrt(2)]
    np.testing.assert_allclose(w, expected / expected.sum(), rtol=1e-6)
    # Weights sum to 1 everywhere but the peak, and only closer neighbours count.
    sums = t.weights.sum(axis=-1)
    assert sums[r, r] == 0
    np.testing.assert_allclose(np.delete(sums.ravel(), r * (2 * r + 1) + r), 1, rtol=1e-6)
    # Offsets come sorted by distance, starting at the peak.
    d2 = t.order_dy.astype(int) ** 2 + t.order_dx.astype(int) ** 2
    assert d2[0] == 0 and np.all(np.diff(d2) >= 0) and d2.size == (2 * r + 1) ** 2


@pytest.mark.parametrize(
    ("shape", "peak"),
    [
        ((31, 31), (15, 15)),
        ((40, 25), (3, 20)),
        ((17, 60), (16, 0)),
        ((1, 30), (0, 12)),
        ((9, 9), (0, 0)),
    ],
)
def test_projection_satisfies_the_constraint(shape, peak):
    rng = np.random.default_rng(sum(shape) + peak[0])
    morph = (radial_morph(shape, peak, 4.0) + 0.3 * rng.random(shape)).astype(np.float32)
    before = morph.copy()
    out = prox_monotonic(morph, peak)
    assert out is morph  # float32 and contiguous: in place
    assert_monotonic(out, peak)
    assert np.all(out <= before)  # only lowers pixels
    assert out[peak] == before[peak]
    assert np.any(out < before)  # the noise made it non-monotonic


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 2**31),
)
def test_projection_random(h, w, fy, fx, seed):
    peak = (min(int(fy * h), h - 1), min(int(fx * w), w - 1))
    rng = np.random.default_rng(seed)
    morph = rng.normal(size=(h, w)).astype(np.float32)
    out = prox_monotonic(morph.copy(), peak)
    assert_monotonic(out, peak)
    assert np.all(out <= morph)
    # A projection: applying it again changes nothing.
    np.testing.assert_array_equal(prox_monotonic(out.copy(), peak), out)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30),
    st.integers(1, 30),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 2**31),
)
def test_projection_with_slack(h, w, fy, fx, slack, seed):
    peak = (min(int(fy * h), h - 1), min(int(fx * w), w - 1))
    rng = np.random.default_rng(seed)
    morph = rng.random((h, w)).astype(np.float32)
    out = prox_monotonic(morph.copy(), peak, slack)
    assert_monotonic(out, peak, slack)
    assert np.all(out <= morph)
    np.testing.assert_array_equal(prox_monotonic(out.copy(), peak, slack), out)
    # A looser constraint keeps more: pixel by pixel at least what slack 0 keeps, ...
    strict = prox_monotonic(morph.copy(), peak, 0.0)
    assert np.all(out >= strict - 1e-6)
    # ... and whatever the slack no pixel ends brighter than its brightest inner neighbour,
    # so the peak stays the only maximum.
    assert_monotonic(out, peak, 1.0)


def test_slack_keeps_an_off_axis_ridge_that_weighted_monotonicity_cuts():
    # A thin ridge at 30 degrees from the x axis: its pixels' brightest inner
    # neighbour is on the ridge, but the weighted mean mixes in the dark sides.
    h, w, peak = (21, 31, (10, 5))
    y, x = np.indices((h, w))
    ridge = np.exp(-(((y - 10) - 0.58 * (x - 5)) ** 2) / 0.5) * np.exp(-(x - 5) / 30.0)
    ridge = np.where(x >= 5, ridge, 0).astype(np.float32)
    ridge[peak] = 1
    along = [(10 + round(0.58 * k), 5 + k) for k in range(0, 20, 3)]
    strict = prox_monotonic(ridge.copy(), peak, 0.0)
    loose = prox_monotonic(ridge.copy(), peak, 1.0)
    far = along[-1]
    assert loose[far] > 2 * strict[far]
    assert np.sum(loose) > np.sum(strict)


def test_slack_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="slack"):
        prox_monotonic(np.ones((5, 5), dtype=np.float32), (2, 2), 1.5)
    with pytest.raises(ValueError, match="slack"):
        FactorizedComponent(("g",), np.ones(1), np.ones((3, 3)), Box((3, 3)), monotonic_slack=-0.1)


def test_idempotent_on_real_shapes():
    rng = np.random.default_rng(8)
    morph = (radial_morph((50, 44), (20, 25), 6.0, "exp") + 0.2 * rng.random((50, 44))).astype(
        np.float32
    )
    once = prox_monotonic(morph.copy(), (20, 25))
    twice = prox_monotonic(once.copy(), (20, 25))
    np.testing.assert_array_equal(once, twice)


@pytest.mark.parametrize("kind", ["gauss", "exp", "moffat"])
@pytest.mark.parametrize(
    ("shape", "peak"), [((41, 41), (20, 20)), ((30, 50), (4, 37)), ((25, 9), (24, 8))]
)
def test_monotonic_profiles_are_unchanged(kind, shape, peak):
    morph = radial_morph(shape, peak, 3.0, kind)
    out = prox_monotonic(morph.copy(), peak)
    np.testing.assert_array_equal(out, morph)


def test_flat_and_zero_images_are_unchanged():
    for value in (0.0, 1.0):
        morph = np.full((12, 15), value, dtype=np.float32)
        np.testing.assert_array_equal(prox_monotonic(morph.copy(), (4, 6)), morph)


def test_non_float32_input_is_converted_and_not_modified():
    morph = radial_morph((20, 20), (10, 10), 3.0).astype(np.float64)
    morph[2, 2] = 5.0  # a bright pixel far from the peak
    out = prox_monotonic(morph, (10, 10))
    assert out.dtype == np.float32 and morph[2, 2] == 5.0 and out[2, 2] < 1
    fortran = np.asfortranarray(morph.astype(np.float32))
    np.testing.assert_array_equal(prox_monotonic(fortran, (10, 10)), out)


def test_peak_outside_raises():
    with pytest.raises(ValueError, match="outside"):
        prox_monotonic(np.ones((5, 5), dtype=np.float32), (5, 2))
    with pytest.raises(ValueError, match="outside"):
        prox_monotonic(np.ones((5, 5), dtype=np.float32), (-1, 2))


def test_find_peak():
    morph = radial_morph((15, 15), (7, 7), 2.0)
    assert find_peak(morph, (6, 7), 1) == (7, 7)
    assert find_peak(morph, (5, 7), 1) == (6, 7)  # stays within the radius
    assert find_peak(morph, (5, 7), 0) == (5, 7)
    assert find_peak(morph, (7, 7), 1) == (7, 7)


def test_prox_sparsity_and_connected():
    morph = np.array([[0.5, -0.1, 0.05], [0.0, 1.0, 0.2], [0.0, 0.0, 0.0], [0.3, 0.3, 0.0]])
    sparse = prox_sparsity(morph.copy(), 0.1)
    np.testing.assert_array_equal(sparse, [[0.5, 0, 0], [0, 1, 0.2], [0, 0, 0], [0.3, 0.3, 0]])
    np.testing.assert_array_equal(prox_sparsity(morph.copy(), -1.0) >= 0, True)
    connected = prox_connected(sparse.copy(), (1, 1))
    np.testing.assert_array_equal(connected, [[0.5, 0, 0], [0, 1, 0.2], [0, 0, 0], [0, 0, 0]])
    # A peak on an empty pixel keeps nothing.
    assert not prox_connected(sparse.copy(), (2, 2)).any()


def test_component_prox_morph():
    """Monotonic, then thresholded at bg_thresh * min(rms / spectrum), then max 1."""
    rng = np.random.default_rng(4)
    morph = (2 * radial_morph((21, 21), (10, 10), 3.0) + 0.05 * rng.random((21, 21))).astype(
        np.float32
    )
    spectrum = np.array([10.0, 20.0, 40.0], dtype=np.float32)
    rms = np.array([1.0, 1.0, 1.0], dtype=np.float32)
    comp = FactorizedComponent(
        ("g", "r", "i"),
        spectrum,
        morph.copy(),
        Box((21, 21), (5, 5)),
        (15, 15),
        bg_rms=rms,
        bg_thresh=2.0,
    )
    out = comp.prox_morph(morph.copy())
    assert out.max() == 1 and out[10, 10] == 1
    # Monotonic projection first, then the threshold 2 * min(1 / spectrum) = 0.05
    # (which may leave isolated steps), then normalisation to a maximum of 1.
    expected = prox_monotonic(morph.copy(), (10, 10), comp.monotonic_slack)
    expected[expected < 0.05] = 0
    expected /= expected.max()
    np.testing.assert_array_equal(out, expected)
    assert 0 < (out > 0).sum() < out.size


def test_prox_thin_zeroes_exactly_the_thin_pixels():
    # the compiled pruning against the scipy.ndimage definition of `thin_pixels`
    from vermilion.core.operators import prox_monotonic, prox_thin, thin_pixels

    rng = np.random.default_rng(7)
    for k in range(400):
        h, w = (int(v) for v in rng.integers(3, 30, 2))
        keep = rng.uniform(size=(h, w)) < rng.uniform(0.3, 0.9)
        morph = (rng.uniform(size=(h, w)) * keep).astype(np.float32)
        peak = (int(rng.integers(h)), int(rng.integers(w)))
        morph[peak] = 2
        if k % 2:
            morph = prox_monotonic(morph, peak, 0.5)
        expected = thin_pixels(morph, peak)
        pruned = prox_thin(morph.copy(), peak)
        np.testing.assert_array_equal((morph > 0) & (pruned == 0), expected)
        np.testing.assert_array_equal(pruned[~expected], morph[~expected])
