"""Detection on the real 5-band HSC COSMOS blend (58 x 48 px, 7 catalogued peaks)."""

from __future__ import annotations

import numpy as np
import pytest

import vermilion.data
from vermilion.detect import SourceCatalog, detect_sources

DATA = vermilion.data.path("hsc_cosmos_35.npz")

# HSC pipeline mask planes of this file (not the vermilion convention)
HSC_PLANES = {"BAD": 1, "SAT": 2, "INTRP": 4, "CR": 8, "EDGE": 16, "DETECTED": 32, "NO_DATA": 256}


@pytest.fixture(scope="module")
def hsc():
    with np.load(DATA) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def catalog(hsc) -> SourceCatalog:
    return detect_sources(
        hsc["images"],
        hsc["variance"],
        hsc["mask"],
        psfs=hsc["psfs"],
        bands=list(hsc["filters"]),
        mask_planes=HSC_PLANES,
    )


def test_catalogued_peaks_found_within_one_pixel(hsc, catalog):
    peaks = np.concatenate([fp.peaks for fp in catalog["footprint"]])
    for x, y in zip(hsc["catalog"]["x"], hsc["catalog"]["y"]):
        d = np.hypot(peaks["y"] - y, peaks["x"] - x)
        assert d.min() <= 1.0, (y, x, d.min())
    # at most one peak more than catalogued (a faint source at the lower right edge)
    assert len(hsc["catalog"]) <= len(peaks) <= len(hsc["catalog"]) + 1


def test_peaks_lie_in_parent_footprints(hsc, catalog):
    for x, y in zip(hsc["catalog"]["x"], hsc["catalog"]["y"]):
        owners = [rec for rec in catalog if rec.footprint.contains((y, x))]
        assert len(owners) == 1
        fp = owners[0].footprint
        d = np.hypot(fp.peaks["y"] - y, fp.peaks["x"] - x)
        assert d.min() <= 1.0  # the peak is in the footprint that covers the source


def test_one_blend_touching_the_edge(catalog):
    assert len(catalog) == 1
    parent = catalog[0]
    assert parent["detect_edge"]
    assert parent["deblend_nPeaks"] == parent.footprint.n_peaks >= 7
    assert (parent.peak[0], parent.peak[1]) == (33, 14)  # the brightest source
    assert parent.footprint.spans.asArray().shape == parent.footprint.bbox.shape
