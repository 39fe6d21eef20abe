"""vermilion.io.afw_table: afw FITS tables -> arrays, against the tables read with astropy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from vermilion.io.afw_fits import AfwTableError
from vermilion.io.afw_table import identify_afw, read_afw, read_afw_archive

DATA = Path(__file__).resolve().parents[1] / "data" / "afw"
HSC = DATA / "deepCoadd_meas_HSC_v2.fits"
HEAVY = DATA / "legacyHeavyFootprint.fits"
PRE = DATA / "preSpanSetsFootprint.fits"


def test_identify():
    with fits.open(HSC) as h:
        assert identify_afw(h) == "catalog"
    for path in (HEAVY, PRE):
        with fits.open(path) as h:
            assert identify_afw(h) == "archive"
    assert identify_afw(fits.HDUList([fits.PrimaryHDU()])) is None


def test_hsc_spans_and_peaks_are_the_index_rows():
    with fits.open(HSC) as h:
        out = read_afw(h, HSC)
        index = h[2].data
        spans, peaks, refs = h[4].data, h[5].data, h[3].data
        fps = out.footprints
        assert out.kind == "catalog" and len(fps) == 10
        np.testing.assert_array_equal(fps.rows_of(h[1].data["footprint"]), np.arange(10))
        for i, oid in enumerate(fps.ids.tolist()):
            entry = {int(r["cat.persistable"]): r for r in index if r["id"] == oid}
            ss_id = int(refs["id"][entry[0]["row0"]])
            (ss,) = [r for r in index if r["id"] == ss_id]
            rows = spans[ss["row0"] : ss["row0"] + ss["nrows"]]
            s = slice(fps.span_offsets[i], fps.span_offsets[i + 1])
            np.testing.assert_array_equal(fps.y[s], rows["y"])
            np.testing.assert_array_equal(fps.x0[s], rows["x0"])
            np.testing.assert_array_equal(fps.x1[s], rows["x1"])
            pk = peaks[entry[1]["row0"] : entry[1]["row0"] + entry[1]["nrows"]]
            p = slice(fps.peak_offsets[i], fps.peak_offsets[i + 1])
            np.testing.assert_array_equal(fps.peaks["id"][p], pk["id"])
            np.testing.assert_array_equal(fps.peaks["x"][p], pk["i_x"])
            np.testing.assert_array_equal(fps.peaks["y"][p], pk["i_y"])
            np.testing.assert_array_equal(fps.peaks["f_x"][p], pk["f_x"])
            np.testing.assert_array_equal(fps.peaks["f_y"][p], pk["f_y"])
            np.testing.assert_array_equal(fps.peaks["value"][p], pk["peakValue"])
            for k in range(13):
                name = h[5].header[f"TFLAG{k + 1}"]
                np.testing.assert_array_equal(fps.peaks[name][p], pk["flags"][:, k])
        assert str(fps.peak_units["f_x"]) == "pix"
        assert fps.image is None


def test_record_columns_flags_units_descriptions():
    with fits.open(HSC) as h:
        out = read_afw(h, HSC)
        header, data = h[1].header, h[1].data
        by_name = {c.name: c for c in out.columns}
        for k in range(1, 238):
            col = by_name[header[f"TFLAG{k}"]]
            np.testing.assert_array_equal(col.data, data["flags"][:, k - 1])
            assert col.description == header[f"TFDOC{k}"]
        for k, name in enumerate(data.columns.names, start=1):
            if name in ("flags", "footprint"):
                continue
            col = by_name[name]
            np.testing.assert_array_equal(col.data, data[name])
            assert col.data.dtype.isnative
            unit = header.get(f"TUNIT{k}")
            assert (col.unit is None) == (unit is None)
            assert col.description == header.get(f"TDOC{k}", "")
        np.testing.assert_array_equal(out.footprint_ids, data["footprint"])
        assert out.footprint_position == data.columns.names.index("footprint") - 1 + 237


def test_heavy_arrays_and_old_layout():
    with fits.open(HEAVY) as h:
        fps = read_afw_archive(h, 1, HEAVY)
        px = h[5].data[0]
        np.testing.assert_array_equal(fps.image, px["image"])
        np.testing.assert_array_equal(fps.mask, px["mask"])
        np.testing.assert_array_equal(fps.variance, px["variance"])
        np.testing.assert_array_equal(fps.y, h[3].data["y"])
        assert fps.mask.dtype == np.uint16 and fps.classes.tolist() == ["HeavyFootprintF"]
    with fits.open(PRE) as h:
        fps = read_afw_archive(h, 1, PRE)
        np.testing.assert_array_equal(fps.x1, h[2].data["x1"])
        np.testing.assert_array_equal(fps.peaks["id"], h[3].data["id"])
        assert fps.span_offsets.tolist() == [0, 303] and fps.peak_offsets.tolist() == [0, 48]


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
def test_errors_name_the_problem(tmp_path):
    with fits.open(HSC) as h:
        hdus = fits.HDUList([x.copy() for x in h])
    hdus[2].data["cat.archive"][0] = 9
    with pytest.raises(AfwTableError, match="outside the archive"):
        read_afw(hdus)
    with fits.open(HSC) as h:
        hdus = fits.HDUList([x.copy() for x in h])
    hdus[1].data["footprint"][0] = 99
    with pytest.raises(AfwTableError, match=r"archive ids \[99\]"):
        read_afw(hdus)
    with pytest.raises(AfwTableError, match=r"not an lsst\.afw\.table file; found HDU 0"):
        read_afw(fits.HDUList([fits.PrimaryHDU()]))
    raw = HSC.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(raw[: len(raw) - 3000])
    with fits.open(cut) as h, pytest.raises(AfwTableError, match=r"truncated|missing"):
        read_afw(h, cut)
