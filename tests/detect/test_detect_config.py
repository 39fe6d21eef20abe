"""DetectionConfig: defaults, resolution, keyword overrides and the record in catalog meta."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vermilion.detect import (
    DETECT_CONFIG_KEY,
    DetectionConfig,
    SourceCatalog,
    detect_sources,
)

FWHM = 2 * math.sqrt(2 * math.log(2))

# the keyword defaults of detect_sources before the settings moved into DetectionConfig
OLD_DEFAULTS = {
    "psf_fwhm": None,
    "thresh": 5.0,
    "peak_snr": None,
    "min_separation": None,
    "prominence": 2.0,
    "symmetry": 5.0,
    "grow": None,
    "min_area": 1,
    "smooth": True,
    "band_peaks": True,
    "band_peak_separation": None,
    "band_peak_snr": None,
    "asymmetry_snr": 4.0,
    "crowded": False,
    "residual_peaks": None,
    "residual_snr": None,
    "residual_sigma": 0.7,
    "residual_verify_snr": None,
    "residual_separation": None,
    "vet_snr": "auto",
    "vet_window": 4.0,
    "background": "mesh",
    "background_cell": 128,
    "bad_mask_bits": ("BAD", "SAT", "NO_DATA"),
    "mask_planes": None,
    "mask_limits": None,
    "max_peaks": None,
    "max_area": None,
}


def scene(seed=0):
    """Two bands of unit noise with a bright source and a fainter neighbour."""
    rng = np.random.default_rng(seed)
    shape = (60, 70)
    yy, xx = np.indices(shape)
    images = rng.normal(0, 1, (2, *shape)).astype(np.float32)
    for y, x, flux in ((30, 30, 600.0), (33, 41, 150.0)):
        images += flux * np.exp(-0.5 * ((yy - y) ** 2 + (xx - x) ** 2) / 1.7**2) / 18.0
    return images, np.ones_like(images)


def peaks_of(cat):
    return [(int(p["y"]), int(p["x"])) for fp in cat["footprint"] for p in fp.peaks]


def test_defaults_are_the_old_keyword_defaults():
    config = DetectionConfig()
    assert set(DetectionConfig.field_names()) == set(OLD_DEFAULTS)
    assert {name: getattr(config, name) for name in OLD_DEFAULTS} == OLD_DEFAULTS


def test_resolution_of_crowded_and_auto():
    plain = DetectionConfig().resolve(3)
    assert (plain.vet_snr, plain.residual_peaks, plain.residual_snr) == (4.0, False, 5.5)
    assert plain.residual_verify_snr == 5.0
    crowded = DetectionConfig(crowded=True).resolve(3)
    assert (crowded.vet_snr, crowded.residual_peaks, crowded.residual_snr) == (3.4, True, 4.5)
    assert crowded.residual_verify_snr == 4.0
    # explicit values win over crowded's
    mixed = DetectionConfig(crowded=True, vet_snr=5.0, residual_peaks=False).resolve(3)
    assert (mixed.vet_snr, mixed.residual_peaks) == (5.0, False)
    # PSF-dependent defaults: sigma of a 3.5 px FWHM, Rubin's nSigmaToGrow 2.4
    sigma = 3.5 / FWHM
    assert plain.sigma == pytest.approx(sigma)
    assert plain.grow == round(2.4 * sigma) and plain.min_separation == 2.0
    assert plain.peak_snr == 5.0 and plain.band_peak_snr == pytest.approx(4.5)
    assert plain.band_sep2 == pytest.approx((2.5 * sigma) ** 2)
    assert DetectionConfig(band_peaks=True).resolve(1).use_bands is False


def test_round_trip_through_the_catalog_meta(tmp_path):
    images, variance = scene()
    config = DetectionConfig(
        thresh=6.0,
        crowded=True,
        bad_mask_bits=("BAD", "SAT"),
        mask_limits={"NO_DATA": 0.5},
        max_peaks=10,
    )
    cat = detect_sources(images, variance, psf_fwhm=1.7 * FWHM, config=config)
    assert cat.meta[DETECT_CONFIG_KEY]["thresh"] == 6.0
    assert cat.meta[DETECT_CONFIG_KEY]["bad_mask_bits"] == ["BAD", "SAT"]
    path = tmp_path / "cat.fits"
    cat.write(path)
    stored = SourceCatalog.read(path).meta[DETECT_CONFIG_KEY]
    again = DetectionConfig.from_dict(stored)
    assert again == config.override(psf_fwhm=1.7 * FWHM)
    # the recorded config reproduces the catalog
    assert peaks_of(detect_sources(images, variance, config=again)) == peaks_of(cat)
    with pytest.raises(ValueError, match="Unknown DetectionConfig field"):
        DetectionConfig.from_dict({**stored, "tresh": 4})


def test_keywords_override_the_config():
    images, variance = scene()
    base = {"psf_fwhm": 1.7 * FWHM}
    config = DetectionConfig(thresh=40.0, vet_snr=None, **base)
    cat = detect_sources(images, variance, config=config, thresh=5.0)
    assert cat.meta["detect_thresh"] == 5.0
    assert cat.meta[DETECT_CONFIG_KEY]["vet_snr"] is None  # the config's other fields stay
    expected = detect_sources(images, variance, thresh=5.0, vet_snr=None, **base)
    assert peaks_of(cat) == peaks_of(expected)
    assert len(peaks_of(cat)) >= 2  # the neighbour is found: thresh 40 would miss it
    only_bright = detect_sources(images, variance, config=config)
    assert peaks_of(only_bright) == [(30, 30)]
    # a mapping is a config too
    as_dict = detect_sources(images, variance, config={"thresh": 40.0, **base})
    assert peaks_of(as_dict) == [(30, 30)]
    with pytest.raises(TypeError, match="tresh"):
        detect_sources(images, variance, tresh=5.0)


def test_invalid_settings_raise_on_construction():
    for kwargs, match in (
        ({"thresh": 0}, "thresh"),
        ({"grow": -1}, "grow"),
        ({"psf_fwhm": -1.0}, "psf_fwhm"),
        ({"vet_snr": "loose"}, "vet_snr"),
        ({"vet_window": 0.0}, "vet_window"),
    ):
        with pytest.raises(ValueError, match=match):
            DetectionConfig(**kwargs)
    assert DetectionConfig(vet_snr=None, vet_window=0.0).vet_window == 0.0  # unused then


def test_an_array_background_is_recorded_by_name():
    images, variance = scene()
    cat = detect_sources(images, variance, psf_fwhm=3.5, background=np.zeros(images.shape[1:]))
    assert cat.meta[DETECT_CONFIG_KEY]["background"] == "array"
