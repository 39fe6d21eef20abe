"""Blend <-> BlendData: a fitted HSC blend stored, reloaded, rendered and refitted."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import vermilion.core as core
import vermilion.data
from vermilion.io import (
    BlendData,
    CubeComponentData,
    FactorizedComponentData,
    ModelData,
    ModelDataError,
    SourceData,
    blend_to_data,
    multiband_data_to_blend,
    multibandDataToScarlet,
)

HSC_35 = vermilion.data.path("hsc_cosmos_35.npz")


@pytest.fixture(scope="module")
def fitted():
    """The HSC blend, initialized and fitted briefly; source ids and peak ids set."""
    with np.load(HSC_35) as f:
        d = {k: f[k] for k in f.files}
    bands = tuple(str(b) for b in d["filters"])
    obs = core.Observation(
        d["images"].astype(np.float32),
        d["variance"].astype(np.float32),
        psfs=d["psfs"].astype(np.float32),
        bands=bands,
        bbox=core.Box(d["images"].shape[1:], (100, 200)),
    )
    centers = [(int(y) + 100, int(x) + 200) for y, x in zip(d["catalog"]["y"], d["catalog"]["x"])]
    sources = core.init_all_sources(obs, centers)
    for i, s in enumerate(sources):
        s.metadata.update(id=(1 << 40) + i, peak_id=10 + i)
    sources = core.parameterize_sources(sources, obs, core.init_adaprox_component)
    blend = core.Blend(sources, obs)
    blend.fit(20, min_iter=20)
    return blend


def test_blend_to_data_and_back(tmp_path, fitted):
    data = blend_to_data(fitted, psf_center=(129.0, 224.0))
    assert data.origin == (100, 200) and data.shape == fitted.bbox.shape
    assert data.bands == fitted.bands and data.psf.shape == fitted.observation.psfs.shape
    assert set(data.sources) == {s.metadata["id"] for s in fitted.sources}
    assert data.psf_center == (129.0, 224.0)

    model = ModelData(fitted.bands, fitted.observation.model_psf)
    model.blends[77] = data
    path = tmp_path / "one.vmd"
    model.write(path)
    stored = ModelData.read(path, blend_ids=[77]).blends[77]
    assert stored == data

    # with the real observation: the same model, the same likelihood
    rebuilt = stored.to_blend(fitted.observation)
    np.testing.assert_array_equal(rebuilt.get_model().data, fitted.get_model().data)
    assert fitted.observation.log_likelihood(rebuilt.get_model().data) == pytest.approx(
        fitted.observation.log_likelihood(fitted.get_model().data)
    )
    for s0, s1 in zip(fitted.sources, rebuilt.sources, strict=True):
        assert s1.metadata["id"] == s0.metadata["id"]
        assert s1.metadata["peak_id"] == s0.metadata["peak_id"]
        assert s1.peak == s0.peak

    # without images: a NoDataObservation renders the same convolved model
    alone = stored.to_blend()
    assert isinstance(alone.observation, core.NoDataObservation)
    ref = fitted.observation.convolve(fitted.get_model().data, mode="real")
    np.testing.assert_allclose(alone.get_model(convolve=True).data, ref, atol=1e-5 * ref.max())
    with pytest.raises(ValueError, match="no image data"):
        alone.fit(2)


def test_warm_restart_from_stored_models(tmp_path, fitted):
    data = blend_to_data(fitted)
    model = ModelData(fitted.bands, fitted.observation.model_psf, {5: data})
    model.write(tmp_path / "m.json")
    blend = ModelData.read(tmp_path / "m.json").to_blend(5, fitted.observation)
    init = core.Chi2InitParameters(blend.observation, None)
    blend.sources.append(core.init_main_source((128, 230), init))
    sources = core.parameterize_sources(
        blend.sources, blend.observation, partial(core.init_adaprox_component, bg_thresh=0.25)
    )
    refit = core.Blend(sources, blend.observation)
    refit.fit(5, min_iter=5)
    assert refit.it == 5 and np.isfinite(refit.loss).all()
    assert len(blend_to_data(refit).sources) == len(fitted.sources) + 1


def test_multiband_data_to_blend(v29_path):
    model = ModelData.read(v29_path)
    bid = next(iter(model.blends))
    stored = model.blends[bid]
    default = multiband_data_to_blend(model, bid)
    # observed PSFs given per band (arrays or PSF objects) replace the stored ones
    psfs = [np.asarray(p) for p in stored.psf]

    class Psf:
        def __init__(self, image):
            self.image = image
            self.asked = None

        def computeKernelImage(self, position):
            self.asked = position
            return self.image

    objects = [Psf(p) for p in psfs]
    from_arrays = multibandDataToScarlet(modelData=model, blendId=bid, observedPsfs=psfs)
    from_objects = multiband_data_to_blend(model, bid, observed_psfs=objects)
    assert objects[0].asked == stored.psf_center
    expected = default.get_model(convolve=True).data
    for b in (from_arrays, from_objects):
        np.testing.assert_allclose(
            b.get_model(convolve=True).data, expected, rtol=1e-5, atol=1e-5 * expected.max()
        )
    with ModelData.open(v29_path) as reader:
        lazy = multiband_data_to_blend(reader, bid)
    np.testing.assert_array_equal(lazy.get_model().data, default.get_model().data)
    with pytest.raises(ModelDataError, match="observed PSFs") as err:
        multiband_data_to_blend(model, bid, observed_psfs=psfs[:2])
    assert err.value.blend_id == bid
    with pytest.raises(ModelDataError, match="no such blend"):
        multiband_data_to_blend(model, 1)


def test_bands_are_matched_by_name():
    """A stored blend in band order (g, r) rebuilt on an observation in (r, g)."""
    morph = np.zeros((3, 3), np.float32)
    morph[1, 1] = 1
    data = BlendData(
        (0, 0),
        (3, 3),
        {
            1: SourceData([FactorizedComponentData((0, 0), (1, 1), np.array([1.0, 2.0]), morph)]),
            2: SourceData([CubeComponentData((0, 0), (1, 1), np.stack([morph, 3 * morph]))]),
        },
        bands=("g", "r"),
    )
    psf = np.zeros((2, 3, 3), np.float32)
    psf[:, 1, 1] = 1
    obs = core.NoDataObservation(psf, psf[0], ("r", "g"), core.Box((3, 3)))
    blend = data.to_blend(obs)
    np.testing.assert_array_equal(blend.sources[0].components[0].spectrum, [2.0, 1.0])
    np.testing.assert_array_equal(blend.get_model().data[:, 1, 1], [2 + 3, 1 + 1])
    with pytest.raises(ModelDataError, match="not in the stored bands"):
        data.to_blend(core.NoDataObservation(psf, psf[0], ("r", "i"), core.Box((3, 3))))
