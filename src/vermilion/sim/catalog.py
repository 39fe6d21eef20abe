"""Random source catalogs: magnitudes, colours, shapes and positions of galaxies and stars.

Every property is drawn for all six LSST bands whatever bands are rendered, so that a scene
simulated in ``"gri"`` holds the same sources as the same seed in ``"ugrizy"``.

Distributions (chosen to be realistic to first order, not fitted to a survey):

- Magnitudes (i band): number counts ``dN/dm ~ 10**(0.3 m)`` for galaxies and ``10**(0.1 m)``
  for stars (high galactic latitude), between the bright limit and the survey depth.
- Galaxies: bulge (Sersic, n in {3.5, 4, 4.5}) plus disk (exponential). Disk half-light radius
  log-normal about ``0.6" * 10**(-0.1 (i - 22))`` with 0.2 dex scatter (fainter is smaller);
  bulge radius 0.25 to 0.6 of the disk's; i-band bulge fraction ~ Beta(1.5, 3). Disk shear
  |g| ~ Rayleigh(0.2) below 0.8, bulge rounder (half the disk's |g|) and aligned with it.
- Colours: redshift log-normal about ``0.15 + 0.12 (i - 20)``; the bulge has the CWW
  elliptical SED, the disk an Sbc, Scd or Im SED, redshifted and integrated through the LSST
  bandpasses shipped with GalSim (so bulges are redder than disks). Stars are black bodies with
  temperatures log-uniform in 3000 to 10000 K.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .survey import LSST_BANDS

__all__ = ["CATALOG_DTYPE", "colour_tables", "draw_magnitudes", "draw_properties"]

_REF = LSST_BANDS.index("i")
DISK_TEMPLATES = ("Sbc", "Scd", "Im")
_DISK_WEIGHTS = (0.4, 0.35, 0.25)
BULGE_N_VALUES = (3.5, 4.0, 4.5)
GALAXY_COUNT_SLOPE = 0.3
STAR_COUNT_SLOPE = 0.1
MAX_DISK_HLR = 6.0  # arcsec
MIN_HLR = 0.03  # arcsec

_Z_GRID = np.round(np.arange(0.0, 4.0001, 0.05), 4)
_T_GRID = np.geomspace(2500.0, 12000.0, 40)

#: Internal catalog layout; magnitude offsets are per LSST band relative to i.
CATALOG_DTYPE = np.dtype(
    [
        ("id", "i8"),
        ("x", "f8"),
        ("y", "f8"),
        ("is_star", "?"),
        ("mag_i", "f8"),
        ("redshift", "f8"),
        ("bulge_frac", "f8"),
        ("bulge_hlr", "f8"),
        ("bulge_n", "f8"),
        ("bulge_e1", "f8"),
        ("bulge_e2", "f8"),
        ("disk_hlr", "f8"),
        ("e1", "f8"),
        ("e2", "f8"),
        ("disk_template", "i1"),
        ("temperature", "f8"),
        ("bulge_dmag", "f8", (len(LSST_BANDS),)),
        ("disk_dmag", "f8", (len(LSST_BANDS),)),
    ]
)


@lru_cache(maxsize=1)
def colour_tables() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Magnitude offsets ``m_band - m_i`` on a grid, per SED template.

    Returns
    -------
    dict
        ``{"E": (z, dmag), "Sbc": ..., "Scd": ..., "Im": ..., "star": (T, dmag)}`` with
        ``dmag`` of shape ``(len(grid), 6)`` in LSST band order.
    """
    import galsim

    bandpasses = [galsim.Bandpass(f"LSST_{b}.dat", "nm").withZeropoint("AB") for b in LSST_BANDS]
    tables = {}
    for name in ("E", *DISK_TEMPLATES):
        sed = galsim.SED(f"CWW_{name}_ext.sed", "Angstrom", "flambda")
        mags = np.array(
            [[sed.atRedshift(z).calculateMagnitude(bp) for bp in bandpasses] for z in _Z_GRID]
        )
        tables[name] = (_Z_GRID, mags - mags[:, _REF : _REF + 1])

    # Planck f_lambda (arbitrary units) with wavelength in nm.
    hc_k = 1.438777e7  # nm K
    mags = []
    for t in _T_GRID:
        sed = galsim.SED(
            galsim.LookupTable(
                np.linspace(250, 1250, 501),
                np.linspace(250, 1250, 501) ** -5
                / np.expm1(hc_k / (np.linspace(250, 1250, 501) * t)),
            ),
            "nm",
            "flambda",
        )
        mags.append([sed.calculateMagnitude(bp) for bp in bandpasses])
    mags = np.array(mags)
    tables["star"] = (_T_GRID, mags - mags[:, _REF : _REF + 1])
    return tables


def _interp_rows(grid: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(values, grid, table[:, k]) for k in range(table.shape[1])], axis=-1)


