"""DeblendConfig: Rubin defaults, overrides, files, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vermilion.pipeline import DeblendConfig


def test_defaults_follow_the_rubin_deblender():
    c = DeblendConfig()
    assert (c.maxIter, c.minIter, c.relativeError) == (300, 15, 1e-2)
    assert (c.morphThresh, c.backgroundThresh, c.maxProxIter) == (1, 0.25, 1)
    assert (c.modelPsfSigma, c.modelPsfSize, c.minSNR) == (0.8, 11, 10)
    assert (c.maxNumberOfPeaks, c.maxFootprintArea, c.maxAreaTimesPeaks) == (200, 100_000, 1e7)
    assert c.maxFootprintSize == 0 and c.useWeights and c.catchFailures and c.setSpectra
    assert c.sourceModel == "double" and c.max_components == 2 and c.init_min_snr == 10
    assert c.convolutionType == "fft" and c.processSingles
    assert "NO_DATA" in c.badMask and "merge_peak_sky" in c.pseudoColumns


def test_compact_model_starts_every_source_as_one_psf_component():
    c = DeblendConfig(sourceModel="compact")
    assert c.max_components == 1 and math.isinf(c.init_min_snr)
    assert DeblendConfig(sourceModel="single").max_components == 1


def test_override_and_from_args_convert_values_to_the_field_types():
    c = DeblendConfig().override({"maxIter": 100}, relativeError="1e-3")
    assert c.maxIter == 100 and c.relativeError == 1e-3
    assert DeblendConfig().maxIter == 300  # the original is unchanged
    c = DeblendConfig.from_args(
        ["maxIter=50", "useWeights=false", "badMask=BAD,SAT", "pseudoColumns=[a, b]", "minSNR=20"]
    )
    assert c.maxIter == 50 and c.useWeights is False and c.minSNR == 20.0
    assert c.badMask == ("BAD", "SAT") and c.pseudoColumns == ("a", "b")
    # an instance applies the strings on top of its own values
    assert c.from_args(["minIter=3"]).maxIter == 50


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["maxIter=0"], "maxIter"),
        (["maxIter=1.5"], "maxIter"),
        (["relativeError=-1"], "relativeError"),
        (["sourceModel=triple"], "sourceModel"),
        (["convolutionType=direct"], "convolutionType"),
        (["modelPsfSize=10"], "modelPsfSize"),
        (["useWeights=maybe"], "useWeights"),
        (["maxNumberOfPeaks=-1"], "maxNumberOfPeaks"),
        (["monotonicSlack=1.5"], "monotonicSlack"),
    ],
)
def test_bad_values_name_the_field(args, field):
    with pytest.raises(ValueError, match=field):
        DeblendConfig.from_args(args)


def test_unknown_fields_and_malformed_overrides_are_errors():
    with pytest.raises(ValueError, match="maxIters"):
        DeblendConfig().override({"maxIters": 3})
    with pytest.raises(ValueError, match="name=value"):
        DeblendConfig.from_args(["maxIter"])


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_file_round_trip(tmp_path, suffix):
    c = DeblendConfig(maxIter=42, badMask=("BAD",), useWeights=False, relativeError=1e-4)
    path = tmp_path / f"config{suffix}"
    c.save(path)
    assert DeblendConfig.from_file(path) == c
    assert DeblendConfig.from_file(path, overrides=["maxIter=7"]).maxIter == 7


def test_file_with_a_deblend_section_and_bad_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("deblend:\n  maxIter: 12\n  sourceModel: single\n")
    c = DeblendConfig.from_file(path)
    assert c.maxIter == 12 and c.sourceModel == "single"
    path.write_text("maxIter: [1, 2]\n")
    with pytest.raises(ValueError, match=r"c\.yaml.*maxIter"):
        DeblendConfig.from_file(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        DeblendConfig.from_file(path)
    with pytest.raises(FileNotFoundError):
        DeblendConfig.from_file(tmp_path / "missing.yaml")


def test_to_dict_round_trips():
    c = DeblendConfig(maxIter=9, pseudoColumns=())
    d = c.to_dict()
    assert d["maxIter"] == 9 and d["pseudoColumns"] == [] and isinstance(d["badMask"], list)
    assert DeblendConfig.from_dict(d) == c


def test_coerce_takes_a_config_a_mapping_a_file_or_none(tmp_path):
    c = DeblendConfig(maxIter=7)
    assert DeblendConfig.coerce(c) is c
    assert DeblendConfig.coerce(None) == DeblendConfig()
    assert DeblendConfig.coerce({"maxIter": 7}) == c
    c.save(tmp_path / "deblend.yaml")
    assert DeblendConfig.coerce(tmp_path / "deblend.yaml") == c
    with pytest.raises(ValueError, match="maxIterations"):
        DeblendConfig.coerce({"maxIterations": 7})


def test_parameterization_carries_the_proximal_settings():
    from vermilion.core import init_adaprox_component

    p = DeblendConfig(backgroundThresh=0.5, maxProxIter=3, monotonicSlack=0).parameterization()
    assert p.func is init_adaprox_component
    assert p.keywords == {"bg_thresh": 0.5, "max_prox_iter": 3, "monotonic_slack": 0.0}


def test_monotonic_slack_reaches_every_component():
    """The config's slack is the one the components' monotonicity projection uses."""
    from vermilion.core import (
        Blend,
        FactorizedComponent,
        Observation,
        init_all_sources,
        prox_monotonic,
    )

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:30, :30]
    image = 100 * np.exp(-((yy - 15) ** 2 + (xx - 12) ** 2) / 8.0)
    image += 60 * np.exp(-((yy - 14) ** 2 + (xx - 19) ** 2) / 6.0)
    images = np.stack([image, image]) + rng.normal(0, 1, (2, 30, 30))
    psf = np.exp(-((np.mgrid[:11, :11] - 5.0) ** 2).sum(0) / 4.0)
    obs = Observation(images.astype(np.float32), np.ones((2, 30, 30)), psfs=np.stack([psf, psf]))
    for slack in (0.0, 1.0):
        config = DeblendConfig(monotonicSlack=slack)
        blend = Blend(init_all_sources(obs, [(15, 12), (14, 19)]), obs)
        blend.parameterize(config.parameterization())
        comps = [c for c in blend.components if isinstance(c, FactorizedComponent)]
        assert comps and all(c.monotonic_slack == slack for c in comps)
        c = comps[0]
        bumpy = (c.morph + rng.random(c.morph.shape) * 0.5).astype(np.float32)
        peak = (c.peak[0] - c.bbox.origin[0], c.peak[1] - c.bbox.origin[1])
        bumpy[peak] = bumpy.max()  # so that prox_morph keeps the peak where it is
        expected = prox_monotonic(bumpy.copy(), peak, slack)
        expected[peak] = max(expected[peak], c.floor)
        got = c.prox_morph(bumpy.copy())
        # prox_morph also thresholds and normalises: compare where both are non-zero
        keep = got > 0
        np.testing.assert_allclose(got[keep], (expected / expected.max())[keep], rtol=1e-5)
