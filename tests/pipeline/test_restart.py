"""Rebuilding stored blends, per-band catalog footprints, warm restarts, the seed walkthrough.

One small repository (a simulated 160 x 160 px, 6-band patch with a spatially varying PSF)
is made and deblended once per session; the pipeline's final model of every blend is
captured while it runs, so rebuilt blends are compared with what the pipeline fitted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from restart_testdata import PATCH, TRACT, make_repo

import vermilion
from vermilion.io import ModelData, ModelDataError, blend_to_data, multiband_data_to_blend
from vermilion.pipeline.footprints import update_catalog_footprints, updateCatalogFootprints
from vermilion.pipeline.restart import (
    BlendLoader,
    add_source,
    load_blend,
    restart_config,
    save_blend,
    warm_restart,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_walkthrough.py"


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """The deblended repository and the pipeline's final model of every blend."""
    return make_repo(tmp_path_factory.mktemp("restart") / "repo")


@pytest.fixture(scope="session")
def loader(repo):
    return BlendLoader(repo["root"], TRACT, PATCH)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ---- rebuilding ---------------------------------------------------------------------------


def test_rebuilt_blends_render_the_pipelines_final_models(repo, loader):
    finals = repo["finals"]
    ids = loader.parent_ids()
    assert len(ids) == len(finals) >= 5
    varying = 0
    for pid in ids:
        final = finals[pid]
        blend, parent = loader.load(pid)
        assert parent.id == pid
        assert _rel(blend.get_model(convolve=True).data, final["rendered"]) <= 1e-5
        # the same observation: weights (footprint, masks) and likelihood of the final model
        np.testing.assert_array_equal(blend.observation.weights.data, final["weights"])
        assert blend.log_likelihood == pytest.approx(final["logL"], rel=1e-6)
        # render-only, from the repository's PSF models evaluated at the blend's PSF centre
        psf_only, _ = loader.load(pid, with_exposure=False)
        assert not psf_only.observation.has_data
        assert _rel(psf_only.get_model(convolve=True).data, final["rendered"]) <= 1e-5
        # the PSF varies: the cutout's own centre would give another PSF than the pipeline's
        cutout = loader.exposure(blend.bbox, blend.bands)
        varying += not np.allclose(cutout.psfs, final["psfs"], rtol=0, atol=1e-6)
    assert varying > 0


def test_the_seed_calls_through_the_butler(repo, loader):
    """The seed's lines with the Rubin names and keywords give the same blend."""
    from lsst.daf.butler import Butler

    from vermilion.io import multibandDataToScarlet
    from vermilion.repo import MultibandExposure

    butler = Butler(repo["root"], skymap="sim", collections=loader.collections)
    catalog = butler.get("deepCoadd_deblendedCatalog", tract=TRACT, patch=PATCH)
    modelData = butler.get("deepCoadd_scarletModelData", tract=TRACT, patch=PATCH)
    parent = catalog[catalog["deblend_nChild"] == 5][0]
    blendData = modelData.blends[parent.getId()]
    mExposure = MultibandExposure.fromButler(
        butler,
        modelData.bands,
        "deepCoadd_calexp",
        parameters={"bbox": blendData.bbox},
        tract=TRACT,
        patch=PATCH,
    )
    blend = multibandDataToScarlet(
        modelData=modelData,
        blendId=parent.getId(),
        mExposure=mExposure,
        footprint=parent.getFootprint(),
    )
    assert len(blend.sources) == 5
    final = repo["finals"][parent.getId()]
    assert _rel(blend.get_model(convolve=True).data, final["rendered"]) <= 1e-5
    # a full patch exposure (not a cutout) gives the same observation
    whole = MultibandExposure.fromButler(
        butler, modelData.bands, "deepCoadd_calexp", tract=TRACT, patch=PATCH
    )
    same = multibandDataToScarlet(modelData, parent.getId(), mExposure=whole, footprint=parent)
    np.testing.assert_array_equal(same.observation.images.data, blend.observation.images.data)
    assert same.log_likelihood == blend.log_likelihood
    # float64 components when asked
    wide = multiband_data_to_blend(modelData, parent.getId(), mexposure=mExposure, dtype="f8")
    assert wide.sources[0].components[0].morph.dtype == np.float64
    assert _rel(wide.get_model(convolve=True).data, final["rendered"]) <= 1e-5


