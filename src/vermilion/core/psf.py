"""Model PSF, PSF validation and difference kernels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["difference_kernels", "integrated_gaussian", "stack_psfs", "validate_psfs"]


def integrated_gaussian(sigma: float = 0.8, size: int = 11) -> np.ndarray:
    """A circular Gaussian integrated over square pixels and normalised to sum 1.

    Parameters
    ----------
    sigma
        Standard deviation in pixels.
    size
        Width and height of the (odd-sized) image.

    Returns
    -------
    psf : `numpy.ndarray`
        float32 array of shape ``(size, size)`` centred on the middle pixel.
    """
    if sigma <= 0:
        raise ValueError(f"model PSF sigma must be positive, got {sigma}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"model PSF size must be a positive odd number, got {size}")
    half = size // 2
    scale = 1 / (math.sqrt(2) * sigma)
    edges = [math.erf((i + 0.5) * scale) for i in range(-half - 1, half + 1)]
    profile = np.diff(np.array(edges)) / 2
    psf = np.outer(profile, profile)
    return (psf / psf.sum()).astype(np.float32)


def stack_psfs(kernels: Sequence[np.ndarray]) -> np.ndarray:
    """Stack 2D PSF images of different sizes as ``(n, h, w)`` float32.

    Smaller images are zero-padded, centred, to the largest height and width.

    Parameters
    ----------
    kernels
        2-d PSF images.

    Returns
    -------
    numpy.ndarray
        ``(n, h, w)`` float32.
    """
    ph = max(k.shape[0] for k in kernels)
    pw = max(k.shape[1] for k in kernels)
    out = np.zeros((len(kernels), ph, pw), np.float32)
    for i, k in enumerate(kernels):
        dy, dx = (ph - k.shape[0]) // 2, (pw - k.shape[1]) // 2
        out[i, dy : dy + k.shape[0], dx : dx + k.shape[1]] = k
    return out


def validate_psfs(psfs, bands: Sequence[str]) -> np.ndarray:
    """Check one finite, non-zero, odd-sized PSF image per band; return them normalised.

    Raises
    ------
    ValueError
        Naming the band whose PSF is missing, empty, not finite or badly shaped.

    Parameters
    ----------
    psfs
        ``(bands, ph, pw)`` array or a sequence of 2-d images.
    bands
        The band names (for the messages).

    Returns
    -------
    numpy.ndarray
        ``(bands, ph, pw)`` float32, each summing to 1.
    """
    if psfs is None:
        raise ValueError(f"No PSF given for bands {tuple(bands)}")
    if isinstance(psfs, np.ndarray) and psfs.ndim == 2 and len(bands) == 1:
        psfs = psfs[None]
    if len(psfs) != len(bands):
        missing = tuple(bands[len(psfs) :]) if len(psfs) < len(bands) else ()
        raise ValueError(
            f"{len(psfs)} PSFs for {len(bands)} bands {tuple(bands)}"
            + (f": missing the PSF of band(s) {missing}" if missing else "")
        )
    checked = []
    for band, psf in zip(bands, psfs):
        if psf is None:
            raise ValueError(f"The PSF of band {band!r} is missing")
        psf = np.asarray(psf, dtype=np.float64)
        if psf.ndim != 2 or psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
            raise ValueError(
                f"The PSF of band {band!r} must be a 2D odd-sized image, got {psf.shape}"
            )
        if not np.all(np.isfinite(psf)):
            raise ValueError(f"The PSF of band {band!r} has non-finite pixels")
        total = psf.sum()
        if not np.any(psf) or total <= 0:
            raise ValueError(f"The PSF of band {band!r} is all zero (or sums to {total})")
        checked.append(psf / total)
    shape = tuple(max(p.shape[i] for p in checked) for i in range(2))
    out = np.zeros((len(checked), *shape), dtype=np.float32)
    for b, psf in enumerate(checked):
        dy, dx = (shape[0] - psf.shape[0]) // 2, (shape[1] - psf.shape[1]) // 2
        out[b, dy : dy + psf.shape[0], dx : dx + psf.shape[1]] = psf
    return out


def _centre_at_origin(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-pad a centred odd-sized image to ``shape`` with its centre moved to pixel (0, 0)."""
    out = np.zeros(image.shape[:-2] + shape, dtype=image.dtype)
    hy, hx = image.shape[-2] // 2, image.shape[-1] // 2
    out[..., : image.shape[-2], : image.shape[-1]] = image
    return np.roll(out, (-hy, -hx), axis=(-2, -1))


def difference_kernels(psfs: np.ndarray, model_psf: np.ndarray) -> np.ndarray:
    """Kernels ``k_b`` with ``model_psf * k_b = psf_b``, one per band.

    Computed as ``F(psf_b) / F(model_psf)`` on a grid padded so the kernel does not
    wrap, and cut back to the observed PSF's shape (centred).

    Parameters
    ----------
    psfs
        ``(bands, ph, pw)`` observed PSFs.
    model_psf
        ``(mh, mw)`` model PSF.

    Returns
    -------
    numpy.ndarray
        ``(bands, ph, pw)`` kernels.
    """
    from scipy import fft

    ph, pw = psfs.shape[-2:]
    shape = (
        fft.next_fast_len(ph + model_psf.shape[0], real=True),
        fft.next_fast_len(pw + model_psf.shape[1], real=True),
    )
    psf_f = fft.rfft2(_centre_at_origin(psfs.astype(np.float64), shape))
    model_f = fft.rfft2(_centre_at_origin(model_psf.astype(np.float64), shape))
    kernels = fft.irfft2(psf_f / model_f, s=shape)
    kernels = np.roll(kernels, (ph // 2, pw // 2), axis=(-2, -1))[..., :ph, :pw]
    return kernels.astype(np.float32)
