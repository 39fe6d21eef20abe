"""The sky background of a patch, as the deblender sees it.

Coadds made outside the Rubin pipelines often keep their sky. Detection subtracts a
background of its own (`vermilion.detect.background.estimate_background`), so the
parents come out right, but a deblender fitting the raw pixels shares the sky among
the sources: a constant +20 nJy on a 3-band coadd multiplied re-apportioned fluxes
by 3 to 6. `PatchBackground` estimates the background of every band with the same
estimator as detection (one home: ``estimate_background``, cells of
``DeblendConfig.backgroundCell`` pixels), leaving out the pixels of the detected
footprints, and decides, per band, what the deblender
does with it (``DeblendConfig.background``):

``"auto"`` (default)
    subtract the band's background when it is significant: its largest absolute
    level exceeds ``backgroundSignificance`` times the band's median pixel noise
    (``sqrt(variance)``), 0.5 by default. The pixels of the detected footprints are
    left out of the estimate; on background-subtracted coadds it is then a few
    hundredths of the noise (0.01 to 0.07 on `vermilion.sim` patches; 0.15 to 0.39
    on the 58 x 48 HSC cutout of `vermilion.data.hsc_blend`, whose few sky pixels
    hold the wings of its galaxies), so nothing is subtracted and the fluxes are
    those of a run without this step, bit for bit.
``"subtract"``
    always subtract it.
``"none"``
    never (the images are deblended as they are).
``"fit"``
    fit it in every blend: a constant level per band over the blend box
    (`vermilion.core.BackgroundComponent`), fitted with the sources on the valid
    pixels around them (`sky_pixels`: off every parent footprint, in the blend box
    grown by ``DeblendConfig.backgroundMargin``), where the model is the level plus the
    sources' light spilling out of their footprint. It starts at the weighted mean of
    those pixels (this estimate where there are none, `PatchBackground.level_in`). The
    fitted levels and their errors go on the parent record
    (``deblend_backgroundLevel_<band>``, ``deblend_backgroundLevelErr_<band>``), in
    the blend's stored metadata (`LEVEL_KEY`) and, summarized, in the summary
    (`summarize_levels`); the image shared between the children is the observed image
    minus them.

What was done is recorded (`PatchBackground.summary`) in the catalog's
``meta["deblend_background"]`` and in the model data's
``metadata["deblend_background"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vermilion.detect.background import estimate_background
from vermilion.io.metadata import BACKGROUND_LEVEL_KEY

__all__ = [
    "BACKGROUND_KEY",
    "LEVEL_ERR_KEY",
    "LEVEL_KEY",
    "PatchBackground",
    "ensure_level_columns",
    "footprint_mask",
    "record_level",
    "sky_level",
    "sky_pixels",
    "summarize_levels",
]

#: Key of the background summary in catalog ``meta`` and model-data ``metadata``.
BACKGROUND_KEY = "deblend_background"
#: Key of a blend's fitted sky levels (``{band: level}``) in its stored metadata
#: (``BlendData.metadata``), defined by io, whose rebuild reads it back.
LEVEL_KEY = BACKGROUND_LEVEL_KEY
#: Key of their errors (``{band: error}``, ``1 / sqrt(sum of the sky weights)``).
LEVEL_ERR_KEY = "background_level_err"


@dataclass
class PatchBackground:
    """The background of every band of a patch and whether the deblender subtracts it.

    Attributes
    ----------
    mode
        ``DeblendConfig.background``.
    threshold
        ``DeblendConfig.backgroundSignificance``.
    cell
        Mesh cell of the estimate (pixels).
    bands
        Band names.
    maps
        ``(bands, H, W)`` float32 backgrounds (None with ``mode="none"``).
    level, peak, noise
        Per band: median and largest absolute background level (image units), and the
        median pixel noise ``sqrt(variance)`` over pixels with data.
    subtracted
        Per band: the background is subtracted before fitting.
    """

    mode: str
    threshold: float
    cell: int
    bands: tuple[str, ...]
    maps: np.ndarray | None = None
    level: np.ndarray = field(default_factory=lambda: np.zeros(0))
    peak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    noise: np.ndarray = field(default_factory=lambda: np.zeros(0))
    subtracted: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @classmethod
    def estimate(
        cls,
        images: np.ndarray,
        variance: np.ndarray,
        mask: np.ndarray | None,
        bad_mask: int,
        bands: Sequence[str],
        config: Any,
        exclude: np.ndarray | None = None,
    ) -> PatchBackground:
        """Estimate the background of every band and decide what to do with it.

        Parameters
        ----------
        images, variance, mask
            ``(bands, H, W)`` arrays of the patch (mask may be None).
        bad_mask
            Mask bits whose pixels are left out of the estimate.
        bands
            Band names.
        config
            The `DeblendConfig` (``background``, ``backgroundSignificance``,
            ``backgroundCell``).
        exclude
            ``(H, W)`` boolean: pixels left out of the estimate, the detected footprints
            (`footprint_mask`), whose light would bias the sky up.
        """
        n = len(bands)
        out = cls(
            str(config.background),
            float(config.backgroundSignificance),
            int(config.backgroundCell),
            tuple(str(b) for b in bands),
            level=np.zeros(n),
            peak=np.zeros(n),
            noise=np.full(n, np.nan),
            subtracted=np.zeros(n, bool),
        )
        if out.mode == "none" or images.size == 0:
            return out
        maps = np.zeros(images.shape, np.float32)
        for b in range(n):
            var = np.asarray(variance[b], np.float64)
            good = np.isfinite(var) & (var > 0) & np.isfinite(images[b])
            if mask is not None and bad_mask:
                good &= (np.asarray(mask[b]) & bad_mask) == 0
            sky = good if exclude is None else good & ~exclude
            if not good.any():
                continue
            weight = np.where(sky, 1.0 / np.where(sky, var, 1.0), 0.0)
            maps[b] = estimate_background(images[b], weight, cell=out.cell)
            out.level[b] = float(np.median(maps[b][good]))
            out.peak[b] = float(np.max(np.abs(maps[b][good])))
            out.noise[b] = float(np.median(np.sqrt(var[good])))
        out.maps = maps
        if out.mode == "fit":
            return out
        if out.mode == "subtract":
            out.subtracted[:] = True
        else:
            with np.errstate(invalid="ignore"):
                out.subtracted[:] = out.peak > out.threshold * out.noise
        return out

    @property
    def fitted(self) -> bool:
        """The background is fitted in each blend (``mode="fit"``)."""
        return self.mode == "fit"

    def level_in(self, slices: tuple[slice, slice]) -> np.ndarray:
        """Per band: the median of the estimated background over a blend's pixels.

        Parameters
        ----------
        slices
            The blend box in the patch's arrays.

        Returns
        -------
        numpy.ndarray
            ``(bands,)`` float32, the starting level of the fit (0 without an estimate).
        """
        if self.maps is None:
            return np.zeros(len(self.bands), np.float32)
        cut = self.maps[(slice(None), *slices)]
        return np.median(cut.reshape(len(self.bands), -1), axis=1).astype(np.float32)

    @property
    def significance(self) -> np.ndarray:
        """Per band: the largest absolute level in units of the median pixel noise."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.peak / self.noise

    @property
    def any_subtracted(self) -> bool:
        return bool(np.any(self.subtracted))

    def apply(self, images: np.ndarray) -> np.ndarray:
        """``images`` with the background of the subtracted bands removed (or ``images``)."""
        if self.maps is None or not self.any_subtracted:
            return images
        out = np.array(images, dtype=np.result_type(images.dtype, np.float32), copy=True)
        for b in np.flatnonzero(self.subtracted):
            out[b] -= self.maps[b]
        return out

    def summary(self) -> dict[str, Any]:
        """What was done, as plain values (recorded under `BACKGROUND_KEY`).

        With ``mode="fit"``, ``"fitted": True`` and the per-band values are those of the
        estimate the fits start from (the fitted levels are on each parent).
        """
        sig = self.significance
        extra = {"fitted": True} if self.fitted else {}
        return {
            **extra,
            "mode": self.mode,
            "significance_threshold": self.threshold,
            "cell": self.cell,
            "estimator": "vermilion.detect.estimate_background",
            "bands": {
                band: {
                    "subtracted": bool(self.subtracted[b]),
                    "median_level": float(self.level[b]),
                    "max_abs_level": float(self.peak[b]),
                    "noise": float(self.noise[b]),
                    "significance": float(sig[b]) if np.isfinite(sig[b]) else None,
                }
                for b, band in enumerate(self.bands)
            },
        }

    def __str__(self) -> str:
        parts = []
        for b, band in enumerate(self.bands):
            what = "fitted" if self.fitted else "subtracted" if self.subtracted[b] else "kept"
            parts.append(f"{band}: {self.level[b]:.4g} ({self.significance[b]:.2g} noise, {what})")
        return f"background ({self.mode}): " + ", ".join(parts)


