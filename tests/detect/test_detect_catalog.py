"""SourceCatalog: Rubin idioms, adding records and columns, FITS round trip."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from vermilion.detect import (
    Footprint,
    HeavyFootprint,
    SourceCatalog,
    SourceRecord,
    make_peaks,
    make_source_id,
    unpack_source_id,
)


def _footprint(y0, x0, h, w, peaks):
    mask = np.ones((h, w), bool)
    mask[0, 0] = False
    ys = [p[0] for p in peaks]
    xs = [p[1] for p in peaks]
    vals = [p[2] for p in peaks]
    return Footprint(
        mask, make_peaks(ys, xs, value=vals, snr=vals, id=[p[3] for p in peaks]), yx0=(y0, x0)
    )


@pytest.fixture
def catalog() -> SourceCatalog:
    fps = [
        _footprint(0, 0, 5, 6, [(2, 3, 50.0, 1)]),
        _footprint(10, 20, 8, 9, [(12, 22, 30.0, 2), (15, 25, 80.0, 3), (16, 21, 10.0, 4)]),
        _footprint(30, 5, 4, 4, [(31, 6, 7.0, 5), (33, 8, 9.0, 6)]),
    ]
    return SourceCatalog.from_footprints(fps, tract=9813, patch=42, bands=["g", "r", "i"])


def test_parents(catalog):
    assert len(catalog) == 3
    np.testing.assert_array_equal(catalog["parent"], 0)
    np.testing.assert_array_equal(catalog["deblend_nPeaks"], [1, 3, 2])
    np.testing.assert_array_equal(catalog["deblend_isolatedParent"], [True, False, False])
    # peak columns hold the brightest peak
    np.testing.assert_array_equal(catalog["peak_id"], [1, 3, 6])
    np.testing.assert_array_equal(catalog["peak_y"], [2, 15, 33])
    np.testing.assert_array_equal(catalog["footprint_area"], [29, 71, 15])
    tract, patch, seq = unpack_source_id(np.asarray(catalog["id"]))
    np.testing.assert_array_equal(tract, 9813)
    np.testing.assert_array_equal(patch, 42)
    np.testing.assert_array_equal(seq, [1, 2, 3])
    assert catalog.bands == ("g", "r", "i")
    assert catalog["id"].dtype == np.int64


def test_rubin_idioms(catalog):
    parent = catalog[catalog["deblend_nPeaks"] == 3][0]
    assert isinstance(catalog[catalog["deblend_nPeaks"] == 3], SourceCatalog)
    assert isinstance(parent, SourceRecord)
    assert parent.getId() == parent.id == make_source_id(9813, 42, 2)
    assert parent.getParent() == parent.parent == 0
    fp = parent.getFootprint()
    assert fp is parent.footprint
    mask = fp.spans.asArray()
    assert mask.shape == fp.getBBox().shape == (8, 9)
    assert mask.sum() == parent["footprint_area"]
    assert parent.deblend_nPeaks == 3  # columns as attributes
    assert catalog.find(parent.id).id == parent.id
    assert catalog.find(12345) is None
    assert isinstance(catalog["deblend_nChild"], np.ndarray)


def test_children_and_counts(catalog):
    parent = catalog[1]
    fp = parent.footprint
    kids = []
    for pk in fp.peaks:
        kids.append(catalog.add_child(parent.id, pk, fp, deblend_logL=-3.5))
    assert catalog.find(parent.id)["deblend_nChild"] == 3
    ids = [k.id for k in kids]
    assert len(set(ids)) == 3 and all(i not in catalog["id"][:3] for i in ids)
    assert all(unpack_source_id(i)[:2] == (9813, 42) for i in ids)
    children = catalog.children(parent.id)
    assert len(children) == 3
    np.testing.assert_array_equal(children["peak_id"], fp.peaks["id"])
    np.testing.assert_array_equal(children["parent"], parent.id)
    # the new column exists for every row, NaN for those that did not set it
    assert np.isnan(catalog["deblend_logL"][:3]).all()
    np.testing.assert_array_equal(catalog["deblend_logL"][3:], -3.5)
    assert len(catalog.parents()) == 3


def test_add_children_bulk_and_new_columns(catalog):
    pid = catalog[2].id
    rows = catalog.add_children(
        pid,
        peaks=[(31, 6), {"y": 33, "x": 8, "id": 6}],
        deblend_scarletFlux_r=[1.5, 2.5],
        note=["a", "a much longer text than the first one"],
    )
    np.testing.assert_array_equal(rows, [3, 4])
    assert catalog.find(pid)["deblend_nChild"] == 2
    assert catalog["note"][4] == "a much longer text than the first one"
    assert catalog["note"][0] == ""
    np.testing.assert_array_equal(catalog["peak_id"][3:], [0, 6])
    assert catalog["deblend_scarletFlux_r"].dtype == np.float64
    with pytest.raises(KeyError):
        catalog.add_children(999, peaks=[(0, 0)])


def test_ensure_column_and_flags(catalog):
    catalog.ensure_column("deblend_iterations", np.int32)
    catalog.ensure_column("flux", np.float32, shape=(3,), unit="nJy")
    assert catalog["flux"].shape == (3, 3) and np.isnan(catalog["flux"]).all()
    catalog.ensure_column("deblend_iterations", np.float64)  # exists: unchanged
    assert catalog["deblend_iterations"].dtype == np.int32
    reason = "initialization failed: " + "x" * 200
    catalog.set_failed(catalog[1].id, reason)
    assert catalog[1]["deblend_failed"] and catalog[1]["deblend_failReason"] == reason
    catalog.set_failed(catalog[2].id, "too big", skipped=True)
    assert catalog[2]["deblend_skipped"] and not catalog[2]["deblend_failed"]


def test_find_after_changes(catalog):
    first = catalog[0].id
    assert catalog.find(first).index == 0
    catalog.remove_row(0)
    assert catalog.find(first) is None
    assert catalog.find(catalog[0].id).index == 0
    rec = catalog.add_record(parent=0)
    assert catalog.find(rec.id).index == len(catalog) - 1


def _assert_same(a: SourceCatalog, b: SourceCatalog):
    assert a.colnames == b.colnames
    assert a.equals(b)
    for fa, fb in zip(a["footprint"], b["footprint"]):
        assert (fa is None and fb is None) or fa == fb
        if fa is not None:
            assert type(fa) is type(fb)


def test_fits_round_trip(catalog, tmp_path):
    parent = catalog[1]
    fp = parent.footprint
    rng = np.random.default_rng(3)
    images = rng.normal(size=(3, 40, 40)).astype(np.float32)
    heavy = HeavyFootprint.from_image(fp, images, bands="gri")
    catalog.add_child(parent.id, fp.peaks[0], heavy, deblend_scarletFlux_r=1.25)
    catalog.add_child(parent.id, fp.peaks[1], None)
    catalog.ensure_column("flux", np.float32, shape=(3,), unit="nJy")
    catalog["flux"][3] = [1, 2, 3]
    catalog.set_failed(catalog[2].id, "reason with unicode ✓ and, commas")
    catalog.meta["note"] = {"nested": [1, 2.5, "x"]}
    catalog["band"] = np.array(["g", "rr", "ïï", "", "y"])
    path = tmp_path / "cat.fits"
    catalog.write(path)
    back = SourceCatalog.read(path)
    _assert_same(catalog, back)
    assert isinstance(back.find(catalog[3].id).footprint, HeavyFootprint)
    assert back.find(catalog[4].id).footprint is None
    assert back["flux"].unit == "nJy"
    assert back.meta["note"] == {"nested": [1, 2.5, "x"]}
    assert back["band"].dtype.kind == "U" and list(back["band"]) == ["g", "rr", "ïï", "", "y"]
    # readable with astropy alone
    with fits.open(path) as hdul:
        assert {"CATALOG", "SPANS", "PEAKS", "HEAVY", "HEAVYBANDS"} <= {h.name for h in hdul}
    spans = Table.read(path, hdu="SPANS")
    n_spans = sum(len(f.spans) for f in catalog["footprint"] if f is not None)
    assert len(spans) == n_spans
    assert set(spans.colnames) == {"source_id", "y", "x0", "x1"}
    assert len(Table.read(path, hdu="PEAKS")) == sum(
        f.n_peaks for f in catalog["footprint"] if f is not None
    )


def test_empty_round_trip(tmp_path):
    cat = SourceCatalog.empty(tract=1, patch=2, bands="gr")
    cat.write(tmp_path / "e.fits")
    back = SourceCatalog.read(tmp_path / "e.fits")
    assert len(back) == 0
    assert back.colnames == cat.colnames
    assert back.tract == 1 and back.patch == 2


def test_atomic_write(catalog, tmp_path):
    path = tmp_path / "cat.fits"
    catalog.write(path)
    before = path.read_bytes()
    catalog["bad"] = np.array([object(), 1, 2], dtype=object)
    with pytest.raises(TypeError, match="bad"):
        catalog.write(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["cat.fits"]  # no temporary left behind
    with pytest.raises(FileExistsError):
        catalog.write(path, overwrite=False)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        SourceCatalog.read(tmp_path / "missing.fits")
    other = tmp_path / "other.fits"
    Table({"a": [1, 2]}).write(other)
    with pytest.raises(ValueError, match="not a vermilion catalog"):
        SourceCatalog.read(other)


def test_pickle(catalog):
    back = pickle.loads(pickle.dumps(catalog))
    _assert_same(catalog, back)
    assert isinstance(back[0], SourceRecord)


def test_footprint_type_checked(catalog):
    with pytest.raises(TypeError):
        catalog[0].setFootprint("not a footprint")


def test_add_children_of_many_parents_at_once(catalog):
    ids = np.asarray(catalog["id"])
    parents = [ids[1], ids[1], ids[2], ids[1]]
    rows = catalog.add_children(parents, peaks=[(1, 1), (2, 2), (3, 3), (4, 4)])
    np.testing.assert_array_equal(rows, [3, 4, 5, 6])
    np.testing.assert_array_equal(catalog["deblend_nChild"][:3], [0, 3, 1])
    np.testing.assert_array_equal(catalog["parent"][3:], parents)
    assert len(catalog.children(ids[1])) == 3
    with pytest.raises(KeyError):
        catalog.add_children([ids[0], 12345], peaks=[(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="parent ids"):
        catalog.add_children([ids[0]], peaks=[(0, 0), (1, 1)])
