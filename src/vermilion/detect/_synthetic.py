"""A small, seeded multi-band scene of Gaussian blobs with truth, for tests and benchmarks.

Sources are stars and bulge + disk galaxies (two elliptical Gaussians of
different colour), convolved analytically with a Gaussian PSF per band, on a
sky with an offset and a gradient, with Gaussian noise whose variance grows with
the source flux. This is only a stand-in for `vermilion.sim` in the tests of
the detection layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["blob_scene"]

TRUTH_DTYPE = [
    ("y", np.float64),
    ("x", np.float64),
    ("snr", np.float64),
    ("is_star", bool),
    ("size", np.float64),
]


def _gauss_stamp(dy, dx, cov):
    """Unit-flux 2-d Gaussians sampled at offsets (dy, dx).

    ``cov`` is ``(..., 3)``: ``[a, b, c]`` of the covariance ``[[a, b], [b, c]]`` in
    (y, x); the result has shape ``cov.shape[:-1] + dy.shape``.
    """
    cov = np.asarray(cov, dtype=np.float64)
    a, b, c = (cov[..., k][..., None, None] for k in range(3))
    det = a * c - b * b
    q = (c * dy * dy - 2 * b * dy * dx + a * dx * dx) / det
    return np.exp(-0.5 * q) / (2 * math.pi * np.sqrt(det))


def blob_scene(
    shape: tuple[int, int] = (256, 256),
    n_sources: int = 60,
    bands: Sequence[str] = ("g", "r", "i", "z"),
    psf_fwhm: Sequence[float] | float = 3.5,
    sky_sigma: Sequence[float] | float = 1.0,
    snr_min: float = 3.0,
    snr_max: float = 3000.0,
    star_fraction: float = 0.2,
    max_size: float = 4.0,
    sky_level: float = 0.5,
    seed: int = 0,
) -> dict:
    """Render a seeded scene.

    Parameters
    ----------
    shape
        ``(H, W)``.
    n_sources
        Number of sources (centres uniform over the image).
    bands
        Band names.
    psf_fwhm
        Gaussian PSF FWHM in pixels, one per band or one for all.
    sky_sigma
        Sky noise per band.
    snr_min, snr_max
        Range of the ideal total S/N; the distribution follows ``N(>S) ~ S^-0.8``.
    star_fraction
        Fraction of point sources.
    max_size
        Largest disk sigma in pixels.
    sky_level
        Sky offset in units of the sky noise (plus a gradient of the same size
        across the image), for the background estimator to remove.
    seed
        Random seed.

    Returns
    -------
    dict
        ``images``, ``variance`` (float32, (B, H, W)), ``mask`` (int32 zeros),
        ``psfs`` ((B, 31, 31)), ``bands``, ``model`` (noiseless, no sky),
        ``truth`` (structured array ``y, x, snr, is_star, size``; ``snr`` is the
        ideal S/N over all bands given the sky noise).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    nb = len(bands)
    fwhm = np.broadcast_to(np.asarray(psf_fwhm, dtype=np.float64), (nb,))
    psf_sig = fwhm / (2 * math.sqrt(2 * math.log(2)))
    sky = np.broadcast_to(np.asarray(sky_sigma, dtype=np.float64), (nb,))

    psf_var = np.stack([psf_sig**2, np.zeros(nb), psf_sig**2], axis=1)
    model = np.zeros((nb, h, w), np.float32)
    truth = np.zeros(n_sources, dtype=TRUTH_DTYPE)
    ys = rng.uniform(-0.5, h - 0.5, n_sources)
    xs = rng.uniform(-0.5, w - 0.5, n_sources)
    u = rng.uniform(0, 1, n_sources)
    snr = np.minimum(snr_min * u ** (-1 / 0.8), snr_max)
    is_star = rng.uniform(0, 1, n_sources) < star_fraction
    # SEDs: a smooth random colour, bulges redder than disks
    wl = np.linspace(-1, 1, nb)
    for k in range(n_sources):
        comps = []
        if is_star[k]:
            comps.append((np.zeros(3), 1.0, rng.normal(0, 0.5)))
            size = 0.0
        else:
            size = rng.uniform(0.7, max_size)
            q = rng.uniform(0.4, 1.0)
            theta = rng.uniform(0, math.pi)
            ct, st = math.cos(theta), math.sin(theta)
            sy2, sx2 = (size * q) ** 2, size**2
            cov = np.array(
                [
                    ct * ct * sy2 + st * st * sx2,
                    ct * st * (sx2 - sy2),
                    st * st * sy2 + ct * ct * sx2,
                ]
            )
            frac_bulge = rng.uniform(0.0, 0.5)
            slope = rng.normal(0, 0.5)
            comps.append((cov, 1 - frac_bulge, slope))
            comps.append((cov * 0.09, frac_bulge, slope + 0.8))
        r = math.ceil(5 * math.sqrt(max(size, 0.1) ** 2 + psf_sig.max() ** 2))
        yc, xc = ys[k], xs[k]
        iy, ix = int(np.rint(yc)), int(np.rint(xc))
        dy = np.arange(-r, r + 1)[:, None] + (iy - yc)
        dx = np.arange(-r, r + 1)[None, :] + (ix - xc)
        stamp = np.zeros((nb, 2 * r + 1, 2 * r + 1))
        for cov, frac, slope in comps:
            sed = np.exp(slope * wl)
            sed *= frac / sed.sum()
            c = cov[None, :] + psf_var
            stamp += sed[:, None, None] * _gauss_stamp(dy, dx, c)
        # scale so that the ideal S/N (sky noise only, whole profile) is snr[k]
        flux = snr[k] / math.sqrt(float(np.sum(stamp**2 / sky[:, None, None] ** 2)))
        y0, y1 = max(iy - r, 0), min(iy + r + 1, h)
        x0, x1 = max(ix - r, 0), min(ix + r + 1, w)
        if y1 > y0 and x1 > x0:
            model[:, y0:y1, x0:x1] += (
                flux * stamp[:, y0 - (iy - r) : y1 - (iy - r), x0 - (ix - r) : x1 - (ix - r)]
            )
        truth[k] = (yc, xc, snr[k], is_star[k], size)

    gradient = (
        np.arange(h, dtype=np.float32)[:, None] / max(h - 1, 1)
        + np.arange(w, dtype=np.float32)[None, :] / max(w - 1, 1)
    ) / 2
    images = np.empty((nb, h, w), np.float32)
    variance = np.empty((nb, h, w), np.float32)
    for b in range(nb):
        sb = np.float32(sky[b])
        variance[b] = sb * sb * (1 + np.maximum(model[b], 0) / (100 * sb))
        noise = rng.standard_normal((h, w), dtype=np.float32) * np.sqrt(variance[b])
        images[b] = model[b] + noise + np.float32(sky_level * sky[b]) * (1 + gradient)
    half = 15
    py, px = np.mgrid[-half : half + 1, -half : half + 1]
    psfs = np.exp(-0.5 * (py**2 + px**2)[None] / psf_sig[:, None, None] ** 2)
    psfs /= psfs.sum(axis=(1, 2), keepdims=True)
    return {
        "images": images,
        "variance": variance,
        "mask": np.zeros((nb, h, w), np.int32),
        "psfs": psfs,
        "bands": list(bands),
        "model": model,
        "truth": truth,
    }
