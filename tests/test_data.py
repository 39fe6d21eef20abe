"""The real data shipped in the package (vermilion.data) and the README's engine example."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import vermilion as vm
import vermilion.data

ROOT = Path(__file__).resolve().parents[1]


def test_hsc_blend_is_the_shipped_file():
    hsc = vm.data.hsc_blend()
    with np.load(vermilion.data.path("hsc_cosmos_35.npz")) as f:
        np.testing.assert_array_equal(hsc.images, f["images"])
        np.testing.assert_array_equal(hsc.variance, f["variance"])
        np.testing.assert_array_equal(hsc.mask, f["mask"])
        np.testing.assert_array_equal(hsc.psfs, f["psfs"])
    assert hsc.images.shape == (5, 58, 48) and hsc.bands == ("g", "r", "i", "z", "y")
    assert np.all(hsc.variance > 0)
    np.testing.assert_allclose(hsc.psfs.sum(axis=(1, 2)), 1, rtol=0.02)
    assert len(hsc.peaks) == 7
    # the planes are HSC's: its bit 4 is INTRP (vermilion's NO_DATA), and it is set
    assert hsc.mask_planes["INTRP"] == 4 and hsc.mask_planes["NO_DATA"] == 256
    assert np.any(hsc.mask & hsc.mask_planes["INTRP"])
    for y, x in hsc.peaks:
        assert 0 <= y < 58 and 0 <= x < 48
        # a catalogued peak is brighter than the image's median in the coadd
        assert hsc.images[:, y, x].sum() > np.median(hsc.images.sum(axis=0))


def test_cosmos_blend_has_no_variance_and_a_sep_catalog():
    hsc = vm.data.hsc_blend("cosmos")
    assert hsc.images.shape == (5, 69, 57) and hsc.variance is None and hsc.mask is None
    assert {"x", "y", "flux", "xpeak", "ypeak"} <= set(hsc.catalog.dtype.names)
    assert len(hsc.peaks) == 6


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="cosmos_35"):
        vm.data.hsc_blend("nope")
    with pytest.raises(FileNotFoundError, match="no data file"):
        vermilion.data.path("missing.npz")


def test_readme_engine_example_runs(tmp_path, monkeypatch):
    """The README's "engine in a few lines" runs as written: arrays in, a measured catalog
    out (vermilion.deblend), then the engine's own fit of the same blend."""
    monkeypatch.chdir(tmp_path)  # the example writes its model file
    text = (ROOT / "README.md").read_text()
    section = text.split("## The engine in a few lines", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    catalog, children = namespace["catalog"], namespace["children"]
    # at least as many children as the catalogued peaks, each with a flux and an error
    assert len(children) >= len(namespace["hsc"].peaks)
    assert np.all(np.isfinite(children["deblend_reapportionedFlux_r"]))
    assert np.all(np.asarray(children["flux_err_r"]) > 0)
    assert str(catalog["centroid_x"].unit) == "pix" and catalog["flux_err_r"].description
    assert (tmp_path / "hsc-models.vmd").exists()
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    assert 1 <= namespace["iterations"] <= 300 and np.isfinite(namespace["logL"])
    blend = namespace["blend"]
    total = sum(np.asarray(s.flux.data).sum() for s in blend.sources)
    assert total > 0