def footprint_mask(catalog: Any, bbox: Any) -> np.ndarray:
    """``(H, W)`` boolean over ``bbox``: True on the footprint of every parent of ``catalog``."""
    h, w = bbox.shape
    out = np.zeros((h, w), bool)
    if len(catalog) == 0 or "footprint" not in catalog.colnames:
        return out
    for fp, parent in zip(catalog["footprint"], catalog["parent"]):
        if fp is None or parent != 0 or fp.area == 0:
            continue
        ys, xs = fp.spans.indices()
        ys, xs = ys - bbox.origin[0], xs - bbox.origin[1]
        keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        out[ys[keep], xs[keep]] = True
    return out


def sky_pixels(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    ebox: Any,
    bbox: Any,
    detected: np.ndarray,
    bad_mask: int,
    margin: int,
    use_weights: bool = True,
) -> tuple[np.ndarray, np.ndarray, Any]:
    """The pixels that constrain a blend's fitted sky level (``background="fit"``).

    Parameters
    ----------
    arrays
        The patch's ``(images, variance, mask)``, ``(bands, H, W)`` (mask may be None).
    ebox
        The patch box (a `vermilion.core.Box`).
    bbox
        The blend box.
    detected
        ``(H, W)`` boolean, True on every parent footprint (`footprint_mask`): their
        pixels are left out (the blend's own belong to its sources, the others' light
        would bias the sky up).
    bad_mask
        Mask bits whose pixels are left out.
    margin
        Pixels around ``bbox`` (cut at the patch edge).
    use_weights
        Inverse-variance weights, or 1 on every valid pixel.

    Returns
    -------
    images, weights : numpy.ndarray
        ``(bands, h, w)`` on the returned box (weights 0 where left out).
    box : vermilion.core.Box
        ``bbox`` grown by ``margin``, within ``ebox``.
    """
    from vermilion.core import Box

    images, variance, mask = arrays
    (y0, x0), (h, w) = bbox.origin, bbox.shape
    (ey, ex), (eh, ew) = ebox.origin, ebox.shape
    ya, xa = max(y0 - margin, ey), max(x0 - margin, ex)
    yb, xb = min(y0 + h + margin, ey + eh), min(x0 + w + margin, ex + ew)
    box = Box((yb - ya, xb - xa), (ya, xa))
    cut = (slice(None), *box.slices_in(ebox))
    img, var = images[cut], variance[cut]
    valid = np.isfinite(img) & np.isfinite(var) & (var > 0) & ~detected[cut[1:]][None]
    if mask is not None and bad_mask:
        valid &= (mask[cut] & bad_mask) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(valid, 1 / var if use_weights else 1, 0).astype(np.float64)
    return np.where(valid, img, 0).astype(np.float64), weights, box


