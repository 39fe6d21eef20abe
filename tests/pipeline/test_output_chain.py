"""``vermilion deblend --output``: output collections chained to their inputs, as pipetask's."""

from __future__ import annotations

import re

import pytest
from pipeline_testdata import BANDS, simulate

from vermilion.cli import main_deblend

SKYMAP = "sim"
TRACT = 0
SHAPE = (64, 64)
CATALOG = "deepCoadd_deblendedCatalog"
RUN_NAME = re.compile(r"^u/me/chain/\d{8}T\d{6}Z$")


@pytest.fixture
def repo(tmp_path):
    from vermilion.repo import create_repo, ingest_arrays

    root = tmp_path / "repo"
    butler = create_repo(
        root, skymap=SKYMAP, bands=BANDS, tracts=1, patches=(2, 1), patch_shape=SHAPE
    )
    for p in (0, 1):
        sim = simulate(seed=20 + p, shape=SHAPE)
        ingest_arrays(butler, sim.images, sim.variance, sim.mask, sim.psfs, sim.bands, TRACT, p)
    return str(root)


def deblend(repo, *args):
    base = ["--repo", repo, "--tract", str(TRACT), "--scheduler", "synchronous", "-j", "1"]
    assert main_deblend([*base, "--no-progress", *args]) == 0


def chain(repo, name):
    from lsst.daf.butler import Butler

    info = Butler(repo).collections.get_info(name)
    assert info.type.name == "CHAINED"
    return list(info.children)


def test_two_runs_chain_newest_first_in_front_of_the_inputs(repo):
    from lsst.daf.butler import Butler

    deblend(repo, "--patch", "0", "--output", "u/me/chain")
    first = chain(repo, "u/me/chain")
    assert len(first) == 2 and RUN_NAME.match(first[0]) and first[1] == "vermilion/coadd"
    deblend(repo, "--patch", "0", "1", "--output", "u/me/chain")
    second = chain(repo, "u/me/chain")
    assert len(second) == 3 and second[1:] == first and RUN_NAME.match(second[0])
    assert second[0] > first[0]  # newest first
    butler = Butler(repo, collections=["u/me/chain"])
    # the done patch was skipped through the chain: one catalog per patch, each in one run
    refs = butler.query_datasets(CATALOG, find_first=False, explain=False)
    assert sorted((int(r.dataId["patch"]), r.run) for r in refs) == [
        (0, first[0]),
        (1, second[0]),
    ]
    assert len(butler.query_datasets("deepCoadd_calexp", explain=False)) == 2 * len(BANDS)
    # a rerun with nothing to do leaves the chain as it was
    deblend(repo, "--patch", "0", "1", "--output", "u/me/chain")
    assert chain(repo, "u/me/chain") == second
    # --redo deblends again into a new run, which shadows the old outputs
    deblend(repo, "--patch", "1", "--output", "u/me/chain", "--redo")
    third = chain(repo, "u/me/chain")
    assert third[1:] == second
    assert (
        Butler(repo, collections=["u/me/chain"])
        .find_dataset(CATALOG, skymap=SKYMAP, tract=TRACT, patch=1)
        .run
        == third[0]
    )


def test_the_default_output_is_a_chain_that_the_default_collections_read(repo):
    from vermilion.pipeline import DEFAULT_DEBLEND_RUN
    from vermilion.repo import open_repo
    from vermilion.repo.butler import default_collections

    deblend(repo, "--patch", "0")
    links = chain(repo, DEFAULT_DEBLEND_RUN)
    assert links[0].startswith(f"{DEFAULT_DEBLEND_RUN}/") and links[1:] == ["vermilion/coadd"]
    butler = open_repo(repo, collections=default_collections())
    assert len(butler.get(CATALOG, skymap=SKYMAP, tract=TRACT, patch=0)) > 0


def test_output_run_alone_writes_a_plain_run_and_with_output_names_the_chained_run(repo):
    from lsst.daf.butler import Butler

    deblend(repo, "--patch", "0", "--output-run", "u/me/plain")
    butler = Butler(repo)
    assert butler.collections.get_info("u/me/plain").type.name == "RUN"
    deblend(repo, "--patch", "0", "--output", "u/me/named", "--output-run", "u/me/named/run1")
    assert chain(repo, "u/me/named") == ["u/me/named/run1", "vermilion/coadd"]


def test_a_repository_from_before_chains_keeps_its_run(repo):
    from lsst.daf.butler import Butler, CollectionType

    from vermilion.pipeline import DEFAULT_DEBLEND_RUN

    Butler(repo, writeable=True).collections.register(DEFAULT_DEBLEND_RUN, CollectionType.RUN)
    deblend(repo, "--patch", "0")
    butler = Butler(repo, collections=[DEFAULT_DEBLEND_RUN])
    assert butler.collections.get_info(DEFAULT_DEBLEND_RUN).type.name == "RUN"
    assert butler.find_dataset(CATALOG, skymap=SKYMAP, tract=TRACT, patch=0) is not None


def test_an_output_that_does_not_chain_to_the_inputs_is_refused(repo):
    from vermilion.repo import open_repo
    from vermilion.repo.collections import chain_output_run

    deblend(repo, "--patch", "0", "--output", "u/me/chain")
    butler = open_repo(repo, writeable=True)
    with pytest.raises(ValueError, match="does not hold the inputs"):
        chain_output_run(butler, "u/me/chain", ["skymaps"])
    with pytest.raises(ValueError, match="not a CHAINED one"):
        chain_output_run(butler, "vermilion/coadd", ["vermilion/coadd"])
