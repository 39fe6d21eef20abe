"""Components: the building blocks of a source model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .bbox import Box
from .image import Image
from .operators import (
    DEFAULT_MONOTONIC_SLACK,
    checked_slack,
    find_peak,
    prox_connected,
    prox_monotonic,
    prox_sparsity,
    prox_thin,
)
from .parameters import Parameter, parameter

__all__ = ["Component", "CubeComponent", "FactorizedComponent"]


class Component(ABC):
    """Base class: a model on a box, in model space (before convolution).

    A subclass implements `get_model`, `update` and `parameters`; it may override
    `model_array` (faster than through an `Image`) and `resize`.

    Parameters
    ----------
    bands
        Band names, in the order of the model's first axis.
    bbox
        The 2-d box of the model, in parent-image pixels.
    peak
        ``(y, x)`` of the component's peak, or None.
    """

    def __init__(self, bands: Sequence[str], bbox: Box, peak: tuple[int, int] | None = None):
        self.bands = tuple(bands)
        self.bbox = bbox
        self.peak = None if peak is None else (int(peak[0]), int(peak[1]))

    @property
    def shape(self) -> tuple[int, ...]:
        """``(bands, h, w)`` of the model."""
        return (len(self.bands), *self.bbox.shape)

    def get_model(self) -> Image:
        """The model on its box.

        Returns
        -------
        Image
            ``(bands, h, w)`` at the origin of `bbox`.
        """
        return Image(self.model_array(), self.bands, self.bbox.origin)

    @abstractmethod
    def model_array(self) -> np.ndarray:
        """The model as a ``(bands, h, w)`` array on `bbox` (no Image wrapper).

        Returns
        -------
        numpy.ndarray
            The model's pixels.
        """

    @abstractmethod
    def update(self, it: int, input_grad: np.ndarray) -> None:
        """One optimizer step given the loss gradient on the component's box.

        Parameters
        ----------
        it
            The iteration number (0 first).
        input_grad
            Gradient of the loss with respect to the model, ``(bands, h, w)`` on `bbox`.
        """

    def resize(self, model_box: Box) -> bool:
        """Adapt the box to the model (the base class never does).

        Parameters
        ----------
        model_box
            The box the component must stay in (the blend's).

        Returns
        -------
        bool
            Whether the box changed.
        """
        return False

    @property
    @abstractmethod
    def parameters(self) -> list[Parameter]:
        """The optimizable parameters of the model."""

    def state(self) -> tuple:
        """A copy of the values that define the model (box, peak, parameter values).

        Returns
        -------
        tuple
            ``(bbox, peak, [parameter values])``, for `restore`.
        """
        return (self.bbox, self.peak, [p.x.copy() for p in self.parameters])

    def restore(self, state: tuple) -> None:
        """Return to a `state` (parameter values; optimizer moments are kept, moved to its box).

        Parameters
        ----------
        state
            What `state` returned.
        """
        bbox, peak, values = state
        for p, x in zip(self.parameters, values):
            if p.x.shape != x.shape:
                p.resize(self.bbox, bbox)
            p.x = x.copy()
        self.bbox, self.peak = bbox, peak


class FactorizedComponent(Component):
    """``spectrum[:, None, None] * morph[None]``: one number per band times a 2D morphology.

    Parameters
    ----------
    bands
        Band names.
    spectrum
        ``(bands,)`` amplitudes, an array or a `Parameter`.
    morph
        ``(h, w)`` non-negative morphology on ``bbox``, an array or a `Parameter`.
    bbox
        Box of the morphology in parent-image coordinates.
    peak
        ``(y, x)`` of the peak in parent-image coordinates.
    bg_rms
        Per-band noise, for the sparsity threshold.
    bg_thresh
        Zero morphology pixels whose model is below ``bg_thresh * bg_rms`` in all bands.
    floor
        Minimum of the spectrum and of the peak pixel.
    monotonic
        Project the morphology to be monotonic about its peak after each step.
    monotonic_slack
        How strict that projection is, from 0 (scarlet's weighted monotonicity) to
        1 (no pixel brighter than its brightest closer neighbour); see `prox_monotonic`.
    prune_thin
        Zero the morphology's tendrils at every proximal step (`prox_thin`: pixels in no
        2 x 2 block of the support, and pieces cut off from the peak). The
        initialization turns it on for faint and compact sources, whose models otherwise
        grow one-pixel filaments along the noise.
    fit_radius
        The peak may move this far (pixels) from its initial position to the local maximum.
    padding
        Pixels kept around the non-zero morphology when resizing.
    connected
        Keep only the pixels connected to the peak.
    """

    def __init__(
        self,
        bands: Sequence[str],
        spectrum,
        morph,
        bbox: Box,
        peak: tuple[int, int] | None = None,
        bg_rms: np.ndarray | None = None,
        bg_thresh: float | None = 0.25,
        floor: float = 1e-20,
        monotonic: bool = True,
        monotonic_slack: float = DEFAULT_MONOTONIC_SLACK,
        prune_thin: bool = False,
        fit_radius: int = 1,
        padding: int = 5,
        connected: bool = False,
    ) -> None:
        if peak is None:
            peak = tuple(int(c) for c in np.round(bbox.center))
        super().__init__(bands, bbox, peak)
        self._spectrum = parameter(spectrum)
        self._morph = parameter(morph)
        if self._spectrum.shape != (len(self.bands),):
            raise ValueError(f"spectrum shape {self._spectrum.shape} for {len(self.bands)} bands")
        if self._morph.shape != tuple(bbox.shape):
            raise ValueError(f"morph shape {self._morph.shape} differs from its box {bbox}")
        self.bg_rms = None if bg_rms is None else np.asarray(bg_rms, dtype=np.float32)
        self.bg_thresh = bg_thresh
        self.floor = floor
        self.monotonic = monotonic
        self.monotonic_slack = checked_slack(monotonic_slack)
        self.prune_thin = bool(prune_thin)
        self.fit_radius = fit_radius
        self.padding = padding
        self.connected = connected
        self.initial_peak = self.peak

    @property
    def spectrum(self) -> np.ndarray:
        """The spectrum: one value per band."""
        return self._spectrum.x

    @property
    def morph(self) -> np.ndarray:
        """The 2-d morphology on the component's box."""
        return self._morph.x

    @property
    def parameters(self) -> list[Parameter]:
        """``[spectrum, morph]`` parameters."""
        return [self._spectrum, self._morph]

    def model_array(self) -> np.ndarray:
        """The model ``spectrum[:, None, None] * morph[None]``.

        Returns
        -------
        numpy.ndarray
            ``(bands, h, w)``.
        """
        return self.spectrum[:, None, None] * self.morph[None, :, :]

    def set_spectrum(self, spectrum: np.ndarray) -> None:
        """Overwrite the spectrum values (keeping any optimizer state).

        Parameters
        ----------
        spectrum
            One value per band.
        """
        self._spectrum.x = np.asarray(spectrum, dtype=self._spectrum.x.dtype).copy()

    # -- constraints -------------------------------------------------------------

    def prox_spectrum(self, spectrum: np.ndarray) -> np.ndarray:
        """Proximal operator of the spectrum: no value below ``floor`` (in place).

        Parameters
        ----------
        spectrum
            The spectrum after a gradient step.

        Returns
        -------
        numpy.ndarray
            ``spectrum``, projected.
        """
        np.maximum(spectrum, self.floor, out=spectrum)
        return spectrum

    def _local_peak(self) -> tuple[int, int]:
        return (self.peak[0] - self.bbox.origin[0], self.peak[1] - self.bbox.origin[1])

    def prox_morph(self, morph: np.ndarray) -> np.ndarray:
        """Proximal operator of the morphology (in place where possible).

        Parameters
        ----------
        morph
            The morphology after a gradient step.

        Returns
        -------
        numpy.ndarray
            The morphology made monotonic (when ``monotonic``, about the peak, which may
            move within ``fit_radius``), sparse above the background threshold,
            connected to the peak (when ``connected``), without tendrils (when
            ``prune_thin``), at least ``floor`` at the peak
            and normalised to a maximum of 1.
        """
        oy, ox = self.bbox.origin
        if self.monotonic:
            iy, ix = self.initial_peak[0] - oy, self.initial_peak[1] - ox
            h, w = morph.shape
            if 0 <= iy < h and 0 <= ix < w:
                py, px = find_peak(morph, (iy, ix), self.fit_radius)
                self.peak = (py + oy, px + ox)
            morph = prox_monotonic(morph, self._local_peak(), self.monotonic_slack)
        if self.bg_rms is not None and self.bg_thresh is not None and np.any(self.bg_rms > 0):
            with np.errstate(divide="ignore"):
                thresh = self.bg_thresh * np.min(self.bg_rms / self.spectrum)
            prox_sparsity(morph, float(thresh) if np.isfinite(thresh) else 0.0)
        else:
            prox_sparsity(morph, 0.0)
        if self.connected:
            prox_connected(morph, self._local_peak())
        if self.prune_thin:
            morph = prox_thin(morph, self._local_peak())
        peak = self._local_peak()
        if morph[peak] < self.floor:
            morph[peak] = self.floor
        morph /= morph.max()
        return morph

    # -- optimization --------------------------------------------------------------

    def update(self, it: int, input_grad: np.ndarray) -> None:
        """One optimizer step of the spectrum and the morphology.

        Parameters
        ----------
        it
            The iteration number (0 first).
        input_grad
            Gradient of the loss with respect to the model, ``(bands, h, w)`` on the box.
        """
        spectrum, morph = self.spectrum, self.morph
        flat = input_grad.reshape(input_grad.shape[0], -1)
        grad_spectrum = flat @ morph.ravel()
        grad_morph = (spectrum @ flat).reshape(morph.shape)
        self._spectrum.update(it, grad_spectrum)
        self._morph.update(it, grad_morph)

    def resize(self, model_box: Box) -> bool:
        """Shrink or grow the box to the non-zero morphology plus ``padding``, inside ``model_box``.

        Parameters
        ----------
        model_box
            The box the component must stay in.

        Returns
        -------
        bool
            Whether the box changed.
        """
        nonzero = Box.from_data(self.morph, 0)
        if nonzero.is_empty:
            return False
        new_box = nonzero.shifted_by(self.bbox.origin).grow(self.padding) & model_box
        new_box = new_box | (Box((1, 1), self.peak) & model_box)
        if new_box == self.bbox or new_box.is_empty:
            return False
        self._morph.resize(self.bbox, new_box)
        self.bbox = new_box
        return True

    def __repr__(self) -> str:
        return f"FactorizedComponent(bbox={self.bbox}, peak={self.peak})"


class CubeComponent(Component):
    """A full ``(bands, h, w)`` model (not factorized), fixed unless parameterized."""

    def __init__(
        self, bands: Sequence[str], model, bbox: Box, peak: tuple[int, int] | None = None
    ) -> None:
        super().__init__(bands, bbox, peak)
        self._model = parameter(model)
        if self._model.shape != self.shape:
            raise ValueError(f"cube model shape {self._model.shape} differs from {self.shape}")

    @property
    def model(self) -> np.ndarray:
        """The ``(bands, h, w)`` model values."""
        return self._model.x

    @property
    def parameters(self) -> list[Parameter]:
        """``[model]`` parameter."""
        return [self._model]

    def model_array(self) -> np.ndarray:
        """The model values.

        Returns
        -------
        numpy.ndarray
            ``(bands, h, w)``.
        """
        return self._model.x

    def prox_model(self, model: np.ndarray) -> np.ndarray:
        """Proximal operator: clip negative values to 0 (in place).

        Parameters
        ----------
        model
            The model after a gradient step.

        Returns
        -------
        numpy.ndarray
            ``model``, projected.
        """
        np.maximum(model, 0, out=model)
        return model

    def update(self, it: int, input_grad: np.ndarray) -> None:
        """One optimizer step of the model values.

        Parameters
        ----------
        it
            The iteration number (0 first).
        input_grad
            Gradient of the loss with respect to the model, ``(bands, h, w)``.
        """
        self._model.update(it, input_grad)

    def __repr__(self) -> str:
        return f"CubeComponent(bbox={self.bbox}, peak={self.peak})"
