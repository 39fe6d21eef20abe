"""Initialization options: symmetry about the light's centre and moving to the local maximum."""

from __future__ import annotations

import numpy as np

from vermilion.core import Chi2InitParameters, Observation, init_main_source, integrated_gaussian
from vermilion.core.initialization import _shift_linear, symmetric_morphology


def _off_centre_source(neighbour: float = 0.0):
    yy, xx = np.mgrid[:41, :41]
    # a bright source centred between pixels x=20 and x=21 (and optionally a neighbour)
    image = 200 * np.exp(-((yy - 20) ** 2 + (xx - 20.5) ** 2) / (2 * 2.0**2))
    image += neighbour * np.exp(-((yy - 20) ** 2 + (xx - 25) ** 2) / (2 * 1.5**2))
    psf = integrated_gaussian(1.5, 21)
    images = np.stack([image, 0.8 * image]).astype(np.float32)
    obs = Observation(images, np.full_like(images, 0.01), psfs=np.stack([psf, psf]))
    return obs


def _at(c, y, x):
    """The morphology at absolute (y, x); 0 outside the component's box."""
    if not c.bbox.contains((y, x)):
        return 0.0
    return c.morph[y - c.bbox.origin[0], x - c.bbox.origin[1]]


def test_symmetry_is_about_the_half_pixel_where_the_light_peaks():
    obs = _off_centre_source()
    init = Chi2InitParameters(obs, max_components=1, core_radius=0)
    (c,) = init_main_source((20, 21), init).components
    # The rotation is about (20, 20.5): (y, x) -> (40 - y, 41 - x). Made symmetric about
    # the pixel x=21 instead, x=20 would be cut to the value of x=22.
    assert np.isclose(_at(c, 20, 20), 1.0, atol=0.05) and np.isclose(_at(c, 20, 21), 1.0, atol=0.05)
    assert np.isclose(_at(c, 20, 19), _at(c, 20, 22), rtol=1e-5)
    assert np.isclose(_at(c, 17, 18), _at(c, 23, 23), rtol=1e-5)
    assert _at(c, 20, 20) > 1.3 * _at(c, 20, 22)


def _gaussian(cy: float, cx: float, sigma: float = 2.0, shape=(41, 41)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_shift_linear_is_scipys_linear_shift():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    image = rng.random((9, 12))
    for shift in (-1.0, -0.7, -0.2, 0.0, 0.35, 0.5, 1.0):
        for axis in (0, 1):
            vector = [0.0, 0.0]
            vector[axis] = shift
            want = ndimage.shift(image, vector, order=1, mode="grid-constant", cval=0.0)
            np.testing.assert_allclose(_shift_linear(image, shift, axis), want, atol=1e-12)


def test_symmetric_morphology_keeps_a_source_centred_within_its_pixel():
    # A symmetric source at (20.3, 19.8): symmetric about its own (sub-pixel) centre, it
    # must come out nearly unchanged; made symmetric about its peak pixel (20, 20), as
    # the former start did for offsets under a quarter pixel, it loses far more.
    image = _gaussian(20.3, 19.8)
    got = symmetric_morphology(image, 20, 20, core_radius=0)
    pixel = np.minimum(image, image[::-1, ::-1])  # about (20, 20) in a 41 x 41 image
    bright = image > 0.05
    loss = (image - got)[bright] / image[bright]
    loss_pixel = (image - pixel)[bright] / image[bright]
    assert np.all(got <= image + 1e-6)
    assert loss.max() < 0.1 and np.median(loss) < 0.01
    assert loss_pixel.max() > 0.5 and np.median(loss_pixel) > 0.05


def test_symmetric_morphology_removes_a_neighbour_on_one_side():
    own = _gaussian(20.3, 19.8)
    image = own + 2 * _gaussian(20.0, 26.0, sigma=1.5)
    got = symmetric_morphology(image, 20, 20, core_radius=1.5)
    # at the neighbour's centre the start holds (nearly) the source's own light only
    assert got[20, 26] < 1.2 * own[20, 26] + 0.01 < 0.1 * image[20, 26]
    # the core within 1.5 px of the centre keeps the observed values
    assert got[20, 20] == image[20, 20] and got[21, 20] == image[21, 20]


def test_symmetric_start_drops_a_neighbour_and_keeps_the_core():
    obs = _off_centre_source(neighbour=150.0)
    (sym,) = init_main_source((20, 21), Chi2InitParameters(obs, max_components=1)).components
    (free,) = init_main_source(
        (20, 21), Chi2InitParameters(obs, max_components=1, symmetric=False)
    ).components
    # The neighbour's light is cut to the mirrored (faint) side's level ...
    assert _at(sym, 20, 25) < 0.1 * _at(free, 20, 25)
    # ... while the pixels within core_radius (1.5 px) of the centre keep their values.
    for y, x in ((20, 20), (20, 21), (19, 20), (21, 21), (20, 19), (20, 22)):
        assert _at(sym, y, x) == _at(free, y, x)


def test_peak_radius_moves_the_start_to_the_local_maximum():
    obs = _off_centre_source()
    stay = init_main_source((20, 22), Chi2InitParameters(obs, max_components=1))
    move = init_main_source((20, 22), Chi2InitParameters(obs, max_components=1, peak_radius=1))
    assert stay.components[0].peak == (20, 22)
    assert move.components[0].peak in ((20, 20), (20, 21))
