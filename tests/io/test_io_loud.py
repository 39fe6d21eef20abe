"""Loud failures of the rebuild and the readers (issue 18): another blend's footprint, a
child's id, an unknown id (each message checked as the user reads it)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from vermilion.core import Box
from vermilion.detect import Footprint
from vermilion.io import ModelData, ModelDataError, multibandDataToScarlet


def _exposure(model: ModelData, ids: list[int]) -> SimpleNamespace:
    """A noisy exposure covering the boxes of ``ids``, with the models' PSFs."""
    box = model.blends[ids[0]].bbox
    for bid in ids[1:]:
        box = box | model.blends[bid].bbox
    n = len(model.bands)
    rng = np.random.default_rng(0)
    psf = model.blends[ids[0]].psf if model.blends[ids[0]].psf is not None else model.observed_psf
    return SimpleNamespace(
        images=rng.normal(0, 1, (n, *box.shape)).astype(np.float32),
        variance=np.ones((n, *box.shape), np.float32),
        mask=None,
        psfs=np.asarray(psf),
        bands=model.bands,
        bbox=box,
    )


def _disjoint_pair(model: ModelData) -> tuple[int, int]:
    ids = sorted(model.blends)
    for a in ids:
        for b in ids:
            if a != b and not model.blends[a].bbox.overlaps(model.blends[b].bbox):
                return a, b
    raise AssertionError("no two disjoint blends")


class _Record:
    """A catalog record as the Rubin code passes it (``getId``, ``getFootprint``)."""

    def __init__(self, rid: int, footprint: Footprint) -> None:
        self._id, self._fp = rid, footprint

    def getId(self) -> int:
        return self._id

    def getFootprint(self) -> Footprint:
        return self._fp


def _box_footprint(box: Box) -> Footprint:
    return Footprint(box)


def test_another_parents_footprint_is_refused_naming_both(small_model):
    a, b = _disjoint_pair(small_model)
    box_a, box_b = small_model.blends[a].bbox, small_model.blends[b].bbox
    mexp = _exposure(small_model, [a, b])
    record_b = _Record(b, _box_footprint(box_b))
    with pytest.raises(ModelDataError) as err:
        multibandDataToScarlet(small_model, a, mExposure=mexp, footprint=record_b)
    assert str(err.value) == (
        f"blend {a}, field 'footprint': the footprint of record {b} (box {box_b}) does not "
        f"overlap blend {a} (box {box_a}): every pixel would get zero weight; give this "
        "blend's own parent footprint"
    )
    assert err.value.blend_id == a
    # a bare footprint object, and an all-False mask on the blend box
    with pytest.raises(ModelDataError, match=re.escape("the footprint given (box")):
        multibandDataToScarlet(small_model, a, mExposure=mexp, footprint=record_b.getFootprint())
    with pytest.raises(ModelDataError, match="the footprint mask given has no pixel set"):
        multibandDataToScarlet(
            small_model, a, mExposure=mexp, footprint=np.zeros(box_a.shape, bool)
        )
    # the blend's own footprint works, and its pixels have weight
    blend = multibandDataToScarlet(
        small_model, a, mExposure=mexp, footprint=_Record(a, _box_footprint(box_a))
    )
    assert np.all(blend.observation.weights.data > 0)
    assert blend.log_likelihood < 0


def test_a_childs_id_names_its_parent(small_model):
    pid = sorted(small_model.blends)[3]
    child = next(iter(small_model.blends[pid].sources))
    assert child not in small_model.blends
    with pytest.raises(ModelDataError) as err:
        multibandDataToScarlet(small_model, child)
    assert str(err.value) == (
        f"blend {child}: this id is a child (a source) of parent {pid}; give the parent's id"
    )


def test_an_unknown_id_lists_the_ids_that_exist(small_model, container):
    ids = sorted(small_model.blends)
    unknown = max(max(ids), *(s for b in small_model.blends.values() for s in b.sources)) + 1000
    listed = ", ".join(str(i) for i in ids[:5])
    with pytest.raises(ModelDataError) as err:
        multibandDataToScarlet(small_model, unknown)
    assert str(err.value) == (
        f"blend {unknown}: no such blend (it holds {len(ids)} blends: {listed}, ... "
        f"({len(ids) - 5} more); a parent that was skipped or failed has no models)"
    )
    with pytest.raises(ModelDataError) as err:
        ModelData.read(container, blend_ids=[unknown])
    assert str(err.value) == (
        f"file {container}, blend {unknown}: no blend or isolated source with this id; it holds "
        f"{len(ids)} blends: {listed}, ... ({len(ids) - 5} more)"
    )
    assert len(str(err.value)) < 250 + len(str(container))
    with ModelData.open(container) as reader, pytest.raises(ModelDataError) as err:
        multibandDataToScarlet(reader, unknown)
    assert f"no such blend in the model file (it holds {len(ids)} blends: {listed}" in str(
        err.value
    )
