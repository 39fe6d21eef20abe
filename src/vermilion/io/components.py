"""The leaves of the stored data model: components, sources and isolated sources.

Coordinates are ``(y, x)`` in the parent image's pixels; arrays are float32.
`vermilion.io.data` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._fields import NOWHERE, Where, as_int_tuple, as_peak, user_array

if TYPE_CHECKING:
    from vermilion.core.bbox import Box

__all__ = [
    "ComponentData",
    "CubeComponentData",
    "FactorizedComponentData",
    "IsolatedSourceData",
    "SourceData",
    "argmax_peak",
    "arrays_equal",
    "metadata_equal",
    "normalize_model_psf",
]


def arrays_equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Same shape and values (None equals only None)."""
    if a is None or b is None:
        return a is None and b is None
    return a is b or (a.shape == b.shape and np.array_equal(a, b))


def values_equal(a: Any, b: Any) -> bool:
    """Equality of metadata values: arrays by dtype, shape and values, containers item by item.

    ``==`` on a dict holding arrays raises (an array has no single truth value).
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and arrays_equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(values_equal(x, y) for x, y in zip(a, b))
        )
    return bool(a == b)


def metadata_equal(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equality of two metadata dicts (None and ``{}`` are equal)."""
    return values_equal(a or {}, b or {})


def argmax_peak(model: np.ndarray, origin) -> tuple[int, int]:
    """Absolute ``(y, x)`` of the maximum of a 2D model (or of the band sum of a cube)."""
    img = model if model.ndim == 2 else model.sum(axis=0)
    if img.size == 0:
        return (int(origin[0]), int(origin[1]))
    y, x = np.unravel_index(int(np.argmax(img)), img.shape)
    return (int(origin[0]) + int(y), int(origin[1]) + int(x))


def normalize_model_psf(psf: Any, where: Where = NOWHERE, field: str = "model_psf") -> np.ndarray:
    """The model PSF as a 2D float32 array (a ``(1, h, w)`` cube is squeezed)."""
    a = np.asarray(psf, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    return user_array(a, 2, where, field)


def _box_fields(origin: Any, peak: Any, where: Where, field: str) -> tuple[tuple, tuple]:
    """``origin`` as two ints and ``peak`` as two finite numbers (ints where integral)."""
    prefix = f"{field}." if field else ""
    return (
        as_int_tuple(list(origin), 2, where, f"{prefix}origin"),
        as_peak(list(peak), where, f"{prefix}peak"),
    )


@dataclass(eq=False)
class FactorizedComponentData:
    """``spectrum[:, None, None] * morph[None]`` on the box at ``origin``.

    Attributes
    ----------
    origin
        ``(y0, x0)`` of the morphology, absolute.
    peak
        ``(y, x)`` of the peak, absolute.
    spectrum
        ``(bands,)`` float32.
    morph
        ``(h, w)`` float32.
    """

    origin: tuple[int, int]
    peak: tuple[float, float]
    spectrum: np.ndarray
    morph: np.ndarray

    component_type = "factorized"

    @property
    def shape(self) -> tuple[int, int]:
        return self.morph.shape

    @property
    def n_bands(self) -> int:
        return self.spectrum.shape[0]

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    def get_model(self) -> np.ndarray:
        """The ``(bands, h, w)`` model."""
        return self.spectrum[:, None, None] * self.morph[None]

    def validate(self, where: Where, field: str, n_bands: int | None) -> None:
        self.origin, self.peak = _box_fields(self.origin, self.peak, where, field)
        self.spectrum = user_array(self.spectrum, 1, where, f"{field}.spectrum", n_bands)
        self.morph = user_array(self.morph, 2, where, f"{field}.morph")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FactorizedComponentData)
            and tuple(self.origin) == tuple(other.origin)
            and tuple(self.peak) == tuple(other.peak)
            and arrays_equal(self.spectrum, other.spectrum)
            and arrays_equal(self.morph, other.morph)
        )

    def __repr__(self) -> str:
        return (
            f"FactorizedComponentData(origin={self.origin}, shape={self.shape}, "
            f"peak={self.peak}, n_bands={self.n_bands})"
        )


@dataclass(eq=False)
class CubeComponentData:
    """A full ``(bands, h, w)`` model on the box at ``origin``."""

    origin: tuple[int, int]
    peak: tuple[float, float]
    model: np.ndarray

    component_type = "cube"

    @property
    def shape(self) -> tuple[int, int]:
        return self.model.shape[-2:]

    @property
    def n_bands(self) -> int:
        return self.model.shape[0]

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    def get_model(self) -> np.ndarray:
        return self.model

    def validate(self, where: Where, field: str, n_bands: int | None) -> None:
        self.origin, self.peak = _box_fields(self.origin, self.peak, where, field)
        self.model = user_array(self.model, 3, where, f"{field}.model", n_bands)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CubeComponentData)
            and tuple(self.origin) == tuple(other.origin)
            and tuple(self.peak) == tuple(other.peak)
            and arrays_equal(self.model, other.model)
        )

    def __repr__(self) -> str:
        return (
            f"CubeComponentData(origin={self.origin}, shape={self.model.shape}, peak={self.peak})"
        )


ComponentData = FactorizedComponentData | CubeComponentData


@dataclass(eq=False)
class SourceData:
    """One source: its components, the id of its detection peak and free metadata."""

    components: list[ComponentData] = field(default_factory=list)
    peak_id: int | None = None
    metadata: dict[str, Any] | None = None

    def validate(self, where: Where, n_bands: int | None) -> None:
        if not isinstance(self.components, list):
            self.components = list(self.components)
        for i, c in enumerate(self.components):
            if not isinstance(c, (FactorizedComponentData, CubeComponentData)):
                raise where.error(f"unknown component type {type(c).__name__}", f"components[{i}]")
            c.validate(where, f"components[{i}]", n_bands)
        if self.peak_id is not None:
            self.peak_id = int(self.peak_id)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SourceData)
            and self.peak_id == other.peak_id
            and metadata_equal(self.metadata, other.metadata)
            and self.components == other.components
        )


@dataclass(eq=False)
class IsolatedSourceData:
    """A source that was not deblended: its model is the image cut by ``span_array``."""

    origin: tuple[int, int]
    peak: tuple[float, float]
    span_array: np.ndarray
    metadata: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.span_array.shape

    @property
    def bbox(self) -> Box:
        from vermilion.core.bbox import Box

        return Box(self.shape, self.origin)

    def validate(self, where: Where) -> None:
        self.origin, self.peak = _box_fields(self.origin, self.peak, where, "")
        self.span_array = user_array(self.span_array, 2, where, "span_array")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IsolatedSourceData)
            and tuple(self.origin) == tuple(other.origin)
            and tuple(self.peak) == tuple(other.peak)
            and arrays_equal(self.span_array, other.span_array)
            and metadata_equal(self.metadata, other.metadata)
        )
