"""Simulated multi-band coadd patches with known truth.

`simulate_patch` draws a random LSST-like scene (galaxies as bulge plus disk, stars as point
sources) on a patch of any size, renders it with GalSim one source stamp at a time, and adds
sky-limited noise; `simulate_blend` makes one small blend with controlled separations.
Both return a `SimulatedPatch`: per band an exposure (image, variance, mask, PSF image) and
the truth table, and on request each source's noiseless image.

Units: images are in nJy (AB zero point `FLUX_ZERO_POINT` = 31.4 in every band), sky
subtracted; the variance is in nJy^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..core.bbox import Box
from ..core.masks import MASK_PLANES
from ..core.measure import scene_blendedness
from .catalog import band_fluxes, draw_magnitudes, draw_properties
from .survey import FLUX_ZERO_POINT, LSST_BANDS, band_parameters, parse_bands, parse_depth

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = [
    "SimConfig",
    "SimulatedPatch",
    "SourceImage",
    "simulate",
    "simulate_blend",
    "simulate_patch",
]

#: Mask bit planes of `SimulatedPatch.mask` (int32, one bit each).
# BAD: garbage value (+100 sigma); SAT: saturated in a visit (value still true plus noise);
# NO_DATA: image 0, variance inf; EDGE: within `EDGE_WIDTH` pixels of NO_DATA (data valid).
EDGE_WIDTH = 8
#: Value of a BAD pixel, in units of the sky noise.
BAD_PIXEL_SIGMA = 100.0

# Independent random streams per purpose; band streams are keyed by the LSST band index so that
# a band subset reproduces the same noise in the bands it keeps.
_STREAM_CATALOG, _STREAM_PSF, _STREAM_NOISE, _STREAM_BAD, _STREAM_NODATA = range(5)


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated scene (with the seed: a scene is reproducible).

    See `simulate_patch` for the meaning of each field. Construction validates every field
    and raises ValueError naming the field at fault.
    """

    shape: tuple[int, int] = (64, 64)
    bands: tuple[str, ...] = LSST_BANDS
    density: float = 100.0
    seed: int = 0
    depth: float = 10.0
    star_fraction: float = 0.1
    mag_range: tuple[float, float] | None = None
    psf_model: str = "moffat"
    psf_beta: float = 3.5
    psf_size: int = 41
    psf_variation: float = 0.0
    bad_pixel_fraction: float = 0.0
    no_data: float = 0.0
    border: int = 0
    noise: bool = True
    return_source_images: bool = False
    progress: bool | None = None

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        try:
            shape = tuple(int(s) for s in self.shape)
            ok = len(shape) == 2 and all(s == t for s, t in zip(shape, self.shape))
        except (TypeError, ValueError):
            ok = False
        if not ok or min(shape) < 1:
            raise ValueError(
                f"shape must be two positive integers (height, width), got {self.shape}"
            )
        put("shape", shape)
        put("bands", parse_bands(self.bands))
        put("depth", parse_depth(self.depth))
        _check_number("density", self.density, lo=0.0)
        put("density", float(self.density))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        put("seed", int(self.seed))
        _check_number("star_fraction", self.star_fraction, lo=0.0, hi=1.0)
        if self.mag_range is not None:
            try:
                lo, hi = (float(m) for m in self.mag_range)
            except (TypeError, ValueError):
                raise ValueError(
                    f"mag_range must be (bright, faint), got {self.mag_range!r}"
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"mag_range must be finite with bright < faint, got {self.mag_range}"
                )
            put("mag_range", (lo, hi))
        if self.psf_model not in ("moffat", "kolmogorov"):
            raise ValueError(f"psf_model must be 'moffat' or 'kolmogorov', got {self.psf_model!r}")
        _check_number("psf_beta", self.psf_beta, lo=1.1, hi=20.0)
        if (
            not isinstance(self.psf_size, int | np.integer)
            or self.psf_size < 11
            or self.psf_size % 2 == 0
        ):
            raise ValueError(f"psf_size must be an odd integer >= 11, got {self.psf_size!r}")
        variation = self.psf_variation
        if isinstance(variation, bool):
            variation = 0.05 if variation else 0.0
        _check_number("psf_variation", variation, lo=0.0, hi=0.3)
        put("psf_variation", float(variation))
        _check_number("bad_pixel_fraction", self.bad_pixel_fraction, lo=0.0, hi=0.5)
        no_data = self.no_data
        if isinstance(no_data, bool):
            no_data = 0.15 if no_data else 0.0
        _check_number("no_data", no_data, lo=0.0, hi=0.9)
        put("no_data", float(no_data))
        if not isinstance(self.border, int | np.integer) or self.border < 0:
            raise ValueError(f"border must be a non-negative integer, got {self.border!r}")
        if 2 * self.border >= min(shape):
            raise ValueError(f"border {self.border} leaves no room in a patch of shape {shape}")


