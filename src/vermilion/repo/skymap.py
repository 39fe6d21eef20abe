"""A simple sky map: tracts on tangent planes, each cut into a grid of patches.

Every tract is a gnomonic (TAN) projection about its centre with square pixels of
``pixel_scale`` arcseconds, East to the left (x increasing to the West) and North up.
It holds ``nx x ny`` patches of ``patch_shape = (h, w)`` pixels; patch ``(x, y)``
(column, row) has the Rubin sequential id ``y * nx + x`` and covers parent pixels
``[y*h, (y+1)*h) x [x*w, (x+1)*w)`` of its tract, grown by ``patch_border`` pixels
(clipped to the tract) for its outer box. Pixel coordinates are tract coordinates.

Only numpy is needed; ``lsst.sphgeom`` (regions) and astropy (WCS) are imported
by the methods that use them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vermilion.core.bbox import Box

from .errors import DataIdError

__all__ = ["PatchInfo", "SkyMap", "TractInfo"]

SKYMAP_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class PatchInfo:
    """One patch: its id, grid index ``(x, y)``, inner box and outer box (tract pixels)."""

    tract: TractInfo
    id: int
    index: tuple[int, int]
    bbox: Box
    outer_bbox: Box

    @property
    def wcs(self):
        """The tract's ``astropy.wcs.WCS`` (patch pixels are tract pixels)."""
        return self.tract.wcs

    def region(self):
        """``lsst.sphgeom.ConvexPolygon`` of the outer box."""
        return self.tract.box_region(self.outer_bbox)

    def __repr__(self) -> str:
        return f"PatchInfo(tract={self.tract.id}, id={self.id}, index={self.index})"


