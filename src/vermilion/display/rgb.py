"""Multi-band images to RGB: band-to-colour maps and colour-preserving intensity mappings.

The mappings follow Lupton et al. (2004, PASP 116, 133): the *intensity* of a
pixel (the mean of its three colour channels) is stretched, and the three
channels are scaled by the same factor, so that the colour (the ratio between
channels) of a pixel does not depend on its brightness. Pixels that would
saturate are scaled down as a whole rather than clipped per channel, so the
cores of bright objects keep their colour instead of turning white.

This module needs only numpy (no matplotlib).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "AsinhMapping",
    "LinearMapping",
    "Mapping",
    "asinh_norm",
    "channels_to_rgb",
    "img_to_3channel",
    "img_to_rgb",
    "residual_norm",
]

#: Full scale of an 8-bit channel.
UINT8_MAX = 255.0


def channels_to_rgb(n_channels: int) -> np.ndarray:
    """Linear map of ``n_channels`` bands, ordered blue to red, onto the (R, G, B) channels.

    The bands are laid side by side on a wavelength axis, each covering an equal
    interval; red, green and blue each cover a third of that axis. A band's weight
    in a colour is the overlap of their intervals, and every colour row is
    normalised to sum to 1, so a flat spectrum (equal flux in every band) is grey.

    Parameters
    ----------
    n_channels
        Number of bands (at least 1).

    Returns
    -------
    channel_map
        ``(3, n_channels)`` float matrix; row 0 is red, row 2 is blue. With
        ``rgb = channel_map @ bands`` the last (reddest) band feeds red.
    """
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)):
        raise TypeError(f"n_channels must be an integer, got {n_channels!r}")
    n = int(n_channels)
    if n < 1:
        raise ValueError(f"n_channels must be at least 1, got {n}")
    band_lo = np.arange(n) / n
    band_hi = (np.arange(n) + 1) / n
    # colour intervals on the same axis: blue first (short wavelengths)
    col_lo = np.array([2, 1, 0]) / 3
    col_hi = np.array([3, 2, 1]) / 3
    overlap = np.minimum(band_hi[None, :], col_hi[:, None]) - np.maximum(
        band_lo[None, :], col_lo[:, None]
    )
    overlap = np.clip(overlap, 0, None)
    # round away float noise such as 1e-17 so exact maps (n = 1, 3) stay exact
    overlap[overlap < 1e-12] = 0
    return overlap / overlap.sum(axis=1, keepdims=True)


def pixel_array(img) -> np.ndarray:
    """The pixel array of an ``Image`` (anything with ``.data`` that is not an ndarray)."""
    if isinstance(img, np.ndarray):
        return img
    data = getattr(img, "data", None)
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(img)


def _check_channel_map(channel_map, n_bands: int) -> np.ndarray:
    channel_map = np.asarray(channel_map, dtype=np.float64)
    if channel_map.shape != (3, n_bands):
        raise ValueError(
            f"channel_map must have shape (3, {n_bands}) for an image of {n_bands} bands, "
            f"got {channel_map.shape}"
        )
    if not np.all(np.isfinite(channel_map)):
        raise ValueError("channel_map has non-finite entries")
    return channel_map


def img_to_3channel(
    img, channel_map: np.ndarray | None = None, fill_value: float = 0
) -> np.ndarray:
    """Combine a ``(bands, h, w)`` image into ``(3, h, w)`` float channels (R, G, B).

    Non-finite pixels are replaced by ``fill_value`` before the combination.
    """
    data = pixel_array(img)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"img must be (bands, height, width) or (height, width), got {data.shape}")
    n_bands = data.shape[0]
    if n_bands == 0:
        raise ValueError("img has no bands")
    if channel_map is None:
        channel_map = channels_to_rgb(n_bands)
    channel_map = _check_channel_map(channel_map, n_bands)
    data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, fill_value)
    return np.tensordot(channel_map, data, axes=1)


class Mapping:
    """Base class: maps three float channels to colour-preserving ``uint8`` RGB.

    Parameters
    ----------
    minimum
        Value mapped to black: a scalar, or one value per (R, G, B) channel.
    """

    def __init__(self, minimum: float | Sequence[float] = 0.0) -> None:
        minimum = np.asarray(minimum, dtype=np.float64)
        if minimum.ndim == 0:
            minimum = np.repeat(minimum, 3)
        if minimum.shape != (3,) or not np.all(np.isfinite(minimum)):
            raise ValueError(f"minimum must be a finite scalar or 3 values, got {minimum!r}")
        self.minimum = minimum

    def intensity_scale(self, intensity: np.ndarray) -> np.ndarray:
        """Factor (in uint8 units per input unit) that multiplies every channel of a pixel."""
        raise NotImplementedError

    def make_rgb_image(self, r: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``uint8 (h, w, 3)`` image from the red, green and blue float channels."""
        rgb = np.stack([r, g, b]).astype(np.float64)
        rgb -= self.minimum[:, None, None]
        return self._to_uint8(rgb)

    def map_float(self, rgb: np.ndarray) -> np.ndarray:
        """The mapped channels as floats in [0, 255] (before rounding), shape ``(3, h, w)``."""
        rgb = np.asarray(rgb, dtype=np.float64) - self.minimum[:, None, None]
        return self._scale(rgb)

    def _scale(self, rgb: np.ndarray) -> np.ndarray:
        intensity = rgb.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            fac = self.intensity_scale(intensity)
            out = rgb * fac[None]
        out = np.where(np.isfinite(out), out, 0.0)
        # Colour-preserving saturation: scale the whole pixel down, not one channel.
        peak = out.max(axis=0)
        over = peak > UINT8_MAX
        if over.any():
            out[:, over] *= UINT8_MAX / peak[over]
        return np.clip(out, 0, UINT8_MAX)

    def _to_uint8(self, rgb: np.ndarray) -> np.ndarray:
        out = self._scale(rgb)
        return np.moveaxis(np.rint(out).astype(np.uint8), 0, -1)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict:
        return {"minimum": self.minimum.tolist()}