def _check_number(name: str, value, lo: float | None = None, hi: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value}")


@dataclass
class SourceImage:
    """The noiseless image of one source, convolved with its PSF (nJy).

    ``image`` has shape ``(bands, h, w)`` and lies on ``box`` (parent-image coordinates; the
    stamp may extend past the patch edges). Each band sums to the source's true flux.
    """

    id: int
    box: Box
    image: np.ndarray

    @property
    def yx0(self) -> tuple[int, int]:
        return self.box.origin


@dataclass
class Exposure:
    """One band of a simulated patch (views into the patch arrays)."""

    band: str
    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    psf: np.ndarray


@dataclass
class SimulatedPatch:
    """A simulated multi-band patch with its truth.

    Attributes
    ----------
    images, variance
        ``(bands, H, W)`` float32, nJy and nJy^2. NO_DATA pixels have image 0 and variance inf.
    mask
        ``(bands, H, W)`` int32 bit planes, see `vermilion.core.MASK_PLANES`.
    psfs
        ``(bands, S, S)`` float32 PSF images at the patch centre (S odd, centred, sum 1),
        including the pixel response. Use `psf_at` for a spatially varying PSF.
    bands
        Band names.
    pixel_scale
        Arcsec per pixel.
    zero_points
        ``(bands,)`` AB magnitude of a pixel value of 1 (31.4: images are in nJy).
    noise_rms
        ``(bands,)`` sky noise per pixel in nJy.
    psf_fwhm
        ``(bands,)`` PSF FWHM in arcsec at the patch centre.
    depth_5sigma
        ``(bands,)`` 5-sigma point-source depth (AB mag).
    truth_array
        The truth as a numpy structured array (see `truth` for the columns).
    source_images
        One `SourceImage` per truth row (same order), when requested; else None.
    config
        The `SimConfig` that made this patch.
    timings
        Seconds spent in each stage of the simulation.
    """

    images: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    psfs: np.ndarray
    bands: tuple[str, ...]
    pixel_scale: float
    zero_points: np.ndarray
    noise_rms: np.ndarray
    psf_fwhm: np.ndarray
    depth_5sigma: np.ndarray
    truth_array: np.ndarray
    config: SimConfig
    source_images: list[SourceImage] | None = None
    _psf_field: object = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.images.shape[-2:]

    @property
    def bbox(self) -> Box:
        return Box(self.shape)

    @property
    def n_sources(self) -> int:
        return len(self.truth_array)

    @property
    def psf_fwhm_pixels(self) -> np.ndarray:
        return self.psf_fwhm / self.pixel_scale

    @cached_property
    def truth(self) -> Table:
        """The truth table (astropy Table, built on first use).

        Columns: ``id`` (int64), ``x``, ``y`` (pixels; pixel centres are integers), ``is_star``,
        ``mag_i`` (i-band AB mag, whatever bands were simulated), ``flux_<band>`` (nJy, total),
        ``bulge_flux_<band>`` (nJy; stars: all of it), ``snr_<band>`` (optimal S/N against the
        sky noise), ``snr`` (all bands together), ``blendedness`` (1 - sum(I_k^2) /
        sum(I_k I_all) over all bands, from the noiseless images), ``in_no_data`` (centre in
        a NO_DATA region), ``redshift``, ``bulge_frac`` (i band), ``bulge_hlr``, ``disk_hlr``
        (arcsec), ``bulge_n``, ``e1``, ``e2`` (disk reduced shear), ``bulge_e1``, ``bulge_e2``,
        ``disk_template`` (0 Sbc, 1 Scd, 2 Im; -1 star), ``temperature`` (stars, K).
        """
        from astropy.table import Table

        t = Table(self.truth_array, copy=False)
        for name in t.colnames:
            if name.startswith(("flux_", "bulge_flux_")):
                t[name].unit = "nJy"
            elif name.endswith("_hlr"):
                t[name].unit = "arcsec"
        t.meta["bands"] = "".join(self.bands)
        t.meta["zero_point"] = FLUX_ZERO_POINT
        t.meta["seed"] = self.config.seed
        return t

    def exposure(self, band: str) -> Exposure:
        """The exposure of one band."""
        if band not in self.bands:
            raise ValueError(f"band {band!r} not in this patch's bands {self.bands}")
        b = self.bands.index(band)
        return Exposure(band, self.images[b], self.variance[b], self.mask[b], self.psfs[b])

    def psf_at(self, y: float, x: float) -> np.ndarray:
        """PSF images ``(bands, S, S)`` at pixel ``(y, x)`` (equal to `psfs` if constant)."""
        if not self._psf_field.varies:
            return self.psfs.copy()
        return self._psf_field.image(y, x)

    def noiseless_image(self) -> np.ndarray:
        """The noiseless scene ``(bands, H, W)`` rebuilt from the source images."""
        if self.source_images is None:
            raise ValueError("this patch was simulated without return_source_images=True")
        out = np.zeros(self.images.shape, dtype=np.float32)
        _add_stamps(out, self.source_images)
        return out


