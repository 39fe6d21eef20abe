"""The measured columns of a deblended catalog: errors, centroids, sky positions, moments.

`measure_blend` runs in the worker on each fitted blend (numpy and `vermilion.core`
only); `MeasuredColumns` gathers its results into the catalog; `add_sky_coordinates`
turns centroids into ``coord_ra`` / ``coord_dec`` with the exposure's WCS. Pixel
positions are in the catalog's pixel frame, that of ``peak_x`` / ``peak_y`` (the
exposure's ``bbox``: tract pixels for a repository patch, array indices for arrays
whose first pixel is ``(0, 0)``); pixel centres are integers.

Each child ``k`` of a blend is measured on its re-apportioned image
``F_k = r_k I`` (``r_k = |M_k| / sum_j |M_j|``, the share of the observed image
``I`` that `vermilion.core.weight_sources` gives it, ``M_k`` its model rendered in
the observed PSF):

==========================================  =====================================================
``flux_err_<band>``                         ``sqrt(sum_p r_k^2 var_p)``: error of
                                            ``deblend_reapportionedFlux_<band>`` from the variance
``centroid_x``, ``centroid_y``              first moment of ``F_k``, all bands together, weighted
                                            by ``M_k / var`` then iterated with a round Gaussian
                                            of the width of ``M_k`` (times ``1 / var``) centred on
                                            the last estimate (`weighted_centroid`)
``centroid_x_err``, ``centroid_y_err``      its error, propagated from the variance
``coord_ra``, ``coord_dec``                 the centroid through the WCS (degrees, ICRS)
``model_xx``, ``model_yy``, ``model_xy``    second central moments of the model in the model
                                            PSF (all bands summed)
``image_xx``, ``image_yy``, ``image_xy``    unweighted second moments of ``F_k`` (all bands
                                            summed) about the centroid; noisy for faint sources
``blendedness``                             ``1 - sum(M_k^2) / sum(M_k M_all)`` over all bands
==========================================  =====================================================

A parent gets the same centroid measured on its observed image weighted by the sum
of its children's rendered models, and its sky position. An isolated parent kept
without a model (``processSingles=False``) and its child are measured on the image
inside the footprint with inverse-variance weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vermilion.core.measure import blendedness

__all__ = [
    "DEFAULT_FLUX_UNIT",
    "BlendMeasures",
    "MeasuredColumns",
    "add_sky_coordinates",
    "ensure_measured_columns",
    "measure_blend",
    "measure_image",
    "measured_column_specs",
    "second_moments",
    "set_parent_centroid",
    "weighted_centroid",
]

#: Unit of the flux columns when the exposure does not say (``flux_unit``): Rubin coadds
#: and `vermilion.sim` patches are in nJy.
DEFAULT_FLUX_UNIT = "nJy"

_CENTROID = ("centroid_x", "centroid_y", "centroid_x_err", "centroid_y_err")
_MODEL_MOMENTS = ("model_xx", "model_yy", "model_xy")
_IMAGE_MOMENTS = ("image_xx", "image_yy", "image_xy")


def measured_column_specs(bands: Sequence[str], flux_unit: str) -> list[tuple[str, str, str]]:
    """``(name, unit, description)`` of every measured column (all float64)."""
    frame = "catalog pixel frame (as peak_x/peak_y)"
    specs = [
        ("centroid_x", "pix", f"x centroid, {frame}; Gaussian-weighted first moment"),
        ("centroid_y", "pix", f"y centroid, {frame}; Gaussian-weighted first moment"),
        ("centroid_x_err", "pix", "error of centroid_x, from the variance"),
        ("centroid_y_err", "pix", "error of centroid_y, from the variance"),
        ("coord_ra", "deg", "right ascension of the centroid (ICRS, from the WCS)"),
        ("coord_dec", "deg", "declination of the centroid (ICRS, from the WCS)"),
    ]
    for band in bands:
        specs.append(
            (
                f"flux_err_{band}",
                flux_unit,
                f"error of deblend_reapportionedFlux_{band}: sqrt(sum share^2 variance)",
            )
        )
    for name, axes in zip(_MODEL_MOMENTS, ("x x", "y y", "x y")):
        specs.append((name, "pix2", f"second moment <{axes}> of the model in the model PSF"))
    for name, axes in zip(_IMAGE_MOMENTS, ("x x", "y y", "x y")):
        specs.append(
            (name, "pix2", f"second moment <{axes}> of the re-apportioned image (unweighted)")
        )
    specs.append(
        ("blendedness", "", "1 - sum(M_k^2) / sum(M_k M_all) of the rendered models, all bands")
    )
    return specs


@dataclass
class BlendMeasures:
    """What `measure_blend` returns for the sources of one blend (in the order of its peaks)."""

    flux_err: np.ndarray  # (n, bands)
    centroid: np.ndarray  # (n, 4): x, y, x_err, y_err
    model_moments: np.ndarray  # (n, 3): xx, yy, xy
    image_moments: np.ndarray  # (n, 3)
    blendedness: np.ndarray  # (n,)
    parent_centroid: np.ndarray  # (4,)


def _grids(origin: Sequence[int], shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(shape[0], dtype=np.float64)[:, None] + origin[0]
    x = np.arange(shape[1], dtype=np.float64)[None, :] + origin[1]
    return y, x


def weighted_centroid(
    image: np.ndarray,
    weight: np.ndarray,
    variance: np.ndarray,
    share: np.ndarray | float,
    origin: Sequence[int],
    sigma: float | None = None,
    inv_var: np.ndarray | None = None,
    iterations: int = 5,
) -> np.ndarray:
    """``(x, y, x_err, y_err)``: first moment of ``image`` weighted by ``weight``.

    ``image = share * observed`` on the box at ``origin`` (all bands); ``variance`` is
    that of the observed pixels (0 where they are not used). The first estimate is
    ``sum W I p / sum W I``; with ``sigma``, it is refined by ``iterations`` passes of
    a circular Gaussian weight of that width centred on the last estimate, times
    ``inv_var`` (default: 1 where ``weight`` is positive). The fixed point is the
    centre of a symmetric source whatever the first weight; its error is propagated
    linearly at the fixed point (the Gaussian weight's own dependence on the centre
    included). NaN where the weighted sum is not positive.
    """
    y, x = _grids(origin, image.shape[-2:])
    wi = weight * image
    s = float(np.sum(wi, dtype=np.float64))
    if not s > 0:
        return np.full(4, np.nan)
    xc = float(np.sum(wi * x, dtype=np.float64)) / s
    yc = float(np.sum(wi * y, dtype=np.float64)) / s
    w, dx_den, dy_den = weight, s, s
    if sigma is not None and sigma > 0:
        base = np.where(weight > 0, 1.0, 0.0) if inv_var is None else inv_var
        for _ in range(iterations):
            g = np.exp(-0.5 * ((x - xc) ** 2 + (y - yc) ** 2) / sigma**2)
            wi = base * g * image
            s = float(np.sum(wi, dtype=np.float64))
            if not s > 0:
                return np.full(4, np.nan)
            xc = float(np.sum(wi * x, dtype=np.float64)) / s
            yc = float(np.sum(wi * y, dtype=np.float64)) / s
        w = base * np.exp(-0.5 * ((x - xc) ** 2 + (y - yc) ** 2) / sigma**2)
        wi = w * image
        dx_den = float(np.sum(wi * (1 - (x - xc) ** 2 / sigma**2), dtype=np.float64))
        dy_den = float(np.sum(wi * (1 - (y - yc) ** 2 / sigma**2), dtype=np.float64))
    ws2 = (w * share) ** 2 * variance
    ex = np.sqrt(float(np.sum(ws2 * (x - xc) ** 2, dtype=np.float64))) / abs(dx_den)
    ey = np.sqrt(float(np.sum(ws2 * (y - yc) ** 2, dtype=np.float64))) / abs(dy_den)
    return np.array([xc, yc, ex, ey])


def second_moments(
    image: np.ndarray, origin: Sequence[int], center: Sequence[float] | None = None
) -> np.ndarray:
    """``(xx, yy, xy)`` central moments of a 2-d image about ``center`` ``(x, y)``.

    ``center`` defaults to the image's first moment; NaN when its sum is not positive.
    """
    y, x = _grids(origin, image.shape)
    total = float(np.sum(image, dtype=np.float64))
    if not total > 0:
        return np.full(3, np.nan)
    if center is None or not np.all(np.isfinite(center)):
        center = (
            float(np.sum(image * x, dtype=np.float64)) / total,
            float(np.sum(image * y, dtype=np.float64)) / total,
        )
    dx, dy = x - center[0], y - center[1]
    return np.array(
        [
            float(np.sum(image * dx * dx, dtype=np.float64)) / total,
            float(np.sum(image * dy * dy, dtype=np.float64)) / total,
            float(np.sum(image * dx * dy, dtype=np.float64)) / total,
        ]
    )


def measure_blend(blend: Any) -> BlendMeasures:
    """Measure every source of a fitted, re-apportioned blend (`weight_sources` first).

    The rendering and the shares are those of `vermilion.core.weight_sources`, so
    that ``sum(F_k)`` is ``deblend_reapportionedFlux`` and ``flux_err`` its error.
    """
    obs = blend.observation
    bbox = blend.bbox
    n, n_bands = len(blend.sources), obs.n_bands
    valid = obs.weights.data > 0
    variance = np.where(valid, np.asarray(obs.variance.data, np.float64), 0.0)
    variance = np.where(np.isfinite(variance), variance, 0.0)
    with np.errstate(divide="ignore"):
        inv_var = np.where(variance > 0, 1.0 / np.where(variance > 0, variance, 1.0), 0.0)
    images = obs.images.data
    background = getattr(blend, "background", None)
    if background is not None:  # the fitted sky is no source's light
        images = images - background.model_array()
    images = np.where(valid, images, 0.0)
    ry, rx = obs.diff_kernel.radius
    renders: list = []
    total = np.zeros(obs.shape, np.float64)
    signed = np.zeros(obs.shape, np.float64)
    for source in blend.sources:
        if source.is_null:
            renders.append(None)
            continue
        box = source.bbox.grow((ry, rx)) & bbox
        model = np.asarray(obs.diff_kernel(source.get_model(box).data), np.float64)
        renders.append((box, model))
        cut = (slice(None), *box.slices_in(bbox))
        total[cut] += np.abs(model)
        signed[cut] += model
    out = BlendMeasures(
        flux_err=np.full((n, n_bands), np.nan),
        centroid=np.full((n, 4), np.nan),
        model_moments=np.full((n, 3), np.nan),
        image_moments=np.full((n, 3), np.nan),
        blendedness=np.full(n, np.nan),
        parent_centroid=weighted_centroid(
            images, np.clip(signed, 0, None) * inv_var, variance, 1.0, bbox.origin
        ),
    )
    for k, (source, entry) in enumerate(zip(blend.sources, renders)):
        if entry is None:
            continue
        box, model = entry
        cut = (slice(None), *box.slices_in(bbox))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total[cut] > 0, np.abs(model) / total[cut], 0.0)
        np.clip(share, 0, 1, out=share)
        var = variance[cut]
        flux_image = share * images[cut]
        out.flux_err[k] = np.sqrt(np.sum(share * share * var, axis=(1, 2)))
        weight = np.clip(model, 0, None) * inv_var[cut]
        out.centroid[k] = weighted_centroid(
            flux_image, weight, var, share, box.origin, _weight_sigma(model), inv_var[cut]
        )
        out.image_moments[k] = second_moments(
            flux_image.sum(axis=0), box.origin, out.centroid[k][:2]
        )
        out.model_moments[k] = second_moments(
            np.asarray(source.get_model().data, np.float64).sum(axis=0), source.bbox.origin
        )
        out.blendedness[k] = blendedness(model, signed[cut])
    return out


def _weight_sigma(model: np.ndarray) -> float:
    """Width of the Gaussian centroid weight: that of the rendered model (1 to 10 px)."""
    moments = second_moments(np.clip(model, 0, None).sum(axis=0), (0, 0))
    if not np.all(np.isfinite(moments[:2])):
        return 2.0
    return float(np.clip(np.sqrt(0.5 * (moments[0] + moments[1])), 1.0, 10.0))


def measure_image(
    image: np.ndarray, variance: np.ndarray, inside: np.ndarray, origin: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(flux_err (bands,), centroid (4,), image moments (3,))`` of the pixels ``inside``.

    For a source kept without a model: the centroid is the inverse-variance weighted
    first moment of the image inside its footprint.
    """
    var = np.where(inside, np.asarray(variance, np.float64), 0.0)
    var = np.where(np.isfinite(var), var, 0.0)
    img = np.where(inside & (var > 0), image, 0.0)
    with np.errstate(divide="ignore"):
        inv_var = np.where(var > 0, 1.0 / np.where(var > 0, var, 1.0), 0.0)
    flux_err = np.sqrt(np.sum(var, axis=(1, 2)))
    centroid = weighted_centroid(img, inv_var, var, 1.0, origin)
    moments = second_moments(img.sum(axis=0), origin, centroid[:2])
    return flux_err, centroid, moments


