"""A second family of simulated blends with truth, independent of `vermilion.sim`.

Drawn with GalSim directly (no code of `vermilion.sim`): 5 bands at 0.2"/px, each with
its own Moffat PSF (FWHM 0.95" in g down to 0.65" in y, slightly elliptical, jittered per
scene); galaxies are a de Vaucouleurs bulge plus an exponential disk of different
colours (red bulge, blue disk), a third of the disks knotty (`galsim.RandomKnots`, bluer
still), with half-light radii 0.15" to 1.5", ellipticities up to 0.7 and random
orientations; one source in ten is a star. Centres are drawn uniformly within their
pixel. A scene is a pair at 0.5 to 3 i-band FWHM or a group of 3 to 8 sources; fluxes
give i-band S/N of about 5 to 1000.

Seeds: `TUNING_SEEDS` are the ones used while tuning the engine; `HELD_OUT_SEEDS`
are kept aside and only reported.

    from scenes_galsim import galsim_scene
    scene = galsim_scene(seed=3)    # Scene: images, variance, psfs, true images, centres
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BANDS = ("g", "r", "i", "z", "y")
PIXEL_SCALE = 0.2  # arcsec
PSF_FWHM = np.array([0.95, 0.85, 0.78, 0.72, 0.65])  # arcsec, per band
NOISE_RMS = np.array([1.0, 0.9, 1.0, 1.4, 2.0])  # per pixel, per band
SHAPE = (64, 64)
PSF_SIZE = 41
TUNING_SEEDS = tuple(range(100, 140))
HELD_OUT_SEEDS = tuple(range(9100, 9140))

# Spectra (flux fraction per band, g..y) of the parts of a galaxy and of stars.
_BULGE_SED = np.array([0.08, 0.16, 0.24, 0.26, 0.26])
_DISK_SED = np.array([0.26, 0.24, 0.2, 0.16, 0.14])
_KNOT_SED = np.array([0.4, 0.25, 0.15, 0.11, 0.09])


@dataclass
class Scene:
    """A simulated blend with its truth; arrays ``(band, y, x)``.

    ``true_images[k]`` is source k's noiseless image on the whole scene; ``centers[k]``
    its true ``(y, x)`` centre in pixels (pixel centres at integers).
    """

    name: str
    images: np.ndarray
    variance: np.ndarray
    psfs: np.ndarray
    bands: tuple[str, ...]
    true_images: np.ndarray
    centers: np.ndarray
    is_star: np.ndarray

    @property
    def noise_rms(self) -> np.ndarray:
        return np.sqrt(np.median(self.variance, axis=(1, 2)))

    @property
    def snr_band(self) -> np.ndarray:
        """``(N, B)`` optimal S/N of each source in each band (its noiseless image, alone)."""
        t = self.true_images.astype(np.float64)
        return np.sqrt(np.sum(t * t / self.variance[None], axis=(2, 3)))

    @property
    def psf_fwhm_px(self) -> np.ndarray:
        """Per-band FWHM of the PSF images in pixels (from their effective area)."""
        p = self.psfs.astype(np.float64)
        n_eff = 1 / np.sum(p * p, axis=(1, 2)) / np.sum(p, axis=(1, 2)) ** -2
        return np.sqrt(n_eff / (np.pi / (4 * np.log(2)) * 2))

    def without_neighbours(self, keep: int) -> np.ndarray:
        """The noisy images minus the true images of every source but ``keep``."""
        others = self.true_images.sum(axis=0) - self.true_images[keep]
        return (self.images - others).astype(np.float32)


def _psfs(rng: np.random.Generator):
    import galsim

    out = []
    for f in PSF_FWHM * rng.uniform(0.95, 1.05):
        psf = galsim.Moffat(beta=3.5, fwhm=float(f))
        psf = psf.shear(
            g=float(rng.uniform(0, 0.05)), beta=float(rng.uniform(0, np.pi)) * galsim.radians
        )
        out.append(psf)
    return out


def _galaxy(rng: np.random.Generator, flux: float, seed: int):
    """A list of (profile, sed) parts of one galaxy (sizes in arcsec)."""
    import galsim

    hlr = float(np.exp(rng.uniform(np.log(0.15), np.log(1.5))))
    bulge_frac = float(rng.uniform(0.0, 0.7))
    e = float(rng.uniform(0.0, 0.7))
    beta = float(rng.uniform(0, np.pi)) * galsim.radians
    parts = []
    disk_flux = flux * (1 - bulge_frac)
    if rng.uniform() < 1 / 3:
        knot_frac = float(rng.uniform(0.1, 0.4))
        knots = galsim.RandomKnots(
            int(rng.integers(10, 60)),
            half_light_radius=hlr,
            flux=disk_flux * knot_frac,
            rng=galsim.BaseDeviate(seed),
        )
        parts.append((knots.shear(e=e, beta=beta), _KNOT_SED))
        disk_flux *= 1 - knot_frac
    parts.append(
        (galsim.Exponential(half_light_radius=hlr, flux=disk_flux).shear(e=e, beta=beta), _DISK_SED)
    )
    if bulge_frac > 0.05:
        bulge = galsim.DeVaucouleurs(half_light_radius=hlr * float(rng.uniform(0.2, 0.6)))
        bulge = bulge.withFlux(flux * bulge_frac).shear(e=0.6 * e, beta=beta)
        parts.append((bulge, _BULGE_SED))
    return parts


def _positions(rng: np.random.Generator, n: int, fwhm_px: float) -> np.ndarray:
    """``(n, 2)`` (y, x): a pair at 0.5-3 FWHM, or a group within ~3 FWHM of the centre."""
    cy, cx = (SHAPE[0] - 1) / 2, (SHAPE[1] - 1) / 2
    if n == 2:
        sep = rng.uniform(0.5, 3.0) * fwhm_px
        a = rng.uniform(0, 2 * np.pi)
        off = 0.5 * sep * np.array([np.sin(a), np.cos(a)])
        mid = np.array([cy, cx])
        pos = np.array([mid + off, mid - off])
    else:
        pos = [np.array([cy, cx])]
        while len(pos) < n:
            p = pos[int(rng.integers(len(pos)))] + rng.normal(0, 1.5 * fwhm_px, 2)
            d = min(np.hypot(*(p - q)) for q in pos)
            if d >= 0.5 * fwhm_px and np.all(np.abs(p - [cy, cx]) < SHAPE[0] / 2 - 10):
                pos.append(p)
        pos = np.array(pos)
    # centres drawn uniformly within their pixel
    return np.floor(pos) + rng.uniform(-0.5, 0.5, pos.shape)


def galsim_scene(seed: int) -> Scene:
    """One scene of the family (a pair for even seeds, a group of 3 to 8 for odd ones)."""
    import galsim

    rng = np.random.default_rng(seed)
    psfs = _psfs(rng)
    psf_images = np.stack(
        [p.drawImage(nx=PSF_SIZE, ny=PSF_SIZE, scale=PIXEL_SCALE).array for p in psfs]
    ).astype(np.float32)
    psf_images /= psf_images.sum(axis=(1, 2), keepdims=True)
    fwhm_px = float(PSF_FWHM[2] / PIXEL_SCALE)
    n = 2 if seed % 2 == 0 else int(rng.integers(3, 9))
    centers = _positions(rng, n, fwhm_px)
    h, w = SHAPE
    n_bands = len(BANDS)
    true = np.zeros((n, n_bands, h, w), dtype=np.float32)
    is_star = rng.uniform(size=n) < 0.1
    for k in range(n):
        # total flux over bands; i-band S/N of ~5 to ~1000 for a compact source
        flux = float(10 ** rng.uniform(2.0, 4.6))
        if is_star[k]:
            sed = rng.dirichlet(np.full(n_bands, 8.0))
            parts = [(galsim.DeltaFunction(flux=flux), sed)]
        else:
            parts = _galaxy(rng, flux, seed * 100 + k)
        y, x = centers[k]
        for b in range(n_bands):
            profile = galsim.Add([p * float(s[b]) for p, s in parts])
            img = galsim.ImageF(w, h, scale=PIXEL_SCALE)
            galsim.Convolve(profile, psfs[b]).drawImage(
                image=img, center=galsim.PositionD(x + 1, y + 1)
            )
            true[k, b] = img.array
    noise = NOISE_RMS * rng.uniform(0.9, 1.1, n_bands)
    images = true.sum(axis=0) + rng.normal(size=(n_bands, h, w)) * noise[:, None, None]
    variance = np.broadcast_to((noise**2)[:, None, None], images.shape).astype(np.float32)
    return Scene(
        f"galsim seed {seed}",
        images.astype(np.float32),
        np.ascontiguousarray(variance),
        psf_images,
        BANDS,
        true,
        centers,
        is_star,
    )