def _add_stamps(out: np.ndarray, stamps: list[SourceImage]) -> None:
    full = Box(out.shape[-2:])
    for s in stamps:
        if not s.box.overlaps(full):
            continue
        a, b = full.overlapped_slices(s.box)
        out[(slice(None), *a)] += s.image[(slice(None), *b)]


def simulate_patch(
    shape: tuple[int, int] = (64, 64),
    bands="ugrizy",
    density: float = 100.0,
    seed: int = 0,
    depth="10yr",
    *,
    star_fraction: float = 0.1,
    mag_range: tuple[float, float] | None = None,
    psf_model: str = "moffat",
    psf_variation: bool | float = False,
    bad_pixel_fraction: float = 0.0,
    no_data: bool | float = False,
    border: int = 0,
    noise: bool = True,
    return_source_images: bool = False,
    progress: bool | None = None,
) -> SimulatedPatch:
    """Simulate a multi-band LSST-like coadd patch with known truth.

    Parameters
    ----------
    shape
        ``(height, width)`` in pixels, from a 64 x 64 blend to a 4000 x 4000 patch.
    bands
        Band names, ``"ugrizy"`` by default; any subset (the sources do not depend on it).
    density
        Sources (galaxies and stars) per square arcminute with i-band magnitude in
        ``mag_range``; 0 gives an empty scene. The number is Poisson distributed.
    seed
        Random seed: the same arguments and seed reproduce the patch bit for bit.
    depth
        Survey depth in years (``10``, ``"10yr"``, ``"1yr"``): sets exposure time and noise.
    star_fraction
        Fraction of the sources that are stars.
    mag_range
        ``(bright, faint)`` i-band magnitudes; default ``(18, i-band 5-sigma depth)``.
    psf_model
        ``"moffat"`` (beta 3.5, truncated at the edge of the 41 x 41 PSF image, so the PSF image
        is the exact PSF) or ``"kolmogorov"``.
    psf_variation
        False for one PSF per band; True (5%) or a fraction for a FWHM and ellipticity that
        change across the patch (constant on an 8 x 8 grid of cells).
    bad_pixel_fraction
        Fraction of pixels per band flagged BAD (and set to a +100 sigma garbage value).
    no_data
        False, True (15% of the area) or a fraction: a corner of the patch without data.
    border
        Keep source centres at least this many pixels from the patch edges.
    noise
        False for a noiseless image (the variance plane is still the expected variance).
    return_source_images
        Also return each source's noiseless image (`SourceImage`).
    progress
        Show a progress bar while rendering (default: for more than 2000 sources,
        when writing to a terminal).

    Returns
    -------
    SimulatedPatch

    Raises
    ------
    ValueError
        Naming the parameter, for impossible values (unknown band, density < 0, ...).
    """
    config = SimConfig(
        shape=shape,
        bands=bands,
        density=density,
        seed=seed,
        depth=depth,
        star_fraction=star_fraction,
        mag_range=mag_range,
        psf_model=psf_model,
        psf_variation=psf_variation,
        bad_pixel_fraction=bad_pixel_fraction,
        no_data=no_data,
        border=border,
        noise=noise,
        return_source_images=return_source_images,
        progress=progress,
    )
    return simulate(config)


def _stderr_is_terminal() -> bool:
    import sys

    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _setup(config: SimConfig):
    from .render import PSFField

    params = band_parameters(config.bands, config.depth)
    ref = band_parameters("i", config.depth)[0]
    coef = tuple(_rng(config.seed, _STREAM_PSF).uniform(-1, 1, 4))
    field_ = PSFField(
        params,
        config.shape,
        model=config.psf_model,
        beta=config.psf_beta,
        size=config.psf_size,
        variation=config.psf_variation,
        coefficients=coef,
    )
    return params, ref, field_


