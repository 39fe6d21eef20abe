"""Real data shipped with vermilion, for examples, the user guide and tests.

Two real multi-band blends of the HSC-SSP survey in the COSMOS field (bands g, r, i, z, y),
as distributed with the scarlet project's test data (MIT licence: ``LICENSE-scarlet-data.md``
beside this file):

- ``"cosmos_35"`` (the default): 58 x 48 px, with variance and mask planes and a catalog of
  the 7 catalogued peaks (``x``, ``y``); the blend of the README, the guide and the engine
  benchmarks.
- ``"cosmos"``: 69 x 57 px, 6 peaks from SEP (the full SEP catalog is kept); no variance
  and no mask are stored: estimate the noise from the image.

Examples
--------
>>> import vermilion as vm
>>> hsc = vm.data.hsc_blend()
>>> observation = vm.Observation(hsc.images, hsc.variance, psfs=hsc.psfs, bands=hsc.bands)
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["HSC_BLENDS", "HSC_MASK_PLANES", "HSCBlend", "hsc_blend", "path"]

#: The HSC blends shipped with the package: name -> file in this folder.
HSC_BLENDS = {"cosmos_35": "hsc_cosmos_35.npz", "cosmos": "hsc_cosmos.npz"}

#: The HSC pipeline's mask planes of these files (not vermilion's `vermilion.core.MASK_PLANES`:
#: HSC's bit 4 is INTRP where vermilion's is NO_DATA): pass them as ``mask_planes``.
HSC_MASK_PLANES = {
    "BAD": 1,
    "SAT": 2,
    "INTRP": 4,
    "CR": 8,
    "EDGE": 16,
    "DETECTED": 32,
    "NO_DATA": 256,
}


@dataclass(frozen=True)
class HSCBlend:
    """One real HSC blend: arrays ``(band, y, x)`` on a common pixel grid.

    Attributes
    ----------
    name
        Key in `HSC_BLENDS`.
    images
        float32 ``(bands, h, w)`` background-subtracted images (HSC coadd units).
    variance
        float32 ``(bands, h, w)`` per-pixel variance, or None where the file stores none.
    mask
        int32 ``(bands, h, w)`` HSC mask bits, or None where the file stores none.
    mask_planes
        The planes of ``mask`` (`HSC_MASK_PLANES`), or None with no mask.
    psfs
        float64 ``(bands, ph, pw)`` PSF image of each band at the blend's centre.
    bands
        Band names, in the order of the arrays.
    catalog
        Structured array of the catalogued peaks, with at least float ``x`` and ``y`` columns
        (pixel centres of the arrays above).
    """

    name: str
    images: np.ndarray
    variance: np.ndarray | None
    mask: np.ndarray | None
    mask_planes: dict[str, int] | None
    psfs: np.ndarray
    bands: tuple[str, ...]
    catalog: np.ndarray

    @property
    def peaks(self) -> list[tuple[int, int]]:
        """The catalogued peaks as integer ``(y, x)`` pixels (the engine's convention)."""
        return [(int(y), int(x)) for x, y in zip(self.catalog["x"], self.catalog["y"])]


def path(name: str) -> Path:
    """The path of a data file shipped in this package.

    Parameters
    ----------
    name
        File name in the package's data folder (e.g. ``"hsc_cosmos_35.npz"``).

    Returns
    -------
    pathlib.Path
        Its path on disk.

    Raises
    ------
    FileNotFoundError
        If no such file is shipped.
    """
    p = Path(str(resources.files(__name__).joinpath(name)))
    if not p.is_file():
        raise FileNotFoundError(f"vermilion ships no data file {name!r} (see vermilion.data)")
    return p


def hsc_blend(name: str = "cosmos_35") -> HSCBlend:
    """Load a real HSC blend shipped with vermilion.

    Parameters
    ----------
    name
        ``"cosmos_35"`` (default: with variance and mask) or ``"cosmos"`` (images and PSFs
        only); see the module docstring.

    Returns
    -------
    HSCBlend
        Images, variance, mask, PSFs, bands and peak catalog.

    Raises
    ------
    KeyError
        If ``name`` is not one of `HSC_BLENDS`.
    """
    if name not in HSC_BLENDS:
        raise KeyError(f"unknown HSC blend {name!r}; choose from {sorted(HSC_BLENDS)}")
    with np.load(path(HSC_BLENDS[name]), allow_pickle=False) as f:
        return HSCBlend(
            name=name,
            images=f["images"],
            variance=f["variance"] if "variance" in f.files else None,
            mask=f["mask"] if "mask" in f.files else None,
            mask_planes=dict(HSC_MASK_PLANES) if "mask" in f.files else None,
            psfs=f["psfs"],
            bands=tuple(str(b) for b in f["filters"]),
            catalog=f["catalog"],
        )