def test_a_restart_with_zero_iterations_keeps_the_stored_model(repo, loader):
    pid = loader.parent_ids(n_children=5)[0]
    blend, _ = loader.load(pid)
    stored = loader.model_data(pid).blends[pid]
    restarted = warm_restart(blend, restart_config(blend.metadata["model_data"]), max_iter=0)
    assert restarted.it == 0
    again = blend_to_data(restarted)
    assert again.sources.keys() == stored.sources.keys()
    for sid, src in stored.sources.items():
        assert again.sources[sid].components == src.components
        assert again.sources[sid].peak_id == src.peak_id
    assert again.psf_center == stored.psf_center
    np.testing.assert_array_equal(again.psf, stored.psf)
    assert restarted.log_likelihood == pytest.approx(repo["finals"][pid]["logL"], rel=1e-6)


def test_a_restart_prunes_tendrils_as_the_first_fit_did(repo, loader):
    """Stored models do not keep which sources prune their tendrils; a restart knows again."""
    from vermilion.core import Chi2InitParameters, init_main_source

    flags = []
    for pid in loader.parent_ids()[:6]:
        blend, _ = loader.load(pid)
        assert not any(c.prune_thin for s in blend.sources for c in s.components)  # as stored
        config = restart_config(blend.metadata["model_data"])
        restarted = warm_restart(blend, config, max_iter=0)
        init = Chi2InitParameters(blend.observation, min_snr=config.init_min_snr)
        for source in restarted.sources:
            fresh = init_main_source(source.components[0].peak, init)
            assert {c.prune_thin for c in source.components} == {
                c.prune_thin for c in fresh.components
            }
        flags += [c.prune_thin for s in restarted.sources for c in s.components]
    assert any(flags) and not all(flags)  # faint and bright sources among them


def test_refit_saved_into_a_new_run_leaves_the_original(repo, loader):
    from vermilion.repo import open_repo

    root = repo["root"]
    pid = loader.parent_ids(n_children=5)[0]
    deblend_run = loader.collections[0]
    butler = open_repo(root, collections=loader.collections)
    original_ref = butler.find_dataset(
        "deepCoadd_scarletModelData", tract=TRACT, patch=PATCH, collections=deblend_run
    )
    original = butler.get(original_ref)

    blend, parent = load_blend(root, TRACT, PATCH, pid)
    y, x = parent.getFootprint().centroid
    add_source(blend, (round(y), round(x)), metadata={"note": "added"})
    refit = warm_restart(blend, max_iter=20, min_iter=5)
    assert refit.it >= 5 and len(refit.sources) == 6
    ref = save_blend(root, refit, pid, TRACT, PATCH, "test/refit", base_model_data=original)

    # the original run still holds the very same dataset and models
    again = butler.find_dataset(
        "deepCoadd_scarletModelData", tract=TRACT, patch=PATCH, collections=deblend_run
    )
    assert again.id == original_ref.id
    assert butler.get(again) == original
    # the new run: the refitted blend, the others unchanged
    saved = butler.get(ref)
    assert saved.blends.keys() == original.blends.keys()
    for bid in original.blends:
        if bid != pid:
            assert saved.own_view(saved.blends[bid]) == original.own_view(original.blends[bid])
    new = saved.blends[pid]
    assert len(new.sources) == 6 and new.metadata["refit"] is True
    added = [s for s in new.sources.values() if (s.metadata or {}).get("note") == "added"]
    assert len(added) == 1
    new_id = next(i for i, s in new.sources.items() if s is added[0])
    assert new_id not in set(np.asarray(loader.catalog["id"]).tolist())
    assert new.psf_center == original.blends[pid].psf_center
    # reading the refit back gives the refitted models on the same observation
    back, _ = load_blend(root, TRACT, PATCH, pid, collections=["test/refit", *loader.collections])
    np.testing.assert_allclose(
        back.get_model(convolve=True).data,
        refit.get_model(convolve=True).data,
        rtol=1e-5,
        atol=1e-4,
    )
    # the run now exists: a second save there is refused
    with pytest.raises(ValueError, match="already holds"):
        save_blend(root, refit, pid, TRACT, PATCH, "test/refit", base_model_data=original)


