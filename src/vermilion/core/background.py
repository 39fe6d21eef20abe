"""The sky left in the images of a blend, fitted with its sources.

A `BackgroundComponent` is a constant level per band over the whole blend box. It is
not a source: a `Blend` holds it apart (``blend.background``), adds it to the model
*after* the convolution to the observed seeing (the sky is flat in the observed images;
convolving a flat level would only darken the box edges), updates it at every iteration
of the sources' fit, and takes it out of the observed image before the flux is
re-apportioned between the sources.

Where the level is constrained matters. Within a parent footprint a flat level is
degenerate with the free faint wings of the sources (fitted there, it drifted by 0.1 to
0.2 noise and moved children's fluxes by up to 8 to 40%). So a level can be given data
of its own (`BackgroundComponent.set_sky`): the valid pixels around the sources (off
every footprint, in the blend box and a margin beyond it), where the model is the level
plus the sources' rendered light spilling out of their footprint. Its loss there,
``1/2 sum(w (level + sources - data)^2)``, is quadratic in the level: each update is its
exact minimum given the sources.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bbox import Box
from .component import Component
from .parameters import Parameter, parameter

__all__ = ["BackgroundComponent"]


class BackgroundComponent(Component):
    """A constant sky level per band over a blend's box (in the observed images).

    The model is ``level[:, None, None]`` on every pixel of ``bbox``. The level is not
    constrained: it may be negative (an over-subtracted sky).

    How it is updated (`update`): with sky data of its own (`set_sky`), to the minimum
    of its loss on them (`sky_terms`); with none, by its parameter's optimizer on the
    gradient of the blend's loss (the sum over the box of the gradient with respect to
    the observed model: right when the observation's weights cover sky, wrong within a
    footprint alone); with ``fixed``, never (a level restored from a stored blend).

    Parameters
    ----------
    bands
        Band names.
    level
        ``(bands,)`` initial levels (image units), an array or a `Parameter`.
    bbox
        The blend's box.
    fixed
        Keep the level as given (it is still added to the model and taken out of the
        image before re-apportioning).

    Attributes
    ----------
    observed
        True: `Blend` adds this model to the rendered (convolved) sources.
    """

    observed = True

    def __init__(self, bands: Sequence[str], level, bbox: Box, fixed: bool = False) -> None:
        super().__init__(bands, bbox, None)
        if not isinstance(level, Parameter):
            level = np.array(level, dtype=np.float32).reshape(-1)
        self._level = parameter(level)
        if self._level.shape != (len(self.bands),):
            raise ValueError(f"level shape {self._level.shape} for {len(self.bands)} bands")
        self.fixed = bool(fixed)
        self._sky: tuple | None = None

    @property
    def level(self) -> np.ndarray:
        """The level of every band."""
        return self._level.x

    @property
    def parameters(self) -> list[Parameter]:
        """``[level]`` parameter."""
        return [self._level]

    def set_sky(
        self, images: np.ndarray, weights: np.ndarray, box: Box | None = None
    ) -> BackgroundComponent:
        """Give the level data of its own: the pixels around the sources.

        Parameters
        ----------
        images, weights
            ``(bands, H, W)`` on ``box``: the observed images and their inverse-variance
            weights, zero where the level must not look (the sources' footprints, other
            objects, bad pixels).
        box
            Their box, containing the blend box (default: the blend box). Beyond the
            blend box the model is the level alone; within it, the level plus the
            sources' rendered model.

        Returns
        -------
        BackgroundComponent
            This component.
        """
        box = self.bbox if box is None else box
        if (box & self.bbox) != self.bbox:
            raise ValueError(f"the sky box {box} does not contain the blend box {self.bbox}")
        images = np.asarray(images, np.float64)
        weights = np.asarray(weights, np.float64)
        shape = (len(self.bands), *box.shape)
        if images.shape != shape or weights.shape != shape:
            raise ValueError(f"sky images {images.shape} and weights {weights.shape}: {shape}")
        inner = (slice(None), *self.bbox.slices_in(box))
        outer_w = weights.copy()
        outer_w[inner] = 0
        self._sky = (
            images[inner].copy(),
            weights[inner].copy(),
            # beyond the box: sum(w), sum(w d), sum(w d^2) per band
            np.sum(outer_w, axis=(1, 2)),
            np.sum(outer_w * images, axis=(1, 2)),
            np.sum(outer_w * images**2, axis=(1, 2)),
        )
        return self

    @property
    def has_sky(self) -> bool:
        """The level has data of its own (`set_sky`)."""
        return self._sky is not None

    @property
    def sky_weight(self) -> np.ndarray:
        """``(bands,)`` sum of the sky weights: the level's error is ``1 / sqrt`` of it."""
        if self._sky is None:
            return np.zeros(len(self.bands))
        return np.sum(self._sky[1], axis=(1, 2)) + self._sky[2]

    def sky_terms(self, rendered: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """The level's loss on its own data and its gradient.

        Parameters
        ----------
        rendered
            ``(bands, h, w)``: the sources' model convolved to the observed seeing, on
            the blend box (None: no source light).

        Returns
        -------
        gradient : numpy.ndarray
            ``(bands,)`` derivative of the loss with respect to the level.
        loss : float
            ``1/2 sum(w (level + rendered - images)^2)`` over the sky pixels (0 without).
        """
        level = np.asarray(self.level, np.float64)
        if self._sky is None:
            return np.zeros(len(self.bands)), 0.0
        images, weights, sw, swd, swdd = self._sky
        residual = level[:, None, None] - images
        if rendered is not None:
            residual = residual + rendered
        weighted = weights * residual
        grad = np.sum(weighted, axis=(1, 2)) + sw * level - swd
        loss = float(np.sum(weighted * residual)) + float(
            np.sum(sw * level**2 - 2 * level * swd + swdd)
        )
        return grad, 0.5 * loss

    def model_array(self) -> np.ndarray:
        """``level`` on every pixel of the box.

        Returns
        -------
        numpy.ndarray
            ``(bands, h, w)`` float32.
        """
        level = np.asarray(self.level, dtype=np.float32)
        return np.broadcast_to(level[:, None, None], self.shape).copy()

    def update(self, it: int, input_grad: np.ndarray, rendered: np.ndarray | None = None) -> None:
        """One update of the level (see the class description).

        Parameters
        ----------
        it
            The iteration number (0 first).
        input_grad
            Gradient of the blend's loss with respect to the observed model,
            ``(bands, h, w)`` (used without sky data).
        rendered
            The sources' rendered model on the blend box (used with sky data).
        """
        if self.fixed:
            return
        if self._sky is None:
            grad = np.sum(input_grad, axis=(1, 2), dtype=np.float64)
            self._level.update(it, grad.astype(self.level.dtype))
            return
        grad, _ = self.sky_terms(rendered)
        hess = self.sky_weight
        step = np.where(hess > 0, grad / np.where(hess > 0, hess, 1), 0)
        self._level.x[:] = (self.level - step).astype(self.level.dtype)

    def __repr__(self) -> str:
        levels = ", ".join(f"{b}={v:.4g}" for b, v in zip(self.bands, self.level))
        return f"BackgroundComponent(bbox={self.bbox}, level=({levels}))"
