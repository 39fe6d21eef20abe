"""`DetectionConfig`: every setting of `detect_sources`, with its default.

A config is a plain dataclass. `detect_sources` takes one (``config=``) and any of
its fields as keyword arguments, which win over the config's values; the config
used is recorded with the outputs (`DetectionConfig.to_dict`, in the catalog's
``meta`` under ``"detect_config"``) and read back with `DetectionConfig.from_dict`,
as `vermilion.pipeline.DeblendConfig` is under ``"deblend_config"``.

`DetectionConfig.resolve` turns a config into the `ResolvedDetection` of one data
set: the defaults that depend on the PSF (``peak_snr``, ``min_separation``,
``grow`` ...) and on ``crowded`` filled in, the mask planes turned into bits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from vermilion.core.masks import MASK_PLANES, mask_bits

from .maps import _FWHM_PER_SIGMA, psf_sigmas_from_images

__all__ = ["DETECT_CONFIG_KEY", "N_SIGMA_TO_GROW", "DetectionConfig", "ResolvedDetection"]

#: Key under which the config is recorded in the catalog's ``meta``.
DETECT_CONFIG_KEY = "detect_config"

#: Default growth of the threshold footprint, in units of the PSF Gaussian sigma
#: (the Rubin SourceDetectionTask's ``nSigmaToGrow``).
N_SIGMA_TO_GROW = 2.4

#: PSF FWHM (pixels) assumed when neither PSF images nor ``psf_fwhm`` are given.
DEFAULT_PSF_FWHM = 3.5


@dataclass
class DetectionConfig:
    """Settings of `vermilion.detect.detect_sources`.

    Attributes
    ----------
    thresh : float, default 5.0
        Footprint threshold on the matched-filter S/N.
    peak_snr : float or None, default None
        Minimum S/N of a peak (None: ``thresh``).
    min_separation : float or None, default None
        Minimum distance in pixels between two peaks (None: the PSF sigma, at least
        2 px).
    prominence : float, default 2.0
        Minimum prominence of a secondary peak, in S/N units (see
        `vermilion.detect.peaks._cull_peaks`).
    symmetry : float, default 5.0
        A secondary peak whose prominence is too low is still kept when its S/N
        exceeds the S/N at its mirror image through every nearby brighter peak by
        this much (a source on the wing of a brighter one).
    grow : int or None, default None
        Footprint growth in pixels (None: ``round(2.4 * psf sigma)``).
    min_area : int, default 1
        Footprints with fewer pixels above threshold are dropped.
    smooth : bool, default True
        Convolve with the PSF-sized Gaussian (matched filter) before thresholding.
    psf_fwhm : float or None, default None
        PSF FWHM in pixels, used when no PSF images are given (None: 3.5 px,
        LSST-like).
    band_peaks : bool, default True
        Also threshold and find peaks in every band's own S/N map (as the Rubin
        pipelines merge per-band detections): a band peak farther than
        ``band_peak_separation`` from every coadd peak is added. This finds sources
        of unusual colour sitting on the wings of brighter ones.
    band_peak_separation : float or None, default None
        None: ``max(min_separation, 2.5 * psf sigma)``.
    band_peak_snr : float or None, default None
        Minimum S/N of a peak in a single band's map (None: ``0.9 * peak_snr``;
        these candidates are vetted, see ``vet_snr``).
    asymmetry_snr : float or None, default 4.0
        In a footprint whose brightest peak has S/N of at least twice this, local
        maxima of the part of the S/N that is not point-symmetric about the peaks
        (S/N minus the S/N at the pixel mirrored through every peak of at least twice
        this S/N whose light reaches it, `vermilion.detect.peaks._asymmetry_peaks`)
        above this value become peaks too: faint sources on the wings of bright ones,
        which make no local maximum of their own (then vetted, see ``vet_snr``).
        None turns this off.
    crowded : bool, default False
        Defaults for crowded fields, where most sources are blended: residual peaks
        with looser cuts, vetted at a lower S/N (``residual_peaks=True,
        residual_snr=4.5, residual_verify_snr=4, vet_snr=3.4``; explicit values
        win). On `vermilion.sim` scenes at 100 sources per arcmin^2 (1024 x 1024) it
        finds 95.0% of the S/N > 10 sources at a purity of 96.6% on seeds 1-6 (93.6%
        and 98.4% without) and 95.2% / 96.8% on seeds 7-10. It splits real galaxies,
        whose light is not point-symmetric (the HSC COSMOS blend: 14 peaks for 7
        catalogued sources), hence off by default.
    residual_peaks : bool or None, default None
        None: ``crowded``. Instead of the asymmetry peaks, give every peak of a
        footprint whose brightest peak has S/N of at least twice ``residual_snr`` a
        symmetric, monotonic template (`vermilion.detect.templates`, each fitted to
        the light the others leave) and add the local maxima of what is left, on an
        S/N map smoothed with ``residual_sigma`` times the PSF sigma (sharper than the
        matched filter, so close pairs stand out), at least ``residual_snr`` there, a
        tenth to 85% of the S/N, with a matched-filter residual of
        ``residual_verify_snr`` within 1 px, farther than ``residual_separation``
        from every peak (then vetted, see ``vet_snr``). On `vermilion.sim` scenes at
        100 sources per arcmin^2 (1024 x 1024, seeds 1-6) this finds 1 point more of
        the S/N > 10 sources (0.945 instead of 0.936) at 0.2 points of purity (0.982
        instead of 0.984); on real galaxies, which are not point-symmetric, it splits
        them (the HSC COSMOS blend: 12 peaks for 7 catalogued sources: their knots
        are significant), hence off by default.
    residual_snr : float or None, default None
        None: 5.5 (4.5 with ``crowded``).
    residual_sigma : float, default 0.7
        Width of the sharper S/N map of the residual peaks, in PSF sigmas.
    residual_verify_snr : float or None, default None
        None: 5 (4 with ``crowded``).
    residual_separation : float or None, default None
        None: ``max(min_separation, 2 * psf sigma)``.
    vet_snr : float, "auto" or None, default "auto"
        Model selection for the candidates that are not culled local maxima of the
        coadd (band, asymmetry and residual peaks): such a peak is kept only if a
        point source there improves a local fit of a quadratic surface plus the
        other peaks (`vermilion.detect.vetting._psf_excess_snr`: round Gaussians at
        every peak and the symmetric profiles of the coadd peaks) at this S/N,
        combined over bands. It removes noise bumps on the wings of bright galaxies
        and second peaks on one source. ``"auto"``: 4, or 3.4 with ``crowded``. On
        `vermilion.sim` scenes at 100 sources per arcmin^2 (1024 x 1024, seeds 1-6)
        false peaks fall from 223 to 96 (purity 0.964 to 0.984) while completeness
        rises from 0.919 to 0.936 (`bench/bench_detect.py --sim --size 1024 1024
        --densities 100 --seeds 1 2 3 4 5 6`). None turns it off.
    vet_window : float, default 4.0
        Half-size of the fit window of ``vet_snr``, in units of each band's PSF sigma.
    background : "mesh", None, float or array, default "mesh"
        ``"mesh"`` (`vermilion.detect.background.estimate_background` per band),
        None (no subtraction), a number, an ``(H, W)`` or a ``(bands, H, W)`` array.
        An array is recorded by `to_dict` as the string ``"array"`` (the pixels are
        not recorded).
    background_cell : int, default 128
        Mesh cell size in pixels.
    bad_mask_bits : tuple of str (or int), default ("BAD", "SAT", "NO_DATA")
        Bits or plane names excluded from the coadd.
    mask_planes : dict or None, default None
        Plane name to bit (None: `vermilion.core.MASK_PLANES`: BAD=1, SAT=2, NO_DATA=4,
        EDGE=8). Planes EDGE and NO_DATA, when present, mark ``detect_edge``; a
        region with no data in any band because of SAT gets one central peak.
    mask_limits : dict or None, default None
        Plane name to the largest allowed fraction of footprint pixels carrying it
        (in any band); beyond that ``deblend_masked`` is set (None:
        ``{"NO_DATA": 0.25}``).
    max_peaks : int or None, default None
        Set ``deblend_tooManyPeaks`` on parents with more peaks.
    max_area : int or None, default None
        Set ``deblend_parentTooBig`` on parents with a larger footprint (pixels).
    """

    thresh: float = 5.0
    peak_snr: float | None = None
    min_separation: float | None = None
    prominence: float = 2.0
    symmetry: float = 5.0
    grow: int | None = None
    min_area: int = 1
    smooth: bool = True
    psf_fwhm: float | None = None
    band_peaks: bool = True
    band_peak_separation: float | None = None
    band_peak_snr: float | None = None
    asymmetry_snr: float | None = 4.0
    crowded: bool = False
    residual_peaks: bool | None = None
    residual_snr: float | None = None
    residual_sigma: float = 0.7
    residual_verify_snr: float | None = None
    residual_separation: float | None = None
    vet_snr: float | str | None = "auto"
    vet_window: float = 4.0
    background: Any = "mesh"
    background_cell: int = 128
    bad_mask_bits: Any = ("BAD", "SAT", "NO_DATA")
    mask_planes: Mapping[str, int] | None = None
    mask_limits: Mapping[str, float] | None = None
    max_peaks: int | None = None
    max_area: int | None = None

    def __post_init__(self) -> None:
        # lists read back from a recorded config compare equal to the tuple defaults
        if isinstance(self.bad_mask_bits, list):
            self.bad_mask_bits = tuple(self.bad_mask_bits)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError on a setting that no data could make valid."""
        thresh = self.thresh
        if not (np.isfinite(thresh) and thresh > 0):
            raise ValueError(f"thresh must be a positive number, got {thresh}")
        if self.psf_fwhm is not None:
            fwhm = float(self.psf_fwhm)
            if not (np.isfinite(fwhm) and fwhm > 0):
                raise ValueError(f"psf_fwhm must be a positive number, got {self.psf_fwhm}")
        if self.grow is not None and int(self.grow) < 0:
            raise ValueError(f"grow must be >= 0, got {int(self.grow)}")
        vet_snr = self.resolved_vet_snr
        if vet_snr is not None and not (np.isfinite(vet_snr) and self.vet_window > 0):
            raise ValueError(
                f"vet_snr must be finite and vet_window > 0, got {vet_snr}, {self.vet_window}"
            )

    @property
    def resolved_vet_snr(self) -> float | None:
        """``vet_snr`` with ``"auto"`` resolved (4, or 3.4 with ``crowded``)."""
        vet_snr = self.vet_snr
        if isinstance(vet_snr, str):
            if vet_snr != "auto":
                raise ValueError(f"vet_snr must be a number, None or 'auto', got {vet_snr!r}")
            vet_snr = 3.4 if self.crowded else 4.0
        return vet_snr

    # -- conversions --------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the settings, in field order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def coerce(cls, config: DetectionConfig | Mapping[str, Any] | None) -> DetectionConfig:
        """A config given as itself, None (the defaults) or a mapping of fields."""
        if config is None:
            return cls()
        if isinstance(config, DetectionConfig):
            return config
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        raise TypeError(f"config must be a DetectionConfig, a mapping or None, got {config!r}")

    def override(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> DetectionConfig:
        """A copy with some fields changed; unknown names raise ValueError."""
        changes = {**(values or {}), **kwargs}
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(
                f"Unknown DetectionConfig field(s) {unknown}; the fields are "
                f"{sorted(self.field_names())}"
            )
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible values (tuples as lists), in field order."""
        out = {}
        for name in self.field_names():
            value = getattr(self, name)
            if name == "background" and isinstance(value, np.ndarray) and value.ndim > 0:
                value = "array"
            out[name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DetectionConfig:
        """Build from a mapping (e.g. ``catalog.meta["detect_config"]``); unknown keys
        raise ValueError naming them."""
        return cls().override(dict(values))

    # -- one data set -------------------------------------------------------------
    def resolve(self, n_bands: int, psfs=None) -> ResolvedDetection:
        """The settings for ``n_bands`` bands with these PSF images (or ``psf_fwhm``).

        Raises
        ------
        ValueError
            On unknown mask planes, or PSF images that do not fit the bands.
        """
        planes = dict(MASK_PLANES if self.mask_planes is None else self.mask_planes)
        limits = {"NO_DATA": 0.25} if self.mask_limits is None else dict(self.mask_limits)
        for name in limits:
            mask_bits(name, planes)
        bad = mask_bits(self.bad_mask_bits, planes)
        band_sigmas = None
        if psfs is not None:
            band_sigmas = psf_sigmas_from_images(psfs)
            if len(band_sigmas) not in (1, n_bands):
                raise ValueError(f"{len(band_sigmas)} PSF images for {n_bands} bands")
            band_sigmas = np.broadcast_to(band_sigmas, (n_bands,))
            sigma = float(np.mean(band_sigmas))
        else:
            fwhm = DEFAULT_PSF_FWHM if self.psf_fwhm is None else float(self.psf_fwhm)
            sigma = fwhm / _FWHM_PER_SIGMA
        thresh = self.thresh
        peak_snr = thresh if self.peak_snr is None else float(self.peak_snr)
        min_sep = max(2.0, sigma) if self.min_separation is None else float(self.min_separation)
        band_sep = self.band_peak_separation
        if band_sep is None:
            band_sep = max(min_sep, 2.5 * sigma)
        resid_sep = self.residual_separation
        if resid_sep is None:
            resid_sep = max(min_sep, 2.0 * sigma)
        crowded = self.crowded
        return ResolvedDetection(
            config=self,
            planes=planes,
            mask_limits=limits,
            bad=bad,
            edge_bits=mask_bits([p for p in ("EDGE", "NO_DATA") if p in planes], planes),
            limit_bits={name: mask_bits(name, planes) for name in limits},
            sigma=sigma,
            smooth_sigma=sigma if self.smooth else 0.0,
            band_sigmas=band_sigmas,
            vet_sigmas=band_sigmas if band_sigmas is not None else np.full(n_bands, sigma),
            use_bands=self.band_peaks and n_bands > 1,
            thresh=thresh,
            peak_snr=peak_snr,
            band_peak_snr=0.9 * peak_snr
            if self.band_peak_snr is None
            else float(self.band_peak_snr),
            min_separation=min_sep,
            band_sep2=float(band_sep) ** 2,
            grow=int(np.rint(N_SIGMA_TO_GROW * sigma)) if self.grow is None else int(self.grow),
            residual_peaks=bool(crowded) if self.residual_peaks is None else self.residual_peaks,
            residual_snr=(4.5 if crowded else 5.5)
            if self.residual_snr is None
            else self.residual_snr,
            residual_verify_snr=(4.0 if crowded else 5.0)
            if self.residual_verify_snr is None
            else self.residual_verify_snr,
            resid_sep2=float(resid_sep) ** 2,
            vet_snr=self.resolved_vet_snr,
        )


@dataclass(frozen=True)
class ResolvedDetection:
    """A `DetectionConfig` resolved for one data set (`DetectionConfig.resolve`).

    The settings that need no resolving are read from ``config``; the rest are
    attributes here (``band_sep2`` and ``resid_sep2`` are squared distances).
    """

    config: DetectionConfig
    planes: dict[str, int]
    mask_limits: dict[str, float]
    bad: int
    edge_bits: int
    limit_bits: dict[str, int]
    sigma: float
    smooth_sigma: float
    band_sigmas: np.ndarray | None
    vet_sigmas: np.ndarray
    use_bands: bool
    thresh: float
    peak_snr: float
    band_peak_snr: float
    min_separation: float
    band_sep2: float
    grow: int
    residual_peaks: bool
    residual_snr: float
    residual_verify_snr: float
    resid_sep2: float
    vet_snr: float | None


def _plain(value: Any) -> Any:
    """``value`` as JSON-compatible Python (numpy scalars as numbers, tuples as lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