def test_adding_a_missed_source_improves_the_fit_and_its_neighbours(restart_blend_case):
    """Three galaxies in a row; the middle one is left out of the peaks, then added back."""
    for case in restart_blend_case:
        sim, model, keep, missing, truth = case
        stored = multiband_data_to_blend(model, 1, mexposure=sim)
        before = _flux_errors(stored, keep, truth)
        blend = multiband_data_to_blend(model, 1, mexposure=sim)
        add_source(blend, missing[1])
        refit = warm_restart(blend, restart_config(model), max_iter=100, e_rel=1e-4, min_iter=10)
        after = _flux_errors(refit, keep, truth)
        assert refit.log_likelihood > stored.log_likelihood + 100
        # Together the neighbours give back most of the light they had taken, and none
        # gets worse by more than 0.01 (measured, seeds 2 and 11: 0.325 / 0.210 -> 0.037 /
        # 0.219 and 0.292 / 0.135 -> 0.144 / 0.101).
        assert after.sum() < 0.7 * before.sum(), (before, after)
        assert np.all(after < before + 0.01), (before, after)


def _flux_errors(blend, rows, truth) -> np.ndarray:
    """|model flux - true flux| summed over bands, over the true flux, of the first sources."""
    out = []
    for row, src in zip(rows, blend.sources):
        flux = src.get_model().data.sum(axis=(1, 2), dtype=np.float64)
        out.append(np.sum(np.abs(flux - truth[row])) / np.sum(truth[row]))
    return np.array(out)


@pytest.fixture(scope="module")
def restart_blend_case():
    """Simulated blends deblended by the pipeline's worker without their middle source."""
    from vermilion.core import MASK_PLANES
    from vermilion.pipeline import DeblendConfig
    from vermilion.pipeline._worker import BlendJob, Settings, deblend_blend
    from vermilion.sim import simulate_blend

    cases = []
    sep = 9
    positions = [(24, 24 - sep), (24, 24), (24, 24 + sep)]
    keep = [0, 2]
    for seed in (2, 11):  # deterministic
        sim = simulate_blend(
            3,
            shape=(48, 48),
            bands="gri",
            seed=seed,
            positions=positions,
            mags=[21.0, 21.5, 21.3],
            is_star=[False] * 3,
        )
        config = DeblendConfig()
        settings = Settings.build(config, sim.bands, sim.psfs)
        job = BlendJob(
            index=0,
            parent_id=1,
            bbox=sim.bbox,
            images=sim.images,
            variance=sim.variance,
            mask=sim.mask,
            footprint=np.ones(sim.shape, bool),
            peaks=np.array([positions[k] for k in keep]),
            peak_ids=np.array(keep),
            bad_mask=MASK_PLANES["BAD"] | MASK_PLANES["NO_DATA"],
            psf_center=sim.bbox.center,
        )
        result = deblend_blend(job, settings)
        assert not result.failed, result.reason
        model = ModelData(
            sim.bands,
            settings.model_psf,
            observed_psf=sim.psfs,
            metadata={"deblend_config": config.to_dict()},
        )
        model.blends[1] = model.attach(result.blend_data)
        truth = np.array([[sim.truth[f"flux_{b}"][k] for b in sim.bands] for k in range(3)])
        cases.append((sim, model, keep, positions, truth))
    return cases


# ---- per-band footprints -------------------------------------------------------------------


