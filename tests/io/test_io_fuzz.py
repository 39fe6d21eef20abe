"""Property-based: random and mutated bytes and JSON never raise anything but ModelDataError."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vermilion.io import ModelData, ModelDataError
from vermilion.io._fields import Where
from vermilion.io._synthetic import synthetic_model_data
from vermilion.io.container_records import parse_blend_record

# VERMILION_FUZZ_EXAMPLES=5000 for a longer hunt
SETTINGS = settings(
    max_examples=int(os.environ.get("VERMILION_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
WORK = Path(tempfile.mkdtemp(prefix="vermilion-fuzz-"))


def _tiny_model() -> ModelData:
    return synthetic_model_data(4, n_bands=2, seed=11, max_sources=3, min_box=3, max_box=6)


TINY = _tiny_model()
TINY.write(WORK / "tiny.vmd")
TINY.write(WORK / "tiny.json")
TINY.write(WORK / "tiny.scarlet")
CONTAINER = (WORK / "tiny.vmd").read_bytes()
ARCHIVE = (WORK / "tiny.scarlet").read_bytes()
DOCUMENT = json.loads((WORK / "tiny.json").read_text())
IDS = list(TINY.blends)


def _exercise(path: Path) -> None:
    """Every way of reading; only ModelDataError may escape."""
    try:
        ModelData.read(path)
    except ModelDataError:
        pass
    try:
        ModelData.read(path, blend_ids=IDS[:1], on_error="skip")
    except ModelDataError:
        pass
    try:
        with ModelData.open(path) as reader:
            for key in list(reader)[:3]:
                try:
                    reader[key]
                except ModelDataError:
                    pass
            IDS[1] in reader  # noqa: B015
    except ModelDataError:
        pass


def _write(data: bytes, name: str) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def _mutate(base: bytes, edits, cut) -> bytes:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    return bytes(data)


EDITS = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=8)
CUTS = st.none() | st.integers(0, 10**7)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data):
    _exercise(_write(data, "random.bin"))


@SETTINGS
@given(EDITS, CUTS)
def test_mutated_container(edits, cut):
    _exercise(_write(_mutate(CONTAINER, edits, cut), "mutated.vmd"))


@SETTINGS
@given(EDITS, CUTS)
def test_mutated_archive(edits, cut):
    _exercise(_write(_mutate(ARCHIVE, edits, cut), "mutated.scarlet"))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=10,
)


def _paths(node, prefix=(), depth=0):
    """Paths to the nodes of a document (the first 3 items of each list)."""
    yield prefix
    if depth > 7:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key), depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            yield from _paths(value, (*prefix, i), depth + 1)


PATHS = list(_paths(DOCUMENT))


def _replace(doc, path, value, delete):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES, st.booleans()), min_size=1, max_size=3)
)
def test_mutated_json_document(mutations):
    doc = DOCUMENT
    for path, value, delete in mutations:
        try:
            doc = _replace(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    _exercise(_write(json.dumps(doc).encode(), "mutated.json"))


@SETTINGS
@given(JSON_VALUES, st.integers(0, 64))
def test_random_record_headers(header, n):
    payload = np.ones(n, np.float32)
    try:
        parse_blend_record(header, payload, 5)
    except ModelDataError:
        pass


@SETTINGS
@given(
    st.fixed_dictionaries(
        {
            "id": st.just(5) | JSON_VALUES,
            "origin": st.just([0, 0]) | JSON_VALUES,
            "shape": st.just([4, 4]) | JSON_VALUES,
            "sources": st.just([[1, 2, 1]]) | JSON_VALUES,
            "components": st.just([[0, 0, 0, 1, 1, 2, 3, 3]])
            | st.lists(st.lists(JSON_VALUES, min_size=8, max_size=8), max_size=2)
            | JSON_VALUES,
        }
    ),
    st.integers(0, 30),
)
def test_structured_record_headers(header, n):
    payload = np.ones(n, np.float32)
    try:
        blend = parse_blend_record(header, payload, 5)
    except ModelDataError:
        return
    blend.validate(5)  # whatever parses is a valid blend


def test_fuzz_bases_are_valid():
    assert ModelData.read(WORK / "tiny.vmd") == TINY
    assert ModelData.read(WORK / "tiny.scarlet") == TINY
    assert ModelData.read(WORK / "tiny.json") == TINY
    with pytest.raises(ModelDataError):
        parse_blend_record({"id": 4}, np.ones(1, np.float32), 5)
    assert Where(1, 2).error("x", "f").source_id == 2
