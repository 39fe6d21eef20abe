"""Initial source models from a chi^2 detection image, and ready parameterizations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from .background import BackgroundComponent
from .bbox import Box
from .blend import Blend
from .component import Component, CubeComponent, FactorizedComponent
from .observation import Observation
from .operators import DEFAULT_MONOTONIC_SLACK, checked_slack, find_peak, prox_monotonic
from .parameters import AdaproxParameter, FistaParameter, relative_step
from .source import Source

#: Peaks below this detection S/N (deconvolved detection image) start as compact sources.
#: bench/bench_accuracy.py (tuning seeds, S/N > 10): 50 (the Rubin default) gives median
#: |re-apportioned flux error| 0.134 (vermilion.sim) and 0.160 (GalSim scenes), 10 gives
#: 0.094 and 0.133 (5: 0.096 / 0.133; 20: 0.110 / 0.148): a source of S/N 10-50 fits its
#: own light far better from its symmetric image than from the model PSF.
DEFAULT_MIN_SNR = 10.0
#: Peaks below this S/N (those the Rubin engine starts compact) start extended only within
#: ``DEFAULT_FAINT_RADIUS`` pixels of the peak. bench/bench_accuracy.py (tuning seeds, S/N > 10,
#: mean |re-apportioned flux error| per source): no radius 0.358 (GalSim) and 0.166 (sim),
#: 8 px 0.325 and 0.156 (6 px: 0.321 / 0.179; 10 px: 0.344 / 0.155); the faint source
#: otherwise starts as a plateau over a brighter neighbour's wing and takes its flux.
DEFAULT_FAINT_SNR = 50.0
DEFAULT_FAINT_RADIUS = 8.0
#: A bright source's two components split its initial morphology at this fraction of
#: its peak. Median |re-apportioned flux error| at S/N > 10, GalSim scenes 1000-1199 /
#: vermilion.sim blends of seed 3000 (bench/bench_accuracy.py's families, seeds outside its
#: sets), with the sub-pixel symmetric start: 0.5 (the Rubin engine's) 0.100 / 0.089, 0.3
#: 0.088 / 0.085, 0.2 0.081 / 0.078, 0.1 0.079 / 0.078. The "disk" holding only the outer
#: fifth leaves the core's shape to the "bulge".
DEFAULT_BULGE_FRACTION = 0.2

__all__ = [
    "DEFAULT_BULGE_FRACTION",
    "DEFAULT_FAINT_RADIUS",
    "DEFAULT_FAINT_SNR",
    "DEFAULT_MIN_SNR",
    "Chi2InitParameters",
    "chi2_detection_image",
    "deconvolved_detection_image",
    "init_adaprox_component",
    "init_all_sources",
    "init_compact_source",
    "init_fista_component",
    "init_main_source",
    "parameterize_sources",
    "restore_tendril_pruning",
    "symmetric_morphology",
]


def chi2_detection_image(observation: Observation) -> np.ndarray:
    """The inverse-variance weighted coadd of all bands, in units of its own noise.

    ``sum_b image_b / rms_b^2 / sqrt(sum_b 1 / rms_b^2)``: a pixel's value is its
    signal-to-noise ratio for a flat spectrum. Pixels of zero weight count as 0.

    Parameters
    ----------
    observation
        An observation with image data.

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` float32.
    """
    rms = np.asarray(observation.noise_rms, dtype=np.float64)
    inv = np.where(np.isfinite(rms) & (rms > 0), 1 / rms**2, 0)
    if not np.any(inv):
        raise ValueError("No band has a finite positive noise: cannot build a detection image")
    images = np.where(observation._weights > 0, observation._images, 0)
    detect = np.tensordot(inv, images, axes=1) / np.sqrt(inv.sum())
    return detect.astype(np.float32)


def deconvolved_detection_image(
    observation: Observation, regularization: float = 0.01
) -> np.ndarray:
    """A chi^2 detection image in model space (narrow model PSF), in units of its noise.

    Every band is deconvolved by its difference kernel with a Wiener filter
    ``conj(K) / (|K|^2 + regularization)``, then the bands are coadded with
    inverse-variance weights; the result is divided by its (analytic) noise.
    Initial morphologies cut from it are not convolved twice, so the fit starts
    much closer to the solution than from the observed-seeing detection image.

    Parameters
    ----------
    observation
        An observation with image data.
    regularization
        Wiener regularization, relative to ``|K|^2``.

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` float32.
    """
    from scipy import fft

    rms = np.asarray(observation.noise_rms, dtype=np.float64)
    inv = np.where(np.isfinite(rms) & (rms > 0), 1 / rms**2, 0)
    if not np.any(inv):
        raise ValueError("No band has a finite positive noise: cannot build a detection image")
    images = np.where(observation._weights > 0, observation._images, 0)
    h, w = images.shape[-2:]
    fshape, kf, kf_conj = observation.diff_kernel._transforms((h, w))
    wiener = kf_conj / (np.abs(kf) ** 2 + regularization)
    deconvolved = fft.irfft2(fft.rfft2(images, s=fshape, workers=1) * wiener, s=fshape, workers=1)[
        :, :h, :w
    ]
    gain = np.sqrt(np.sum(fft.irfft2(wiener, s=fshape, workers=1) ** 2, axis=(1, 2)))
    noise = np.sqrt(np.sum(gain**2 * inv))
    return (np.tensordot(inv, deconvolved, axes=1) / noise).astype(np.float32)


class Chi2InitParameters:
    """What is needed to initialize sources on an observation.

    Parameters
    ----------
    observation
        The observation the sources are fit to.
    centers
        Optional ``(y, x)`` peaks (absolute), used by `init_all_sources`.
    detect
        Detection image in the observed seeing, in S/N units (default:
        `chi2_detection_image`).
    morph_detect
        Image the morphologies are cut from, in S/N units (default:
        `deconvolved_detection_image`; pass ``detect`` to use the observed seeing);
        its value at a peak decides between a compact and an extended source.
    peak_radius
        A source starts at the brightest pixel of ``morph_detect`` within this many
        pixels of its given peak (0: exactly at the given peak).
    symmetric
        Make the initial morphology symmetric (pixel-wise minimum with its 180-degree
        rotation), which removes most of the neighbours' light from it. The centre of
        the rotation is the light's sub-pixel maximum near the peak pixel
        (`symmetric_morphology`).
    core_radius
        Pixels within this distance of that centre keep their observed values: a
        neighbour's light cannot reach that close without making its own peak, and
        the core's real asymmetry is what the fit would otherwise spend its first
        iterations restoring.
    monotonic_slack
        Strictness of the monotonicity of the sources this initializes (see
        `prox_monotonic`).
    min_snr
        Peaks below this detection S/N start as compact (model-PSF) sources.
    thresh
        Morphologies are cut where the detection image falls below this S/N.
    max_components
        1, or 2 to model bright sources as a compact "bulge" and an extended "disk".
    bulge_fraction
        With two components, the morphology is split at this fraction of its peak:
        the "bulge" holds what lies above, the "disk" the rest
        (`DEFAULT_BULGE_FRACTION`).
    padding
        Pixels kept around the initial morphology.
    faint_snr, faint_radius
        Peaks of detection S/N between ``min_snr`` and ``faint_snr`` start extended, but
        cut to the disk of radius ``faint_radius`` pixels about the peak (0: no cut).
    prune_faint
        Sources below ``faint_snr`` (and compact ones) drop their tendrils at every
        proximal step (`FactorizedComponent.prune_thin`).
    """

    def __init__(
        self,
        observation: Observation,
        centers: Sequence[tuple[int, int]] | None = None,
        detect: np.ndarray | None = None,
        min_snr: float = DEFAULT_MIN_SNR,
        thresh: float = 1.0,
        max_components: int = 2,
        bulge_fraction: float = DEFAULT_BULGE_FRACTION,
        padding: int = 2,
        bg_thresh: float = 0.25,
        morph_detect: np.ndarray | None = None,
        peak_radius: int = 0,
        symmetric: bool = True,
        core_radius: float = 1.5,
        monotonic_slack: float = DEFAULT_MONOTONIC_SLACK,
        faint_snr: float = DEFAULT_FAINT_SNR,
        faint_radius: float = DEFAULT_FAINT_RADIUS,
        prune_faint: bool = True,
    ) -> None:
        if not getattr(observation, "has_data", True):
            raise ValueError("Cannot initialize sources on an observation without image data")
        if max_components not in (1, 2):
            raise ValueError(f"max_components must be 1 or 2, got {max_components}")
        self.observation = observation
        self.centers = None if centers is None else [_as_pixel(c) for c in centers]
        if detect is None:
            detect = chi2_detection_image(observation)
        elif detect.shape != observation.bbox.shape:
            raise ValueError(f"detect shape {detect.shape} differs from {observation.bbox.shape}")
        self.detect = np.asarray(detect, dtype=np.float32)
        if morph_detect is None:
            morph_detect = deconvolved_detection_image(observation)
        elif morph_detect.shape != observation.bbox.shape:
            raise ValueError(
                f"morph_detect shape {morph_detect.shape} differs from {observation.bbox.shape}"
            )
        self.morph_detect = np.asarray(morph_detect, dtype=np.float32)
        self.min_snr = min_snr
        self.thresh = thresh
        self.max_components = max_components
        self.bulge_fraction = bulge_fraction
        self.padding = padding
        self.bg_thresh = bg_thresh
        self.peak_radius = peak_radius
        self.symmetric = symmetric
        self.core_radius = float(core_radius)
        self.monotonic_slack = checked_slack(monotonic_slack)
        self.faint_snr = float(faint_snr)
        self.faint_radius = float(faint_radius)
        self.prune_faint = bool(prune_faint)


def _as_pixel(center) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in center)
    except (TypeError, ValueError):
        raise ValueError(f"peak {center!r} is not a (y, x) pixel position") from None


def _check_center(center, bbox: Box) -> tuple[int, int]:
    try:
        cy, cx = (round(float(v)) for v in center)
    except (TypeError, ValueError):
        raise ValueError(f"peak {center!r} is not a (y, x) pixel position") from None
    if not bbox.contains((cy, cx)):
        raise ValueError(f"peak (y, x)={center} lies outside the observation box {bbox}")
    return cy, cx


def _peak_spectrum(
    observation: Observation, morph: np.ndarray, box: Box, center: tuple[int, int]
) -> np.ndarray:
    """Spectrum that makes the convolved morphology match the data at the peak."""
    kernels = observation.diff_kernel.kernels
    ry, rx = observation.diff_kernel.radius
    window = Box((2 * ry + 1, 2 * rx + 1), (center[0] - ry, center[1] - rx))
    plane = np.zeros(window.shape, dtype=np.float32)
    s_win, s_box = window.overlapped_slices(box)
    plane[s_win] = morph[s_box]
    # (k * m)(center) = sum_d k(d) m(center - d): the flipped window against the kernel
    rendered_peak = np.einsum("bhw,hw->b", kernels, plane[::-1, ::-1])
    oy, ox = observation.bbox.origin
    observed = observation._images[:, center[0] - oy, center[1] - ox]
    with np.errstate(divide="ignore", invalid="ignore"):
        spectrum = np.where(rendered_peak > 0, observed / rendered_peak, 0)
    return np.maximum(spectrum, 1e-20).astype(np.float32)


def _subpixel_offset(image: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """Offset in [-0.5, 0.5] per axis of the light's maximum from pixel (y, x).

    The vertex of a parabola through the pixel and its two neighbours along each
    axis; 0 where the pixel is on an edge or the parabola does not curve down.
    """
    out = []
    for axis, c in ((0, y), (1, x)):
        if not 0 < c < image.shape[axis] - 1:
            out.append(0.0)
            continue
        line = image[c - 1 : c + 2, x] if axis == 0 else image[y, c - 1 : c + 2]
        lo_v, mid, hi_v = (float(v) for v in line)
        curve = lo_v - 2 * mid + hi_v
        offset = 0.5 * (lo_v - hi_v) / curve if curve < 0 else 0.0
        out.append(float(np.clip(offset, -0.5, 0.5)))
    return out[0], out[1]


def _shift_linear(image: np.ndarray, shift: float, axis: int) -> np.ndarray:
    """``out(x) = image(x - shift)`` along ``axis``, linearly interpolated, 0 outside."""
    whole = int(np.floor(shift))
    frac = shift - whole
    out = np.zeros_like(image)
    for step, weight in ((whole, 1 - frac), (whole + 1, frac)):
        n = image.shape[axis]
        if weight == 0 or abs(step) >= n:
            continue
        src = [slice(None)] * image.ndim
        dst = [slice(None)] * image.ndim
        src[axis] = slice(max(0, -step), n - max(0, step))
        dst[axis] = slice(max(0, step), n - max(0, -step))
        out[tuple(dst)] += weight * image[tuple(src)]
    return out


def symmetric_morphology(image: np.ndarray, y: int, x: int, core_radius: float) -> np.ndarray:
    """``image`` made symmetric about the light's sub-pixel centre near pixel (y, x).

    Each pixel takes the minimum of its value and the value at its mirror image
    through the centre (linearly interpolated): a neighbour's light is removed
    unless light sits on the opposite side too. The centre is the peak pixel moved by
    `_subpixel_offset` (at most half a pixel per axis); pixels within ``core_radius``
    of it keep their values. Only the largest window about the peak whose mirror lies
    in the image is changed.

    Parameters
    ----------
    image
        2-d image (not changed).
    y, x
        The peak pixel.
    core_radius
        Radius of the core kept as observed (0: none).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.
    """
    h, w = image.shape
    dy, dx = _subpixel_offset(image, y, x)
    ry, rx = min(y, h - 1 - y), min(x, w - 1 - x)
    window = (slice(y - ry, y + ry + 1), slice(x - rx, x + rx + 1))
    region = image[window].astype(np.float64)
    # the mirror through (y + dy, x + dx) is the flip about (y, x) moved by 2 (dy, dx)
    mirror = _shift_linear(_shift_linear(region[::-1, ::-1], 2 * dy, 0), 2 * dx, 1)
    symmetric = np.minimum(region, mirror)
    if core_radius > 0:
        yy, xx = np.indices(region.shape)
        core = np.hypot(yy - ry - dy, xx - rx - dx) <= core_radius
        symmetric[core] = region[core]
    out = image.copy()
    out[window] = symmetric
    return out


def init_compact_source(center: tuple[int, int], init: Chi2InitParameters) -> Source:
    """A source whose morphology is the model PSF centred on ``center``.

    Parameters
    ----------
    center
        Absolute ``(y, x)`` of the source.
    init
        The initialization context (observation, detection image, thresholds).

    Returns
    -------
    Source
        A source of one factorized component.
    """
    obs = init.observation
    cy, cx = _check_center(center, obs.bbox)
    psf = obs.model_psf
    hy, hx = psf.shape[0] // 2, psf.shape[1] // 2
    full = Box(psf.shape, (cy - hy, cx - hx))
    box = full & obs.bbox
    morph = psf[box.slices_in(full)].copy()
    morph /= morph.max()
    spectrum = _peak_spectrum(obs, morph, box, (cy, cx))
    comp = FactorizedComponent(
        obs.bands,
        spectrum,
        morph,
        box,
        (cy, cx),
        bg_rms=obs.noise_rms,
        bg_thresh=init.bg_thresh,
        monotonic_slack=init.monotonic_slack,
        prune_thin=init.prune_faint,
    )
    return Source([comp], {"peak": (cy, cx)})


def init_main_source(center: tuple[int, int], init: Chi2InitParameters) -> Source:
    """Initialize one source at pixel ``center`` (absolute ``(y, x)``).

    The morphology is the detection image made symmetric about the peak
    (pixel-wise minimum with its 180-degree rotation), projected to be monotonic,
    cut at ``init.thresh`` and trimmed to a box. Peaks fainter than
    ``init.min_snr`` start as compact sources; with ``init.max_components == 2``
    bright sources get a bulge and a disk component.

    Parameters
    ----------
    center
        Absolute ``(y, x)`` of the peak.
    init
        The initialization context (observation, detection image, thresholds).

    Returns
    -------
    Source
        The source (null when the peak is too faint).
    """
    obs = init.observation
    cy, cx = _check_center(center, obs.bbox)
    oy, ox = obs.bbox.origin
    # Catalogue peaks can sit a pixel off the light's maximum; a morphology forced to be
    # monotonic about the wrong pixel cannot fit the core, so start at the local maximum.
    ly, lx = find_peak(init.morph_detect, (cy - oy, cx - ox), init.peak_radius)
    cy, cx = ly + oy, lx + ox
    snr = float(init.morph_detect[ly, lx])
    if snr < init.min_snr or snr <= init.thresh:
        return init_compact_source((cy, cx), init)
    h, w = init.morph_detect.shape
    morph = init.morph_detect.copy()
    if init.symmetric:
        morph = symmetric_morphology(morph, ly, lx, init.core_radius)
    morph = prox_monotonic(morph, (ly, lx))
    morph[morph < init.thresh] = 0
    if snr < init.faint_snr and init.faint_radius > 0:
        # a faint peak's monotonic morphology spreads over its neighbours' wings (the
        # symmetry cannot remove neighbours on both sides): start it within a disk
        yy, xx = np.indices(morph.shape)
        morph[np.hypot(yy - ly, xx - lx) > init.faint_radius] = 0
    local = Box.from_data(morph, 0)
    if local.is_empty:
        return init_compact_source((cy, cx), init)
    local = (local.grow(init.padding) & Box((h, w))) | Box((1, 1), (ly, lx))
    morph = morph[local.slices]
    morph /= morph.max()
    box = local.shifted_by(obs.bbox.origin)
    spectrum = _peak_spectrum(obs, morph, box, (cy, cx))
    kwargs = {
        "bg_rms": obs.noise_rms,
        "bg_thresh": init.bg_thresh,
        "monotonic_slack": init.monotonic_slack,
        "prune_thin": init.prune_faint and snr < init.faint_snr,
    }
    if init.max_components == 1:
        comps = [FactorizedComponent(obs.bands, spectrum, morph, box, (cy, cx), **kwargs)]
    else:
        f = init.bulge_fraction
        bulge = np.maximum(morph - f, 0) / (1 - f)
        disk = np.minimum(morph, f) / f
        bulge_box = Box.from_data(bulge, 0).shifted_by(box.origin) | Box((1, 1), (cy, cx))
        bulge = bulge[bulge_box.slices_in(box)]
        bulge[cy - bulge_box.origin[0], cx - bulge_box.origin[1]] = 1
        comps = [
            FactorizedComponent(
                obs.bands, spectrum * (1 - f), bulge, bulge_box, (cy, cx), **kwargs
            ),
            FactorizedComponent(obs.bands, spectrum * f, disk, box, (cy, cx), **kwargs),
        ]
    return Source(comps, {"peak": (cy, cx)})


def init_all_sources(
    observation: Observation,
    centers: Sequence[tuple[int, int]],
    detect: np.ndarray | None = None,
    min_snr: float = DEFAULT_MIN_SNR,
    thresh: float = 1.0,
    max_components: int = 2,
    bg_thresh: float = 0.25,
    fit_spectra: bool = True,
    clip: bool = True,
    monotonic_slack: float = DEFAULT_MONOTONIC_SLACK,
    bulge_fraction: float = DEFAULT_BULGE_FRACTION,
) -> list[Source]:
    """Initialize one source per center and fit all spectra at once.

    Parameters
    ----------
    observation
        The observation.
    centers
        ``(y, x)`` absolute peak positions.
    detect, min_snr, thresh, max_components, bg_thresh, monotonic_slack, bulge_fraction
        See `Chi2InitParameters`.
    fit_spectra
        Solve the spectra of all components jointly by least squares afterwards.
    clip
        Floor negative fitted spectra.

    Returns
    -------
    sources : list of `Source`
    """
    init = Chi2InitParameters(
        observation,
        centers,
        detect,
        min_snr=min_snr,
        thresh=thresh,
        max_components=max_components,
        bg_thresh=bg_thresh,
        monotonic_slack=monotonic_slack,
        bulge_fraction=bulge_fraction,
    )
    sources = [init_main_source(c, init) for c in init.centers]
    if fit_spectra and sources:
        Blend(sources, observation).fit_spectra(clip=clip)
    return sources


# ---- parameterizations ----------------------------------------------------------------


def init_adaprox_component(
    component: Component,
    observation: Observation,
    bg_thresh: float | None = None,
    max_prox_iter: int = 1,
    scheme: str = "amsgrad",
    morph_step: float = 1e-2,
    spectrum_factor: float = 1e-2,
    noise_factor: float = 0.1,
    first_step_damping: float = 10.0,
    monotonic_slack: float | None = None,
    background_factor: float = 0.02,
) -> Component:
    """Give a component proximal-ADAM parameters (the Rubin pipelines' steps).

    The spectrum's step is ``max(spectrum_factor * mean(spectrum), noise_factor *
    noise_rms)``; the morphology's a fixed ``morph_step`` (it is normalised to a
    maximum of 1). ``bg_thresh`` and ``monotonic_slack``, when given, replace the
    component's own. The level of a `BackgroundComponent` steps by
    ``background_factor * noise_rms`` (no proximal operator: it may be negative). Use
    with `functools.partial` to set the keywords.

    Parameters
    ----------
    component
        The component to parameterize.
    observation
        The blend's observation (noise and weights).
    bg_thresh
        Sparsity threshold in units of the background noise (None: keep the component's).
    max_prox_iter
        Proximal iterations per step.
    scheme
        The ADAM variant (see `ADAPROX_SCHEMES`).
    morph_step
        Step of the morphology.
    spectrum_factor
        Step of the spectrum relative to its mean.
    noise_factor
        Smallest step of the spectrum relative to the noise.
    first_step_damping
        The first step is divided by this.
    monotonic_slack
        Monotonicity slack in [0, 1] (None: keep the component's).
    background_factor
        Step of a background level relative to the noise.

    Returns
    -------
    Component
        The same component, parameterized.
    """
    if isinstance(component, BackgroundComponent):
        component._level = AdaproxParameter(
            component.level.astype(np.float32),
            step=background_factor * np.asarray(observation.noise_rms, dtype=np.float32),
            scheme=scheme,
            max_prox_iter=max_prox_iter,
            first_step_damping=first_step_damping,
        )
    elif isinstance(component, FactorizedComponent):
        if bg_thresh is not None:
            component.bg_thresh = bg_thresh
        if monotonic_slack is not None:
            component.monotonic_slack = checked_slack(monotonic_slack)
        if getattr(observation, "has_data", True):
            component.bg_rms = np.asarray(observation.noise_rms, dtype=np.float32)
        component._spectrum = AdaproxParameter(
            component.spectrum.astype(np.float32),
            step=partial(
                relative_step,
                factor=spectrum_factor,
                minimum=noise_factor * np.asarray(observation.noise_rms),
            ),
            prox=component.prox_spectrum,
            scheme=scheme,
            max_prox_iter=max_prox_iter,
            first_step_damping=first_step_damping,
        )
        component._morph = AdaproxParameter(
            component.morph.astype(np.float32),
            step=morph_step,
            prox=component.prox_morph,
            scheme=scheme,
            max_prox_iter=max_prox_iter,
            first_step_damping=first_step_damping,
        )
    elif isinstance(component, CubeComponent):
        component._model = AdaproxParameter(
            component.model.astype(np.float32),
            step=partial(relative_step, factor=spectrum_factor),
            prox=component.prox_model,
            scheme=scheme,
            max_prox_iter=max_prox_iter,
        )
    return component


def init_fista_component(
    component: Component,
    observation: Observation,
    bg_thresh: float | None = None,
) -> Component:
    """Give a component FISTA parameters with steps from the Lipschitz bound of each factor.

    For the spectrum, ``1 / (max(w) * sum(morph^2))``; for the morphology,
    ``1 / (max(w) * sum(spectrum^2))``, where ``w`` are the weights in the
    component's box. The level of a `BackgroundComponent` steps by ``0.25 / sum(w)``
    over the blend box per band.

    Parameters
    ----------
    component
        The component to parameterize (factorized).
    observation
        The blend's observation (weights).
    bg_thresh
        Sparsity threshold in units of the background noise (None: keep the component's).

    Returns
    -------
    Component
        The same component, parameterized.
    """
    if isinstance(component, BackgroundComponent):
        # 1 / sum(w) solves the level alone in one step; updated together with the
        # sources (FISTA's momentum included) it overshoots and diverges: a quarter of it
        total = np.sum(observation._weights, axis=(1, 2), dtype=np.float64)
        step = np.where(total > 0, 0.25 / np.where(total > 0, total, 1), 0).astype(np.float32)
        component._level = FistaParameter(component.level.astype(np.float32), step)
        return component
    if not isinstance(component, FactorizedComponent):
        return component
    if bg_thresh is not None:
        component.bg_thresh = bg_thresh
    component.bg_rms = np.asarray(observation.noise_rms, dtype=np.float32)
    box = component.bbox & observation.bbox
    w = observation._weights[(slice(None), *box.slices_in(observation.bbox))]
    w_max = float(w.max()) if w.size and w.max() > 0 else 1.0

    def spectrum_step(_x, comp=component):
        return 1 / (w_max * max(float(np.sum(comp.morph**2)), 1e-20))

    def morph_step(_x, comp=component):
        return 1 / (w_max * max(float(np.sum(comp.spectrum**2)), 1e-20))

    component._spectrum = FistaParameter(
        component.spectrum.astype(np.float32), spectrum_step, prox=component.prox_spectrum
    )
    component._morph = FistaParameter(
        component.morph.astype(np.float32), morph_step, prox=component.prox_morph
    )
    return component


def restore_tendril_pruning(
    sources: Sequence[Source],
    observation: Observation,
    faint_snr: float = DEFAULT_FAINT_SNR,
    min_snr: float = DEFAULT_MIN_SNR,
) -> list[Source]:
    """Give rebuilt sources the tendril pruning their initialization gave them.

    A stored model does not keep `FactorizedComponent.prune_thin`; this applies the rule
    of `init_main_source` again on the observation: a component prunes its tendrils when
    the deconvolved detection image at its peak is below ``faint_snr`` (a faint source)
    or below ``min_snr`` (a compact one); every other factorized component does not.

    Parameters
    ----------
    sources
        Sources rebuilt on ``observation``; a source added since (by `init_main_source`
        on the same observation) gets the flag it already has.
    observation
        The observation, with image data.
    faint_snr, min_snr
        As `Chi2InitParameters`.

    Returns
    -------
    list of Source
        The same sources.
    """
    detect = deconvolved_detection_image(observation)
    limit = max(float(faint_snr), float(min_snr))
    oy, ox = observation.bbox.origin
    h, w = detect.shape
    for source in sources:
        for component in source.components:
            if not isinstance(component, FactorizedComponent):
                continue
            y, x = component.peak[0] - oy, component.peak[1] - ox
            if 0 <= y < h and 0 <= x < w:
                component.prune_thin = bool(detect[y, x] < limit)
    return list(sources)


def parameterize_sources(
    sources: Sequence[Source],
    observation: Observation,
    parameterization: Callable[[Component, Observation], Component],
) -> list[Source]:
    """Apply ``parameterization(component, observation)`` to every component of every source.

    Parameters
    ----------
    sources
        The sources.
    observation
        Their observation.
    parameterization
        E.g. `init_adaprox_component`.

    Returns
    -------
    list of Source
        The same sources.
    """
    for source in sources:
        source.components = [parameterization(c, observation) or c for c in source.components]
    return list(sources)
