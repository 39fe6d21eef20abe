"""Accuracy of a deblend against the truth of a simulated scene.

Everything here works on plain arrays and dicts, so it does not depend on the engine's types:

- `match_to_truth` matches measured positions to true ones, one to one.
- `evaluate` takes the truth table, the true noiseless source images and the deblended
  children as dicts (``x``, ``y``, ``model`` with ``model_box``, ``flux`` with ``flux_box``;
  images ``(bands, h, w)`` in the observed seeing, boxes as `Box` or ``(y0, x0)`` origins) and
  returns an `Evaluation`: per matched source and band the relative flux error of the model
  and of the re-apportioned flux, the colour errors, the centroid error and the normalised
  residual of the model against the true image; per scene completeness and purity by S/N.
- `Evaluation.summary` gives median and 68% interval per S/N and blendedness bin.
- `truth_children` builds the children of a perfect deblend (truth in, truth out), which
  scores zero error.

Definitions (``T`` true noiseless image, ``M`` child model, both clipped to the image box when
one is given, sums over pixels):

- flux error: ``sum(M_b) / sum(T_b) - 1`` (model) and ``sum(F_b) / sum(T_b) - 1``
  (re-apportioned flux ``F``);
- colour error: ``(m_b - m_{b+1})`` measured minus true, for consecutive bands, in mag;
- centroid error: distance in pixels between the first moments of ``sum_b M_b`` and
  ``sum_b T_b`` (0 for a perfect model whatever the pixelisation);
- residual: ``sqrt(sum (M_b - T_b)^2) / sqrt(sum T_b^2)`` per band;
- S/N: optimal S/N of ``T`` against the sky noise, per band and all bands together;
- blendedness (Bosch et al. 2018): ``1 - sum(T_k^2) / sum(T_k T_all)``, all bands together.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.bbox import Box
from ..core.masks import MASK_PLANES
from ..core.measure import scene_blendedness

__all__ = [
    "DEFAULT_BLEND_BINS",
    "DEFAULT_SNR_BINS",
    "Evaluation",
    "accuracy_against_truth",
    "blendedness",
    "concatenate",
    "evaluate",
    "evaluate_patch",
    "format_summary",
    "match_to_truth",
    "nearest_neighbour_distance",
    "truth_children",
]

DEFAULT_SNR_BINS = (5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, np.inf)
DEFAULT_BLEND_BINS = (0.0, 0.01, 0.1, 0.3, 1.0)


# --------------------------------------------------------------------------------------------
# Matching and neighbours


def match_to_truth(
    truth_xy, measured_xy, max_sep: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match measured positions to true ones one to one, closest pairs first.

    Parameters
    ----------
    truth_xy, measured_xy
        ``(N, 2)`` and ``(K, 2)`` positions in pixels (same axis order in both).
    max_sep
        Largest separation of a match, in pixels.

    Returns
    -------
    truth_index, measured_index, separation
        Matched pairs, sorted by truth index.
    """
    t = _as_xy("truth_xy", truth_xy)
    m = _as_xy("measured_xy", measured_xy)
    if not np.isfinite(max_sep) or max_sep < 0:
        raise ValueError(f"max_sep must be finite and >= 0, got {max_sep}")
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if len(t) == 0 or len(m) == 0:
        return empty
    from scipy.spatial import cKDTree

    pairs = cKDTree(t).sparse_distance_matrix(cKDTree(m), max_sep, output_type="ndarray")
    if len(pairs) == 0:
        return empty
    order = np.lexsort((pairs["j"], pairs["i"], pairs["v"]))
    used_t = np.zeros(len(t), bool)
    used_m = np.zeros(len(m), bool)
    ti, mi, d = [], [], []
    for k in order:
        i, j = pairs["i"][k], pairs["j"][k]
        if used_t[i] or used_m[j]:
            continue
        used_t[i] = used_m[j] = True
        ti.append(i)
        mi.append(j)
        d.append(pairs["v"][k])
    ti, mi, d = np.array(ti, np.int64), np.array(mi, np.int64), np.array(d, float)
    s = np.argsort(ti)
    return ti[s], mi[s], d[s]


def nearest_neighbour_distance(xy) -> np.ndarray:
    """Distance from every position to its nearest other position (inf when alone)."""
    xy = _as_xy("xy", xy)
    if len(xy) < 2:
        return np.full(len(xy), np.inf)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    return d[:, 1]


