"""Tests of vermilion.sim.metrics: matching, accuracy against truth, summaries."""

import numpy as np
import pytest

from vermilion.core.bbox import Box
from vermilion.sim import simulate_blend, simulate_patch
from vermilion.sim.metrics import (
    blendedness,
    concatenate,
    evaluate,
    evaluate_patch,
    match_to_truth,
    nearest_neighbour_distance,
    truth_children,
)


@pytest.fixture(scope="module")
def scene():
    return simulate_patch((160, 160), density=150, seed=21, noise=False, return_source_images=True)


def test_match_is_one_to_one_and_closest_first():
    truth = [(10.0, 10.0), (20.0, 10.0), (50.0, 50.0)]
    measured = [(10.4, 10.0), (10.9, 10.0), (19.0, 10.0), (80.0, 80.0)]
    ti, mi, d = match_to_truth(truth, measured, max_sep=2.0)
    assert list(ti) == [0, 1]
    assert list(mi) == [0, 2]
    np.testing.assert_allclose(d, [0.4, 1.0])
    ti, mi, d = match_to_truth(truth, measured, max_sep=0.1)
    assert len(ti) == 0
    for a, b in (([], measured), (truth, [])):
        ti, mi, d = match_to_truth(a, b, 2.0)
        assert len(ti) == len(mi) == len(d) == 0
    with pytest.raises(ValueError, match="measured_xy"):
        match_to_truth(truth, [(1.0, 2.0, 3.0)], 1.0)
    with pytest.raises(ValueError, match="max_sep"):
        match_to_truth(truth, measured, -1)


def test_nearest_neighbour_distance():
    d = nearest_neighbour_distance([(0, 0), (3, 4), (10, 0)])
    np.testing.assert_allclose(d, [5, 5, np.hypot(7, 4)])
    assert np.isinf(nearest_neighbour_distance([(1, 1)])[0])


def test_perfect_deblend_scores_zero(scene):
    ev = evaluate_patch(scene, truth_children(scene))
    assert ev.n_matched == scene.n_sources
    for name in ("flux_err_model", "flux_err_flux", "colour_err_model", "colour_err_flux"):
        values = getattr(ev, name)
        assert np.nanmax(np.abs(values)) < 1e-5, name
    assert np.nanmax(ev.centroid_err) < 1e-6
    assert np.nanmax(ev.residual) < 1e-6
    assert np.all(ev.completeness()["fraction"][ev.completeness()["n"] > 0] == 1)
    assert ev.purity()["total"] == 1.0
    rows = ev.summary()
    assert all(abs(r["median"]) < 1e-5 for r in rows if r["n"])
    assert ev.tracked_flux_error() < 1e-5


def test_perfect_blend_scores_zero():
    patch = simulate_blend(4, separations=[4.0, 6.0, 9.0], seed=5, noise=False)
    ev = evaluate_patch(patch, truth_children(patch))
    assert ev.n_matched == 4
    assert np.nanmax(np.abs(ev.flux_err_flux)) < 1e-5
    assert np.nanmax(ev.residual) < 1e-6


def test_known_errors_are_measured(scene):
    children = truth_children(scene, reapportion=False)
    k = int(np.argmax(scene.truth_array["snr"]))
    children[k] = dict(children[k])
    children[k]["model"] = children[k]["model"] * 1.1
    shifted = dict(children[k + 1 if k + 1 < len(children) else 0])
    j = children.index(children[k + 1 if k + 1 < len(children) else 0])
    shifted["model_box"] = shifted["model_box"].shifted_by((0, 1))
    children[j] = shifted
    ev = evaluate(
        scene.truth_array,
        children,
        scene.bands,
        source_images=scene.source_images,
        noise_rms=scene.noise_rms,
    )
    r = int(np.flatnonzero(ev.truth_index == k)[0])
    np.testing.assert_allclose(ev.flux_err_model[r], 0.1, rtol=1e-5)
    np.testing.assert_allclose(ev.residual[r], 0.1, rtol=1e-5)
    np.testing.assert_allclose(ev.colour_err_model[r], 0.0, atol=1e-6)
    assert np.all(np.isnan(ev.flux_err_flux))  # no re-apportioned flux given
    r = int(np.flatnonzero(ev.truth_index == j)[0])
    assert ev.centroid_err[r] == pytest.approx(1.0, abs=1e-6)


def test_colour_error_in_magnitudes():
    truth = {"x": np.array([10.0]), "y": np.array([10.0]), "flux_g": [100.0], "flux_r": [200.0]}
    model = np.zeros((2, 5, 5), np.float32)
    model[0, 2, 2], model[1, 2, 2] = 100.0, 100.0  # r is half its true flux
    ev = evaluate(truth, [{"x": 10, "y": 10, "model": model, "model_box": (8, 8)}], "gr")
    np.testing.assert_allclose(ev.flux_err_model[0], [0.0, -0.5])
    np.testing.assert_allclose(ev.colour_err_model[0], [-2.5 * np.log10(2)])
    # without source images the true centroid is the truth position
    assert ev.centroid_err[0] == pytest.approx(0.0)