def _mag_range(config: SimConfig, ref, psf_field) -> tuple[float, float]:
    if config.mag_range is not None:
        return config.mag_range
    return (18.0, _i_band_depth(ref, psf_field))


def _n_eff(psf: np.ndarray) -> float:
    return float(1.0 / np.sum(np.asarray(psf, dtype=np.float64) ** 2))


def _i_band_depth(ref, psf_field) -> float:
    from .render import PSFField

    ipsf = PSFField([ref], (1, 1), model=psf_field.model, beta=psf_field.beta, size=psf_field.size)
    return ref.depth_5sigma(_n_eff(ipsf.image()[0]))


def simulate(config: SimConfig, catalog: np.ndarray | None = None) -> SimulatedPatch:
    """Simulate the scene defined by ``config`` (see `simulate_patch`).

    Parameters
    ----------
    config
        The scene definition.
    catalog
        Optional `catalog.CATALOG_DTYPE` array to render instead of drawing one.
    """
    import time

    from .render import draw_source, lsst_band_indices

    clock = [time.perf_counter()]
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - clock[0]
        clock[0] = now

    params, ref, psf_field = _setup(config)
    h, w = config.shape
    nb = len(params)
    band_idx = lsst_band_indices(config.bands)
    psfs = psf_field.image()

    if catalog is None:
        catalog = _draw_catalog(config, _mag_range(config, ref, psf_field))
    lap("setup")

    # Render every source into its own stamp, then add them in catalog order (deterministic).
    images = np.zeros((nb, h, w), dtype=np.float32)
    stamps: list[SourceImage] = []
    from tqdm.auto import tqdm

    if config.progress is None:
        show = len(catalog) > 2000 and _stderr_is_terminal()
    else:
        show = bool(config.progress)
    for row in tqdm(catalog, desc="simulate", unit="source", disable=not show):
        origin, stamp = draw_source(row, psf_field, band_idx)
        stamps.append(SourceImage(int(row["id"]), Box(stamp.shape[1:], origin), stamp))
    _add_stamps(images, stamps)
    lap("render")

    # Truth quantities that need the noiseless images.
    noise_rms = np.array([p.sky_rms for p in params])
    snr_b, blendedness = _snr_and_blendedness(images, stamps, noise_rms)
    lap("truth")

    variance = np.empty_like(images)
    mask = np.zeros((nb, h, w), dtype=np.int32)
    for b, p in enumerate(params):
        # Poisson noise of sky plus source, Gaussian approximation, in nJy^2.
        np.maximum(images[b], 0, out=variance[b])
        variance[b] *= np.float32(1.0 / p.electrons_per_njy)
        variance[b] += np.float32(p.sky_rms**2)
        mask[b][images[b] > p.saturation_njy] |= MASK_PLANES["SAT"]
        if config.noise:
            rng = _rng(config.seed, _STREAM_NOISE, band_idx[b])
            noise = rng.standard_normal((h, w), dtype=np.float32)
            noise *= np.sqrt(variance[b])
            images[b] += noise
            del noise
        if config.bad_pixel_fraction > 0:
            rng = _rng(config.seed, _STREAM_BAD, band_idx[b])
            n_bad = round(config.bad_pixel_fraction * h * w)
            flat = rng.choice(h * w, size=n_bad, replace=False) if n_bad else []
            yy, xx = np.unravel_index(flat, (h, w))
            images[b, yy, xx] = np.float32(BAD_PIXEL_SIGMA * p.sky_rms)
            mask[b, yy, xx] |= MASK_PLANES["BAD"]

    in_no_data = np.zeros(len(catalog), dtype=bool)
    if config.no_data > 0:
        no_data_mask = _no_data_region(config)
        images[:, no_data_mask] = 0.0
        variance[:, no_data_mask] = np.inf
        mask[:, no_data_mask] |= MASK_PLANES["NO_DATA"]
        edge = _grow(no_data_mask, EDGE_WIDTH) & ~no_data_mask
        mask[:, edge] |= MASK_PLANES["EDGE"]
        if len(catalog):
            iy = np.clip(np.round(catalog["y"]).astype(int), 0, h - 1)
            ix = np.clip(np.round(catalog["x"]).astype(int), 0, w - 1)
            in_no_data = no_data_mask[iy, ix]

    lap("noise_and_masks")
    psf_fwhm = np.array([p.psf_fwhm for p in params])
    depth = np.array([p.depth_5sigma(_n_eff(psfs[b])) for b, p in enumerate(params)])
    truth = _truth_array(catalog, config.bands, band_idx, snr_b, blendedness, in_no_data)
    return SimulatedPatch(
        images=images,
        variance=variance,
        mask=mask,
        psfs=psfs,
        bands=config.bands,
        pixel_scale=params[0].pixel_scale,
        zero_points=np.full(nb, FLUX_ZERO_POINT),
        noise_rms=noise_rms,
        psf_fwhm=psf_fwhm,
        depth_5sigma=depth,
        truth_array=truth,
        config=config,
        source_images=stamps if config.return_source_images else None,
        _psf_field=psf_field,
        timings=timings,
    )


