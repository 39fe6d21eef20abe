"""Steps 1 and 3 of `detect_sources`: the coadd of all bands and its S/N maps.

1. The inverse-variance weighted coadd (`inverse_variance_coadd`)
   ``D = sum_b w_b I_b / sum_b w_b`` with ``W = sum_b w_b`` (the inverse variance of
   ``D``); pixels that are NaN, have non-positive variance or carry a bad mask bit
   get ``w_b = 0`` in that band. Each band is background subtracted first
   (`vermilion.detect.background`).
3. `detection_maps`: the matched-filter (PSF-smoothed) S/N with per-pixel weights,
   ``snr = ((W D) * g) / sqrt(W * g^2)`` for a Gaussian ``g`` of the PSF core width
   (``*`` is a convolution); masked pixels simply drop out of both sums, so edges
   and holes need no special care. ``amplitude = ((W D) * g) / (W * g^2)`` is the
   least-squares peak amplitude of a PSF-like source, in image units. The same
   S/N map is made for every band with that band's PSF width
   (`psf_sigmas_from_images`).

Not to be confused with `vermilion.core.chi2_detection_image`, the engine's
detection image of an `Observation` used to initialize sources.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from vermilion.core.masks import mask_bits

from .background import _band_background

__all__ = [
    "DetectionMaps",
    "detection_maps",
    "inverse_variance_coadd",
    "psf_sigma_from_images",
    "psf_sigmas_from_images",
]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _as_cube(name: str, array, dtype=np.float32) -> np.ndarray:
    arr = np.asarray(getattr(array, "data", array))
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (bands, H, W) or (H, W), got shape {arr.shape}")
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def _check_inputs(images, variance, mask):
    images = _as_cube("images", images, None)
    variance = _as_cube("variance", variance, None)
    if variance.shape != images.shape:
        raise ValueError(f"variance shape {variance.shape} differs from images {images.shape}")
    if mask is not None:
        mask = np.asarray(getattr(mask, "data", mask))
        if mask.shape not in (images.shape, images.shape[1:]):
            raise ValueError(f"mask shape {mask.shape} fits neither {images.shape} nor (H, W)")
        if mask.dtype.kind not in "iub":
            raise ValueError(f"mask must be an integer array, got {mask.dtype}")
    return images, variance, mask


def _band_data(images, variance, mask, bad: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Band ``b`` as float32 with unusable pixels set to 0, and its weights."""
    img = np.asarray(images[b], dtype=np.float32)
    var = np.asarray(variance[b], dtype=np.float32)
    w = np.empty(var.shape, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.divide(np.float32(1.0), var, out=w)
        unusable = ~(var > 0)
        unusable |= ~np.isfinite(w)
        unusable |= ~np.isfinite(img)
    if mask is not None and bad:
        m = mask if mask.ndim == 2 else mask[b]
        unusable |= (m & bad) != 0
    w[unusable] = 0.0
    img = img.copy()
    img[unusable] = 0.0
    return img, w


def inverse_variance_coadd(
    images,
    variance,
    mask=None,
    bad_mask_bits=("BAD", "SAT", "NO_DATA"),
    mask_planes: Mapping[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance weighted coadd of all bands.

    Parameters
    ----------
    images, variance
        ``(bands, H, W)`` (or ``(H, W)``) arrays.
    mask
        Optional integer mask, ``(H, W)`` for all bands or ``(bands, H, W)``.
    bad_mask_bits
        Bits (int) or plane names whose pixels get zero weight.
    mask_planes
        Plane name to bit, default `vermilion.core.MASK_PLANES`.

    Returns
    -------
    coadd, weight : numpy.ndarray
        ``(H, W)`` float32 arrays: ``sum_b w_b I_b / sum_b w_b`` (0 where no band has
        data) and ``sum_b w_b``, the inverse variance of the coadd (0 where no data).
        Pixels that are NaN, have non-positive or non-finite variance or carry a
        bad mask bit get ``w_b = 0``.
    """
    images, variance, mask = _check_inputs(images, variance, mask)
    bad = mask_bits(bad_mask_bits, mask_planes)
    num = np.zeros(images.shape[1:], dtype=np.float32)
    weight = np.zeros(images.shape[1:], dtype=np.float32)
    for b in range(images.shape[0]):
        img, w = _band_data(images, variance, mask, bad, b)
        num += w * img
        weight += w
    with np.errstate(divide="ignore", invalid="ignore"):
        coadd = np.where(weight > 0, num / weight, 0.0).astype(np.float32)
    return coadd, weight


def psf_sigma_from_images(psfs) -> float:
    """Mean Gaussian-equivalent sigma (pixels) of PSF images (see `psf_sigmas_from_images`)."""
    return float(np.mean(psf_sigmas_from_images(psfs)))


def psf_sigmas_from_images(psfs, upsample: int = 4) -> np.ndarray:
    """Gaussian-equivalent sigma (pixels) of each PSF image, from its FWHM.

    The FWHM is measured from the area above half the maximum on a bicubically
    upsampled image (``FWHM = 2 sqrt(area / pi)``) and converted with
    ``sigma = FWHM / 2.355``. This is the width of the PSF core, which is what
    the matched filter and the footprint growth need: second moments of real
    (Moffat-like) PSFs are inflated by their wings, and a filter that wide
    merges close pairs (measured on `vermilion.sim` scenes: 1.5 points of
    completeness lost).
    """
    from scipy import ndimage

    psfs = np.asarray(psfs, dtype=np.float64)
    if psfs.ndim == 2:
        psfs = psfs[None]
    if psfs.ndim != 3:
        raise ValueError(f"psfs must be (bands, h, w) or (h, w), got shape {psfs.shape}")
    sigmas = []
    for p in psfs:
        p = np.where(np.isfinite(p), p, 0.0)
        peak = p.max()
        if not peak > 0:
            sigmas.append(np.nan)
            continue
        fine = ndimage.zoom(p, upsample, order=3, mode="nearest", grid_mode=True)
        area = np.count_nonzero(fine >= 0.5 * fine.max()) / upsample**2
        sigmas.append(2.0 * math.sqrt(area / math.pi) / _FWHM_PER_SIGMA)
    sigmas = np.array(sigmas)
    if not np.isfinite(sigmas).any():
        raise ValueError("every PSF image is empty, non-finite or non-positive")
    # a broken PSF image takes the mean of the others
    return np.where(np.isfinite(sigmas), sigmas, np.nanmean(sigmas))


def _gauss1d(sigma: float) -> np.ndarray:
    r = max(1, math.ceil(4 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    return np.exp(-0.5 * (x / sigma) ** 2)


@dataclass
class DetectionMaps:
    """Intermediate images of a detection run (all ``(H, W)`` float32).

    Attributes
    ----------
    coadd
        Inverse-variance weighted coadd, background subtracted.
    weight
        Its inverse variance (0 = no data).
    background
        The background subtracted from the coadd (weighted mean of the bands').
    snr
        Matched-filter S/N of the coadd.
    amplitude
        Matched-filter peak amplitude of the coadd (image units).
    psf_sigma
        Gaussian sigma of the smoothing kernel in pixels (0 = no smoothing).
    timings
        Seconds spent per stage of `detect_sources` (maps, footprints, peaks, catalog);
        kept out of the catalog so that a catalog does not depend on the run.
    """

    coadd: np.ndarray
    weight: np.ndarray
    background: np.ndarray
    snr: np.ndarray
    amplitude: np.ndarray
    psf_sigma: float
    timings: dict[str, float] = field(default_factory=dict)


def _matched_filter(
    num: np.ndarray, weight: np.ndarray, sigma: float, amplitude: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """S/N and amplitude maps from ``num = weight * image`` and ``weight``."""
    from scipy import ndimage

    if sigma > 0:
        g = _gauss1d(sigma)
        g2 = g * g
        num = ndimage.correlate1d(num, g, axis=0, mode="constant")
        ndimage.correlate1d(num, g, axis=1, mode="constant", output=num)
        den = ndimage.correlate1d(weight, g2, axis=0, mode="constant")
        ndimage.correlate1d(den, g2, axis=1, mode="constant", output=den)
    else:
        num = num.copy()
        den = weight.astype(np.float32, copy=True)
    # tiny positive den from float round-off far from any data counts as no data
    wmax = float(weight.max()) if weight.size else 0.0
    floor = np.float32(1e-6 * wmax if wmax > 0 else 1e-30)
    nodata = den <= floor
    np.maximum(den, floor, out=den)
    num[nodata] = 0.0
    amp = np.divide(num, den, dtype=np.float32) if amplitude else None
    np.sqrt(den, out=den)
    snr = np.divide(num, den, out=num)
    return snr, amp


def _iter_bands(images, variance, mask, bad, background, background_cell):
    """Yield ``(b, background-subtracted band, weights, background)``."""
    shape = images.shape[1:]
    bkg_all = None
    if not isinstance(background, str) and background is not None:
        bkg_all = np.asarray(background, dtype=np.float32)
        if bkg_all.ndim == 3 and bkg_all.shape != images.shape:
            raise ValueError(f"background shape {bkg_all.shape} differs from {images.shape}")
    for b in range(images.shape[0]):
        img, w = _band_data(images, variance, mask, bad, b)
        if bkg_all is not None and bkg_all.ndim == 3:
            bkg = bkg_all[b]
        else:
            bkg = _band_background(img, w, background, background_cell, shape)
        if bkg is not None:
            img = np.where(w > 0, img - bkg, 0.0).astype(np.float32)
        yield b, img, w, bkg


def detection_maps(
    images,
    variance,
    mask=None,
    psf_sigma: float = 1.5,
    smooth: bool = True,
    background="mesh",
    background_cell: int = 128,
    bad_mask_bits=("BAD", "SAT", "NO_DATA"),
    mask_planes: Mapping[str, int] | None = None,
) -> DetectionMaps:
    """Background-subtracted coadd and its matched-filter S/N and amplitude.

    ``background`` is ``"mesh"`` (`estimate_background` per band, cells of
    ``background_cell`` pixels), None (no subtraction), a number, an ``(H, W)``
    array (every band) or a ``(bands, H, W)`` array.
    """
    images, variance, mask = _check_inputs(images, variance, mask)
    bad = mask_bits(bad_mask_bits, mask_planes)
    maps, _ = _detection_pass(
        images,
        variance,
        mask,
        bad,
        psf_sigma if smooth else 0.0,
        background,
        background_cell,
        None,
    )
    return maps


def _detection_pass(
    images, variance, mask, bad, sigma, background, background_cell, band_hook, band_sigmas=None
):
    """Coadd maps; ``band_hook(b, snr_b, weight_b)`` is called per band if given.

    The coadd is smoothed with ``sigma``, band ``b`` with ``band_sigmas[b]`` (default
    ``sigma``).
    """
    shape = images.shape[1:]
    num = np.zeros(shape, np.float32)
    weight = np.zeros(shape, np.float32)
    bnum = np.zeros(shape, np.float32)
    results = []
    for b, img, w, bkg in _iter_bands(images, variance, mask, bad, background, background_cell):
        wi = w * img
        num += wi
        weight += w
        if bkg is not None:
            bnum += w * bkg
        if band_hook is not None:
            sb = sigma if band_sigmas is None or sigma == 0 else float(band_sigmas[b])
            snr_b, _ = _matched_filter(wi, w, sb, amplitude=False)
            results.append(band_hook(b, snr_b, w))
    with np.errstate(divide="ignore", invalid="ignore"):
        has = weight > 0
        safe = np.where(has, weight, 1.0)
        coadd = np.where(has, num / safe, 0.0).astype(np.float32)
        background_map = np.where(has, bnum / safe, 0.0).astype(np.float32)
    snr, amp = _matched_filter(num, weight, sigma)
    return DetectionMaps(coadd, weight, background_map, snr, amp, float(sigma)), results