def _catalog_and_models(repo, loader):
    from vermilion.repo import open_repo

    butler = open_repo(repo["root"], collections=loader.collections)
    catalog = butler.get("deepCoadd_deblendedCatalog", tract=TRACT, patch=PATCH)
    model = butler.get("deepCoadd_scarletModelData", tract=TRACT, patch=PATCH)
    return butler, catalog, model


def test_heavy_footprints_hold_the_reapportioned_flux(repo, loader):
    from vermilion.detect import HeavyFootprint
    from vermilion.repo import MultibandExposure

    butler, catalog, model = _catalog_and_models(repo, loader)
    band = "r"
    pipeline_flux = np.array(catalog[f"deblend_reapportionedFlux_{band}"])
    exposure = MultibandExposure.from_butler(
        butler, model.bands, "deepCoadd_calexp", tract=TRACT, patch=PATCH
    )[band]
    psf = butler.get("deepCoadd_calexp.psf", tract=TRACT, patch=PATCH, band=band)
    n_blends = len(model.blends)
    n = update_catalog_footprints(catalog, model, band, psf, redistribute_image=exposure)
    children = np.flatnonzero(np.asarray(catalog["parent"]) != 0)
    assert n == len(children)
    assert not model.blends  # each blend dropped once done
    assert n_blends > 0
    sums = []
    for row in children:
        heavy = catalog["footprint"][row]
        assert isinstance(heavy, HeavyFootprint) and heavy.bands == (band,)
        sums.append(heavy.values.sum(dtype=np.float64))
        assert catalog["footprint_area"][row] == heavy.area
        assert heavy.peaks["id"][0] == catalog["peak_id"][row]
    sums = np.array(sums)
    # the heavy footprints sum to the re-apportioned fluxes, the pipeline's included
    np.testing.assert_allclose(
        sums, catalog[f"deblend_reapportionedFlux_{band}"][children], rtol=1e-5
    )
    np.testing.assert_allclose(sums, pipeline_flux[children], rtol=1e-4, atol=1e-3)
    # and the children of a parent share out its image inside the footprint
    parents = catalog[(np.asarray(catalog["parent"]) == 0) & (catalog["deblend_nChild"] > 1)]
    for parent in parents:
        fp = parent.getFootprint()
        box = fp.bbox
        shared = np.zeros(box.shape)
        for child in catalog.children(parent.id):
            img = np.zeros((1, *box.shape), np.float32)
            child.getFootprint().insert(img, box.origin)
            shared += img[0]
        observed = exposure.image[box.slices_in(exposure.bbox)]
        inside = fp.spans.as_mask(box) & (shared != 0)
        np.testing.assert_allclose(shared[inside], observed[inside], rtol=1e-4, atol=1e-2)
    # the other band columns
    coverage = np.asarray(catalog[f"deblend_dataCoverage_{band}"])[children]
    assert np.all((coverage >= 0) & (coverage <= 1))
    blendedness = np.asarray(catalog[f"deblend_blendedness_{band}"])[children]
    assert np.all((blendedness >= -1e-6) & (blendedness <= 1))
    peak_flux = np.asarray(catalog[f"deblend_peak_instFlux_{band}"])[children]
    assert np.all(np.isfinite(peak_flux))


