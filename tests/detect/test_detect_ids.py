"""64-bit source ids: bit layout, round trip, range checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vermilion.detect.ids import MAX_PATCH, MAX_SEQ, MAX_TRACT, make_source_id, unpack_source_id


def test_bit_layout():
    assert make_source_id(0, 0, 1) == 1
    assert make_source_id(0, 1, 1) == (1 << 31) | 1
    assert make_source_id(1, 0, 1) == (1 << 47) | 1
    top = make_source_id(MAX_TRACT, MAX_PATCH, MAX_SEQ)
    assert top == (1 << 63) - 1  # every bit but the sign bit
    assert np.int64(top) > 0


@given(
    st.integers(0, MAX_TRACT),
    st.integers(0, MAX_PATCH),
    st.integers(1, MAX_SEQ),
)
def test_round_trip(tract, patch, seq):
    sid = make_source_id(tract, patch, seq)
    assert isinstance(sid, int) and sid > 0
    assert unpack_source_id(sid) == (tract, patch, seq)


def test_arrays_round_trip_and_are_unique():
    tract, patch, seq = np.meshgrid([0, 7, MAX_TRACT], [0, 3, MAX_PATCH], [1, 2, MAX_SEQ])
    ids = make_source_id(tract.ravel(), patch.ravel(), seq.ravel())
    assert ids.dtype == np.int64
    assert len(np.unique(ids)) == ids.size
    t, p, s = unpack_source_id(ids)
    np.testing.assert_array_equal(t, tract.ravel())
    np.testing.assert_array_equal(p, patch.ravel())
    np.testing.assert_array_equal(s, seq.ravel())


@pytest.mark.parametrize(
    "args",
    [
        (-1, 0, 1),
        (MAX_TRACT + 1, 0, 1),
        (0, -1, 1),
        (0, MAX_PATCH + 1, 1),
        (0, 0, 0),
        (0, 0, MAX_SEQ + 1),
        (0.5, 0, 1),
        ("1", 0, 1),
    ],
)
def test_out_of_range_is_value_error(args):
    with pytest.raises(ValueError):
        make_source_id(*args)


def test_unpack_rejects_bad_ids():
    with pytest.raises(ValueError, match="negative"):
        unpack_source_id(-5)
    with pytest.raises(ValueError, match="sequence number 0"):
        unpack_source_id(1 << 31)
    with pytest.raises(ValueError, match="integers"):
        unpack_source_id(1.5)
