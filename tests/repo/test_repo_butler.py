"""Repositories on the Rubin data butler: creation, round trips, the seed's lines, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from repo_testdata import BANDS, PATCH_SHAPE, SKYMAP, gaussian_psf, make_repo, patch_arrays

import vermilion.io
from vermilion.core.bbox import Box
from vermilion.repo import (
    DATASET_TYPES,
    REPO_VERSION,
    BBoxError,
    CorruptFileError,
    DataIdError,
    DatasetMissingError,
    MultibandExposure,
    RepoError,
    RepoVersionError,
    describe_repo,
    get_skymap,
    ingest_arrays,
    ingest_coadd,
    ingest_model_data,
    open_repo,
)

#: Real files kept in the repository (tests/data/README.md says where each comes from).
DATA = Path(__file__).resolve().parents[1] / "data"
COADD_RUN = "vermilion/coadd"
DEBLEND_RUN = "vermilion/deblend"
TRACT, PATCH = 1, 2


def make_model_data(bands=BANDS, n_blends=3, offset=(60, 0)):
    """Blends inside patch 2 of tract 1 (whose box starts at ``offset``)."""
    from vermilion.io.data import BlendData, FactorizedComponentData, ModelData, SourceData

    blends = {}
    for i in range(1, n_blends + 1):
        origin = (offset[0] + 10 + i, offset[1] + 20 + 2 * i)
        comp = FactorizedComponentData(
            origin,
            (origin[0] + 2.0, origin[1] + 3.0),
            np.arange(1, len(bands) + 1, dtype=np.float32) * i,
            np.full((5, 7), 0.5, np.float32),
        )
        blends[i] = BlendData(
            origin,
            (8, 12),
            {1000 + i: SourceData([comp], peak_id=i)},
            psf_center=(origin[0] + 4.0, origin[1] + 6.0),
            psf=np.stack([gaussian_psf(11)] * len(bands)),
        )
    return ModelData(list(bands), gaussian_psf(11, 0.8), blends)


def make_catalog():
    from vermilion.detect.catalog import SourceCatalog
    from vermilion.detect.footprint import Footprint, SpanSet, make_peaks

    fps = [
        Footprint(SpanSet.from_box(Box((8, 12), (71, 22))), make_peaks([73], [25], [3.0])),
        Footprint(SpanSet.from_box(Box((8, 12), (72, 24))), make_peaks([74], [27], [5.0])),
    ]
    return SourceCatalog.from_footprints(fps, tract=TRACT, patch=PATCH, bands=list(BANDS))


@pytest.fixture(scope="module")
def filled(repo_path):
    """The module repository with one patch of coadds, truth, catalog and model data."""
    from lsst.daf.butler import Butler

    images, variance, mask, psfs = patch_arrays(TRACT, PATCH)
    truth = Table({"id": np.arange(3), "flux": np.array([1.0, 2.0, 3.5])}, meta={"seed": 7})
    ingest_arrays(repo_path, images, variance, mask, psfs, BANDS, TRACT, PATCH, COADD_RUN, truth)
    butler = Butler(repo_path, skymap=SKYMAP, run=DEBLEND_RUN, writeable=True)
    butler.collections.register(DEBLEND_RUN)
    catalog = make_catalog()
    model = make_model_data()
    butler.put(catalog, "deepCoadd_deblendedCatalog", tract=TRACT, patch=PATCH)
    butler.put(model, "deepCoadd_scarletModelData", tract=TRACT, patch=PATCH)
    return {
        "path": repo_path,
        "arrays": (images, variance, mask, psfs),
        "truth": truth,
        "catalog": catalog,
        "model": model,
        "collections": [DEBLEND_RUN, COADD_RUN],
    }


@pytest.fixture(scope="module")
def butler(filled):
    from lsst.daf.butler import Butler

    return Butler(filled["path"], skymap=SKYMAP, collections=filled["collections"])


def test_create_repo_records_and_dataset_types(repo_path):
    butler = open_repo(repo_path)
    info = describe_repo(butler)
    assert info["repo_version"] == REPO_VERSION
    assert info["skymaps"] == [SKYMAP] and info["bands"] == sorted(BANDS)
    patches = list(butler.registry.queryDimensionRecords("patch", dataId={"skymap": SKYMAP}))
    assert len(patches) == 2 * 4
    p = next(r for r in patches if r.tract == 1 and r.id == 3)
    assert (p.cell_x, p.cell_y) == (1, 1)
    sky = get_skymap(butler)
    assert sky.patch_shape == PATCH_SHAPE and sky.patches == (2, 2)
    # the registry's patch region agrees with the sky map
    ra, dec = sky[1].pixel_to_sky(*sky[1].patch(3).bbox.center)
    from lsst.sphgeom import LonLat, UnitVector3d

    assert p.region.contains(UnitVector3d(LonLat.fromDegrees(float(ra), float(dec))))
    for name, (dims, sc) in DATASET_TYPES.items():
        dt = butler.get_dataset_type(name)
        assert set(dt.dimensions.names) >= set(dims) and dt.storageClass_name == sc
    with open(repo_path / "butler.yaml") as f:
        assert yaml.safe_load(f)["vermilion"]["repo_version"] == REPO_VERSION


def test_create_repo_refuses_existing_unless_exist_ok(repo_path):
    with pytest.raises(RepoError, match="already a data repository"):
        make_repo(repo_path)
    # same sky map again: nothing changes
    make_repo(repo_path, exist_ok=True)
    with pytest.raises(RepoError, match="different definition of skymap"):
        make_repo(repo_path, exist_ok=True, patch_shape=(50, 50))


def test_seed_lines_run_verbatim(filled):
    from lsst.daf.butler import Butler

    path, skymap, collections = filled["path"], SKYMAP, filled["collections"]
    tract, patch = TRACT, PATCH
    # --- the seed, verbatim apart from the path ---
    butler = Butler(path, skymap=skymap, collections=collections)
    catalog = butler.get("deepCoadd_deblendedCatalog", tract=tract, patch=patch)
    modelData = butler.get("deepCoadd_scarletModelData", tract=tract, patch=patch)
    observedPsfs = [
        butler.get("deepCoadd_calexp.psf", tract=tract, patch=patch, band=band)
        for band in modelData.bands
    ]
    # ---
    assert len(catalog) == 2 and list(catalog["id"]) == list(filled["catalog"]["id"])
    assert modelData == filled["model"]
    psfs = filled["arrays"][3]
    for band, psf in zip(modelData.bands, observedPsfs):
        np.testing.assert_allclose(psf.computeKernelImage(), psfs[BANDS.index(band)], rtol=1e-6)
    blend_data = modelData.blends[2]
    m_exposure = MultibandExposure.fromButler(
        butler,
        modelData.bands,
        "deepCoadd_calexp",
        parameters={"bbox": blend_data.bbox},
        tract=tract,
        patch=patch,
    )
    images = filled["arrays"][0]
    y0, x0 = get_skymap(butler)[tract].patch(patch).bbox.origin
    (by0, by1), (bx0, bx1) = blend_data.bbox.bounds
    expected = images[:, by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
    assert m_exposure.bbox == blend_data.bbox
    np.testing.assert_array_equal(m_exposure.images, expected)


def test_exposure_round_trip_and_components(butler, filled):
    images, variance, mask, psfs = filled["arrays"]
    sky = get_skymap(butler)
    info = sky[TRACT].patch(PATCH)
    for i, band in enumerate(BANDS):
        exp = butler.get("deepCoadd_calexp", tract=TRACT, patch=PATCH, band=band)
        assert exp.band == band and exp.bbox == info.outer_bbox
        np.testing.assert_array_equal(exp.image, images[i])
        np.testing.assert_array_equal(exp.variance, variance[i])
        np.testing.assert_array_equal(exp.mask, mask[i])
        np.testing.assert_array_equal(exp.psf.image, psfs[i])
        # WCS of tract pixels
        np.testing.assert_allclose(exp.wcs.wcs.crval, sky[TRACT].center)
    box = Box((7, 9), (info.bbox.origin[0] + 20, info.bbox.origin[1] + 30))
    local = (slice(20, 27), slice(30, 39))
    kw = {"tract": TRACT, "patch": PATCH, "band": "r"}
    p = {"bbox": box}
    np.testing.assert_array_equal(
        butler.get("deepCoadd_calexp.image", parameters=p, **kw), images[1][local]
    )
    np.testing.assert_array_equal(
        butler.get("deepCoadd_calexp.mask", parameters=p, **kw), mask[1][local]
    )
    np.testing.assert_array_equal(
        butler.get("deepCoadd_calexp.variance", parameters=p, **kw), variance[1][local]
    )
    cut = butler.get("deepCoadd_calexp", parameters=p, **kw)
    assert cut.bbox == box
    np.testing.assert_array_equal(cut.image, images[1][local])
    assert butler.get("deepCoadd_calexp.bbox", **kw) == info.outer_bbox
    assert butler.get("deepCoadd_calexp.bbox", parameters=p, **kw) == box
    wcs = butler.get("deepCoadd_calexp.wcs", **kw)
    np.testing.assert_allclose(wcs.wcs.crpix, sky[TRACT].wcs.wcs.crpix)


def test_multiband_from_butler_whole_patch(butler, filled):
    m = MultibandExposure.from_butler(butler, ["i", "g"], tract=TRACT, patch=PATCH)
    images, variance, _, psfs = filled["arrays"]
    np.testing.assert_array_equal(m.images, images[[2, 0]])
    np.testing.assert_array_equal(m.variance, variance[[2, 0]])
    assert m.psfs.shape == (2, 11, 11)
    np.testing.assert_allclose(m.psfs, psfs[[2, 0]], rtol=1e-6)


def test_catalog_truth_and_skymap_round_trip(butler, filled):
    cat = butler.get("deepCoadd_deblendedCatalog", tract=TRACT, patch=PATCH)
    assert type(cat).__name__ == "SourceCatalog"
    np.testing.assert_array_equal(cat["id"], filled["catalog"]["id"])
    assert cat.meta["bands"] == list(BANDS)
    truth = butler.get("truth_catalog", tract=TRACT, patch=PATCH)
    np.testing.assert_array_equal(truth["flux"], filled["truth"]["flux"])
    assert truth.meta == {"seed": 7}
    assert butler.get("skyMap", collections="skymaps") == get_skymap(butler)


def test_model_data_blend_id_parameter(butler, filled):
    one = butler.get(
        "deepCoadd_scarletModelData", tract=TRACT, patch=PATCH, parameters={"blend_ids": [3]}
    )
    assert list(one.blends) == [3]
    assert one.blends[3].sources.keys() == filled["model"].blends[3].sources.keys()
    rubin = butler.get(
        "deepCoadd_scarletModelData", tract=TRACT, patch=PATCH, parameters={"blend_id": 1}
    )
    assert list(rubin.blends) == [1]


def test_rubin_json_model_files_are_ingested_and_read(repo_path, tmp_path):
    from lsst.daf.butler import Butler

    from vermilion.io.data import ModelData

    src = DATA / "v29_models.json"
    ref = ingest_model_data(repo_path, src, 0, 1, "rubin/models")
    butler = Butler(repo_path, skymap=SKYMAP, collections="rubin/models")
    model = butler.get("deepCoadd_scarletModelData", tract=0, patch=1)
    assert model == ModelData.read(src)
    assert butler.getURI(ref).getExtension() == ".json"
    first = sorted(model.blends)[0]
    part = butler.get(
        "deepCoadd_scarletModelData", tract=0, patch=1, parameters={"blend_ids": [first]}
    )
    assert list(part.blends) == [first]
    with pytest.raises(ValueError, match="must end in"):
        ingest_model_data(repo_path, tmp_path / "x.txt", 0, 1, "rubin/models")


def test_ingest_is_idempotent_and_overwrite_replaces(repo_path):
    from lsst.daf.butler import Butler

    images, variance, mask, psfs = patch_arrays(0, 0)
    run = "idem"
    refs = ingest_arrays(repo_path, images, variance, mask, psfs, BANDS, 0, 0, run)
    again = ingest_arrays(repo_path, images, variance, mask, psfs, BANDS, 0, 0, run)
    assert {b: r.id for b, r in refs.items()} == {b: r.id for b, r in again.items()}
    # other pixels are not dropped silently (issue 19): an error, unless overwrite
    with pytest.raises(RepoError, match="already holds other pixels in run 'idem'"):
        ingest_arrays(repo_path, images + 5, variance, mask, psfs, BANDS, 0, 0, run)
    butler = Butler(repo_path, skymap=SKYMAP, collections=run)
    np.testing.assert_array_equal(
        butler.get("deepCoadd_calexp.image", tract=0, patch=0, band="g"), images[0]
    )
    ingest_arrays(repo_path, images + 5, variance, mask, psfs, BANDS, 0, 0, run, overwrite=True)
    np.testing.assert_array_equal(
        butler.get("deepCoadd_calexp.image", tract=0, patch=0, band="g"), images[0] + 5
    )
    assert len(butler.query_datasets("deepCoadd_calexp", collections=run)) == len(BANDS)


def test_ingest_flags_non_finite_pixels(repo_path):
    from lsst.daf.butler import Butler

    images, variance, _, psfs = patch_arrays(0, 3)
    images[1, 5, 6] = np.nan
    variance[2, 7, 8] = np.inf
    ingest_arrays(repo_path, images, variance, None, psfs, BANDS, 0, 3, "nonfinite")
    butler = Butler(repo_path, skymap=SKYMAP, collections="nonfinite")
    r = butler.get("deepCoadd_calexp", tract=0, patch=3, band="r")
    assert r.image[5, 6] == 0 and np.isinf(r.variance[5, 6]) and r.mask_plane("NO_DATA")[5, 6]
    assert r.mask_plane("NO_DATA").sum() == 1
    i = butler.get("deepCoadd_calexp", tract=0, patch=3, band="i")
    assert i.mask_plane("NO_DATA")[7, 8] and i.image[7, 8] == 0


def test_ingest_coadd_files(repo_path, tmp_path):
    from lsst.daf.butler import Butler

    images, variance, mask, psfs = patch_arrays(1, 0)
    files = {}
    for i, band in enumerate(BANDS):
        hdul = fits.HDUList(
            [
                fits.PrimaryHDU(),
                fits.ImageHDU(images[i], name="IMAGE"),
                fits.ImageHDU(mask[i], name="MASK"),
                fits.ImageHDU(variance[i], name="VARIANCE"),
                fits.ImageHDU(psfs[i], name="PSF"),
            ]
        )
        files[band] = tmp_path / f"coadd_{band}.fits"
        hdul.writeto(files[band])
    refs = ingest_coadd(repo_path, files, 1, 0, run="user")
    assert set(refs) == set(BANDS)
    butler = Butler(repo_path, skymap=SKYMAP, collections="user")
    m = MultibandExposure.from_butler(butler, BANDS, tract=1, patch=0)
    np.testing.assert_array_equal(m.images, images)
    np.testing.assert_array_equal(m.mask, mask)
    assert m.bbox == Box(PATCH_SHAPE, (0, 0))
    # a file larger than the patch is refused
    big = tmp_path / "big.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.zeros((70, 80), np.float32), name="IMAGE"),
            fits.ImageHDU(np.ones((70, 80), np.float32), name="VARIANCE"),
            fits.ImageHDU(psfs[0], name="PSF"),
        ]
    ).writeto(big)
    with pytest.raises(BBoxError, match="not inside patch 0 of tract 1"):
        ingest_coadd(repo_path, {"g": big}, 1, 0, run="user2")


def test_missing_band_patch_or_dataset(butler, repo_path):
    with pytest.raises(
        DatasetMissingError, match=r"deepCoadd_calexp for tract=0, patch=2, band='r'"
    ):
        MultibandExposure.from_butler(butler, ["r"], tract=0, patch=2)
    with pytest.raises(DataIdError, match="band='z'"):
        MultibandExposure.from_butler(butler, ["g", "z"], tract=TRACT, patch=PATCH)
    with pytest.raises(DataIdError, match="patch=9"):
        MultibandExposure.from_butler(butler, ["g"], tract=TRACT, patch=9)
    with pytest.raises(BBoxError, match=r"deepCoadd_calexp.*band='g'.*not inside"):
        MultibandExposure.from_butler(
            butler, ["g"], parameters={"bbox": Box((5, 5), (0, 0))}, tract=TRACT, patch=PATCH
        )
    images, variance, mask, psfs = patch_arrays(0, 1)
    with pytest.raises(DataIdError, match=r"Band\(s\) \['z'\] are not in the repository"):
        ingest_arrays(repo_path, images, variance, mask, psfs, ["g", "r", "z"], 0, 1, "x")
    with pytest.raises(DataIdError, match="Patch 4 is not in tract 0"):
        ingest_arrays(repo_path, images, variance, mask, psfs, BANDS, 0, 4, "x")
    with pytest.raises(DataIdError, match="Tract 5 is not in skymap 'sim'"):
        ingest_arrays(repo_path, images, variance, mask, psfs, BANDS, 5, 0, "x")
    with pytest.raises(BBoxError, match="do not fill patch 1 of tract 0"):
        ingest_arrays(repo_path, images[:, :50], variance[:, :50], None, psfs, BANDS, 0, 1, "x")


def test_corrupted_file_names_dataset_and_data_id(repo_path):
    from lsst.daf.butler import Butler

    images, variance, mask, psfs = patch_arrays(1, 3)
    refs = ingest_arrays(repo_path, images, variance, mask, psfs, BANDS, 1, 3, "corrupt")
    butler = Butler(repo_path, skymap=SKYMAP, collections="corrupt")
    path = Path(butler.getURI(refs["g"]).ospath)
    size = path.stat().st_size
    path.write_bytes(b"\0garbage" * (size // 8) + b"x" * (size % 8))  # same size: not caught early
    with pytest.raises(
        ValueError, match=r"deepCoadd_calexp@\{skymap='sim', tract=1, patch=3, band='g'\}"
    ):
        butler.get("deepCoadd_calexp", tract=1, patch=3, band="g")
    with pytest.raises(CorruptFileError, match=r"band='g'.*not a readable FITS"):
        MultibandExposure.from_butler(butler, BANDS, tract=1, patch=3)
    # the other bands still read
    assert butler.get("deepCoadd_calexp", tract=1, patch=3, band="r").band == "r"
    # a truncated file is caught by the datastore's size check, naming the file
    path.write_bytes(b"SIMPLE")
    with pytest.raises(CorruptFileError, match=r"band='g'.*deepCoadd_calexp_1_3_g"):
        MultibandExposure.from_butler(butler, ["g"], tract=1, patch=3)


def test_repository_of_another_version_is_refused(tmp_path):
    from lsst.daf.butler import Butler

    path = tmp_path / "old"
    make_repo(path, tracts=1, patches=(1, 1))
    cfg_path = path / "butler.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["vermilion"]["repo_version"] = REPO_VERSION + 1
    cfg_path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(RepoVersionError, match=f"configuration version {REPO_VERSION + 1}"):
        open_repo(path)
    images, variance, mask, psfs = patch_arrays(0, 0)
    with pytest.raises(RepoVersionError, match="upgrade vermilion"):
        ingest_arrays(path, images, variance, mask, psfs, BANDS, 0, 0, "x")
    with pytest.raises(RepoVersionError):
        MultibandExposure.from_butler(Butler(path, skymap=SKYMAP), ["g"], tract=0, patch=0)
    # a plain butler repository is not a vermilion one
    Butler.makeRepo(tmp_path / "plain")
    with pytest.raises(RepoVersionError, match="not created by vermilion"):
        open_repo(tmp_path / "plain")
    with pytest.raises(RepoError, match="No data repository"):
        open_repo(tmp_path / "nowhere")


def test_seed_blend_rebuilds_from_the_repository(butler, filled):
    """The seed's next step: a blend with a real observation from the butler's cutout."""
    model = butler.get("deepCoadd_scarletModelData", tract=TRACT, patch=PATCH)
    blend_data = model.blends[1]
    m_exposure = MultibandExposure.fromButler(
        butler,
        model.bands,
        "deepCoadd_calexp",
        parameters={"bbox": blend_data.bbox},
        tract=TRACT,
        patch=PATCH,
    )
    blend = vermilion.io.multibandDataToScarlet(modelData=model, blendId=1, mExposure=m_exposure)
    assert blend.observation.bbox == blend_data.bbox
    np.testing.assert_array_equal(np.asarray(blend.observation.images.data), m_exposure.images)


def test_repo_root_and_default_skymap(butler, filled):
    from vermilion.repo import default_skymap, repo_root

    assert Path(repo_root(butler)) == Path(filled["path"])
    assert default_skymap(butler) == SKYMAP
    reopened = open_repo(repo_root(butler))
    assert Path(repo_root(reopened)) == Path(filled["path"])
    assert default_skymap(reopened) == SKYMAP


def test_corrupted_model_and_catalog_files_name_dataset_and_data_id(repo_path, tmp_path):
    from lsst.daf.butler import Butler

    model_file = tmp_path / "m.vmd"
    make_model_data().write(model_file)
    ref = ingest_model_data(repo_path, model_file, 0, 2, "broken")
    butler = Butler(repo_path, skymap=SKYMAP, collections="broken", run="broken", writeable=True)
    cat_ref = butler.put(make_catalog(), "deepCoadd_deblendedCatalog", tract=0, patch=2)
    for r in (ref, cat_ref):
        path = Path(butler.getURI(r).ospath)
        size = path.stat().st_size
        path.write_bytes(b"#" * size)
    data_id = r"@\{skymap='sim', tract=0, patch=2\}"
    for name in ("deepCoadd_scarletModelData", "deepCoadd_deblendedCatalog"):
        with pytest.raises(ValueError, match=name + data_id):
            butler.get(name, tract=0, patch=2)