class LinearMapping(Mapping):
    """Linear, colour-preserving mapping of ``[minimum, maximum]`` intensity onto 0..255.

    Parameters
    ----------
    minimum
        Intensity shown black (scalar or per channel).
    maximum
        Intensity at which a pixel saturates (scalar).
    """

    def __init__(self, minimum: float | Sequence[float] = 0.0, maximum: float = 1.0) -> None:
        super().__init__(minimum)
        maximum = float(maximum)
        span = maximum - float(np.mean(self.minimum))
        if not np.isfinite(span) or span <= 0:
            raise ValueError(f"maximum ({maximum}) must be larger than minimum ({minimum})")
        self.maximum = maximum
        self._range = span

    def intensity_scale(self, intensity: np.ndarray) -> np.ndarray:
        return np.where(intensity <= 0, 0.0, UINT8_MAX / self._range)

    def _params(self) -> dict:
        return {"minimum": self.minimum.tolist(), "maximum": self.maximum}


class AsinhMapping(Mapping):
    """Lupton et al. (2004) ``asinh`` mapping: linear when faint, logarithmic when bright.

    A pixel of intensity ``I`` (mean of its channels, minus ``minimum``) has every
    channel multiplied by ``asinh(Q I / stretch) / I`` (times a constant), so its
    colour is unchanged.

    Parameters
    ----------
    minimum
        Intensity shown black (scalar or per channel).
    stretch
        Intensity scale of the linear part of the mapping (the ``beta`` of Lupton et al.);
        must be positive.
    Q
        Softening: the asinh becomes logarithmic at intensities above about ``stretch / Q``.
        ``Q`` close to 0 gives a linear mapping.
    """

    def __init__(
        self, minimum: float | Sequence[float] = 0.0, stretch: float = 5.0, Q: float = 8.0
    ) -> None:
        super().__init__(minimum)
        stretch = float(stretch)
        Q = float(Q)
        if not np.isfinite(stretch) or stretch <= 0:
            raise ValueError(f"stretch must be positive, got {stretch}")
        if not np.isfinite(Q) or Q < 0:
            raise ValueError(f"Q must be non-negative, got {Q}")
        self.stretch = stretch
        self.Q = Q
        # Same constants as astropy's AsinhMapping: the curve has the slope it would
        # have at frac * stretch with Q = 0.
        q = max(Q, 1.0 / 2**23)
        q = min(q, 1e10)
        frac = 0.1
        self._slope = frac * UINT8_MAX / np.arcsinh(frac * q)
        self._soften = q / stretch

    def intensity_scale(self, intensity: np.ndarray) -> np.ndarray:
        return np.where(
            intensity <= 0, 0.0, np.arcsinh(intensity * self._soften) * self._slope / intensity
        )

    def _params(self) -> dict:
        return {"minimum": self.minimum.tolist(), "stretch": self.stretch, "Q": self.Q}


