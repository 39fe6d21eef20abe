"""SourceCatalog.read on files written by lsst.afw.table, against an independent decode."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from afw_reference import HEAVY, HSC, PRE_SPANSETS, decode, flag_bits, plain_columns
from astropy.io import fits

from vermilion.detect.catalog import STANDARD_COLUMNS, SourceCatalog
from vermilion.detect.footprint import HeavyFootprint, SpanSet
from vermilion.io.afw_fits import AfwTableError


def _pixels(fp) -> set[tuple[int, int]]:
    ys, xs = fp.spans.indices()
    return set(zip(ys.tolist(), xs.tolist()))


def check_footprint(fp, ref: dict) -> None:
    """Pixel set, every peak and (heavy) every pixel value equal the reference."""
    if ref["pixels"] is None:  # a huge damaged footprint: compare the merged spans
        y, x0, x1 = np.array(ref["spans"]).T
        assert fp.spans == SpanSet(y, x0, x1)
        assert not ref["name"].startswith("Heavy")
    else:
        assert _pixels(fp) == set(ref["pixels"])
        assert fp.area == len(set(ref["pixels"]))
    got = sorted(fp.peaks.tolist())
    want = sorted(
        (p["id"], p["y"], p["x"], np.float32(p["value"]), np.float32(p["significance"]))
        for p in ref["peaks"]
    )
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:4] == w[:4]
        assert (np.isnan(g[4]) and np.isnan(w[4])) or g[4] == w[4]
    if ref["name"].startswith("Heavy"):
        assert isinstance(fp, HeavyFootprint)
        ys, xs = fp.spans.indices()
        ours = dict(zip(zip(ys.tolist(), xs.tolist()), range(len(ys))))
        order = [ours[p] for p in ref["pixels"]]
        np.testing.assert_array_equal(fp.values[0, order], ref["image"])
        np.testing.assert_array_equal(fp.mask[0, order], ref["mask"])
        np.testing.assert_array_equal(fp.variance[0, order], ref["variance"])
    else:
        assert not fp.is_heavy


def check_catalog(cat: SourceCatalog, path) -> None:
    """Every column, unit, description, flag bit and footprint against the reference."""
    ref = decode(path)
    hdu = ref["records"]
    fp_ids = np.asarray(hdu.data["footprint"]) if "footprint" in hdu.columns.names else None
    assert len(cat) == len(hdu.data)
    for name, bits in flag_bits(hdu).items():
        np.testing.assert_array_equal(np.asarray(cat[name]), bits, err_msg=name)
        assert cat[name].dtype == bool
    for name, values, unit, doc in plain_columns(hdu):
        if name == "footprint":
            continue
        np.testing.assert_array_equal(np.asarray(cat[name]), values, err_msg=name)
        assert cat[name].unit == unit, name
        assert cat[name].description == doc, name
    for row in range(len(cat)):
        fp = cat["footprint"][row]
        if fp_ids is None or fp_ids[row] == 0:
            assert fp is None
        else:
            check_footprint(fp, ref["footprints"][int(fp_ids[row])])
    ref["hdul"].close()


def test_hsc_catalog_every_column_flag_and_footprint():
    cat = SourceCatalog.read(HSC)
    check_catalog(cat, HSC)
    assert len(cat) == 10
    assert sum(fp is not None for fp in cat["footprint"]) == 10
    with fits.open(HSC) as h:
        n_flags = h[1].header["TFORM1"]
        names = [c for c in h[1].columns.names if c != "flags"]
    assert n_flags == "237X"
    # flags at the place of `flags`, every other column in file order, standard ones after
    assert cat.colnames[:237][0] == "merge_footprint_i2"
    afw_names = [c for c in cat.colnames[237:] if c in names or c == "footprint"]
    assert afw_names == names
    assert str(cat["coord_ra"].unit) == "rad"
    assert cat.meta["afw"]["afw_type"] == "SOURCE"
    assert cat.meta["afw"]["aliases"]["slot_Centroid"] == "base_SdssCentroid"
    # standard columns derived from the footprints
    for name in STANDARD_COLUMNS:
        assert name in cat.colnames
    fps = list(cat["footprint"])
    np.testing.assert_array_equal(cat["footprint_area"], [fp.area for fp in fps])
    np.testing.assert_array_equal(cat["deblend_nPeaks"], [fp.n_peaks for fp in fps])
    np.testing.assert_array_equal(cat["peak_id"], [fp.peaks["id"][0] for fp in fps])
    # Rubin-style access
    rec = cat.find(int(cat["id"][3]))
    assert rec.getFootprint() is fps[3]


def test_legacy_heavy_footprint_values_mask_variance():
    cat = SourceCatalog.read(HEAVY)
    ref = decode(HEAVY)
    assert len(cat) == 1 == len(ref["footprints"])
    ((oid, fp_ref),) = ref["footprints"].items()
    assert int(cat["id"][0]) == oid
    fp = cat["footprint"][0]
    check_footprint(fp, fp_ref)
    assert fp.bands is None and fp.values.shape == (1, 552)
    assert fp.mask.dtype == np.uint16
    assert cat.meta["afw"]["afw_type"] == "archive"
    ref["hdul"].close()


def test_pre_spansets_footprint():
    cat = SourceCatalog.read(PRE_SPANSETS)
    ref = decode(PRE_SPANSETS)
    ((_, fp_ref),) = ref["footprints"].items()
    check_footprint(cat["footprint"][0], fp_ref)
    assert cat["footprint"][0].n_peaks == 48
    assert int(cat["deblend_nPeaks"][0]) == 48
    ref["hdul"].close()


# -- other versions of the format, written here with astropy --------------------------------
def _rewrite(src, dst, edit) -> None:
    """Copy an afw file, letting ``edit(hdul)`` change it (in memory) first."""
    with fits.open(src) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    edit(hdul)
    hdul.writeto(dst, overwrite=True)


def _replace_table(hdul, at: int, keep=None, rename=None, add=None) -> None:
    """Rebuild table HDU ``at`` with some columns dropped, renamed or added (header kept)."""
    old = hdul[at]
    cols = []
    for col in old.columns:
        if keep is not None and col.name not in keep:
            continue
        name = (rename or {}).get(col.name, col.name)
        cols.append(
            fits.Column(name=name, format=col.format, unit=col.unit, array=old.data[col.name])
        )
    for name, (fmt, values) in (add or {}).items():
        cols.append(fits.Column(name=name, format=fmt, array=values))
    new = fits.BinTableHDU.from_columns(cols)
    for key in ("EXTTYPE", "AR_NAME", "AR_CATN", "AR_NCAT", "AFW_TYPE", "AR_HDU"):
        if key in old.header:
            new.header[key] = old.header[key]
    new.header["HIERARCH AFW_TABLE_VERSION"] = old.header.get("AFW_TABLE_VERSION", 1)
    if "flags" in [c.name for c in cols]:
        new.header["FLAGCOL"] = 1
        for k in range(1, 300):
            if f"TFLAG{k}" not in old.header:
                break
            new.header[f"TFLAG{k}"] = old.header[f"TFLAG{k}"]
    hdul[at] = new


def test_peaks_without_flags_and_with_significance(tmp_path):
    path = tmp_path / "noflags.fits"
    with fits.open(HSC) as h:
        n = len(h[5].data)

    def edit(hdul):
        keep = ["id", "f_x", "f_y", "i_x", "i_y", "peakValue"]
        _replace_table(hdul, 5, keep=keep, add={"significance": ("E", np.arange(n) + 0.5)})

    _rewrite(HSC, path, edit)
    cat = SourceCatalog.read(path)
    check_catalog(cat, path)  # the reference reads significance into snr
    assert np.isfinite(cat["peak_snr"]).all()


def test_older_schema_version_with_dotted_peak_names(tmp_path):
    path = tmp_path / "v0.fits"

    def edit(hdul):
        rename = {"f_x": "f.x", "f_y": "f.y", "i_x": "i.x", "i_y": "i.y"}
        _replace_table(hdul, 5, keep=["id", "f_x", "f_y", "i_x", "i_y", "peakValue"], rename=rename)
        hdul[1].header["HIERARCH AFW_TABLE_VERSION"] = 0

    _rewrite(HSC, path, edit)
    cat = SourceCatalog.read(path)
    assert cat.meta["afw"]["afw_table_version"] == 0
    plain = SourceCatalog.read(HSC)
    for a, b in zip(cat["footprint"], plain["footprint"]):
        assert a == b


def test_newer_schema_version_reads(tmp_path):
    path = tmp_path / "v3.fits"

    def edit(hdul):
        for h in hdul[1:]:
            h.header["HIERARCH AFW_TABLE_VERSION"] = 3

    _rewrite(HSC, path, edit)
    cat = SourceCatalog.read(path)
    check_catalog(cat, path)
    assert cat.meta["afw"]["afw_table_version"] == 3


def test_catalog_without_footprints_or_archive(tmp_path):
    no_archive = tmp_path / "noarchive.fits"

    def drop_archive(hdul):
        del hdul[2:]
        del hdul[1].header["AR_HDU"]

    _rewrite(HSC, no_archive, drop_archive)
    with fits.open(no_archive, mode="update") as h:
        h[1].data["footprint"][:] = 0
    cat = SourceCatalog.read(no_archive)
    check_catalog(cat, no_archive)
    assert all(fp is None for fp in cat["footprint"])
    np.testing.assert_array_equal(cat["footprint_area"], 0)

    no_column = tmp_path / "nocolumn.fits"

    def drop_column(hdul):
        drop_archive(hdul)
        keep = [c for c in hdul[1].columns.names if c != "footprint"]
        _replace_table(hdul, 1, keep=keep)

    _rewrite(HSC, no_column, drop_column)
    cat = SourceCatalog.read(no_column)
    check_catalog(cat, no_column)
    assert "footprint" in cat.colnames and all(fp is None for fp in cat["footprint"])


def test_unsorted_spans_give_the_same_pixels(tmp_path):
    path = tmp_path / "reversed.fits"

    def edit(hdul):
        hdul[4].data[:] = hdul[4].data[::-1].copy()
        index = hdul[2].data
        spansets = index["name"] == "SpanSet"
        total = len(hdul[4].data)
        index["row0"][spansets] = total - index["row0"][spansets] - index["nrows"][spansets]

    _rewrite(HSC, path, edit)
    cat = SourceCatalog.read(path)
    check_catalog(cat, path)
    for a, b in zip(cat["footprint"], SourceCatalog.read(HSC)["footprint"]):
        assert a == b


def test_not_afw_nor_vermilion_is_one_clear_error(tmp_path):
    path = tmp_path / "other.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="spam", format="E", array=[1.0])])
    table.name = "EGGS"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(AfwTableError, match=r"not a vermilion catalog.*'EGGS'.*spam"):
        SourceCatalog.read(path)
    text = tmp_path / "text.fits"
    text.write_text("not FITS at all")
    with pytest.raises(AfwTableError, match="not a readable FITS file"):
        SourceCatalog.read(text)
    err = pickle.loads(pickle.dumps(AfwTableError("why", path)))
    assert isinstance(err, ValueError) and str(err) == f"{path}: why"


def test_round_trip_through_our_format(tmp_path):
    cat = SourceCatalog.read(HSC)
    cat.write(tmp_path / "ours.fits")
    back = SourceCatalog.read(tmp_path / "ours.fits")
    assert back.colnames == cat.colnames
    for a, b in zip(back["footprint"], cat["footprint"]):
        assert a == b
    for name in ("coord_ra", "merge_footprint_i", "base_SdssCentroid_x"):
        np.testing.assert_array_equal(back[name], cat[name])


def test_heavy_mask_and_variance_survive_our_format(tmp_path):
    """afw's heavy pixels (image, mask, variance) are written and read back exactly."""
    cat = SourceCatalog.read(HEAVY)
    cat.write(tmp_path / "ours.fits")
    back = SourceCatalog.read(tmp_path / "ours.fits")
    a, b = back["footprint"][0], cat["footprint"][0]
    assert a == b
    np.testing.assert_array_equal(a.values, b.values)
    assert a.mask.dtype == b.mask.dtype == np.uint16
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.variance, b.variance)
    # footprints without these planes still read back without them
    assert back.meta["afw"]["afw_type"] == "archive"