def test_missed_and_spurious_children_change_completeness_and_purity(scene):
    children = truth_children(scene)
    bright = int(np.argmax(scene.truth_array["snr"]))
    kept = [c for i, c in enumerate(children) if i != bright]
    kept.append({"x": -50.0, "y": -50.0, "model": children[0]["model"], "model_box": Box((1, 1))})
    kept[-1]["model_box"] = Box(children[0]["model"].shape[1:], (-80, -80))
    ev = evaluate_patch(scene, kept)
    assert not ev.truth_matched[bright]
    assert ev.purity()["total"] == pytest.approx(1 - 1 / len(kept))
    comp = ev.completeness()
    assert np.nanmin(comp["fraction"]) < 1


def test_blendedness_isolated_and_overlapping():
    im = np.ones((1, 5, 5), np.float32)

    class S:
        def __init__(self, y0, x0):
            self.box = Box((5, 5), (y0, x0))
            self.image = im

    b = blendedness([S(0, 0), S(100, 100)])
    np.testing.assert_allclose(b, 0.0)
    b = blendedness([S(0, 0), S(0, 0)])
    np.testing.assert_allclose(b, 0.5)
    b = blendedness([S(0, 0), S(0, 3)])
    assert 0 < b[0] < 0.5 and b[0] == pytest.approx(b[1])


def test_blendedness_matches_truth_column(scene):
    b = blendedness(scene.source_images, scene.shape)
    np.testing.assert_allclose(b, scene.truth_array["blendedness"], atol=1e-5)


def test_summary_counts_every_pair_once():
    patch = simulate_patch((160, 160), density=150, seed=8, return_source_images=True)
    ev = evaluate_patch(patch, truth_children(patch))
    rows = ev.summary(snr_bins=(0, 20, np.inf), blend_bins=(0, 0.1, 1))
    n = sum(r["n"] for r in rows if r["quantity"] == "flux_err_flux")
    assert n == np.isfinite(ev.flux_err_flux).sum()
    text = ev.format_summary()
    assert "flux_err_flux" in text and "completeness" in text
    # with noise a perfect model still has a re-apportioned flux error (the noise floor)
    assert 0 < ev.tracked_flux_error() < 0.2


def test_empty_scene_does_not_crash():
    patch = simulate_patch((128, 128), density=0, seed=3, return_source_images=True)
    children = truth_children(patch)
    assert children == []
    ev = evaluate_patch(patch, children)
    assert ev.n_matched == 0
    assert np.isnan(ev.tracked_flux_error())
    assert all(r["n"] == 0 for r in ev.summary())
    assert isinstance(ev.format_summary(), str)
    # spurious detections on an empty scene
    junk = [{"x": 5.0, "y": 5.0, "model": np.ones((6, 3, 3)), "model_box": (4, 4)}]
    ev = evaluate_patch(patch, junk)
    assert ev.purity()["total"] == 0.0
    assert simulate_blend(0, seed=2).n_sources == 0


def test_children_need_positions(scene):
    with pytest.raises(ValueError, match="child 0"):
        evaluate_patch(scene, [{"model": None}])


def test_concatenate_offsets_indices():
    a = simulate_blend(3, separations=[5.0, 9.0], seed=1, noise=False)
    b = simulate_blend(2, separations=[7.0], seed=2, noise=False)
    ea, eb = evaluate_patch(a, truth_children(a)), evaluate_patch(b, truth_children(b))
    both = concatenate([ea, eb])
    assert both.n_matched == 5
    assert list(both.truth_index) == [0, 1, 2, 3, 4]
    assert list(both.child_index) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(both.true_flux[3:], eb.true_flux)
    assert len(both.summary()) == len(ea.summary())
    with pytest.raises(ValueError, match="at least one"):
        concatenate([])


def test_empty_scene_through_the_engine():
    import vermilion.core as core

    patch = simulate_patch((64, 64), density=0, seed=4, return_source_images=True)
    obs = core.Observation(patch.images, patch.variance, psfs=patch.psfs, bands=patch.bands)
    sources = core.init_all_sources(obs, [])
    blend = core.Blend(sources, obs)
    blend.fit(5)
    core.weight_sources(blend)
    assert sources == []
    assert float(np.abs(blend.get_model(convolve=True).data).sum()) == 0.0
    ev = evaluate_patch(patch, [])
    assert ev.n_matched == 0 and len(ev.truth_matched) == 0