def _as_xy(name: str, xy) -> np.ndarray:
    arr = np.asarray(xy, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


# --------------------------------------------------------------------------------------------
# Images on boxes


def _as_box(box, image: np.ndarray, name: str) -> Box:
    shape = image.shape[-2:]
    if isinstance(box, Box):
        b = box[-2:] if box.ndim == 3 else box
        if b.shape != tuple(shape):
            raise ValueError(f"{name} has shape {b.shape} but its image has shape {shape}")
        return b
    if box is None:
        raise ValueError(f"{name} is missing")
    origin = tuple(int(o) for o in box)
    return Box(shape, origin[-2:])


def _clip(image: np.ndarray, box: Box, clip: Box | None) -> tuple[np.ndarray, Box]:
    if clip is None:
        return image, box
    inter = box & clip
    a, _ = box.overlapped_slices(inter)
    return image[(slice(None), *a)], inter


def _on_box(image: np.ndarray, box: Box, target: Box) -> np.ndarray:
    out = np.zeros((image.shape[0], *target.shape), dtype=np.float64)
    if box.overlaps(target):
        a, b = target.overlapped_slices(box)
        out[(slice(None), *a)] = image[(slice(None), *b)]
    return out


def _centroid(image: np.ndarray, box: Box) -> tuple[float, float]:
    """First moment (y, x) of the band sum (nan when it does not sum to a positive value)."""
    im = image.sum(axis=0, dtype=np.float64)
    total = im.sum()
    if not total > 0:
        return (np.nan, np.nan)
    y = (im.sum(axis=1) @ np.arange(box.shape[0])) / total + box.origin[0]
    x = (im.sum(axis=0) @ np.arange(box.shape[1])) / total + box.origin[1]
    return (float(y), float(x))


def blendedness(source_images: Sequence, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Truth blendedness ``1 - sum(T_k^2) / sum(T_k T_all)`` of every source.

    The sums run over pixels and bands (products taken band by band).

    ``source_images`` holds objects with ``box`` and ``image`` (like `SourceImage`); ``shape``
    restricts the sums to a ``(H, W)`` image at the origin (default: every stamp whole).
    """
    if len(source_images) == 0:
        return np.zeros(0)
    boxes = [_as_box(s.box, s.image, "box") for s in source_images]
    if shape is not None:
        frame = Box(shape)
    else:
        frame = boxes[0]
        for b in boxes[1:]:
            frame = frame | b
    nb = np.asarray(source_images[0].image).shape[0]
    total = np.zeros((nb, *frame.shape), dtype=np.float64)
    for s, b in zip(source_images, boxes):
        if b.overlaps(frame):
            a, c = frame.overlapped_slices(b)
            total[(slice(None), *a)] += s.image[(slice(None), *c)]
    return scene_blendedness([s.image for s in source_images], boxes, total, frame)


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class Evaluation:
    """Accuracy of one deblend against the truth. Arrays of matches are ``(M,)`` or ``(M, B)``.

    See the module docstring for the definitions.
    """

    bands: tuple[str, ...]
    truth_index: np.ndarray
    child_index: np.ndarray
    separation: np.ndarray
    truth_matched: np.ndarray
    child_matched: np.ndarray
    truth_snr: np.ndarray
    truth_snr_band: np.ndarray
    truth_blendedness: np.ndarray
    truth_valid: np.ndarray
    nn_distance: np.ndarray
    child_snr: np.ndarray
    true_flux: np.ndarray
    model_flux: np.ndarray
    flux: np.ndarray
    flux_err_model: np.ndarray
    flux_err_flux: np.ndarray
    colour_err_model: np.ndarray
    colour_err_flux: np.ndarray
    centroid_err: np.ndarray
    residual: np.ndarray
    psf_fwhm_px: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_matched(self) -> int:
        return len(self.truth_index)

    # -- per-scene detection ------------------------------------------------------------------
    def completeness(self, snr_bins: Sequence[float] = DEFAULT_SNR_BINS) -> dict[str, np.ndarray]:
        """Fraction of true sources (outside NO_DATA) matched to a child, per truth S/N bin."""
        return _fraction_per_bin(
            self.truth_snr[self.truth_valid], self.truth_matched[self.truth_valid], snr_bins
        )

    def purity(self, snr_bins: Sequence[float] = DEFAULT_SNR_BINS) -> dict[str, np.ndarray]:
        """Fraction of children matched to a true source, per child S/N bin (needs models and
        noise levels; children without an S/N only count in ``total``)."""
        out = _fraction_per_bin(self.child_snr, self.child_matched, snr_bins)
        k = len(self.child_matched)
        out["total"] = float(self.child_matched.mean()) if k else np.nan
        return out

    # -- summaries ----------------------------------------------------------------------------
    def selection(self, snr_min: float = 20.0, min_nn_fwhm: float = 2.0) -> np.ndarray:
        """``(M, B)`` mask of (source, band) pairs with per-band S/N above ``snr_min`` whose
        nearest true neighbour lies more than ``min_nn_fwhm`` PSF FWHM (of that band) away."""
        snr = self.truth_snr_band[self.truth_index]
        nn = self.nn_distance[self.truth_index][:, None]
        fwhm = self.psf_fwhm_px if self.psf_fwhm_px is not None else np.zeros(len(self.bands))
        return (snr > snr_min) & (nn > min_nn_fwhm * np.asarray(fwhm)[None, :])

    def tracked_flux_error(self, snr_min: float = 20.0, min_nn_fwhm: float = 2.0) -> float:
        """Median |relative flux error| of the re-apportioned fluxes over `selection`."""
        sel = self.selection(snr_min, min_nn_fwhm)
        vals = np.abs(self.flux_err_flux[sel])
        vals = vals[np.isfinite(vals)]
        return float(np.median(vals)) if vals.size else np.nan

    def summary(
        self,
        snr_bins: Sequence[float] = DEFAULT_SNR_BINS,
        blend_bins: Sequence[float] = DEFAULT_BLEND_BINS,
    ) -> list[dict]:
        """Median and 68% interval of each metric per S/N and blendedness bin.

        Per-band metrics (flux errors, residual) are pooled over bands and binned by the
        per-band S/N; colour errors by the lower S/N of the two bands; the centroid error by
        the S/N of all bands together. Returns one dict per (quantity, S/N bin, blendedness bin)
        with keys ``quantity snr_lo snr_hi blend_lo blend_hi n median p16 p84``.
        """
        ti = self.truth_index
        if len(ti):
            snr_b = self.truth_snr_band[ti]
            blend = self.truth_blendedness[ti]
            colour_snr = np.minimum(snr_b[:, :-1], snr_b[:, 1:])
        else:
            snr_b = np.zeros((0, len(self.bands)))
            blend = np.zeros(0)
            colour_snr = np.zeros((0, max(len(self.bands) - 1, 0)))
        nb = len(self.bands)
        quantities = [
            ("flux_err_flux", self.flux_err_flux, snr_b, nb),
            ("flux_err_model", self.flux_err_model, snr_b, nb),
            ("colour_err_flux", self.colour_err_flux, colour_snr, nb - 1),
            ("colour_err_model", self.colour_err_model, colour_snr, nb - 1),
            ("centroid_err", self.centroid_err[:, None], self.truth_snr[ti][:, None], 1),
            ("residual", self.residual, snr_b, nb),
        ]
        rows = []
        for name, values, snr, width in quantities:
            if width == 0:
                continue
            bl = np.repeat(blend[:, None], width, axis=1)
            for s0, s1 in itertools.pairwise(snr_bins):
                for b0, b1 in itertools.pairwise(blend_bins):
                    top = (bl <= b1) if b1 == blend_bins[-1] else (bl < b1)
                    sel = (snr >= s0) & (snr < s1) & (bl >= b0) & top & np.isfinite(values)
                    v = values[sel]
                    row = {
                        "quantity": name,
                        "snr_lo": float(s0),
                        "snr_hi": float(s1),
                        "blend_lo": float(b0),
                        "blend_hi": float(b1),
                        "n": int(v.size),
                        "median": np.nan,
                        "p16": np.nan,
                        "p84": np.nan,
                    }
                    if v.size:
                        row["p16"], row["median"], row["p84"] = (
                            float(q) for q in np.percentile(v, [16, 50, 84])
                        )
                    rows.append(row)
        return rows

    def format_summary(
        self,
        quantities: Sequence[str] = (
            "flux_err_flux",
            "flux_err_model",
            "colour_err_flux",
            "centroid_err",
            "residual",
        ),
        snr_bins: Sequence[float] = DEFAULT_SNR_BINS,
        blend_bins: Sequence[float] = DEFAULT_BLEND_BINS,
    ) -> str:
        """The `summary` as a text table, followed by completeness and purity."""
        text = format_summary(self.summary(snr_bins, blend_bins), quantities)
        comp = self.completeness(snr_bins)
        pur = self.purity(snr_bins)
        lines = [text, "", "detection    S/N bin      completeness (n)     purity (n)"]
        for k, (s0, s1) in enumerate(itertools.pairwise(snr_bins)):
            lines.append(
                f"             {_bin_label(s0, s1):<12} {comp['fraction'][k]:>6.3f} "
                f"({comp['n'][k]:>5d})       {pur['fraction'][k]:>6.3f} ({pur['n'][k]:>5d})"
            )
        lines.append(f"children matched overall: {pur['total']:.3f} of {len(self.child_matched)}")
        return "\n".join(lines)


_PER_TRUTH = (
    "truth_matched",
    "truth_snr",
    "truth_snr_band",
    "truth_blendedness",
    "truth_valid",
    "nn_distance",
)
_PER_MATCH = (
    "separation",
    "true_flux",
    "model_flux",
    "flux",
    "flux_err_model",
    "flux_err_flux",
    "colour_err_model",
    "colour_err_flux",
    "centroid_err",
    "residual",
)


def concatenate(evaluations: Sequence[Evaluation]) -> Evaluation:
    """One `Evaluation` of several scenes (e.g. a set of blends), with the same bands.

    Truth and child indices are offset so that they index the concatenated truth and
    children in the order of ``evaluations``.
    """
    if not evaluations:
        raise ValueError("concatenate needs at least one evaluation")
    bands = evaluations[0].bands
    if any(e.bands != bands for e in evaluations):
        raise ValueError("cannot concatenate evaluations of different bands")
    kw = {}
    for name in _PER_TRUTH + _PER_MATCH + ("child_matched", "child_snr"):
        kw[name] = np.concatenate([getattr(e, name) for e in evaluations])
    t_off = np.cumsum([0] + [len(e.truth_matched) for e in evaluations[:-1]])
    c_off = np.cumsum([0] + [len(e.child_matched) for e in evaluations[:-1]])
    kw["truth_index"] = np.concatenate(
        [e.truth_index + o for e, o in zip(evaluations, t_off)]
    ).astype(np.int64)
    kw["child_index"] = np.concatenate(
        [e.child_index + o for e, o in zip(evaluations, c_off)]
    ).astype(np.int64)
    return Evaluation(bands=bands, psf_fwhm_px=evaluations[0].psf_fwhm_px, **kw)


def _bin_label(lo: float, hi: float) -> str:
    def f(v):
        return "inf" if not np.isfinite(v) else f"{v:g}"

    return f"{f(lo)}-{f(hi)}"


def format_summary(rows: list[dict], quantities: Sequence[str] | None = None) -> str:
    """Text table of `Evaluation.summary` rows: one line per S/N and blendedness bin, one column
    per quantity showing ``median [p16, p84] (n)``; empty bins are left out."""
    if quantities is None:
        quantities = list(dict.fromkeys(r["quantity"] for r in rows))
    cells: dict[tuple, dict[str, str]] = {}
    for r in rows:
        if r["quantity"] not in quantities:
            continue
        key = (r["snr_lo"], r["snr_hi"], r["blend_lo"], r["blend_hi"])
        cells.setdefault(key, {})
        if r["n"]:
            cells[key][r["quantity"]] = (
                f"{r['median']:+.4f} [{r['p16']:+.4f},{r['p84']:+.4f}] ({r['n']})"
            )
    width = 36
    header = f"{'S/N':<11}{'blendedness':<12}" + "".join(f"{q:<{width}}" for q in quantities)
    lines = [header]
    for (s0, s1, b0, b1), c in cells.items():
        if not c:
            continue
        lines.append(
            f"{_bin_label(s0, s1):<11}{_bin_label(b0, b1):<12}"
            + "".join(f"{c.get(q, '-'):<{width}}" for q in quantities)
        )
    return "\n".join(lines)


def _fraction_per_bin(snr: np.ndarray, hit: np.ndarray, bins) -> dict[str, np.ndarray]:
    bins = np.asarray(bins, dtype=float)
    n = np.zeros(len(bins) - 1, dtype=np.int64)
    frac = np.full(len(bins) - 1, np.nan)
    for k in range(len(bins) - 1):
        sel = (snr >= bins[k]) & (snr < bins[k + 1])
        n[k] = int(sel.sum())
        if n[k]:
            frac[k] = float(hit[sel].mean())
    return {"bins": bins, "n": n, "fraction": frac}


def _column(truth, name: str):
    try:
        return np.asarray(truth[name])
    except (KeyError, ValueError, IndexError):
        return None


def _truth_len(truth) -> int:
    x = _column(truth, "x")
    if x is None:
        raise ValueError("truth must have columns 'x' and 'y'")
    return len(x)


def evaluate(
    truth,
    children: Sequence[Mapping],
    bands: Sequence[str],
    *,
    source_images: Sequence | None = None,
    image_shape: tuple[int, int] | None = None,
    noise_rms: Sequence[float] | None = None,
    psf_fwhm_px: Sequence[float] | None = None,
    max_sep: float = 2.0,
) -> Evaluation:
    """Evaluate deblended ``children`` against ``truth``.

    Parameters
    ----------
    truth
        Table-like with columns ``x``, ``y``, ``flux_<band>`` and optionally ``snr``,
        ``snr_<band>``, ``blendedness``, ``in_no_data`` (astropy Table, numpy structured array
        or dict of arrays; e.g. `SimulatedPatch.truth_array`).
    children
        One dict per deblended child: ``x``, ``y`` (pixels), and optionally ``model`` (the
        model in the observed seeing, ``(bands, h, w)``) with ``model_box``, and ``flux`` (the
        re-apportioned flux) with ``flux_box``; boxes are `Box` or ``(y0, x0)`` origins.
    bands
        Band names, in the order of the child images.
    source_images
        True noiseless images, one per truth row (objects with ``box`` and ``image``); needed
        for the residual and the true centroid, and used for S/N and blendedness when the
        truth lacks them.
    image_shape
        ``(H, W)`` of the image at the origin: true and measured images are clipped to it.
    noise_rms
        Per-band sky noise, for S/N (children's, and truth's when not in the table).
    psf_fwhm_px
        Per-band PSF FWHM in pixels (for `Evaluation.selection`).
    max_sep
        Largest match distance in pixels.
    """
    bands = tuple(bands)
    nb = len(bands)
    n = _truth_len(truth)
    txy = np.column_stack([_column(truth, "x"), _column(truth, "y")]).astype(float).reshape(n, 2)
    if source_images is not None and len(source_images) != n:
        raise ValueError(f"{len(source_images)} source images for {n} truth rows")
    clip = Box(tuple(image_shape)) if image_shape is not None else None
    rms = None if noise_rms is None else np.asarray(noise_rms, dtype=float).reshape(nb)

    cxy = np.zeros((len(children), 2))
    for k, c in enumerate(children):
        try:
            cxy[k] = (float(c["x"]), float(c["y"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"child {k} needs numeric 'x' and 'y'") from None
    ti, ci, sep = match_to_truth(txy, cxy, max_sep)

    tsi, snr_b, snr, blend, valid = _truth_quantities(
        truth, bands, n, source_images, image_shape, clip, rms
    )
    nn = nearest_neighbour_distance(txy)

    # Per match.
    m = len(ti)
    true_flux = np.full((m, nb), np.nan)
    model_flux = np.full((m, nb), np.nan)
    flux = np.full((m, nb), np.nan)
    centroid_err = np.full(m, np.nan)
    residual = np.full((m, nb), np.nan)
    for r, (t, c) in enumerate(zip(ti, ci)):
        child = children[c]
        if tsi is not None:
            t_im, t_box = tsi[t]
            true_flux[r] = t_im.sum(axis=(1, 2), dtype=np.float64)
            t_cen = _centroid(t_im, t_box)
        else:
            true_flux[r] = [float(np.asarray(truth[f"flux_{b}"])[t]) for b in bands]
            t_cen = (txy[t, 1], txy[t, 0])
        if child.get("model") is not None:
            mim = np.asarray(child["model"])
            mim, mbox = _clip(mim, _as_box(child.get("model_box"), mim, "model_box"), clip)
            model_flux[r] = mim.sum(axis=(1, 2), dtype=np.float64)
            mc = _centroid(mim, mbox)
            centroid_err[r] = np.hypot(mc[0] - t_cen[0], mc[1] - t_cen[1])
            if tsi is not None:
                union = mbox | t_box
                diff = _on_box(mim, mbox, union) - _on_box(t_im, t_box, union)
                norm = np.sqrt(np.sum(t_im.astype(np.float64) ** 2, axis=(1, 2)))
                with np.errstate(divide="ignore", invalid="ignore"):
                    residual[r] = np.sqrt(np.sum(diff**2, axis=(1, 2))) / norm
        if child.get("flux") is not None:
            fim = np.asarray(child["flux"])
            fim, _ = _clip(fim, _as_box(child.get("flux_box"), fim, "flux_box"), clip)
            flux[r] = fim.sum(axis=(1, 2), dtype=np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        err_model = model_flux / true_flux - 1
        err_flux = flux / true_flux - 1
    child_snr = _child_snr(children, rms, clip)
    t_matched = np.zeros(n, bool)
    t_matched[ti] = True
    c_matched = np.zeros(len(children), bool)
    c_matched[ci] = True
    return Evaluation(
        bands=bands,
        truth_index=ti,
        child_index=ci,
        separation=sep,
        truth_matched=t_matched,
        child_matched=c_matched,
        truth_snr=snr,
        truth_snr_band=snr_b,
        truth_blendedness=np.asarray(blend, dtype=float),
        truth_valid=valid,
        nn_distance=nn,
        child_snr=child_snr,
        true_flux=true_flux,
        model_flux=model_flux,
        flux=flux,
        flux_err_model=err_model,
        flux_err_flux=err_flux,
        colour_err_model=_colour(model_flux) - _colour(true_flux),
        colour_err_flux=_colour(flux) - _colour(true_flux),
        centroid_err=centroid_err,
        residual=residual,
        psf_fwhm_px=None if psf_fwhm_px is None else np.asarray(psf_fwhm_px, float),
    )


def _truth_quantities(truth, bands, n, source_images, image_shape, clip, rms):
    """The truth's images clipped to the image, S/N per band and in all, blendedness, validity.

    Taken from the truth table where it has them, else measured on ``source_images``.
    """
    nb = len(bands)
    tsi = None
    if source_images is not None:
        tsi = [
            _clip(np.asarray(s.image), _as_box(s.box, np.asarray(s.image), "box"), clip)
            for s in source_images
        ]
    snr_b = (
        np.stack([_column(truth, f"snr_{b}") for b in bands], axis=1)
        if all(_column(truth, f"snr_{b}") is not None for b in bands) and n
        else None
    )
    if snr_b is None:
        snr_b = np.full((n, nb), np.nan)
        if tsi is not None and rms is not None:
            for k, (im, _) in enumerate(tsi):
                snr_b[k] = np.sqrt(np.sum(im.astype(np.float64) ** 2, axis=(1, 2))) / rms
    snr = _column(truth, "snr")
    snr = np.sqrt(np.sum(snr_b**2, axis=1)) if snr is None else snr.astype(float)
    blend = _column(truth, "blendedness")
    if blend is None:
        blend = (
            blendedness(source_images, image_shape)
            if source_images is not None
            else np.full(n, np.nan)
        )
    valid = _column(truth, "in_no_data")
    valid = np.ones(n, bool) if valid is None else ~valid.astype(bool)
    return tsi, snr_b, snr, blend, valid


def _child_snr(children, rms, clip) -> np.ndarray:
    """Optimal S/N of every child's model against the sky noise (nan without one)."""
    child_snr = np.full(len(children), np.nan)
    if rms is not None:
        for k, c in enumerate(children):
            if c.get("model") is not None:
                mim = np.asarray(c["model"])
                mim, _ = _clip(mim, _as_box(c.get("model_box"), mim, "model_box"), clip)
                child_snr[k] = np.sqrt(
                    np.sum(np.sum(mim.astype(np.float64) ** 2, axis=(1, 2)) / rms**2)
                )
    return child_snr


def _colour(f: np.ndarray) -> np.ndarray:
    """Consecutive-band colours in mag (nan where a flux is not positive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(f > 0, -2.5 * np.log10(np.where(f > 0, f, 1.0)), np.nan)
    return mag[:, :-1] - mag[:, 1:]


# --------------------------------------------------------------------------------------------
# Helpers for simulated patches


def accuracy_against_truth(catalog, truth, bands, max_sep: float = 2.0) -> dict[str, float]:
    """Accuracy of a deblended catalog: children matched to true sources by peak position.

    The flux of a child is its re-apportioned flux (``deblend_reapportionedFlux_<band>``)
    and the error is relative to the true flux, over all bands of the matched pairs.

    Parameters
    ----------
    catalog
        The deblended catalog (``parent``, ``peak_x``, ``peak_y`` and the flux columns).
    truth
        The simulation's truth table (``x``, ``y``, ``snr``, ``flux_<band>``).
    bands
        The bands to compare.
    max_sep
        Largest match distance in pixels.

    Returns
    -------
    dict
        ``matched`` (count), ``median_abs_flux_error``, ``median_abs_flux_error_snr20``
        (true S/N > 20) and ``completeness_snr10`` (fraction of true sources of S/N > 10
        matched); empty without children or truth.
    """
    children = catalog[np.asarray(catalog["parent"]) != 0]
    if len(children) == 0 or len(truth) == 0:
        return {}
    t_xy = np.stack([np.asarray(truth["x"], float), np.asarray(truth["y"], float)], axis=1)
    c_xy = np.stack(
        [np.asarray(children["peak_x"], float), np.asarray(children["peak_y"], float)], axis=1
    )
    ti, ci, _ = match_to_truth(t_xy, c_xy, max_sep)
    errors, errors20 = [], []
    snr = np.asarray(truth["snr"], float)
    for band in bands:
        column = f"deblend_reapportionedFlux_{band}"
        if column not in children.colnames:
            continue
        true = np.asarray(truth[f"flux_{band}"], float)[ti]
        measured = np.asarray(children[column], float)[ci]
        ok = true > 0
        rel = np.abs(measured[ok] - true[ok]) / true[ok]
        errors.append(rel)
        errors20.append(rel[snr[ti][ok] > 20])
    detectable = snr > 10
    found = np.zeros(len(truth), bool)
    found[ti] = True

    def median(parts: list[np.ndarray]) -> float:
        values = np.concatenate(parts) if parts else np.zeros(0)
        return float(np.median(values)) if values.size else np.nan

    return {
        "matched": float(len(ti)),
        "median_abs_flux_error": median(errors),
        "median_abs_flux_error_snr20": median(errors20),
        "completeness_snr10": float(found[detectable].mean()) if detectable.any() else np.nan,
    }


def evaluate_patch(patch, children: Sequence[Mapping], max_sep: float = 2.0) -> Evaluation:
    """`evaluate` with everything taken from a `SimulatedPatch` (needs its source images)."""
    return evaluate(
        patch.truth_array,
        children,
        patch.bands,
        source_images=patch.source_images,
        image_shape=patch.shape,
        noise_rms=patch.noise_rms,
        psf_fwhm_px=patch.psf_fwhm_pixels,
        max_sep=max_sep,
    )


def truth_children(patch, reapportion: bool = True) -> list[dict]:
    """Children of a perfect deblend: the true source images as models.

    With ``reapportion`` the ``flux`` of each child is the observed image split in proportion
    to the true images (as a deblender re-apportions flux; zero on BAD and NO_DATA pixels); on
    a noiseless scene it equals the true image. Needs ``return_source_images=True``.
    """
    if patch.source_images is None:
        raise ValueError("truth_children needs a patch simulated with return_source_images=True")
    full = patch.bbox
    total = None
    if reapportion:
        total = np.zeros(patch.images.shape, dtype=np.float64)
        for s in patch.source_images:
            if s.box.overlaps(full):
                a, b = full.overlapped_slices(s.box)
                total[(slice(None), *a)] += np.abs(s.image[(slice(None), *b)])
        bad = (patch.mask & (MASK_PLANES["BAD"] | MASK_PLANES["NO_DATA"])) != 0
        data = np.where(bad, 0.0, patch.images)
    out = []
    for s, row in zip(patch.source_images, patch.truth_array):
        child = {
            "x": float(row["x"]),
            "y": float(row["y"]),
            "id": int(row["id"]),
            "model": s.image,
            "model_box": s.box,
        }
        if reapportion:
            inter = s.box & full
            if inter.is_empty:
                child["flux"], child["flux_box"] = None, None
            else:
                a, b = full.overlapped_slices(inter)
                _, c = inter.overlapped_slices(s.box)
                mine = np.abs(s.image[(slice(None), *c)]).astype(np.float64)
                tot = total[(slice(None), *a)]
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(tot > 0, mine / tot, 0.0)
                child["flux"] = (np.clip(ratio, 0, 1) * data[(slice(None), *a)]).astype(np.float32)
                child["flux_box"] = inter
        out.append(child)
    return out