def _draw_catalog(config: SimConfig, mag_range: tuple[float, float]) -> np.ndarray:
    rng = _rng(config.seed, _STREAM_CATALOG)
    h, w = config.shape
    scale = band_parameters("i", config.depth)[0].pixel_scale
    area_arcmin2 = h * w * (scale / 60.0) ** 2
    n = int(rng.poisson(config.density * area_arcmin2))
    b = config.border
    x = rng.uniform(b, w - 1 - b, n) if w - 1 - 2 * b > 0 else np.full(n, (w - 1) / 2)
    y = rng.uniform(b, h - 1 - b, n) if h - 1 - 2 * b > 0 else np.full(n, (h - 1) / 2)
    mags, is_star = draw_magnitudes(rng, n, config.star_fraction, mag_range)
    cat = draw_properties(rng, mags, is_star)
    cat["id"] = np.arange(1, n + 1, dtype=np.int64)
    cat["x"] = x
    cat["y"] = y
    return cat


def _snr_and_blendedness(
    images: np.ndarray, stamps: list[SourceImage], noise_rms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    snr2 = np.zeros((len(stamps), images.shape[0]))
    full = Box(images.shape[-2:])
    inv_var = (1.0 / noise_rms**2)[:, None, None]
    for k, s in enumerate(stamps):
        if s.box.overlaps(full):
            _, b = full.overlapped_slices(s.box)
            mine = s.image[(slice(None), *b)].astype(np.float64)
            snr2[k] = np.sum(mine**2 * inv_var, axis=(1, 2))
    boxes = [s.box for s in stamps]
    return np.sqrt(snr2), scene_blendedness([s.image for s in stamps], boxes, images, full)


def _truth_array(catalog, bands, band_idx, snr_b, blendedness, in_no_data) -> np.ndarray:
    cols = [("id", "i8"), ("x", "f8"), ("y", "f8"), ("is_star", "?"), ("mag_i", "f8")]
    cols += [(f"flux_{b}", "f8") for b in bands]
    cols += [(f"bulge_flux_{b}", "f8") for b in bands]
    cols += [(f"snr_{b}", "f8") for b in bands]
    cols += [("snr", "f8"), ("blendedness", "f8"), ("in_no_data", "?")]
    shape_cols = [
        "redshift",
        "bulge_frac",
        "bulge_hlr",
        "disk_hlr",
        "bulge_n",
        "e1",
        "e2",
        "bulge_e1",
        "bulge_e2",
    ]
    cols += [(c, "f8") for c in shape_cols]
    cols += [("disk_template", "i1"), ("temperature", "f8")]
    out = np.zeros(len(catalog), dtype=cols)
    for c in ("id", "x", "y", "is_star", "mag_i", *shape_cols, "disk_template", "temperature"):
        out[c] = catalog[c]
    for k, (b, bi) in enumerate(zip(bands, band_idx)):
        bulge, disk = band_fluxes(catalog, bi)
        out[f"flux_{b}"] = bulge + disk
        out[f"bulge_flux_{b}"] = bulge
        out[f"snr_{b}"] = snr_b[:, k] if len(catalog) else 0.0
    out["snr"] = np.sqrt(np.sum(snr_b**2, axis=1)) if len(catalog) else 0.0
    out["blendedness"] = blendedness
    out["in_no_data"] = in_no_data
    return out


def _no_data_region(config: SimConfig) -> np.ndarray:
    """A corner cut off by a straight line, covering ``config.no_data`` of the area."""
    h, w = config.shape
    rng = _rng(config.seed, _STREAM_NODATA)
    corner = int(rng.integers(4))
    angle = rng.uniform(0.25, 1.3)  # slope angle of the cut (radians)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if corner & 1:
        xx = (w - 1) - xx
    if corner & 2:
        yy = (h - 1) - yy
    # Distance-like coordinate along the cut's normal; choose the threshold for the area.
    t = (xx * np.sin(angle) + yy * np.cos(angle)).ravel()
    k = round(config.no_data * h * w)
    if k == 0:
        return np.zeros((h, w), dtype=bool)
    thresh = np.partition(t, k - 1)[k - 1]
    return (t <= thresh).reshape(h, w)


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=r)