def _power_law(rng: np.random.Generator, n: int, slope: float, lo: float, hi: float) -> np.ndarray:
    """Draw magnitudes with dN/dm proportional to 10**(slope m) on [lo, hi]."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def draw_magnitudes(
    rng: np.random.Generator, n: int, star_fraction: float, mag_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` i-band magnitudes and star flags from the number counts."""
    is_star = rng.random(n) < star_fraction
    mags = np.where(
        is_star,
        _power_law(rng, n, STAR_COUNT_SLOPE, *mag_range),
        _power_law(rng, n, GALAXY_COUNT_SLOPE, *mag_range),
    )
    return mags, is_star


def draw_properties(rng: np.random.Generator, mag_i: np.ndarray, is_star: np.ndarray) -> np.ndarray:
    """Draw shapes, sizes and colours given magnitudes and star flags.

    Returns a `CATALOG_DTYPE` array with ``id``, ``x`` and ``y`` left at zero.
    """
    mag_i = np.asarray(mag_i, dtype=float)
    is_star = np.asarray(is_star, dtype=bool)
    n = mag_i.size
    cat = np.zeros(n, dtype=CATALOG_DTYPE)
    cat["mag_i"] = mag_i
    cat["is_star"] = is_star
    tables = colour_tables()

    # Draw every column for every source (fixed number of draws per source), then zero the
    # galaxy columns of stars, so that the draws do not depend on the star/galaxy split.
    z = np.exp(rng.normal(np.log(np.clip(0.15 + 0.12 * (mag_i - 20), 0.05, None)), 0.35))
    z = np.clip(z, 0.01, _Z_GRID[-1])
    disk_hlr = 0.6 * 10 ** (-0.1 * (mag_i - 22)) * 10 ** rng.normal(0.0, 0.2, n)
    disk_hlr = np.clip(disk_hlr, MIN_HLR, MAX_DISK_HLR)
    bulge_hlr = np.maximum(disk_hlr * rng.uniform(0.25, 0.6, n), MIN_HLR)
    bulge_frac = rng.beta(1.5, 3.0, n)
    bulge_n = np.asarray(BULGE_N_VALUES)[rng.integers(0, len(BULGE_N_VALUES), n)]
    g = np.abs(rng.normal(0.0, 0.2, (n, 2)))
    g = np.hypot(g[:, 0], g[:, 1])
    g = np.where(g < 0.8, g, 0.8 * rng.random(n))
    beta = rng.uniform(0.0, np.pi, n)
    template = rng.choice(len(DISK_TEMPLATES), size=n, p=_DISK_WEIGHTS)
    temperature = np.exp(rng.uniform(np.log(3000.0), np.log(10000.0), n))

    cat["redshift"] = z
    cat["disk_hlr"] = disk_hlr
    cat["bulge_hlr"] = bulge_hlr
    cat["bulge_frac"] = bulge_frac
    cat["bulge_n"] = bulge_n
    cat["e1"] = g * np.cos(2 * beta)
    cat["e2"] = g * np.sin(2 * beta)
    cat["bulge_e1"] = 0.5 * cat["e1"]
    cat["bulge_e2"] = 0.5 * cat["e2"]
    cat["disk_template"] = template
    cat["temperature"] = temperature

    cat["bulge_dmag"] = _interp_rows(*tables["E"], z)
    disk = np.zeros((n, len(LSST_BANDS)))
    for k, name in enumerate(DISK_TEMPLATES):
        sel = template == k
        disk[sel] = _interp_rows(*tables[name], z[sel])
    cat["disk_dmag"] = disk

    stars = is_star
    if stars.any():
        star_dmag = _interp_rows(*tables["star"], temperature[stars])
        cat["bulge_dmag"][stars] = star_dmag
        cat["disk_dmag"][stars] = star_dmag
        for col in ("redshift", "disk_hlr", "bulge_hlr", "bulge_frac", "bulge_n"):
            cat[col][stars] = 0.0
        for col in ("e1", "e2", "bulge_e1", "bulge_e2"):
            cat[col][stars] = 0.0
        cat["disk_template"][stars] = -1
    cat["temperature"][~stars] = 0.0
    return cat


def band_fluxes(cat: np.ndarray, band_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Bulge and disk fluxes (nJy) in the LSST band ``band_index`` (stars: all in the bulge)."""
    from .survey import FLUX_ZERO_POINT

    total_i = 10 ** (-0.4 * (cat["mag_i"] - FLUX_ZERO_POINT))
    bf = np.where(cat["is_star"], 1.0, cat["bulge_frac"])
    bulge = total_i * bf * 10 ** (-0.4 * cat["bulge_dmag"][:, band_index])
    disk = total_i * (1 - bf) * 10 ** (-0.4 * cat["disk_dmag"][:, band_index])
    return bulge, disk
