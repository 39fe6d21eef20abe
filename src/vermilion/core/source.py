"""Sources: one astrophysical object, the sum of its components."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bbox import Box
from .component import Component
from .image import Image

__all__ = ["Source"]


class Source:
    """A source model: a list of components.

    Parameters
    ----------
    components
        The components (may be empty: a null source, e.g. one that could not be
        initialized).
    metadata
        Free-form identifiers, e.g. ``{"peak_id": ..., "id": ...}``.

    Attributes
    ----------
    flux, flux_box
        The re-apportioned observed image of this source and its box, set by
        `weight_sources` (``None`` before).
    """

    def __init__(self, components: Sequence[Component], metadata: dict | None = None) -> None:
        self.components = list(components)
        self.metadata = dict(metadata or {})
        self.flux: Image | None = None
        self.flux_box: Box | None = None

    @property
    def n_components(self) -> int:
        """Number of components."""
        return len(self.components)

    @property
    def is_null(self) -> bool:
        """Whether the source has no component (nothing to model)."""
        return len(self.components) == 0

    @property
    def bbox(self) -> Box:
        """Union of the components' boxes (empty for a null source)."""
        if not self.components:
            return Box((0, 0))
        box = self.components[0].bbox
        for c in self.components[1:]:
            box = box | c.bbox
        return box

    @property
    def peak(self) -> tuple[int, int] | None:
        """The ``(y, x)`` peak of the first component that has one."""
        for c in self.components:
            if c.peak is not None:
                return c.peak
        return self.metadata.get("peak")

    center = peak

    @property
    def bands(self) -> tuple[str, ...]:
        """The bands of the components (empty for a null source)."""
        return self.components[0].bands if self.components else ()

    @property
    def flux_weighted_image(self) -> Image | None:
        """The re-apportioned flux (Rubin name of ``flux``), or None."""
        return self.flux

    def get_model(self, bbox: Box | None = None, use_flux: bool = False) -> Image:
        """The source model in model space (or its re-apportioned flux with ``use_flux``).

        Parameters
        ----------
        bbox
            Box to lay the model on (default: the source's own box).
        use_flux
            Return the re-apportioned observed flux instead of the model.

        Returns
        -------
        Image
            ``(bands, h, w)`` on ``bbox`` (or the source's box).
        """
        if use_flux:
            if self.flux is None:
                raise ValueError("The flux has not been re-apportioned: call weight_sources(blend)")
            return self.flux if bbox is None else self.flux.project(bbox)
        if bbox is None:
            bbox = self.bbox
        if not self.components:
            return Image(np.zeros((0, *bbox.shape), dtype=np.float32), (), bbox.origin)
        model = Image.from_box(bbox, self.bands)
        for c in self.components:
            model.add(c.get_model())
        return model

    def __repr__(self) -> str:
        return (
            f"Source(peak={self.peak}, components={len(self.components)}, metadata={self.metadata})"
        )