@dataclass(frozen=True, eq=False)
class TractInfo:
    """One tract: id, centre ``(ra, dec)`` in degrees and the sky map's geometry."""

    skymap: SkyMap
    id: int
    center: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        nx, ny = self.skymap.patches
        h, w = self.skymap.patch_shape
        return ny * h, nx * w

    @property
    def bbox(self) -> Box:
        return Box(self.shape)

    @property
    def center_pixel(self) -> tuple[float, float]:
        """``(y, x)`` of the tangent point."""
        h, w = self.shape
        return (h - 1) / 2, (w - 1) / 2

    def pixel_to_sky(self, y: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Tract pixel ``(y, x)`` -> ``(ra, dec)`` in degrees (gnomonic projection)."""
        scale = np.deg2rad(self.skymap.pixel_scale / 3600.0)
        cy, cx = self.center_pixel
        xi = -(np.asarray(x, float) - cx) * scale
        eta = (np.asarray(y, float) - cy) * scale
        ra0, dec0 = np.deg2rad(self.center)
        denom = np.cos(dec0) - eta * np.sin(dec0)
        ra = ra0 + np.arctan2(xi, denom)
        dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denom))
        return np.rad2deg(ra) % 360.0, np.rad2deg(dec)

    @property
    def wcs(self):
        """``astropy.wcs.WCS`` of 0-based tract pixel coordinates."""
        from astropy.wcs import WCS

        scale = self.skymap.pixel_scale / 3600.0
        cy, cx = self.center_pixel
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = list(self.center)
        wcs.wcs.crpix = [cx + 1, cy + 1]  # FITS pixels are 1-based
        wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
        wcs.wcs.radesys = "ICRS"
        return wcs

    def box_region(self, box: Box):
        """``lsst.sphgeom.ConvexPolygon`` through the corners of ``box`` (pixel edges)."""
        from lsst.sphgeom import ConvexPolygon, UnitVector3d

        (y0, y1), (x0, x1) = box.bounds
        ys = np.array([y0, y0, y1, y1], float) - 0.5
        xs = np.array([x0, x1, x1, x0], float) - 0.5
        ra, dec = np.deg2rad(self.pixel_to_sky(ys, xs))
        pts = [
            UnitVector3d(
                float(np.cos(d) * np.cos(r)), float(np.cos(d) * np.sin(r)), float(np.sin(d))
            )
            for r, d in zip(ra, dec)
        ]
        return ConvexPolygon.convexHull(pts)

    def region(self):
        """``lsst.sphgeom.ConvexPolygon`` of the whole tract."""
        return self.box_region(self.bbox)

    def patch(self, patch: int | Sequence[int]) -> PatchInfo:
        """A patch by sequential id or by ``(x, y)`` grid index."""
        nx, ny = self.skymap.patches
        if isinstance(patch, int | np.integer):
            pid = int(patch)
            if not 0 <= pid < nx * ny:
                raise DataIdError(
                    f"Patch {pid} is not in tract {self.id} of skymap {self.skymap.name!r} "
                    f"(patches 0 to {nx * ny - 1})"
                )
            ix, iy = pid % nx, pid // nx
        else:
            ix, iy = (int(v) for v in patch)
            if not (0 <= ix < nx and 0 <= iy < ny):
                raise DataIdError(
                    f"Patch index {(ix, iy)} is not in tract {self.id} of skymap "
                    f"{self.skymap.name!r} ({nx} x {ny} patches)"
                )
            pid = iy * nx + ix
        h, w = self.skymap.patch_shape
        inner = Box((h, w), (iy * h, ix * w))
        outer = inner.grow(self.skymap.patch_border) & self.bbox
        return PatchInfo(self, pid, (ix, iy), inner, outer)

    __getitem__ = patch

    @property
    def patches(self) -> list[PatchInfo]:
        nx, ny = self.skymap.patches
        return [self.patch(i) for i in range(nx * ny)]

    def __repr__(self) -> str:
        return f"TractInfo(id={self.id}, center={self.center})"


class SkyMap:
    """Tracts on tangent planes, each an ``nx x ny`` grid of patches.

    Parameters
    ----------
    name
        Name of the sky map (the ``skymap`` dimension value).
    tracts
        Tract id -> ``(ra, dec)`` centre in degrees.
    patches
        ``(nx, ny)``: patches per tract along x and y.
    patch_shape
        ``(h, w)`` of a patch's inner box in pixels.
    pixel_scale
        Arcseconds per pixel.
    patch_border
        Pixels by which a patch's outer box extends beyond its inner box.
    """

    def __init__(
        self,
        name: str,
        tracts: Mapping[int, Sequence[float]],
        patches: Sequence[int] = (10, 10),
        patch_shape: Sequence[int] = (4000, 4000),
        pixel_scale: float = 0.2,
        patch_border: int = 0,
    ) -> None:
        self.name = str(name)
        self.patches = (int(patches[0]), int(patches[1]))
        self.patch_shape = (int(patch_shape[0]), int(patch_shape[1]))
        self.pixel_scale = float(pixel_scale)
        self.patch_border = int(patch_border)
        if min(self.patches) < 1 or min(self.patch_shape) < 1:
            raise ValueError(f"Need at least one patch of one pixel, got {patches}, {patch_shape}")
        if not self.pixel_scale > 0:
            raise ValueError(f"pixel_scale must be positive, got {pixel_scale}")
        if self.patch_border < 0:
            raise ValueError(f"patch_border must not be negative, got {patch_border}")
        self._tracts = {
            int(t): TractInfo(self, int(t), (float(c[0]), float(c[1]))) for t, c in tracts.items()
        }
        if not self._tracts:
            raise ValueError("A sky map needs at least one tract")
        for t, info in self._tracts.items():
            if not -90 < info.center[1] < 90:
                raise ValueError(f"Tract {t} centre dec {info.center[1]} is not in (-90, 90)")

    @classmethod
    def build(
        cls,
        name: str,
        tracts: int | Iterable[int] | Mapping[int, Sequence[float]] = 1,
        patches: Sequence[int] = (10, 10),
        patch_shape: Sequence[int] = (4000, 4000),
        pixel_scale: float = 0.2,
        patch_border: int = 0,
        center: Sequence[float] = (0.0, 0.0),
    ) -> SkyMap:
        """A sky map whose tracts, when not given centres, line up in RA from ``center``.

        ``tracts`` is a count (ids 0..n-1), a list of ids, or a mapping id -> (ra, dec).
        Tracts given only by id are spaced by their width along the RA circle
        through ``center``, so they do not overlap.
        """
        if isinstance(tracts, Mapping):
            centers = dict(tracts)
        else:
            ids = list(range(tracts)) if isinstance(tracts, int) else [int(t) for t in tracts]
            if len(set(ids)) != len(ids):
                raise ValueError(f"Tract ids repeat: {ids}")
            width_deg = patches[0] * patch_shape[1] * pixel_scale / 3600.0
            ra0, dec0 = float(center[0]), float(center[1])
            step = width_deg / max(np.cos(np.deg2rad(dec0)), 1e-6)
            centers = {t: ((ra0 + i * step) % 360.0, dec0) for i, t in enumerate(ids)}
        return cls(name, centers, patches, patch_shape, pixel_scale, patch_border)

    @property
    def tract_ids(self) -> list[int]:
        return sorted(self._tracts)

    def __getitem__(self, tract: int) -> TractInfo:
        try:
            return self._tracts[int(tract)]
        except (KeyError, TypeError, ValueError):
            raise DataIdError(
                f"Tract {tract!r} is not in skymap {self.name!r} (tracts {self.tract_ids})"
            ) from None

    def __iter__(self):
        return iter(self._tracts[t] for t in self.tract_ids)

    def __len__(self) -> int:
        return len(self._tracts)

    def patch(self, tract: int, patch: int | Sequence[int]) -> PatchInfo:
        return self[tract].patch(patch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "vermilion.skymap",
            "version": SKYMAP_FORMAT_VERSION,
            "name": self.name,
            "patches": list(self.patches),
            "patch_shape": list(self.patch_shape),
            "pixel_scale": self.pixel_scale,
            "patch_border": self.patch_border,
            "tracts": {str(t): list(self._tracts[t].center) for t in self.tract_ids},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkyMap:
        if data.get("format") != "vermilion.skymap":
            raise ValueError("Not a vermilion sky map description")
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= SKYMAP_FORMAT_VERSION:
            raise ValueError(
                f"Sky map format version {version!r}; this vermilion reads 1 to "
                f"{SKYMAP_FORMAT_VERSION}"
            )
        return cls(
            data["name"],
            {int(t): c for t, c in data["tracts"].items()},
            data["patches"],
            data["patch_shape"],
            data["pixel_scale"],
            data["patch_border"],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> SkyMap:
        return cls.from_dict(json.loads(text))

    @property
    def sha1(self) -> bytes:
        """SHA-1 of the geometry (the ``skymap`` record's ``hash``)."""
        return hashlib.sha1(self.to_json().encode()).digest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SkyMap) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SkyMap({self.name!r}, tracts={self.tract_ids}, patches={self.patches}, "
            f"patch_shape={self.patch_shape}, pixel_scale={self.pixel_scale})"
        )