class MeasuredColumns:
    """The measured values of the children of a patch, gathered in catalog order."""

    def __init__(self, bands: Sequence[str]) -> None:
        self.bands = tuple(bands)
        self.flux_err: list[np.ndarray] = []
        self.centroid: list[np.ndarray] = []
        self.model_moments: list[np.ndarray] = []
        self.image_moments: list[np.ndarray] = []
        self.blendedness: list[float] = []

    def add_blend(self, measures: BlendMeasures | None, n: int) -> None:
        """The ``n`` children of one blend (NaN if it was not measured)."""
        if measures is None:
            nan = np.full((n, 1), np.nan)
            self.add(nan.repeat(len(self.bands), 1), nan.repeat(4, 1), nan.repeat(3, 1))
            self.model_moments.extend(nan.repeat(3, 1))
            self.blendedness.extend([np.nan] * n)
            return
        self.add(measures.flux_err, measures.centroid, measures.image_moments)
        self.model_moments.extend(measures.model_moments)
        self.blendedness.extend(measures.blendedness.tolist())

    def add_isolated(self, flux_err, centroid, moments) -> None:
        """The one child of an isolated parent kept without a model."""
        self.add(flux_err[None], centroid[None], moments[None])
        self.model_moments.append(np.full(3, np.nan))
        self.blendedness.append(0.0)

    def add(self, flux_err, centroid, image_moments) -> None:
        self.flux_err.extend(flux_err)
        self.centroid.extend(centroid)
        self.image_moments.extend(image_moments)

    def columns(self) -> dict[str, np.ndarray]:
        """Column name -> values of every child gathered."""
        n = len(self.blendedness)
        out: dict[str, np.ndarray] = {}
        centroid = np.asarray(self.centroid, np.float64).reshape(n, 4)
        for i, name in enumerate(_CENTROID):
            out[name] = centroid[:, i]
        flux_err = np.asarray(self.flux_err, np.float64).reshape(n, len(self.bands))
        for b, band in enumerate(self.bands):
            out[f"flux_err_{band}"] = flux_err[:, b]
        for names, values in (
            (_MODEL_MOMENTS, self.model_moments),
            (_IMAGE_MOMENTS, self.image_moments),
        ):
            values = np.asarray(values, np.float64).reshape(n, 3)
            for i, name in enumerate(names):
                out[name] = values[:, i]
        out["blendedness"] = np.asarray(self.blendedness, np.float64)
        return out


