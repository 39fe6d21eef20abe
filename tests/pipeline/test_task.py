"""DeblendTask on small simulated patches: outputs, limits, failures, parallel runs."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_testdata import blended_rows, with_pixels

from vermilion.core import FitDivergenceError
from vermilion.pipeline import DeblendConfig, DeblendTask


def _children_by_parent(catalog):
    parent = np.asarray(catalog["parent"])
    return {int(p): np.flatnonzero(parent == p) for p in np.unique(parent[parent != 0])}


def test_every_parent_becomes_a_blend_with_one_child_per_peak(scene, serial_result):
    _, parents = scene
    catalog, model_data = serial_result
    n_parents = len(parents)
    assert np.all(catalog["parent"][:n_parents] == 0)
    assert not np.any(catalog["deblend_failed"]) and not np.any(catalog["deblend_skipped"])
    # one child per peak, ids unique and after the parents'
    assert len(catalog) == n_parents + int(parents["deblend_nPeaks"].sum())
    assert np.array_equal(catalog["deblend_nChild"][:n_parents], parents["deblend_nPeaks"])
    ids = np.asarray(catalog["id"])
    assert len(np.unique(ids)) == len(ids) and ids[n_parents:].min() > ids[:n_parents].max()
    by_parent = _children_by_parent(catalog)
    for row in range(n_parents):
        pid = int(catalog["id"][row])
        kids = catalog[by_parent[pid]]
        fp = parents["footprint"][row]
        # the children's peaks are the parent's peaks, in order
        assert list(kids["peak_id"]) == list(fp.peaks["id"])
        assert list(zip(kids["peak_y"], kids["peak_x"])) == list(zip(fp.peaks["y"], fp.peaks["x"]))
        # every child footprint lies inside its parent's
        for child_fp in kids["footprint"]:
            assert (child_fp.spans & fp.spans) == child_fp.spans
            assert child_fp.n_peaks == 1
        # the stored models are keyed by the children's ids
        assert list(model_data.blends[pid].sources) == list(kids["id"])
        assert catalog["deblend_iterations"][row] >= DeblendConfig().minIter
        assert np.all(kids["deblend_iterations"] == catalog["deblend_iterations"][row])
        assert np.isfinite(catalog["deblend_logL"][row]) and catalog["deblend_logL"][row] < 0
    assert set(model_data.blends) == set(int(i) for i in parents["id"])


def test_reapportioned_fluxes_add_up_to_the_image_in_each_footprint(scene, serial_result):
    patch, parents = scene
    catalog, _ = serial_result
    by_parent = _children_by_parent(catalog)
    for row in blended_rows(parents):
        fp = parents["footprint"][row]
        ys, xs = fp.spans.indices()
        kids = catalog[by_parent[int(parents["id"][row])]]
        for b, band in enumerate(patch.bands):
            observed = patch.images[b, ys, xs].astype(np.float64).sum()
            apportioned = np.sum(kids[f"deblend_reapportionedFlux_{band}"], dtype=np.float64)
            # pixels where every child's rendered model is below 0.05 noise rms go to no
            # child: the parent's column says how much
            apportioned += float(catalog[f"deblend_unassignedFlux_{band}"][row])
            assert apportioned == pytest.approx(observed, rel=1e-3, abs=1e-2 * np.sqrt(len(ys)))
            # the models account for most of the flux of bright blends
            model = np.sum(kids[f"deblend_scarletFlux_{band}"], dtype=np.float64)
            if observed > 50 * np.sqrt(patch.variance[b, ys, xs].sum()):
                assert model == pytest.approx(observed, rel=0.15)


def test_flux_columns_are_the_stored_models_and_match_the_truth(scene, serial_result):
    patch, _ = scene
    catalog, model_data = serial_result
    for blend in model_data.blends.values():
        for sid, source in blend.sources.items():
            rec = catalog.find(sid)
            flux = sum(c.get_model().sum(axis=(1, 2), dtype=np.float64) for c in source.components)
            for b, band in enumerate(patch.bands):
                assert rec[f"deblend_scarletFlux_{band}"] == pytest.approx(flux[b], rel=1e-5)
    # the brightest simulated source is found and measured
    truth = patch.truth
    t = truth[int(np.argmax(truth["snr"]))]
    kids = catalog[np.asarray(catalog["parent"]) != 0]
    d2 = (kids["peak_y"] - t["y"]) ** 2 + (kids["peak_x"] - t["x"]) ** 2
    assert d2.min() <= 2
    rec = kids[int(np.argmin(d2))]
    for band in patch.bands:
        assert rec[f"deblend_scarletFlux_{band}"] == pytest.approx(t[f"flux_{band}"], rel=0.03)


def test_config_is_recorded_with_the_outputs(scene):
    patch, parents = scene
    config = DeblendConfig(maxIter=20, minIter=5)
    catalog, model_data = DeblendTask(config, workers=1).run(patch, parents)
    assert catalog.meta["deblend_config"]["maxIter"] == 20
    assert DeblendConfig.from_dict(model_data.metadata["deblend_config"]) == config
    assert catalog.meta["tract"] == parents.meta["tract"]
    assert np.all(catalog["deblend_iterations"] <= 20)
    assert model_data.bands == tuple(patch.bands)
    assert np.array_equal(model_data.observed_psf, patch.psfs)


def test_parallel_run_is_identical_to_the_serial_run(scene, serial_result):
    patch, parents = scene
    catalog, model_data = serial_result
    par_catalog, par_model = DeblendTask(workers=2).run(patch, parents)
    assert par_catalog.equals(catalog)
    assert par_model == model_data
    for pid, blend in model_data.blends.items():
        other = par_model.blends[pid]
        for sid, source in blend.sources.items():
            for a, b in zip(source.components, other.sources[sid].components):
                assert a.morph.tobytes() == b.morph.tobytes()
                assert a.spectrum.tobytes() == b.spectrum.tobytes()


def _other_blends_unchanged(reference, catalog, model_data, bad_pid):
    """Every blend but ``bad_pid`` has the same models and records as in ``reference``."""
    ref_catalog, ref_model = reference
    assert set(model_data.blends) == set(ref_model.blends) - {bad_pid}
    for pid, blend in model_data.blends.items():
        ref = ref_model.blends[pid]
        assert (blend.origin, blend.shape) == (ref.origin, ref.shape)
        # children ids shift after a failed blend; the models do not change
        assert list(blend.sources.values()) == list(ref.sources.values())
        for name in ("deblend_nChild", "deblend_iterations", "deblend_logL"):
            assert catalog.find(pid)[name] == ref_catalog.find(pid)[name]
        kids, ref_kids = catalog.children(pid), ref_catalog.children(pid)
        for name in ("peak_id", "deblend_scarletFlux_r", "deblend_reapportionedFlux_g"):
            assert np.array_equal(kids[name], ref_kids[name])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_diverging_blend_is_flagged_and_its_neighbours_are_deblended(
    scene, serial_result, workers
):
    patch, parents = scene
    row = int(blended_rows(parents)[0])
    pid = int(parents["id"][row])
    # absurd pixel values overflow the float32 likelihood: the fit diverges
    bad = with_pixels(patch, parents["footprint"][row].spans.indices(), images=1e30)
    with np.errstate(all="ignore"):
        catalog, model_data = DeblendTask(workers=workers).run(bad, parents)
    rec = catalog.find(pid)
    assert rec["deblend_failed"] and rec["deblend_nChild"] == 0
    assert "FitDivergenceError" in rec["deblend_failReason"]
    assert pid not in model_data.blends
    assert not np.any(np.asarray(catalog["parent"]) == pid)
    assert int(np.sum(catalog["deblend_failed"])) == 1
    _other_blends_unchanged(serial_result, catalog, model_data, pid)


def test_nan_pixels_over_a_footprint_fail_that_blend_only(scene, serial_result):
    patch, parents = scene
    row = int(blended_rows(parents)[1])
    pid = int(parents["id"][row])
    bad = with_pixels(patch, parents["footprint"][row].spans.indices(), images=np.nan)
    catalog, model_data = DeblendTask(workers=1).run(bad, parents)
    rec = catalog.find(pid)
    assert rec["deblend_failed"] and "masked" in rec["deblend_failReason"]
    assert pid not in model_data.blends
    _other_blends_unchanged(serial_result, catalog, model_data, pid)


def test_without_catch_failures_the_error_is_raised(scene):
    patch, parents = scene
    row = int(blended_rows(parents)[0])
    bad = with_pixels(patch, parents["footprint"][row].spans.indices(), images=1e30)
    config = DeblendConfig(catchFailures=False)
    with np.errstate(all="ignore"), pytest.raises(FitDivergenceError):
        DeblendTask(config, workers=1).run(bad, parents)
    # from a worker process the error arrives too (as a RuntimeError naming it
    # when it cannot be pickled)
    with pytest.raises(Exception, match=r"FitDivergenceError|Fit diverged"):
        DeblendTask(config, workers=2, mp_context="fork").run(bad, parents)


def test_peaks_on_the_image_edge(scene):
    """A parent cut by the image edge, with a peak on the edge pixel, is still deblended."""
    from vermilion.detect.catalog import SourceCatalog
    from vermilion.detect.footprint import Footprint, make_peaks

    patch, _ = scene
    h, w = patch.shape
    y = int(np.argmax(patch.images.sum(0)[:, :20].max(axis=1)))
    mask = np.zeros((h, w), bool)
    mask[max(0, y - 6) : y + 7, :8] = True
    edge = Footprint(mask, make_peaks([y, y + 3], [0, 4], value=[10.0, 5.0], id=[900, 901]))
    # a footprint that leaves the exposure is flagged, not deblended
    outside = Footprint(
        np.ones((5, 5), bool), make_peaks([h + 1], [5], value=[1.0], id=[902]), yx0=(h - 2, 3)
    )
    cat = SourceCatalog.from_footprints([edge, outside], bands=patch.bands)
    catalog, model_data = DeblendTask(workers=1).run(patch, cat)
    assert catalog["deblend_nChild"][0] == 2 and not catalog["deblend_failed"][0]
    assert (
        catalog["deblend_failed"][1] and "leaves the exposure" in catalog["deblend_failReason"][1]
    )
    assert len(model_data.blends) == 1


def test_limits_skip_parents_with_their_flags(scene):
    patch, parents = scene
    config = DeblendConfig(maxNumberOfPeaks=2)
    catalog, model_data = DeblendTask(config, workers=1).run(patch, parents)
    many = np.asarray(parents["deblend_nPeaks"]) > 2
    assert many.any()
    n = len(parents)
    assert np.array_equal(np.asarray(catalog["deblend_tooManyPeaks"][:n]), many)
    assert np.array_equal(np.asarray(catalog["deblend_skipped"][:n]), many)
    assert np.all(catalog["deblend_nChild"][:n][many] == 0)
    assert set(model_data.blends) == set(int(i) for i in parents["id"][~many])

    area = np.asarray(parents["footprint_area"])
    limit = int(np.median(area))
    catalog, _ = DeblendTask(DeblendConfig(maxFootprintArea=limit), workers=1).run(patch, parents)
    assert np.array_equal(np.asarray(catalog["deblend_parentTooBig"][:n]), area > limit)
    big = np.asarray(parents["deblend_nPeaks"]) * area
    catalog, _ = DeblendTask(
        DeblendConfig(maxAreaTimesPeaks=float(np.max(big) - 1)), workers=1
    ).run(patch, parents)
    assert np.array_equal(np.asarray(catalog["deblend_parentTooBig"][:n]), big > np.max(big) - 1)


def test_pseudo_sources_and_parents_flagged_at_detection_are_skipped(scene):
    patch, parents = scene
    parents = parents.copy()
    parents["sky_source"] = np.zeros(len(parents), bool)
    parents["sky_source"][0] = True
    parents["deblend_masked"][1] = True
    parents["deblend_tooManyPeaks"][2] = True  # as detection flags parents over its limits
    catalog, model_data = DeblendTask(workers=1).run(patch, parents)
    assert catalog["deblend_skipped"][0] and "sky_source" in catalog["deblend_failReason"][0]
    assert catalog["deblend_skipped"][1] and "masked" in catalog["deblend_failReason"][1]
    assert catalog["deblend_skipped"][2] and "detection" in catalog["deblend_failReason"][2]
    assert not set(int(i) for i in parents["id"][:3]) & set(model_data.blends)
    assert int(np.sum(catalog["deblend_skipped"])) == 3
    assert np.all(catalog["deblend_nChild"][:3] == 0)


def test_isolated_parents_without_process_singles(scene, serial_result):
    patch, parents = scene
    catalog, model_data = DeblendTask(DeblendConfig(processSingles=False), workers=1).run(
        patch, parents
    )
    single = np.asarray(parents["deblend_nPeaks"]) == 1
    n = len(parents)
    assert np.all(catalog["deblend_nChild"][:n] == parents["deblend_nPeaks"])
    assert set(model_data.blends) == set(int(i) for i in parents["id"][~single])
    assert len(model_data.isolated) == int(single.sum())
    by_parent = _children_by_parent(catalog)
    for row in np.flatnonzero(single):
        fp = parents["footprint"][row]
        (child,) = by_parent[int(parents["id"][row])]
        rec = catalog[child]
        assert model_data.isolated[int(rec["id"])].origin == tuple(fp.bbox.origin)
        ys, xs = fp.spans.indices()
        assert rec["deblend_reapportionedFlux_g"] == pytest.approx(
            patch.images[0, ys, xs].sum(dtype=np.float64), rel=1e-5
        )
        assert np.isnan(rec["deblend_scarletFlux_g"])
    # the blended parents are exactly as in the default run
    _, ref_model = serial_result
    for pid, blend in model_data.blends.items():
        assert list(blend.sources.values()) == list(ref_model.blends[pid].sources.values())


def test_compact_source_model_gives_one_component_per_source(scene):
    patch, parents = scene
    catalog, model_data = DeblendTask(
        DeblendConfig(sourceModel="compact", maxIter=30), workers=1
    ).run(patch, parents)
    n = len(parents)
    assert np.all(catalog["deblend_nComponents"][n:] == 1)
    for blend in model_data.blends.values():
        assert all(len(s.components) == 1 for s in blend.sources.values())


def test_double_model_gives_bright_sources_two_components(serial_result):
    catalog, _ = serial_result
    n_comp = np.asarray(catalog["deblend_nComponents"])[np.asarray(catalog["parent"]) != 0]
    assert set(n_comp.tolist()) == {1, 2}


def test_a_crashing_worker_process_fails_only_its_blend(scene, serial_result, monkeypatch):
    """A worker that dies (a segfault, the OOM killer) is a failed blend, not a failed patch."""
    import os

    from vermilion.pipeline import _worker

    patch, parents = scene
    row = int(blended_rows(parents)[0])
    victim = int(parents["id"][row])
    real = _worker.deblend_blend

    def crash_on_victim(job, settings):
        if job.parent_id == victim:
            os._exit(3)
        return real(job, settings)

    monkeypatch.setattr(_worker, "deblend_blend", crash_on_victim)
    catalog, model_data = DeblendTask(workers=2, mp_context="fork").run(patch, parents)
    rec = catalog.find(victim)
    assert rec["deblend_failed"] and "worker process died" in rec["deblend_failReason"]
    assert int(np.sum(catalog["deblend_failed"])) == 1
    _other_blends_unchanged(serial_result, catalog, model_data, victim)


def test_bad_input_gives_clear_errors(scene):
    patch, parents = scene
    with pytest.raises(ValueError, match="workers"):
        DeblendTask(workers=0)
    with pytest.raises(ValueError, match="mp_context"):
        DeblendTask(mp_context="teleport")

    class NoVariance:
        images = patch.images
        psfs = patch.psfs
        bands = patch.bands
        bbox = patch.bbox
        variance = None

    with pytest.raises(ValueError, match="variance"):
        DeblendTask(workers=1).run(NoVariance(), parents)
