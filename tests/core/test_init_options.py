"""Initialization options: symmetry about the peak and moving to the local maximum."""

from __future__ import annotations

import numpy as np

from vermilion.core import Chi2InitParameters, Observation, init_main_source, integrated_gaussian


def _off_centre_source():
    yy, xx = np.mgrid[:41, :41]
    # a bright source centred between pixels x=20 and x=21
    image = 200 * np.exp(-((yy - 20) ** 2 + (xx - 20.5) ** 2) / (2 * 2.0**2))
    psf = integrated_gaussian(1.5, 21)
    images = np.stack([image, 0.8 * image]).astype(np.float32)
    obs = Observation(images, np.full_like(images, 0.01), psfs=np.stack([psf, psf]))
    return obs


def test_symmetric_start_gives_up_the_core_on_one_side():
    obs = _off_centre_source()
    sym = init_main_source((20, 21), Chi2InitParameters(obs, max_components=1))
    free = init_main_source((20, 21), Chi2InitParameters(obs, max_components=1, symmetric=False))
    (c_sym,), (c_free,) = sym.components, free.components

    def at(c, y, x):
        return c.morph[y - c.bbox.origin[0], x - c.bbox.origin[1]]

    # symmetric about x=21: x=20 is cut to the value of x=22, far below the data's
    assert at(c_sym, 20, 20) == at(c_sym, 20, 22)
    assert at(c_free, 20, 20) > at(c_sym, 20, 20) * 1.3
    assert np.isclose(at(c_free, 20, 20), 1.0, atol=0.05)  # both core pixels are as bright


def test_peak_radius_moves_the_start_to_the_local_maximum():
    obs = _off_centre_source()
    stay = init_main_source((20, 22), Chi2InitParameters(obs, max_components=1))
    move = init_main_source((20, 22), Chi2InitParameters(obs, max_components=1, peak_radius=1))
    assert stay.components[0].peak == (20, 22)
    assert move.components[0].peak in ((20, 20), (20, 21))
