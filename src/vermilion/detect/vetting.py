"""Step 6 of `detect_sources`: vetting the peak candidates (model selection).

Every candidate of step 5 that is not a culled coadd maximum (band, asymmetry and
residual peaks) must be a significant point source over a local quadratic surface
plus the footprint's other peaks (`_psf_excess_snr`, per band, combined in
quadrature; the known peaks as round Gaussians of two widths and as their own
symmetric profiles, `vermilion.detect.templates`). This more than halves the false
peaks of simulated patches (noise maxima on the wings of bright galaxies, second
peaks on one source), which lets the candidate cuts be looser.
"""

from __future__ import annotations

import math

import numpy as np

from .config import ResolvedDetection
from .maps import _band_data
from .peaks import FootprintPeaks
from .templates import _symmetric_templates

__all__ = ["vet_footprint_peaks"]


# widths, in PSF sigmas, of the round Gaussians that model each known peak in the
# vetting fit: the PSF core and a broader one for the extended light of a galaxy
_VET_PROFILE_WIDTHS = (1.0, 2.0)


def _psf_excess_snr(images, weights, sigmas, y, x, others, window=4.0, templates=None) -> float:
    """S/N of a point source at ``(y, x)`` beyond a smooth background and the known peaks.

    Per band, a weighted least-squares fit over a square window of half-size
    ``ceil(window * sigma_b)`` of a quadratic surface (absorbing the smooth wing of a
    bright neighbour and any residual background), Gaussians of widths
    ``_VET_PROFILE_WIDTHS`` times the band's PSF core ``sigma_b`` at each peak of
    ``others`` near the window, the band's plane of ``templates`` if given (the
    symmetric profiles of the known peaks, `_symmetric_templates`, which model
    elongated and bulge + disk galaxies that round Gaussians leave behind) and one
    PSF-core Gaussian at ``(y, x)``. The band's S/N is that last amplitude over its
    standard error (the Schur complement of the nuisance terms); the result is the
    quadrature sum of the positive band S/N, so a source that stands out in one band
    only still counts. ``images``, ``weights`` and ``templates`` are ``(bands, h, w)``
    cut-outs, coordinates are theirs.
    """
    n_bands, h, w = images.shape
    total = 0.0
    for b in range(n_bands):
        s = float(sigmas[b])
        r = math.ceil(window * s)
        y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, h), max(x - r, 0), min(x + r + 1, w)
        wv = weights[b, y0:y1, x0:x1].ravel()
        ok = wv > 0
        if np.count_nonzero(ok) < 12:
            continue
        gy, gx = np.divmod(np.flatnonzero(ok), x1 - x0)
        dy = (gy + (y0 - y)).astype(np.float64)
        dx = (gx + (x0 - x)).astype(np.float64)
        wv = wv[ok].astype(np.float64)
        d = images[b, y0:y1, x0:x1].ravel()[ok].astype(np.float64)
        inv2 = -0.5 / (s * s)
        cols = [np.ones_like(dy), dy, dx, dy * dy, dx * dx, dy * dx]
        if templates is not None:
            t = templates[b, y0:y1, x0:x1].ravel()[ok]
            if np.any(t != 0):
                cols.append(t.astype(np.float64))
        reach = r + 3.0 * s
        for qy, qx in others:
            if abs(qy - y) <= reach and abs(qx - x) <= reach:
                r2 = (dy + (y - qy)) ** 2 + (dx + (x - qx)) ** 2
                cols += [np.exp(inv2 / (f * f) * r2) for f in _VET_PROFILE_WIDTHS]
        X = np.stack(cols)
        g = np.exp(inv2 * (dy * dy + dx * dx))
        Xw = X * wv
        Q = np.linalg.pinv(Xw @ X.T)
        gw = g * wv
        xg = Xw @ g
        var = float(gw @ g - xg @ (Q @ xg))
        if not var > 0:
            continue
        amp = float(gw @ d - xg @ (Q @ (Xw @ d)))
        if amp > 0:
            total += amp * amp / var
    return math.sqrt(total)


def _vet_peaks(images, variance, mask, bad, sigmas, slc, ky, kx, amp, first, vet_snr, window):
    """Which peaks of one footprint to keep: the candidates from index ``first`` on
    (band, asymmetry and residual peaks) need `_psf_excess_snr` of at least ``vet_snr``
    given every other peak still kept and the symmetric templates of the peaks before
    ``first`` (the culled coadd peaks), visited brightest first. Returns a boolean array."""
    h, w = images.shape[1:]
    pad = math.ceil(window * float(np.max(sigmas))) + 1
    win = (
        slice(max(slc[0].start - pad, 0), min(slc[0].stop + pad, h)),
        slice(max(slc[1].start - pad, 0), min(slc[1].stop + pad, w)),
    )
    cube = (slice(None), *win)
    # the band data of this window only: keeping every band's full plane from the
    # detection pass would double the memory of a patch for a few small windows
    sub_mask = None if mask is None else mask[win] if mask.ndim == 2 else mask[cube]
    bands = [_band_data(images[cube], variance[cube], sub_mask, bad, b) for b in range(len(images))]
    img = np.stack([b[0] for b in bands])
    wgt = np.stack([b[1] for b in bands])
    ly = [y - win[0].start for y in ky]
    lx = [x - win[1].start for x in kx]
    templates = None
    if first > 0:
        templates = np.zeros_like(img)
        for b in range(len(img)):
            valid = wgt[b] > 0
            if not valid.any():
                continue
            # templates reach out to where the light falls to the noise level
            level = 1.0 / math.sqrt(float(np.median(wgt[b][valid])))
            templates[b], _ = _symmetric_templates(
                np.where(valid, img[b], 0.0).astype(np.float32),
                valid,
                ly[:first],
                lx[:first],
                math.sqrt(2.0) * float(sigmas[b]),
                level=level,
            )
    keep = np.ones(len(ky), bool)
    for i in np.argsort(-np.asarray(amp, np.float64), kind="stable"):
        if i < first:
            continue
        others = [(ly[j], lx[j]) for j in range(len(ky)) if j != i and keep[j]]
        if _psf_excess_snr(img, wgt, sigmas, ly[i], lx[i], others, window, templates) < vet_snr:
            keep[i] = False
    return keep


def vet_footprint_peaks(found: FootprintPeaks, images, variance, mask, slc, s: ResolvedDetection):
    """Step 6 for one footprint (box ``slc``): drop the candidates of ``found`` that
    `_vet_peaks` rejects (none when ``vet_snr`` is None). ``found.amp`` becomes an
    array."""
    found.amp = np.array(found.amp, np.float64)
    if s.vet_snr is None or len(found.y) <= found.n_coadd:
        return found
    kept = _vet_peaks(
        images,
        variance,
        mask,
        s.bad,
        s.vet_sigmas,
        slc,
        found.y,
        found.x,
        found.amp,
        found.n_coadd,
        s.vet_snr,
        s.config.vet_window,
    )
    if not kept.all():
        found.keep(kept)
    return found