def ensure_measured_columns(catalog: Any, bands: Sequence[str], flux_unit: str) -> None:
    """Add the measured columns (NaN), with units and descriptions, and the flux units."""
    for name, unit, description in measured_column_specs(bands, flux_unit):
        catalog.ensure_column(name, np.float64, np.nan, description=description)
        catalog[name].unit = unit or None
    for band in bands:
        for prefix in ("deblend_scarletFlux", "deblend_reapportionedFlux"):
            name = f"{prefix}_{band}"
            if name in catalog.colnames:
                catalog[name].unit = flux_unit


def set_parent_centroid(catalog: Any, row: int, centroid: np.ndarray) -> None:
    """Write a parent's ``centroid_*`` columns."""
    for name, value in zip(_CENTROID, centroid):
        catalog[name][row] = value


def add_sky_coordinates(catalog: Any, wcs: Any) -> None:
    """``coord_ra`` / ``coord_dec`` (degrees) of every centroid through ``wcs``.

    ``wcs`` is an ``astropy.wcs.WCS`` (or anything with ``pixel_to_world_values``) of
    the catalog's pixel frame; None leaves the columns NaN.
    """
    if wcs is None or len(catalog) == 0:
        return
    x = np.asarray(catalog["centroid_x"], np.float64)
    y = np.asarray(catalog["centroid_y"], np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    ra, dec = wcs.pixel_to_world_values(x[ok], y[ok])
    catalog["coord_ra"][ok] = np.asarray(ra, np.float64) % 360.0
    catalog["coord_dec"][ok] = np.asarray(dec, np.float64)
