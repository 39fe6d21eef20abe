"""Observed multi-band data, its PSFs and the model-to-data convolution."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .bbox import Box
from .image import Image
from .notebook import picture_png
from .psf import difference_kernels, integrated_gaussian, validate_psfs

__all__ = [
    "Convolver",
    "DummyObservation",
    "LiteObservation",
    "NoDataObservation",
    "Observation",
    "estimate_noise_rms",
    "observation_from_exposure",
]


def _fft():
    from scipy import fft

    return fft


class Convolver:
    """Linear (non-wrapping) convolution of ``(band, h, w)`` arrays with per-band kernels.

    The kernel transforms are computed once per array shape and cached, so
    that convolving the whole blend costs one forward and one inverse real FFT.
    The adjoint (``grad=True``) multiplies by the conjugate transform, i.e.
    correlates with the kernel, which is the gradient of the convolution.
    """

    def __init__(self, kernels: np.ndarray) -> None:
        self.kernels = np.ascontiguousarray(kernels, dtype=np.float32)
        self.radius = (kernels.shape[-2] // 2, kernels.shape[-1] // 2)
        self._cache: dict[tuple[int, int], tuple[tuple[int, int], np.ndarray, np.ndarray]] = {}

    def _transforms(self, shape: tuple[int, int]):
        entry = self._cache.get(shape)
        if entry is None:
            fft = _fft()
            kh, kw = self.kernels.shape[-2:]
            # Pad so the output does not wrap (shape + radius) and the whole
            # kernel fits (an image smaller than the kernel would not hold it).
            fshape = (
                fft.next_fast_len(max(shape[0] + self.radius[0], kh), real=True),
                fft.next_fast_len(max(shape[1] + self.radius[1], kw), real=True),
            )
            padded = np.zeros((self.kernels.shape[0], *fshape), dtype=np.float32)
            padded[:, :kh, :kw] = self.kernels
            padded = np.roll(padded, (-self.radius[0], -self.radius[1]), axis=(-2, -1))
            kf = fft.rfft2(padded, workers=1)
            entry = (fshape, kf, np.conj(kf))
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[shape] = entry
        return entry

    def __call__(self, array: np.ndarray, grad: bool = False) -> np.ndarray:
        fft = _fft()
        h, w = array.shape[-2:]
        fshape, kf, kf_conj = self._transforms((h, w))
        spectrum = fft.rfft2(array, s=fshape, workers=1)
        spectrum *= kf_conj if grad else kf
        return fft.irfft2(spectrum, s=fshape, workers=1)[..., :h, :w]

    def convolve_plane(self, plane: np.ndarray) -> np.ndarray:
        """Convolve one 2D plane with every band's kernel: ``(h, w) -> (bands, h, w)``.

        Parameters
        ----------
        plane
            ``(h, w)``.

        Returns
        -------
        numpy.ndarray
            ``(bands, h, w)``.
        """
        fft = _fft()
        h, w = plane.shape
        fshape, kf, _ = self._transforms((h, w))
        spectrum = fft.rfft2(plane, s=fshape, workers=1)
        return fft.irfft2(kf * spectrum, s=fshape, workers=1)[..., :h, :w]

    def real_space(self, array: np.ndarray, grad: bool = False) -> np.ndarray:
        """Direct (real-space) convolution; exact, slower, for final renders and checks.

        Parameters
        ----------
        array
            ``(bands, h, w)``.
        grad
            Convolve with the flipped kernels (the adjoint, for gradients).

        Returns
        -------
        numpy.ndarray
            ``(bands, h, w)``.
        """
        from scipy import ndimage

        out = np.empty(array.shape, dtype=np.float64)
        for b in range(array.shape[0]):
            fn = ndimage.correlate if grad else ndimage.convolve
            out[b] = fn(
                array[b].astype(np.float64),
                self.kernels[b].astype(np.float64),
                mode="constant",
                cval=0.0,
            )
        return out.astype(np.float32)


def estimate_noise_rms(images: np.ndarray) -> np.ndarray:
    """Per-band background noise from the median absolute deviation of the pixels.

    Parameters
    ----------
    images
        ``(bands, h, w)``.

    Returns
    -------
    numpy.ndarray
        ``(bands,)``: ``1.4826 * MAD`` of each band's finite pixels, bright sources
        clipped iteratively; nan for a band without a finite pixel.
    """
    images = np.asarray(images, dtype=np.float64)
    rms = np.empty(images.shape[0])
    for b, img in enumerate(images):
        good = img[np.isfinite(img)]
        if good.size == 0:
            rms[b] = np.nan
            continue
        # Clip bright sources iteratively so the MAD reflects the sky.
        sel = good
        for _ in range(3):
            med = np.median(sel)
            mad = 1.4826 * np.median(np.abs(sel - med))
            if mad == 0:
                break
            sel = sel[np.abs(sel - med) < 3 * mad]
        rms[b] = mad if mad > 0 else np.std(good)
    return rms


class Observation:
    """Multi-band images with their variance, weights, PSFs and the model PSF.

    Parameters
    ----------
    images
        ``(bands, height, width)`` observed pixels.
    variance
        Per-pixel variance, same shape; ``None`` estimates a constant noise per band
        from the images (robust MAD) for data that has no variance plane.
    weights
        Per-pixel weights; defaults to ``1 / variance``. Pixels that are not finite
        or have zero, negative or non-finite variance get weight 0 (with a warning).
    psfs
        ``(bands, ph, pw)`` observed PSF images (odd sizes, centred).
    model_psf
        The narrow PSF of the model space (2D); default: integrated circular
        Gaussian of sigma 0.8 px on 11 x 11 px.
    bands
        Band names, in the order of the arrays.
    bbox
        Box of the images in parent-image coordinates (default: origin 0).
    convolution_mode
        ``"fft"`` (default) or ``"real"`` (direct summation, exact, slower).
    """

    has_data = True

    def __init__(
        self,
        images: np.ndarray,
        variance: np.ndarray | None,
        weights: np.ndarray | None = None,
        psfs: np.ndarray | None = None,
        model_psf: np.ndarray | None = None,
        bands: Sequence[str] | None = None,
        bbox: Box | None = None,
        convolution_mode: str = "fft",
        padding: int = 3,
    ) -> None:
        images = np.array(images, dtype=np.float32)
        if images.ndim == 2:
            raise ValueError(
                f"images must be (bands, h, w), got a 2-D image of shape {images.shape}: "
                "for one band give images[None] (and variance[None], psfs[None])"
            )
        if images.ndim != 3:
            raise ValueError(f"images must be (bands, h, w), got shape {images.shape}")
        n_bands = images.shape[0]
        if bands is None:
            bands = tuple(str(b) for b in range(n_bands))
        bands = tuple(str(b) for b in bands)
        if len(bands) != n_bands:
            raise ValueError(f"{len(bands)} band names for {n_bands} image bands")
        if bbox is None:
            bbox = Box(images.shape[-2:])
        elif tuple(bbox.shape[-2:]) != images.shape[-2:]:
            raise ValueError(f"bbox {bbox} does not match the image shape {images.shape[-2:]}")
        self._init_psfs(psfs, model_psf, bands, bbox, convolution_mode, padding)

        bad = ~np.isfinite(images)
        if variance is None:
            rms = estimate_noise_rms(images)
            if not np.all(np.isfinite(rms)):
                raise ValueError(f"Cannot estimate the noise of bands {bands}: no finite pixels")
            variance = np.broadcast_to((rms**2)[:, None, None], images.shape).astype(np.float32)
        variance = np.array(variance, dtype=np.float32)
        if variance.shape != images.shape:
            raise ValueError(f"variance shape {variance.shape} differs from images {images.shape}")
        bad |= ~np.isfinite(variance) | (variance <= 0)
        if weights is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                weights = np.where(bad, 0, 1 / variance).astype(np.float32)
        else:
            weights = np.array(weights, dtype=np.float32)
            if weights.shape != images.shape:
                raise ValueError(
                    f"weights shape {weights.shape} differs from images {images.shape}"
                )
            bad |= ~np.isfinite(weights) | (weights < 0)
        n_bad = int(bad.sum())
        if n_bad:
            per_band = {b: int(n) for b, n in zip(bands, bad.sum(axis=(1, 2))) if n}
            warnings.warn(
                f"{n_bad} pixels with non-finite values or non-positive variance get zero "
                f"weight (per band: {per_band})",
                RuntimeWarning,
                stacklevel=2,
            )
            images[bad] = 0
            weights[bad] = 0
            variance = variance.copy()
            variance[bad] = np.inf
        self._images = images
        self._variance = variance
        self._weights = weights
        good = weights > 0
        rms = np.empty(n_bands)
        for b in range(n_bands):
            v = variance[b][good[b]]
            rms[b] = np.sqrt(np.mean(v, dtype=np.float64)) if v.size else np.inf
        self.noise_rms = rms.astype(np.float32)

    def _init_psfs(self, psfs, model_psf, bands, bbox, convolution_mode, padding) -> None:
        if convolution_mode not in ("fft", "real"):
            raise ValueError(f"convolution_mode must be 'fft' or 'real', got {convolution_mode!r}")
        self.bands = tuple(str(b) for b in bands)
        self.bbox = bbox
        self.psfs = validate_psfs(psfs, self.bands)
        if model_psf is None:
            model_psf = integrated_gaussian(0.8, 11)
        model_psf = np.asarray(model_psf, dtype=np.float32)
        if model_psf.ndim == 3 and model_psf.shape[0] == 1:
            model_psf = model_psf[0]
        if model_psf.ndim != 2 or not np.all(np.isfinite(model_psf)) or model_psf.sum() <= 0:
            raise ValueError(f"model_psf must be a finite 2D image, got shape {model_psf.shape}")
        self.model_psf = (model_psf / model_psf.sum()).astype(np.float32)
        self.convolution_mode = convolution_mode
        self.padding = padding
        self.diff_kernel = Convolver(difference_kernels(self.psfs, self.model_psf))

    @property
    def images(self) -> Image:
        """The observed images on the blend box."""
        return Image(self._images, self.bands, self.bbox.origin)

    @property
    def variance(self) -> Image:
        """The variance on the blend box."""
        return Image(self._variance, self.bands, self.bbox.origin)

    @property
    def weights(self) -> Image:
        """The pixel weights (inverse variance, 0 where masked) on the blend box."""
        return Image(self._weights, self.bands, self.bbox.origin)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(bands, h, w)``."""
        return (len(self.bands), *self.bbox.shape)

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return len(self.bands)

    def convolve(self, image, mode: str | None = None, grad: bool = False):
        """Convolve a model (``Image`` or array) from model space to the observed PSFs.

        Parameters
        ----------
        image
            ``Image`` or ``(bands, h, w)`` array in model space.
        mode
            ``"fft"`` or ``"real"``; default: the observation's ``convolution_mode``.
        grad
            Apply the adjoint (the flipped kernel): the gradient of the convolution.

        Returns
        -------
        The convolved image, of the same type and box as the input.
        """
        mode = mode or self.convolution_mode
        data = image.data if isinstance(image, Image) else np.asarray(image)
        if data.shape[0] != len(self.bands):
            raise ValueError(f"image has {data.shape[0]} bands, observation has {len(self.bands)}")
        if mode == "fft":
            out = self.diff_kernel(data, grad=grad)
        elif mode == "real":
            out = self.diff_kernel.real_space(data, grad=grad)
        else:
            raise ValueError(f"mode must be 'fft' or 'real', got {mode!r}")
        out = out.astype(np.float32, copy=False)
        if isinstance(image, Image):
            return image.copy_with(data=out)
        return out

    def render(self, model) -> Image | np.ndarray:
        """The model as it would be observed: convolved with the difference kernels.

        Parameters
        ----------
        model
            An `Image` or ``(bands, h, w)`` array in model space.

        Returns
        -------
        Image or numpy.ndarray
            The same kind as ``model``.
        """
        return self.convolve(model)

    def _model_array(self, model) -> np.ndarray:
        if isinstance(model, Image):
            model = model.project(self.bbox).data
        model = np.asarray(model)
        if model.shape != self.shape:
            raise ValueError(f"model shape {model.shape} differs from the observation {self.shape}")
        return model

    def log_likelihood(self, model, rendered: bool = False) -> float:
        """``-1/2 sum(w (data - render(model))^2)`` of a model in model space.

        Set ``rendered=True`` when ``model`` is already convolved.

        Parameters
        ----------
        model
            ``(bands, h, w)`` on the blend box.
        rendered
            True when ``model`` is already convolved.

        Returns
        -------
        float
            The log-likelihood.
        """
        data = self._model_array(model)
        if not rendered:
            data = self.convolve(data)
        residual = self._images - data
        return float(-0.5 * np.sum(self._weights * residual * residual, dtype=np.float64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bands={self.bands}, bbox={self.bbox})"

    def _repr_png_(self) -> bytes | None:
        """A picture of the images in Jupyter (drawn by `vermilion.display` when asked)."""
        return picture_png(self)


#: Rubin's name of `Observation` (``lsst.scarlet.lite.Observation``).
LiteObservation = Observation


class NoDataObservation(Observation):
    """An observation with PSFs and a box but no pixels (the LSST ``DummyObservation``).

    It renders stored models in the observed seeing; fitting it raises an error.
    """

    has_data = False

    def __init__(
        self,
        psfs: np.ndarray,
        model_psf: np.ndarray | None,
        bands: Sequence[str],
        bbox: Box,
        convolution_mode: str = "fft",
        padding: int = 3,
    ) -> None:
        self._init_psfs(psfs, model_psf, bands, bbox, convolution_mode, padding)
        self.noise_rms = np.zeros(len(self.bands), dtype=np.float32)

    def _no_data(self, what: str):
        raise ValueError(
            f"This observation holds no image data (only PSFs and a box): cannot {what}. "
            "Rebuild the blend with the exposure cutout to fit it."
        )

    @property
    def images(self) -> Image:
        """Zeros (there is no data)."""
        return Image(np.zeros(self.shape, dtype=np.float32), self.bands, self.bbox.origin)

    @property
    def variance(self) -> Image:
        """Not available: raises ValueError."""
        self._no_data("provide a variance")

    @property
    def weights(self) -> Image:
        """Not available: raises ValueError."""
        self._no_data("provide weights")

    def log_likelihood(self, model, rendered: bool = False) -> float:
        """Not available: raises ValueError (there is no data to compare with).

        Parameters
        ----------
        model
            Ignored.
        rendered
            Ignored.

        Returns
        -------
        float
            Never returns.
        """
        self._no_data("compute a likelihood")


#: Rubin / scarlet-lite name of `NoDataObservation`.
DummyObservation = NoDataObservation


def observation_from_exposure(
    mexposure,
    bbox: Box | None = None,
    footprint=None,
    bad_mask: int = 0,
    model_psf: np.ndarray | None = None,
    use_weights: bool = True,
    convolution_mode: str = "fft",
) -> Observation:
    """The observation of one blend, built from a multi-band exposure exactly as the pipeline does.

    Parameters
    ----------
    mexposure
        Anything with ``images``, ``variance`` (and optionally ``mask``) arrays of
        shape ``(bands, H, W)``, ``psfs`` ``(bands, ph, pw)``, ``bands`` and ``bbox``
        (a `Box` giving the arrays' place in the parent image); e.g. a
        `vermilion.MultibandExposure` or a cutout of one.
    bbox
        The blend's box (default: the whole exposure). It must lie inside the
        exposure's box.
    footprint
        Optional parent footprint (``.bbox`` and ``.spans.as_array()``): pixels
        outside it get zero weight.
    bad_mask
        Mask bits whose pixels get zero weight.
    model_psf
        The model-space PSF (default: integrated Gaussian, sigma 0.8 px, 11 px).
    use_weights
        Inverse-variance weights (``True``) or uniform weights over the valid pixels.

    Returns
    -------
    Observation
        The blend's observation.
    """
    ebox = mexposure.bbox if isinstance(mexposure.bbox, Box) else Box(*mexposure.bbox)
    if bbox is None:
        bbox = ebox
    if (bbox & ebox) != bbox:
        raise ValueError(f"The blend box {bbox} is not covered by the exposure box {ebox}")
    cut = (slice(None), *bbox.slices_in(ebox))
    images = np.asarray(mexposure.images)[cut]
    variance = np.asarray(mexposure.variance)[cut]
    valid = np.isfinite(images) & np.isfinite(variance) & (variance > 0)
    mask = getattr(mexposure, "mask", None)
    if mask is not None and bad_mask:
        valid &= (np.asarray(mask)[cut] & bad_mask) == 0
    if footprint is not None:
        inside = np.zeros(bbox.shape, dtype=bool)
        fbox = footprint.bbox if isinstance(footprint.bbox, Box) else footprint.getBBox()
        s_blend, s_fp = bbox.overlapped_slices(fbox)
        inside[s_blend] = footprint.spans.as_array()[s_fp]
        valid &= inside[None]
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(valid, 1 / variance if use_weights else 1, 0).astype(np.float32)
    # Invalid pixels carry weight 0; placeholder values keep them out of every sum.
    return Observation(
        np.where(valid, images, 0),
        np.where(valid, variance, 1).astype(np.float32),
        weights=weights,
        psfs=mexposure.psfs,
        model_psf=model_psf,
        bands=tuple(mexposure.bands),
        bbox=bbox,
        convolution_mode=convolution_mode,
    )
