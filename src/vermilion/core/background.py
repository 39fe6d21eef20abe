"""The sky left in the images of a blend, fitted with its sources.

A `BackgroundComponent` is a constant level per band over the whole blend box. It is
not a source: a `Blend` holds it apart (``blend.background``), adds it to the model
*after* the convolution to the observed seeing (the sky is flat in the observed images;
convolving a flat level would only darken the box edges), updates it with the other
components' optimizer, and takes it out of the observed image before the flux is
re-apportioned between the sources.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bbox import Box
from .component import Component
from .image import Image
from .parameters import Parameter, parameter

__all__ = ["BackgroundComponent"]


class BackgroundComponent(Component):
    """A constant sky level per band over a blend's box (in the observed images).

    The model is ``level[:, None, None]`` on every pixel of ``bbox``. The level is not
    constrained: it may be negative (an over-subtracted sky). Its gradient is the sum
    over the box of the gradient of the loss with respect to the (observed) model.

    Parameters
    ----------
    bands
        Band names.
    level
        ``(bands,)`` initial levels (image units), an array or a `Parameter`.
    bbox
        The blend's box.
    prior, prior_sigma
        Optional ``(bands,)`` Gaussian prior on the level (e.g. a patch-wide sky
        estimate and its error): adds ``(level - prior) / prior_sigma^2`` to the
        gradient. Within a footprint a flat level is nearly degenerate with the faint
        wings of the sources; the prior keeps it from trading light with them.

    Attributes
    ----------
    observed
        True: `Blend` adds this model to the rendered (convolved) sources.
    """

    observed = True

    def __init__(
        self,
        bands: Sequence[str],
        level,
        bbox: Box,
        prior: np.ndarray | None = None,
        prior_sigma: np.ndarray | None = None,
    ) -> None:
        super().__init__(bands, bbox, None)
        if (prior is None) != (prior_sigma is None):
            raise ValueError("give both prior and prior_sigma, or neither")
        self.prior = None if prior is None else np.asarray(prior, np.float64).reshape(-1)
        self.prior_sigma = (
            None if prior_sigma is None else np.asarray(prior_sigma, np.float64).reshape(-1)
        )
        if not isinstance(level, Parameter):
            level = np.array(level, dtype=np.float32).reshape(-1)
        self._level = parameter(level)
        if self._level.shape != (len(self.bands),):
            raise ValueError(f"level shape {self._level.shape} for {len(self.bands)} bands")

    @property
    def level(self) -> np.ndarray:
        """The level of every band."""
        return self._level.x

    @property
    def parameters(self) -> list[Parameter]:
        """``[level]`` parameter."""
        return [self._level]

    def get_model(self) -> Image:
        """The flat model on the box.

        Returns
        -------
        Image
            ``(bands, h, w)``.
        """
        return Image(self.model_array(), self.bands, self.bbox.origin)

    def model_array(self) -> np.ndarray:
        """``level`` on every pixel of the box.

        Returns
        -------
        numpy.ndarray
            ``(bands, h, w)`` float32.
        """
        level = np.asarray(self.level, dtype=np.float32)
        return np.broadcast_to(level[:, None, None], self.shape).copy()

    def update(self, it: int, input_grad: np.ndarray) -> None:
        """One optimizer step of the level.

        Parameters
        ----------
        it
            The iteration number (0 first).
        input_grad
            Gradient of the loss with respect to the observed model, ``(bands, h, w)``.
        """
        grad = np.sum(input_grad, axis=(1, 2), dtype=np.float64)
        if self.prior is not None:
            grad += (self.level - self.prior) / self.prior_sigma**2
        self._level.update(it, grad.astype(self.level.dtype))

    def __repr__(self) -> str:
        levels = ", ".join(f"{b}={v:.4g}" for b, v in zip(self.bands, self.level))
        return f"BackgroundComponent(bbox={self.bbox}, level=({levels}))"