def test_heavy_footprints_of_the_models(repo, loader):
    """Without an image, each child's heavy footprint holds its model in the observed seeing."""
    _, catalog, model = _catalog_and_models(repo, loader)
    band = "i"
    b = model.bands.index(band)
    pid = loader.parent_ids(n_children=5)[0]
    blend, _ = loader.load(pid)
    n = update_catalog_footprints(catalog, model, band, None, remove_model_data=False)
    assert n == int(np.sum(np.asarray(catalog["parent"]) != 0))
    assert len(model.blends) == len(loader.parent_ids())
    rendered = blend.get_model(convolve=True).data[b]
    rebuilt = np.zeros(blend.bbox.shape, np.float32)
    for source in blend.sources:
        child = catalog.find(source.metadata["id"])
        heavy = child.getFootprint()
        flux = heavy.values.sum(dtype=np.float64)
        # the rendered model keeps (almost) all the model's flux inside the blend box
        assert flux == pytest.approx(child[f"deblend_scarletFlux_{band}"], rel=0.1)
        one = np.zeros((1, *blend.bbox.shape), np.float32)
        heavy.insert(one, blend.bbox.origin)
        rebuilt += one[0]
    np.testing.assert_allclose(rebuilt, rendered, rtol=1e-4, atol=1e-5 * rendered.max())
    assert "deblend_reapportionedFlux_i" in catalog.colnames  # the pipeline's, left alone
    assert "deblend_dataCoverage_i" not in catalog.colnames


def test_isolated_sources_and_a_plain_array(repo):
    """Parents kept as isolated sources get the image in their footprint; arrays work too."""
    from vermilion.detect import SourceCatalog
    from vermilion.pipeline import DeblendTask

    sim = repo["sim"]
    from vermilion.detect.detection import detect_sources

    parents = detect_sources(
        sim.images, sim.variance, sim.mask, sim.psfs, bands=sim.bands, tract=0, patch=0
    )
    catalog, model = DeblendTask({"processSingles": False}, workers=1).run(sim, parents)
    assert isinstance(catalog, SourceCatalog) and model.isolated
    b = sim.bands.index("g")
    n = update_catalog_footprints(
        catalog, model, "g", sim.psfs[b], redistribute_image=sim.images[b], mask_image=sim.mask[b]
    )
    assert n == int(np.sum(np.asarray(catalog["parent"]) != 0))
    assert not model.isolated and not model.blends
    kids = np.flatnonzero(np.asarray(catalog["parent"]) != 0)
    sums = np.array([catalog["footprint"][r].values.sum(dtype=np.float64) for r in kids])
    np.testing.assert_allclose(sums, catalog["deblend_reapportionedFlux_g"][kids], rtol=1e-5)


# ---- the seed walkthrough ----------------------------------------------------------------


def test_seed_walkthrough_runs_on_the_repository(repo, tmp_path):
    spec = importlib.util.spec_from_file_location("seed_walkthrough", EXAMPLE)
    walk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walk)
    out = tmp_path / "pictures"
    args = walk.parse_args(
        [repo["root"], "--tract", str(TRACT), "--patch", str(PATCH), "--out", str(out)]
    )
    result = walk.run(args)
    assert "exactly 5 children" in result["why"]
    assert set(result["pictures"]) == {
        "reconstructed_blend",
        "scene",
        "sources",
        "sources_flux",
        "scene_refit",
    }
    for path in result["pictures"].values():
        assert Path(path).stat().st_size > 1000
        assert Path(path).read_bytes()[:4] == b"\x89PNG"
    assert result["logL_refit"] > result["logL_stored"]
    # no parent with 99 children: the one with the most, said so
    parent, why = walk.pick_parent(BlendLoader(repo["root"], 0, 0).catalog, 99)
    assert "the most" in why and parent["deblend_nChild"] > 5


# ---- bad input ---------------------------------------------------------------------------


