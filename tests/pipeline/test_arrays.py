"""vermilion.deblend: arrays in, the repository path's catalog out."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_testdata import BANDS, simulate

import vermilion
from vermilion.cli import main_deblend

SHAPE = (96, 96)


@pytest.fixture(scope="module")
def repo_and_sim(tmp_path_factory):
    """One 96 x 96 simulated patch ingested as tract 0, patch 1 of a repository."""
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path_factory.mktemp("arrays") / "repo"
    butler = create_repo(
        root, skymap="sim", bands=BANDS, tracts=1, patches=(2, 1), patch_shape=SHAPE
    )
    sim = simulate(seed=21, shape=SHAPE)
    ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, 0, 1)
    return str(root), sim


def test_deblend_on_arrays_equals_the_repository_path(repo_and_sim):
    """`vermilion deblend` on an ingested patch and `vermilion.deblend` on the same arrays
    give the same catalog, column for column, and the same models. The ids pack the
    tract and patch: given the repository's (tract=0, patch=1) they are equal too."""
    from vermilion.repo import MultibandExposure, open_repo

    root, sim = repo_and_sim
    code = main_deblend(
        ["--repo", root, "--tract", "0", "--patch", "1", "--scheduler", "synchronous",
         "-j", "1", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    butler = open_repo(root, collections=["vermilion/deblend", "vermilion/coadd"])
    data_id = {"skymap": "sim", "tract": 0, "patch": 1}
    stored = butler.get("deepCoadd_deblendedCatalog", data_id)
    stored_models = butler.get("deepCoadd_scarletModelData", data_id)
    # the same pixels, as arrays: what the repository holds (its box origin and WCS)
    mexp = MultibandExposure.from_butler(butler, list(BANDS), "deepCoadd_calexp", **data_id)
    np.testing.assert_array_equal(mexp.images, sim.images.astype(np.float32))
    catalog, models = vermilion.deblend(
        sim.images, sim.variance, sim.psfs, bands=BANDS, wcs=mexp.wcs, mask=sim.mask,
        origin=mexp.bbox.origin, tract=0, patch=1,
    )  # fmt: skip
    assert len(catalog) == len(stored) > 0
    assert catalog.colnames == stored.colnames
    for name in catalog.colnames:
        if name == "footprint":
            assert all(a.spans == b.spans for a, b in zip(catalog[name], stored[name]))
        elif catalog[name].dtype.kind == "O":
            assert list(catalog[name]) == list(stored[name]), name
        else:
            np.testing.assert_array_equal(catalog[name], stored[name], err_msg=name)
    assert np.all(np.isfinite(catalog["coord_ra"])) and np.all(np.isfinite(catalog["coord_dec"]))
    assert sorted(models.blends) == sorted(stored_models.blends)
    for pid, blend in models.blends.items():
        other = stored_models.blends[pid]
        assert list(blend.sources) == list(other.sources)
        for sid, source in blend.sources.items():
            for a, b in zip(source.components, other.sources[sid].components):
                np.testing.assert_array_equal(a.spectrum, b.spectrum)
                np.testing.assert_array_equal(a.morph, b.morph)
    # default ids (tract 0, patch 0) differ from the repository's only in the packed patch
    from vermilion.detect import unpack_source_id

    default, _ = vermilion.deblend(sim.images, sim.variance, sim.psfs, bands=BANDS, mask=sim.mask)
    assert np.array_equal(unpack_source_id(np.asarray(default["id"]))[2],
                          unpack_source_id(np.asarray(stored["id"]))[2])  # fmt: skip
    assert set(unpack_source_id(np.asarray(default["id"]))[1]) == {0}


def test_deblend_checks_its_arrays():
    sim = simulate(seed=3, shape=(48, 48), density=50)
    with pytest.raises(ValueError, match=r"images must be \(bands, h, w\)"):
        vermilion.deblend(sim.images[0], sim.variance[0], sim.psfs)
    with pytest.raises(ValueError, match="2 band names for 3"):
        vermilion.deblend(sim.images, sim.variance, sim.psfs, bands="gr")
    with pytest.raises(ValueError, match="psfs must be"):
        vermilion.deblend(sim.images, sim.variance, sim.psfs[0], bands=BANDS)