def simulate_blend(
    n_sources: int = 2,
    separations=None,
    shape: tuple[int, int] = (64, 64),
    bands="ugrizy",
    seed: int = 0,
    depth="10yr",
    *,
    mags=None,
    is_star=None,
    positions=None,
    mag_range: tuple[float, float] = (20.0, 24.5),
    star_fraction: float = 0.1,
    psf_model: str = "moffat",
    noise: bool = True,
    return_source_images: bool = True,
) -> SimulatedPatch:
    """Simulate one small blend of ``n_sources`` at controlled separations.

    The first source sits near the centre (random sub-pixel offset); source ``k > 0`` lies at
    ``separations[k - 1]`` pixels from it in a random direction.

    Parameters
    ----------
    n_sources
        Number of sources (0 gives an empty blend).
    separations
        ``n_sources - 1`` distances in pixels from the first source; default uniform between
        1 and 3 i-band PSF FWHM.
    shape, bands, seed, depth, psf_model, noise, return_source_images
        As in `simulate_patch` (source images are returned by default here).
    mags
        i-band magnitudes (default: drawn from the number counts in ``mag_range``).
    is_star
        Star flags (default: drawn with ``star_fraction``).
    positions
        ``(n_sources, 2)`` explicit ``(y, x)`` pixel positions (overrides ``separations``).

    Returns
    -------
    SimulatedPatch
    """
    if isinstance(n_sources, bool) or not isinstance(n_sources, int | np.integer) or n_sources < 0:
        raise ValueError(f"n_sources must be a non-negative integer, got {n_sources!r}")
    config = SimConfig(
        shape=shape,
        bands=bands,
        density=0.0,
        seed=seed,
        depth=depth,
        star_fraction=star_fraction,
        mag_range=mag_range,
        psf_model=psf_model,
        noise=noise,
        return_source_images=return_source_images,
    )
    rng = _rng(config.seed, _STREAM_CATALOG)
    n = int(n_sources)
    h, w = config.shape
    drawn_mags, drawn_star = draw_magnitudes(rng, n, star_fraction, config.mag_range)
    mags = drawn_mags if mags is None else _vector("mags", mags, n)
    is_star = drawn_star if is_star is None else _vector("is_star", is_star, n).astype(bool)
    if np.any(~np.isfinite(mags)):
        raise ValueError("mags must be finite")
    cat = draw_properties(rng, mags, is_star)
    cat["id"] = np.arange(1, n + 1, dtype=np.int64)
    centre = np.array([(h - 1) / 2, (w - 1) / 2]) + rng.uniform(-0.5, 0.5, 2)
    if positions is not None:
        pos = np.asarray(positions, dtype=float)
        if pos.shape != (n, 2) or not np.all(np.isfinite(pos)):
            raise ValueError(f"positions must be finite with shape ({n}, 2), got {pos.shape}")
    else:
        i_band = band_parameters("i")[0]
        fwhm_px = i_band.psf_fwhm / i_band.pixel_scale
        if separations is None:
            seps = rng.uniform(1.0, 3.0, max(n - 1, 0)) * fwhm_px
        else:
            seps = _vector("separations", separations, max(n - 1, 0))
            if np.any(seps < 0) or np.any(~np.isfinite(seps)):
                raise ValueError(f"separations must be finite and >= 0, got {seps}")
        angles = rng.uniform(0, 2 * np.pi, max(n - 1, 0))
        pos = np.zeros((n, 2))
        if n:
            pos[0] = centre
            pos[1:, 0] = centre[0] + seps * np.sin(angles)
            pos[1:, 1] = centre[1] + seps * np.cos(angles)
    cat["y"] = pos[:, 0]
    cat["x"] = pos[:, 1]
    return simulate(config, catalog=cat)


def _vector(name: str, value, n: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of {n} numbers, got {value!r}") from None
    if arr.size != n:
        raise ValueError(f"{name} must have {n} entries, got {arr.size}")
    return arr
