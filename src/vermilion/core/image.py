"""Multi-band images that know their bands and where they sit in the parent image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bbox import Box, overlapped_slices

__all__ = ["Image"]


class Image:
    """An array of shape ``(bands, height, width)`` (or ``(height, width)``) placed at ``yx0``.

    Parameters
    ----------
    data
        The pixel values.
    bands
        One name per band (the first axis of a 3D array); empty for a 2D image.
    yx0
        Parent-image coordinate ``(y0, x0)`` of the first pixel.

    Notes
    -----
    Images of overlapping boxes combine by overlap: ``a.insert(b)`` copies the
    overlapping pixels of ``b`` into ``a``, ``a.add(b)`` adds them, and ``a + b``
    returns an image on the union of both boxes.
    """

    __slots__ = ("_bands", "_data", "_yx0")

    def __init__(
        self,
        data: np.ndarray,
        bands: Sequence[str] | None = None,
        yx0: Sequence[int] = (0, 0),
    ) -> None:
        data = np.asarray(data)
        if data.ndim not in (2, 3):
            raise ValueError(f"Image data must be 2D or 3D, got shape {data.shape}")
        if data.ndim == 3:
            if bands is None:
                bands = tuple(str(b) for b in range(data.shape[0]))
            bands = tuple(bands)
            if len(bands) != data.shape[0]:
                raise ValueError(f"{len(bands)} band names for {data.shape[0]} bands in the data")
        else:
            if bands:
                raise ValueError("A 2D image has no bands")
            bands = ()
        self._data = data
        self._bands = bands
        self._yx0 = (int(yx0[0]), int(yx0[1]))

    @staticmethod
    def from_box(bbox: Box, bands: Sequence[str] | None = None, dtype=np.float32) -> Image:
        """An image of zeros covering ``bbox``.

        Parameters
        ----------
        bbox
            The box of the image (2-d when ``bands`` are given).
        bands
            Band names (default: none; the image then has the shape of ``bbox``).
        dtype
            Pixel type.

        Returns
        -------
        Image
            Zeros on ``bbox``.
        """
        shape = bbox.shape if not bands else (len(bands), *bbox.shape)
        return Image(np.zeros(shape, dtype=dtype), bands=bands, yx0=bbox.origin)

    @property
    def data(self) -> np.ndarray:
        """The pixel array ``(bands, h, w)``."""
        return self._data

    @property
    def array(self) -> np.ndarray:
        """The pixel array (Rubin name of `data`)."""
        return self._data

    @property
    def bands(self) -> tuple[str, ...]:
        """The band names."""
        return self._bands

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return len(self._bands)

    @property
    def yx0(self) -> tuple[int, int]:
        """Origin ``(y, x)`` in parent-image pixels."""
        return self._yx0

    @property
    def y0(self) -> int:
        """Row of the origin."""
        return self._yx0[0]

    @property
    def x0(self) -> int:
        """Column of the origin."""
        return self._yx0[1]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the pixel array."""
        return self._data.shape

    @property
    def dtype(self):
        """Pixel type."""
        return self._data.dtype

    @property
    def height(self) -> int:
        """Number of rows."""
        return self._data.shape[-2]

    @property
    def width(self) -> int:
        """Number of columns."""
        return self._data.shape[-1]

    @property
    def bbox(self) -> Box:
        """The spatial box of the image in parent coordinates."""
        return Box(self._data.shape[-2:], self._yx0)

    def copy(self) -> Image:
        """A copy (pixels copied).

        Returns
        -------
        Image
            Same bands and origin.
        """
        return Image(self._data.copy(), self._bands, self._yx0)

    def copy_with(
        self,
        data: np.ndarray | None = None,
        bands: Sequence[str] | None = None,
        yx0: Sequence[int] | None = None,
    ) -> Image:
        """A new image with some of data, bands or origin replaced (data copied if not given).

        Parameters
        ----------
        data
            New pixels (default: a copy of these).
        bands
            New band names.
        yx0
            New origin.

        Returns
        -------
        Image
            The new image.
        """
        return Image(
            self._data.copy() if data is None else data,
            self._bands if bands is None else bands,
            self._yx0 if yx0 is None else yx0,
        )

    def band_index(self, band: str) -> int:
        """Index of ``band`` in the image's bands.

        Parameters
        ----------
        band
            The band name.

        Returns
        -------
        int
            Its index; KeyError when it is not a band of the image.
        """
        try:
            return self._bands.index(band)
        except ValueError:
            raise KeyError(f"Band {band!r} is not in the image bands {self._bands}") from None

    def __getitem__(self, key) -> Image | np.ndarray:
        """Select bands by name (``img["r"]``, ``img[["g", "r"]]``) or index the array."""
        if isinstance(key, str):
            return Image(self._data[self.band_index(key)], yx0=self._yx0)
        if isinstance(key, (list, tuple)) and key and all(isinstance(k, str) for k in key):
            idx = [self.band_index(k) for k in key]
            return Image(self._data[idx], bands=key, yx0=self._yx0)
        return self._data[key]

    def project(self, bbox: Box) -> Image:
        """This image laid on ``bbox``: overlapping pixels copied, the rest zero.

        Parameters
        ----------
        bbox
            The target box.

        Returns
        -------
        Image
            A new image on ``bbox``.
        """
        out = Image.from_box(bbox, self._bands or None, dtype=self._data.dtype)
        out.insert(self)
        return out

    def _overlap(self, other: Image):
        s_self, s_other = overlapped_slices(self.bbox, other.bbox)
        if self._data.ndim == 3:
            s_self = (slice(None), *s_self)
        if other._data.ndim == 3:
            s_other = (slice(None), *s_other)
        return s_self, s_other

    def insert(self, other: Image) -> Image:
        """Copy the pixels of ``other`` that overlap this image into it (in place).

        Parameters
        ----------
        other
            The image to copy from.

        Returns
        -------
        Image
            This image, for chaining.
        """
        s_self, s_other = self._overlap(other)
        self._data[s_self] = other._data[s_other]
        return self

    def add(self, other: Image) -> Image:
        """Add the pixels of ``other`` that overlap this image to it (in place).

        Parameters
        ----------
        other
            The image to add.

        Returns
        -------
        Image
            This image, for chaining.
        """
        s_self, s_other = self._overlap(other)
        self._data[s_self] += other._data[s_other]
        return self

    def __add__(self, other):
        if isinstance(other, Image):
            out = Image.from_box(
                self.bbox | other.bbox,
                self._bands or None,
                np.result_type(self._data, other._data),
            )
            out.add(self)
            out.add(other)
            return out
        return self.copy_with(data=self._data + other)

    def __mul__(self, other):
        if isinstance(other, Image):
            box = self.bbox & other.bbox
            return Image(
                self.project(box)._data * other.project(box)._data, self._bands, box.origin
            )
        return self.copy_with(data=self._data * other)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Image(shape={self.shape}, bands={self._bands}, yx0={self._yx0})"