def sky_level(images: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band: the weighted mean of a blend's sky pixels (`sky_pixels`) and its error.

    The fitted level starts there; an isolated parent kept without a model
    (``processSingles=False``) takes it as its level.

    Parameters
    ----------
    images, weights
        ``(bands, h, w)`` as `sky_pixels` returns them.

    Returns
    -------
    level, error : numpy.ndarray
        ``(bands,)`` float64: the mean and ``1 / sqrt(sum of the weights)``, NaN in a
        band without a sky pixel.
    """
    total = np.sum(weights, axis=(1, 2))
    some = total > 0
    safe = np.where(some, total, 1)
    level = np.where(some, np.sum(weights * images, axis=(1, 2)) / safe, np.nan)
    return level, np.where(some, 1 / np.sqrt(safe), np.nan)


def ensure_level_columns(catalog: Any, bands: Sequence[str], unit: str) -> None:
    """The parents' sky levels (``DeblendConfig.background="fit"``) and their errors."""
    for band in bands:
        catalog.ensure_column(
            f"deblend_backgroundLevel_{band}",
            np.float32,
            np.nan,
            description=(
                f"sky level of a pixel in band {band} fitted with the blend's sources "
                "(constant over the blend box; of an isolated parent kept without a model, "
                "the weighted mean of its sky pixels), taken out of the children's "
                "re-apportioned flux"
            ),
            unit=unit,
        )
        catalog.ensure_column(
            f"deblend_backgroundLevelErr_{band}",
            np.float32,
            np.nan,
            description=f"error of deblend_backgroundLevel_{band} (1 / sqrt of its sky weights)",
            unit=unit,
        )


def record_level(
    catalog: Any, row: int, bands: Sequence[str], level: np.ndarray, err: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Write a parent's sky level and its error (`ensure_level_columns`) on its row.

    Returns
    -------
    level, err
        As given (to collect them for `summarize_levels`).
    """
    for b, band in enumerate(bands):
        catalog[f"deblend_backgroundLevel_{band}"][row] = level[b]
        catalog[f"deblend_backgroundLevelErr_{band}"][row] = err[b]
    return level, err


def summarize_levels(
    bands: Sequence[str], levels: np.ndarray, errors: np.ndarray
) -> dict[str, Any]:
    """Per band: how many parents have a level, and their median, extremes and errors.

    Parameters
    ----------
    bands
        Band names.
    levels, errors
        ``(parents, bands)`` sky levels and their errors (those fitted in the blends and
        those of the isolated parents kept without a model).

    Returns
    -------
    dict
        ``{band: {"n_blends", "median", "min", "max", "median_error"}}`` (plain floats;
        None without a level; ``n_blends`` counts the parents).
    """
    levels = np.asarray(levels, np.float64).reshape(-1, len(bands))
    errors = np.asarray(errors, np.float64).reshape(-1, len(bands))
    out = {}
    for b, band in enumerate(bands):
        v, e = levels[:, b], errors[:, b]
        v, e = v[np.isfinite(v)], e[np.isfinite(e)]
        out[band] = {
            "n_blends": int(v.size),
            "median": float(np.median(v)) if v.size else None,
            "min": float(v.min()) if v.size else None,
            "max": float(v.max()) if v.size else None,
            "median_error": float(np.median(e)) if e.size else None,
        }
    return out