def test_bad_input_names_the_blend_and_band(repo, loader):
    from vermilion.repo import MultibandExposure

    pid = loader.parent_ids(n_children=5)[0]
    model = loader.model_data(pid)
    data = model.blends[pid]
    bands = list(model.bands)
    # a blend that is not in the model data
    with pytest.raises(ModelDataError, match="no such blend") as err:
        multiband_data_to_blend(model, pid + 1)
    assert err.value.blend_id == pid + 1 and str(pid + 1) in str(err.value)
    # PSFs: wrong number, wrong bands, a bad image
    psfs = loader.psfs(bands)
    with pytest.raises(ModelDataError, match="5 observed PSFs for 6 bands") as err:
        multiband_data_to_blend(model, pid, observed_psfs=psfs[:5])
    assert err.value.blend_id == pid
    by_band = dict(zip(bands, psfs))
    del by_band["z"]
    by_band["N921"] = psfs[0]
    with pytest.raises(ModelDataError, match=r"band\(s\) \['z'\]") as err:
        multiband_data_to_blend(model, pid, observed_psfs=by_band)
    assert err.value.blend_id == pid
    bad = [np.asarray(p.computeKernelImage(None)) for p in psfs]
    bad[2] = np.zeros((4, 4))
    with pytest.raises(ModelDataError, match="PSF of band 'r'") as err:
        multiband_data_to_blend(model, pid, observed_psfs=bad)
    assert err.value.blend_id == pid
    # an exposure cutout that does not cover the blend box, or lacks a band
    small = data.bbox.grow(-2)
    cutout = loader.exposure(small, bands)
    with pytest.raises(ModelDataError, match="not the whole blend box") as err:
        multiband_data_to_blend(model, pid, mexposure=cutout)
    assert err.value.blend_id == pid
    full = loader.exposure(data.bbox, bands)
    five = full[["g", "r", "i", "z", "y"]]
    assert isinstance(five, MultibandExposure)
    with pytest.raises(ModelDataError, match=r"no band\(s\) \['u'\]") as err:
        multiband_data_to_blend(model, pid, mexposure=five)
    assert err.value.blend_id == pid
    # bands in another order are matched by name
    reordered = full[list(reversed(bands))]
    same = multiband_data_to_blend(model, pid, mexposure=reordered)
    np.testing.assert_array_equal(
        same.observation.images.data,
        multiband_data_to_blend(model, pid, mexposure=full).observation.images.data,
    )
    with pytest.raises(ModelDataError, match="dtype"):
        multiband_data_to_blend(model, pid, dtype=np.int32)


def test_bad_requests_through_the_repository(repo, loader):
    pid = loader.parent_ids(n_children=5)[0]
    child = int(loader.catalog.children(pid)["id"][0])
    with pytest.raises(ValueError, match=f"blend {child}: this record is a child of parent {pid}"):
        loader.load(child)
    with pytest.raises(ValueError, match="blend 123456789: no record"):
        load_blend(repo["root"], TRACT, PATCH, 123456789)
    blend, _ = loader.load(pid, with_exposure=False)
    with pytest.raises(ValueError, match="render-only"):
        add_source(blend, blend.bbox.center)
    with pytest.raises(ValueError, match="render-only"):
        warm_restart(blend)
    blend, _ = loader.load(pid)
    with pytest.raises(ValueError, match="outside the blend box"):
        add_source(blend, (0, 0))
    # added sources need ids that cannot collide with the catalog's
    add_source(blend, blend.sources[0].peak, min_separation=0)  # a duplicate, when told
    del blend.metadata["next_source_id"]
    with pytest.raises(ValueError, match="need new catalog ids"):
        save_blend(repo["root"], blend, pid, TRACT, PATCH, "test/no-ids")
    assert "test/no-ids" not in loader.butler.collections.query("*")  # nothing written
    # update_catalog_footprints: unknown band, an image that does not cover the blends
    _, catalog, model = _catalog_and_models(repo, loader)
    with pytest.raises(ModelDataError, match="band 'N921' is not in"):
        update_catalog_footprints(catalog, model, "N921", None)
    with pytest.raises(ModelDataError, match="covers") as err:
        update_catalog_footprints(catalog, model, "r", None, redistribute_image=np.zeros((20, 20)))
    assert err.value.blend_id is not None
    # the Rubin spelling: modelData first, as lsst.meas.extensions.scarlet.io has it
    with pytest.raises(ModelDataError, match="band 'N921' is not in"):
        updateCatalogFootprints(model, catalog, "N921")
    assert vermilion.updateCatalogFootprints is updateCatalogFootprints
    assert vermilion.update_catalog_footprints is update_catalog_footprints
    assert len(model.blends) == len(loader.parent_ids())  # nothing consumed on error
