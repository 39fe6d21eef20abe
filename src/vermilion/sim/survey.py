"""Survey parameters for the simulations, read from `surveycodex` (LSST by default).

Images are in nJy: a pixel value of 1 is 1 nJy, i.e. the AB magnitude of a flux ``f`` is
``FLUX_ZERO_POINT - 2.5 log10(f)`` with ``FLUX_ZERO_POINT = 31.4`` in every band, as in Rubin
coadds. Electron counts (needed for the noise) follow from the surveycodex zero point of each
band (the AB magnitude giving 1 electron per second) and its exposure time at the requested depth.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "FLUX_ZERO_POINT",
    "LSST_BANDS",
    "BandParameters",
    "band_parameters",
    "parse_bands",
    "parse_depth",
    "pixel_scale",
]

#: AB magnitude of a flux of 1 nJy (the zero point of every simulated image).
FLUX_ZERO_POINT = 31.4
#: Bands simulated by default, in wavelength order.
LSST_BANDS = ("u", "g", "r", "i", "z", "y")
#: Survey depth in years that surveycodex's ``full_exposure_time`` corresponds to.
_FULL_SURVEY_YEARS = 10.0
#: One LSST visit (2 x 15 s snaps) and the sensor full well, used only for the SAT mask plane.
VISIT_TIME_S = 30.0
FULL_WELL_E = 1.0e5


@lru_cache(maxsize=4)
def _survey(name: str = "LSST"):
    import surveycodex

    return surveycodex.get_survey(name)


def pixel_scale(survey: str = "LSST") -> float:
    """Pixel scale of ``survey`` in arcsec per pixel."""
    return float(_survey(survey).pixel_scale.to_value("arcsec"))


def parse_bands(bands, survey: str = "LSST") -> tuple[str, ...]:
    """Validate ``bands`` (a string such as ``"gri"`` or a sequence of names).

    Raises
    ------
    ValueError
        Naming ``bands`` when a band is unknown, repeated, or none is given.
    """
    if isinstance(bands, str):
        names = tuple(bands)
    else:
        try:
            names = tuple(str(b) for b in bands)
        except TypeError:
            raise ValueError(
                f"bands must be a string or a sequence of names, got {bands!r}"
            ) from None
    known = tuple(_survey(survey).available_filters)
    if not names:
        raise ValueError("bands must name at least one band")
    unknown = [b for b in names if b not in known]
    if unknown:
        raise ValueError(f"bands: unknown band(s) {unknown} for {survey}; known: {''.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"bands must not repeat a band, got {names}")
    return names


def parse_depth(depth) -> float:
    """Survey depth in years from ``"10yr"``, ``"1yr"``, ``"y5"`` or a number of years.

    Raises
    ------
    ValueError
        Naming ``depth`` when it is not positive or cannot be read.
    """
    years = None
    if isinstance(depth, str):
        m = re.fullmatch(r"\s*(?:y\s*)?([0-9]*\.?[0-9]+)\s*(?:yr|yrs|years?|y)?\s*", depth.lower())
        if m:
            years = float(m.group(1))
    elif isinstance(depth, int | float) and not isinstance(depth, bool):
        years = float(depth)
    if years is None or not math.isfinite(years) or years <= 0:
        raise ValueError(f"depth must be a positive number of years or e.g. '10yr', got {depth!r}")
    return years


@dataclass(frozen=True)
class BandParameters:
    """Per-band survey parameters at a given depth.

    Attributes
    ----------
    name
        Band name.
    psf_fwhm
        Median PSF FWHM in arcsec (surveycodex, at airmass 1.2).
    zeropoint
        AB magnitude that gives 1 electron per second.
    sky_brightness
        Sky surface brightness in AB mag per square arcsec.
    exposure_time
        Total exposure time in seconds at the requested depth.
    effective_wavelength
        In nm.
    pixel_scale
        Arcsec per pixel.
    """

    name: str
    psf_fwhm: float
    zeropoint: float
    sky_brightness: float
    exposure_time: float
    effective_wavelength: float
    pixel_scale: float

    @property
    def electrons_per_njy(self) -> float:
        """Electrons collected over the whole exposure time from a 1 nJy source."""
        return self.exposure_time * 10 ** (-0.4 * (FLUX_ZERO_POINT - self.zeropoint))

    @property
    def sky_electrons(self) -> float:
        """Mean sky level per pixel in electrons (subtracted from the images; sets the noise)."""
        per_s = 10 ** (-0.4 * (self.sky_brightness - self.zeropoint)) * self.pixel_scale**2
        return self.exposure_time * per_s

    @property
    def sky_rms(self) -> float:
        """Sky noise per pixel in nJy."""
        return math.sqrt(self.sky_electrons) / self.electrons_per_njy

    @property
    def saturation_njy(self) -> float:
        """Pixel value (nJy) above which a single visit saturates (the SAT mask plane)."""
        visit_e_per_njy = VISIT_TIME_S * 10 ** (-0.4 * (FLUX_ZERO_POINT - self.zeropoint))
        return FULL_WELL_E / visit_e_per_njy

    def depth_5sigma(self, n_eff_pixels: float) -> float:
        """5-sigma point-source depth (AB mag) for a PSF of ``n_eff_pixels`` effective pixels."""
        return FLUX_ZERO_POINT - 2.5 * math.log10(5 * self.sky_rms * math.sqrt(n_eff_pixels))


def band_parameters(bands, depth="10yr", survey: str = "LSST") -> list[BandParameters]:
    """Parameters of ``bands`` at ``depth`` (years, or e.g. ``"10yr"``) from surveycodex."""
    names = parse_bands(bands, survey)
    years = parse_depth(depth)
    s = _survey(survey)
    scale = float(s.pixel_scale.to_value("arcsec"))
    out = []
    for name in names:
        f = s.get_filter(name)
        out.append(
            BandParameters(
                name=name,
                psf_fwhm=float(f.psf_fwhm.to_value("arcsec")),
                zeropoint=float(f.zeropoint.value),
                sky_brightness=float(f.sky_brightness.value),
                exposure_time=float(f.full_exposure_time.to_value("s"))
                * years
                / _FULL_SURVEY_YEARS,
                effective_wavelength=float(f.effective_wavelength.to_value("nm")),
                pixel_scale=scale,
            )
        )
    return out