def img_to_rgb(
    img,
    channel_map: np.ndarray | None = None,
    norm: Mapping | None = None,
    mask: np.ndarray | None = None,
    fill_value: float | Sequence[int] = 0,
) -> np.ndarray:
    """Convert a multi-band image into a colour-preserving ``uint8 (h, w, 3)`` RGB image.

    Parameters
    ----------
    img
        ``(bands, h, w)`` array or ``Image`` ordered blue to red (a 2D array is one band).
    channel_map
        ``(3, bands)`` matrix from bands to (R, G, B); default ``channels_to_rgb(bands)``.
        A column of zeros hides a band.
    norm
        A `Mapping`; default: `LinearMapping` from the minimum to the maximum of the
        combined channels.
    mask
        ``(h, w)`` boolean array, True where a pixel is hidden (set to ``fill_value``).
    fill_value
        uint8 value (scalar or (R, G, B)) of masked and non-finite pixels.

    Returns
    -------
    rgb
        ``uint8`` array of shape ``(h, w, 3)``; show it with ``imshow(rgb, origin="lower")``.
    """
    data = pixel_array(img)
    rgb = img_to_3channel(data, channel_map=channel_map, fill_value=0.0)
    bad = None
    if data.ndim in (2, 3):
        d3 = data if data.ndim == 3 else data[None]
        finite = np.isfinite(d3)
        if not finite.all():
            bad = ~finite.all(axis=0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != rgb.shape[1:]:
            raise ValueError(
                f"mask shape {mask.shape} differs from the image shape {rgb.shape[1:]}"
            )
        bad = mask if bad is None else (bad | mask)
    if norm is None:
        norm = _minmax_norm(rgb, bad)
    elif not isinstance(norm, Mapping) and not hasattr(norm, "make_rgb_image"):
        raise TypeError(f"norm must be a Mapping (e.g. AsinhMapping), got {type(norm).__name__}")
    out = norm.make_rgb_image(rgb[0], rgb[1], rgb[2])
    if bad is not None and bad.any():
        fill = np.broadcast_to(np.asarray(fill_value), (3,))
        if np.any((fill < 0) | (fill > 255)):
            raise ValueError(f"fill_value must be in 0..255, got {fill_value!r}")
        out[bad] = fill.astype(np.uint8)
    return out


def _minmax_norm(rgb: np.ndarray, bad: np.ndarray | None) -> LinearMapping:
    values = rgb if bad is None else rgb[:, ~bad]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return LinearMapping(0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    return LinearMapping(minimum=lo, maximum=hi)


def asinh_norm(
    img,
    channel_map: np.ndarray | None = None,
    Q: float = 10.0,
    noise_rms: np.ndarray | float | None = None,
    stretch_sigma: float = 10.0,
    saturate_percentile: float = 99.5,
    mask: np.ndarray | None = None,
) -> AsinhMapping:
    """An `AsinhMapping` tuned to an image: black at 0, bright end saturating, noise faint.

    The stretch is the larger of (a) the one that makes the ``saturate_percentile``
    of the intensity just saturate and (b), when ``noise_rms`` (per band) is given,
    ``stretch_sigma`` times the noise of the intensity (a 1-sigma sky pixel then maps
    to about ``290 / stretch_sigma`` of 255 with ``Q=10``).

    Parameters
    ----------
    img
        ``(bands, h, w)`` array or ``Image``.
    channel_map
        As for `img_to_rgb`.
    Q
        Asinh softening.
    noise_rms
        Per-band (or scalar) noise; optional.
    stretch_sigma
        Minimum stretch in units of the intensity noise (with ``noise_rms``).
    saturate_percentile
        Percentile of the intensity that saturates.
    mask
        Pixels to ignore (True = hide).
    """
    data = pixel_array(img)
    if data.ndim == 2:
        data = data[None]
    n_bands = data.shape[0]
    cmap = (
        channels_to_rgb(n_bands)
        if channel_map is None
        else _check_channel_map(channel_map, n_bands)
    )
    probe = AsinhMapping(0.0, 1.0, Q)
    # intensity at which an asinh mapping of stretch 1 saturates
    i_sat = np.sinh(UINT8_MAX / probe._slope) / probe._soften
    intensity = img_to_3channel(data, cmap).mean(axis=0)
    if mask is not None:
        intensity = intensity[~np.asarray(mask, dtype=bool)]
    intensity = intensity[np.isfinite(intensity)]
    top = float(np.percentile(intensity, saturate_percentile)) if intensity.size else 0.0
    stretch = top / i_sat if top > 0 else 0.0
    if noise_rms is not None:
        rms = np.broadcast_to(np.asarray(noise_rms, dtype=np.float64), (n_bands,))
        # the intensity is the mean of the channels: band noise adds in quadrature
        weights = cmap.mean(axis=0)
        sigma = float(np.sqrt(np.sum((weights * rms) ** 2)))
        if np.isfinite(sigma) and sigma > 0:
            stretch = max(stretch, stretch_sigma * sigma)
    if not stretch > 0:
        stretch = 1.0
    return AsinhMapping(minimum=0.0, stretch=stretch, Q=Q)


def residual_norm(
    residual, channel_map: np.ndarray | None = None, percentile: float = 99.0
) -> LinearMapping:
    """A symmetric `LinearMapping` for residuals: zero is mid-grey.

    The range is ``±`` the ``percentile`` of the absolute combined channels.
    """
    data = pixel_array(residual)
    rgb = img_to_3channel(data, channel_map)
    values = np.abs(rgb[np.isfinite(rgb)])
    v = float(np.percentile(values, percentile)) if values.size else 0.0
    if not v > 0:
        v = 1.0
    return LinearMapping(minimum=-v, maximum=v)
