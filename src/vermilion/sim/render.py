"""GalSim rendering of PSFs and of each source into its own small stamp.

GalSim is imported inside the functions (``import vermilion.sim`` stays light).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .catalog import band_fluxes
from .survey import LSST_BANDS, BandParameters

__all__ = ["PSFField", "draw_source"]

#: Galaxy truncation radii in units of each component's half-light radius.
BULGE_TRUNCATION = 8.0
DISK_EXTENT = 5.0
MAX_STAMP_RADIUS = 256


def _gsparams():
    import galsim

    return galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3)


@dataclass
class PSFField:
    """One PSF per band, constant or varying slowly (piecewise constant on a coarse grid).

    Parameters
    ----------
    bands
        Parameters of each band (their ``psf_fwhm`` is the PSF FWHM at the patch centre).
    shape
        ``(height, width)`` of the patch in pixels.
    model
        ``"moffat"`` (beta ``beta``, truncated at the edge of the ``size`` x ``size`` PSF image,
        so that the PSF image holds the whole PSF) or ``"kolmogorov"`` (not truncated: the
        normalised PSF image misses the ~0.5% of the flux outside it).
    size
        Odd side of the PSF images in pixels.
    variation
        Fractional change of the FWHM from the patch centre to its edges (0: constant PSF);
        the PSF ellipticity changes by up to the same amount.
    coefficients
        Four numbers in [-1, 1] setting the direction of the variation.
    grid
        Number of cells per side of the coarse grid on which a varying PSF is constant.
    """

    bands: list[BandParameters]
    shape: tuple[int, int]
    model: str = "moffat"
    beta: float = 3.5
    size: int = 41
    variation: float = 0.0
    coefficients: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    grid: int = 8

    def __post_init__(self) -> None:
        self._cache: dict[tuple[int, int, int], object] = {}
        self.pixel_scale = self.bands[0].pixel_scale

    @property
    def varies(self) -> bool:
        return self.variation != 0

    def cell(self, y: float, x: float) -> tuple[int, int]:
        """Grid cell of pixel ``(y, x)`` (``(0, 0)`` for a constant PSF)."""
        if not self.varies:
            return (0, 0)
        h, w = self.shape
        cy = min(max(int((y + 0.5) * self.grid // max(h, 1)), 0), self.grid - 1)
        cx = min(max(int((x + 0.5) * self.grid // max(w, 1)), 0), self.grid - 1)
        return (cy, cx)

    def _cell_params(self, cell: tuple[int, int]) -> tuple[float, float, float]:
        """FWHM scale and shear (g1, g2) at the centre of ``cell``."""
        if not self.varies:
            return 1.0, 0.0, 0.0
        # Coordinates of the cell centre in [-1, 1] across the patch.
        v = (cell[0] + 0.5) / self.grid * 2 - 1
        u = (cell[1] + 0.5) / self.grid * 2 - 1
        a, b, c, d = self.coefficients
        scale = 1 + self.variation * (a * u + b * v) / math.sqrt(2)
        return scale, self.variation * c * u, self.variation * d * v

    def profile(self, band_index: int, cell: tuple[int, int] = (0, 0)):
        """The GalSim PSF profile (without the pixel) of one band in one grid cell."""
        key = (band_index, *cell)
        psf = self._cache.get(key)
        if psf is None:
            import galsim

            scale, g1, g2 = self._cell_params(cell)
            fwhm = self.bands[band_index].psf_fwhm * scale
            if self.model == "moffat":
                trunc = (self.size // 2) * self.pixel_scale
                psf = galsim.Moffat(beta=self.beta, fwhm=fwhm, trunc=trunc, gsparams=_gsparams())
            else:
                psf = galsim.Kolmogorov(fwhm=fwhm, gsparams=_gsparams())
            if g1 or g2:
                psf = psf.shear(g1=g1, g2=g2)
            self._cache[key] = psf
        return psf

    def image(self, y: float | None = None, x: float | None = None) -> np.ndarray:
        """PSF images ``(bands, size, size)`` at pixel ``(y, x)`` (default: the patch centre),
        centred in the middle pixel, including the pixel response, normalised to sum 1."""
        if y is None or x is None:
            y, x = (self.shape[0] - 1) / 2, (self.shape[1] - 1) / 2
        cell = self.cell(y, x)
        out = np.empty((len(self.bands), self.size, self.size), dtype=np.float32)
        for b in range(len(self.bands)):
            # Real-space drawing of the truncated Moffat is exact; FFT would ring at the edge.
            im = (
                self.profile(b, cell)
                .drawImage(nx=self.size, ny=self.size, scale=self.pixel_scale, dtype=np.float64)
                .array
            )
            out[b] = im / im.sum()
        return out

    def fwhm(self, band_index: int, y: float, x: float) -> float:
        """FWHM in arcsec of one band at pixel ``(y, x)``."""
        return self.bands[band_index].psf_fwhm * self._cell_params(self.cell(y, x))[0]


def stamp_radius(row, psf_field: PSFField) -> int:
    """Half-size in pixels of the stamp that holds one source and its PSF wings."""
    scale = psf_field.pixel_scale
    psf_r = psf_field.size // 2 + 1
    if row["is_star"]:
        return psf_r + 1
    g = math.hypot(row["e1"], row["e2"])
    stretch = math.sqrt((1 + g) / (1 - g))
    extent = max(
        DISK_EXTENT * row["disk_hlr"] * stretch,
        BULGE_TRUNCATION * row["bulge_hlr"] * stretch,
    )
    return min(math.ceil(extent / scale) + psf_r + 1, MAX_STAMP_RADIUS)


def draw_source(
    row, psf_field: PSFField, band_indices: list[int]
) -> tuple[tuple[int, int], np.ndarray]:
    """Draw one catalog row into its own noiseless stamp in every band.

    Parameters
    ----------
    row
        A record of `catalog.CATALOG_DTYPE` (with ``x``, ``y`` in pixels).
    psf_field
        The PSFs.
    band_indices
        Index in `LSST_BANDS` of each band of ``psf_field.bands``.

    Returns
    -------
    origin, stamp
        ``(y0, x0)`` of the stamp and the stamp ``(bands, h, w)`` float32 in nJy. Each band of
        the stamp sums exactly (to float32 rounding) to the source's flux in that band.
    """
    import galsim

    r = stamp_radius(row, psf_field)
    n = 2 * r + 1
    x, y = float(row["x"]), float(row["y"])
    xc, yc = round(x), round(y)
    offset = (x - xc, y - yc)
    scale = psf_field.pixel_scale
    cell = psf_field.cell(y, x)
    rec = row.reshape(1) if hasattr(row, "reshape") else np.array([row])
    stamp = np.zeros((len(band_indices), n, n), dtype=np.float64)

    if row["is_star"]:
        with warnings.catch_warnings():
            # Moffat truncation and pixel both have hard edges; the FFT is accurate to ~1e-4
            # of the peak here and 15 times faster than the real-space convolution.
            warnings.simplefilter("ignore", galsim.GalSimWarning)
            for k, bi in enumerate(band_indices):
                flux = band_fluxes(rec, bi)[0][0]
                im = (
                    psf_field.profile(k, cell)
                    .drawImage(
                        nx=n, ny=n, scale=scale, offset=offset, method="fft", dtype=np.float64
                    )
                    .array
                )
                np.maximum(im, 0, out=im)  # FFT ringing leaves ~1e-6 negative wings
                stamp[k] = im * (flux / im.sum())
        return (yc - r, xc - r), stamp.astype(np.float32)

    gsp = _gsparams()
    bulge = galsim.Sersic(
        n=float(row["bulge_n"]),
        half_light_radius=float(row["bulge_hlr"]),
        trunc=BULGE_TRUNCATION * float(row["bulge_hlr"]),
        flux_untruncated=False,
        gsparams=gsp,
    ).shear(g1=float(row["bulge_e1"]), g2=float(row["bulge_e2"]))
    disk = galsim.Exponential(half_light_radius=float(row["disk_hlr"]), gsparams=gsp).shear(
        g1=float(row["e1"]), g2=float(row["e2"])
    )
    for k, bi in enumerate(band_indices):
        fb, fd = (float(f[0]) for f in band_fluxes(rec, bi))
        if fb + fd <= 0:
            continue
        # One FFT per band for bulge plus disk (the flux lost to truncation is well under 1%,
        # and the stamp is renormalised to the exact total below).
        galaxy = galsim.Add([bulge.withFlux(fb), disk.withFlux(fd)])
        im = (
            galsim.Convolve(galaxy, psf_field.profile(k, cell))
            .drawImage(nx=n, ny=n, scale=scale, offset=offset, dtype=np.float64)
            .array
        )
        np.maximum(im, 0, out=im)  # FFT ringing leaves ~1e-6 negative wings
        stamp[k] = im * ((fb + fd) / im.sum())
    return (yc - r, xc - r), stamp.astype(np.float32)


def lsst_band_indices(bands) -> list[int]:
    return [LSST_BANDS.index(b) for b in bands]
