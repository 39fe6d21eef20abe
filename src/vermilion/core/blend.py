"""A blend: the sources of one parent footprint and the observation they are fit to."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .background import BackgroundComponent
from .bbox import Box, overlapped_slices
from .component import Component, FactorizedComponent
from .image import Image
from .notebook import picture_png
from .observation import Observation
from .source import Source

__all__ = ["DEFAULT_MIN_MODEL", "Blend", "FitDivergenceError", "LiteBlend"]

#: Rendered models below this many noise rms count as 0 when flux is re-apportioned.
#: bench/bench_accuracy.py (both scene families, tuning seeds; S/N > 10): 0 (the former
#: rule) gives median |flux error| 0.134 and 0.160, 0.05 gives 0.117 and 0.143, with
#: colour errors 0.059 -> 0.040 and 0.048 -> 0.030 (0.01: 0.118 / 0.145; 0.2: 0.133 / 0.145).
DEFAULT_MIN_MODEL = 0.05


class FitDivergenceError(ArithmeticError):
    """A fit produced a non-finite likelihood or gradient.

    Attributes
    ----------
    iteration
        The iteration at which it happened.
    sources
        Indices of the sources whose model is not finite (or, when every model is
        finite, whose boxes hold non-finite gradient values).
    """

    def __init__(self, message: str, iteration: int, sources: list[int]) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.sources = sources

    def __reduce__(self):
        # Picklable across process pools despite the extra constructor arguments.
        return (type(self), (str(self), self.iteration, self.sources))


class Blend:
    """The sources of one blend and the observation they model.

    Parameters
    ----------
    sources
        The sources (each a sum of components).
    observation
        The data, or a `NoDataObservation` for rendering stored models only.
    metadata
        Free-form information (e.g. the parent id).
    background
        The sky left in the images, fitted with the sources (a `BackgroundComponent`
        on the blend box), or None (the images are background-subtracted). It is no
        source: `get_model` and `components` leave it out; the fit and
        `log_likelihood` add it to the rendered model, and `conserve_flux` takes it
        out of the observed image before sharing it.

    Attributes
    ----------
    loss
        The log-likelihood recorded at every iteration (of the model before that
        iteration's update).
    it
        Number of iterations run so far (over all calls to `fit`).
    """

    def __init__(
        self,
        sources: Sequence[Source],
        observation: Observation,
        metadata: dict | None = None,
        background: BackgroundComponent | None = None,
    ) -> None:
        self.sources = list(sources)
        self.observation = observation
        self.metadata = dict(metadata or {})
        if background is not None and background.bbox != observation.bbox:
            raise ValueError(
                f"the background's box {background.bbox} is not the blend's {observation.bbox}"
            )
        self.background = background
        self.loss: list[float] = []
        self.it = 0
        self.converged = False
        #: Per-band flux that `conserve_flux` gave to no source (None before it ran).
        self.unassigned_flux: np.ndarray | None = None

    @property
    def bbox(self) -> Box:
        """The blend's box (its observation's)."""
        return self.observation.bbox

    @property
    def bands(self) -> tuple[str, ...]:
        """The bands of the observation."""
        return self.observation.bands

    @property
    def components(self) -> list[Component]:
        """Every component of every source, in order."""
        return [c for s in self.sources for c in s.components]

    # -- models ------------------------------------------------------------------

    def _placements(self, components: Sequence[Component]) -> list[tuple]:
        """Per component: its band-axis slices into the blend and into itself, and
        whether it lies wholly inside the blend (boxes change only when resized)."""
        out = []
        for c in components:
            s_blend, s_comp = overlapped_slices(self.bbox, c.bbox)
            inside = c.bbox.shape == tuple(s.stop - s.start for s in s_blend)
            out.append((c, (slice(None), *s_blend), (slice(None), *s_comp), inside))
        return out

    def _model_array(
        self, components: Sequence[Component] | None = None, placements: list | None = None
    ) -> np.ndarray:
        if placements is None:
            placements = self._placements(self.components if components is None else components)
        model = np.zeros((len(self.bands), *self.bbox.shape), dtype=np.float32)
        for c, s_blend, s_comp, _inside in placements:
            model[s_blend] += c.model_array()[s_comp]
        return model

    def get_model(self, convolve: bool = False, use_flux: bool = False) -> Image:
        """The model of the whole blend on its box.

        Parameters
        ----------
        convolve
            Render in the observed seeing (convolve with the difference kernels).
        use_flux
            Sum the re-apportioned fluxes instead of the models (already observed;
            ``convolve`` is then ignored).

        Returns
        -------
        Image
            ``(bands, h, w)`` on the blend's box.
        """
        if use_flux:
            model = Image.from_box(self.bbox, self.bands)
            for source in self.sources:
                if source.flux is None:
                    raise ValueError("Fluxes are not re-apportioned: call weight_sources(blend)")
                model.add(source.flux)
            return model
        model = Image(self._model_array(), self.bands, self.bbox.origin)
        return self.observation.convolve(model) if convolve else model

    @property
    def log_likelihood(self) -> float:
        """``-1/2 sum(w (data - rendered model)^2)`` of the current model."""
        if self.background is None:
            return self.observation.log_likelihood(self._model_array())
        rendered = self.observation.convolve(self._model_array())
        return self.observation.log_likelihood(
            rendered + self.background.model_array(), rendered=True
        )

    # -- parameterization ------------------------------------------------------------

    def parameterize(self, parameterization: Callable) -> Blend:
        """Give every component its optimizer parameters.

        ``parameterization(component, observation)`` is called for every component,
        e.g. ``functools.partial(init_adaprox_component, bg_thresh=0.25)``.

        Parameters
        ----------
        parameterization
            The function applied to every component.

        Returns
        -------
        Blend
            This blend, for chaining.
        """
        for source in self.sources:
            source.components = [
                parameterization(c, self.observation) or c for c in source.components
            ]
        if self.background is not None:
            self.background = parameterization(self.background, self.observation) or self.background
        return self

    # -- fitting -----------------------------------------------------------------------

    def _check_fittable(self) -> None:
        if not getattr(self.observation, "has_data", True):
            raise ValueError(
                "Cannot fit a blend whose observation holds no image data "
                "(NoDataObservation): rebuild it with the exposure cutout"
            )

    def fit(
        self,
        max_iter: int,
        e_rel: float = 1e-4,
        min_iter: int = 15,
        resize: int | None = 10,
        keep_best: bool = True,
    ) -> tuple[int, float]:
        """Fit all components with their parameters' optimizers.

        Parameters
        ----------
        max_iter
            Maximum number of iterations of this call (a warm restart continues
            the optimizer state kept in the parameters).
        e_rel
            Stop when ``|logL_k - logL_(k-1)| < e_rel * |logL_k|`` ...
        min_iter
            ... but not before this many iterations of this call.
        resize
            Resize the component boxes every this many iterations (``None``: never).
        keep_best
            Return the model with the highest likelihood this call passed through
            (proximal ADAM does not descend monotonically: near convergence the
            likelihood wobbles by ~1%, and the last iterate is rarely the best one).
            Optimizer moments are kept, so a later call continues from that model.

        Returns
        -------
        iterations, logL
            Total iterations run on this blend and the log-likelihood of the model
            the blend holds on return (``loss`` keeps every recorded value).

        Raises
        ------
        FitDivergenceError
            If the likelihood or its gradient is not finite. With ``keep_best`` the
            blend goes back to the best (finite) model this call recorded; when the
            first iteration already fails, nothing is changed.
        """
        _check_fit_arguments(max_iter, e_rel, min_iter, resize, keep_best)
        self._check_fittable()
        obs = self.observation
        images, weights = obs._images, obs._weights
        bbox = self.bbox
        components = self.components
        background = self.background
        # what keep_best saves and restores: the sources' components, then the sky
        fitted = components if background is None else [*components, background]
        self.converged = False
        placements = self._placements(components)
        best_l, best_state = -np.inf, None
        for step in range(max_iter):
            model = self._model_array(placements=placements)
            rendered = obs.diff_kernel(model)
            sources_rendered = rendered
            if background is not None:
                rendered = rendered + background.model_array()
            residual = rendered - images
            weighted = weights * residual
            log_l = -0.5 * float(np.dot(weighted.ravel(), residual.ravel()))
            grad = obs.diff_kernel(weighted, grad=True)
            if not (np.isfinite(log_l) and np.isfinite(float(grad.sum()))):
                self._raise_divergence(log_l, grad, fitted, best_state)
            self.loss.append(log_l)
            if keep_best and log_l > best_l:
                best_l, best_state = log_l, [c.state() for c in fitted]
            for c, s_blend, s_comp, inside in placements:
                if inside:
                    c.update(self.it, grad[s_blend])
                else:
                    g = np.zeros(c.shape, dtype=grad.dtype)
                    g[s_comp] = grad[s_blend]
                    c.update(self.it, g)
            if background is not None:
                background.update(self.it, weighted, sources_rendered)
            self.it += 1
            if resize and self.it % resize == 0:
                if any([c.resize(bbox) for c in components]):
                    placements = self._placements(components)
            change = abs(self.loss[-1] - self.loss[-2]) if len(self.loss) > 1 else np.inf
            if step + 1 > min_iter and change < e_rel * abs(self.loss[-1]):
                self.converged = True
                break
        log_l = self.log_likelihood
        if best_state is not None and best_l > log_l:
            for c, state in zip(fitted, best_state):
                c.restore(state)
            log_l = best_l
        return self.it, log_l

    def _raise_divergence(
        self, log_l: float, grad: np.ndarray, components: list, best_state: list | None
    ) -> None:
        # A non-finite model value spreads through the FFT to the whole blend's
        # gradient, so name the sources whose own model is not finite first and
        # fall back to the gradient boxes only when every model is finite.
        bad = [
            i
            for i, source in enumerate(self.sources)
            if any(not np.all(np.isfinite(c.model_array())) for c in source.components)
        ]
        for i, source in enumerate(self.sources if not bad else ()):
            for c in source.components:
                s_blend, _ = overlapped_slices(self.bbox, c.bbox)
                if not np.all(np.isfinite(grad[(slice(None), *s_blend)])):
                    bad.append(i)
                    break
        ids = [self.sources[i].metadata.get("id", i) for i in bad]
        if best_state is not None:
            # back to the best (finite) model this call recorded, not the poisoned one
            for c, state in zip(components, best_state):
                c.restore(state)
        raise FitDivergenceError(
            f"Fit diverged at iteration {self.it}: logL={log_l}; non-finite model or gradient of "
            f"sources {bad} (ids {ids}); the blend keeps its last good model",
            self.it,
            bad,
        )

    def fit_spectra(self, clip: bool = False) -> Blend:
        """Solve all factorized components' spectra at once, given their morphologies.

        Linear least squares in every band, from the normal equations built over
        the overlaps of the components' convolved boxes (not a dense solve over
        all pixels). Works whether or not the components are parameterized.

        Parameters
        ----------
        clip
            Non-negative spectra (a component with a negative flux is unphysical):
            non-negative least squares in every band, then floored at each
            component's floor. Clipping the unconstrained solution instead gives
            neighbours of a zeroed component the flux they had cancelled against
            it (bench/bench_accuracy.py, held-out seeds, S/N > 10: mean
            |re-apportioned flux error| 0.272 -> 0.240 on vermilion.sim blends and
            0.241 -> 0.204 on the GalSim scenes).

        Returns
        -------
        Blend
            This blend, for chaining.
        """
        self._check_fittable()
        obs = self.observation
        factorized = [c for c in self.components if isinstance(c, FactorizedComponent)]
        if not factorized:
            return self
        others = [c for c in self.components if not isinstance(c, FactorizedComponent)]
        data = obs._images
        if others:
            data = data - obs.diff_kernel(self._model_array(others))
        if self.background is not None:
            data = data - self.background.model_array()
        weights = obs._weights
        bbox = self.bbox
        kernel = obs.diff_kernel
        ry, rx = kernel.radius
        boxes, convolved = [], []
        for c in factorized:
            box = c.bbox.grow((ry, rx)) & bbox
            plane = np.zeros(box.shape, dtype=np.float32)
            s_box, s_comp = overlapped_slices(box, c.bbox)
            plane[s_box] = c.morph[s_comp]
            convolved.append(kernel.convolve_plane(plane))
            boxes.append(box)
        n_bands, k = len(self.bands), len(factorized)
        lo = np.array([b.origin for b in boxes])
        hi = np.array([b.stop for b in boxes])
        overlap = np.all(
            (np.maximum(lo[:, None], lo[None]) < np.minimum(hi[:, None], hi[None])), axis=-1
        )
        normal = np.zeros((n_bands, k, k))
        rhs = np.zeros((n_bands, k))
        for i in range(k):
            s_img = (slice(None), *boxes[i].slices_in(bbox))
            wc = weights[s_img] * convolved[i]
            rhs[:, i] = np.einsum("bhw,bhw->b", wc, data[s_img], dtype=np.float64)
            for j in np.flatnonzero(overlap[i, i:]) + i:
                si, sj = overlapped_slices(boxes[i], boxes[j])
                value = np.einsum(
                    "bhw,bhw->b",
                    wc[(slice(None), *si)],
                    convolved[j][(slice(None), *sj)],
                    dtype=np.float64,
                )
                normal[:, i, j] = value
                normal[:, j, i] = value
        spectra = np.empty((n_bands, k))
        for b in range(n_bands):
            diag = np.diag(normal[b]).copy()
            # Components without weight in this band cannot be constrained: pin them at 0.
            free = diag > 0
            spectra[b] = 0
            if free.any():
                sub = normal[b][np.ix_(free, free)]
                if clip:
                    solved = _nonnegative_solve(sub, rhs[b, free])
                    if solved is not None:
                        spectra[b, free] = solved
                        continue
                try:
                    spectra[b, free] = np.linalg.solve(sub, rhs[b, free])
                except np.linalg.LinAlgError:
                    spectra[b, free] = np.linalg.lstsq(sub, rhs[b, free], rcond=None)[0]
        for i, c in enumerate(factorized):
            spectrum = spectra[:, i]
            spectrum = np.where(np.isfinite(spectrum), spectrum, c.floor)
            if clip:
                spectrum = np.maximum(spectrum, c.floor)
            c.set_spectrum(spectrum)
        return self

    # -- flux re-apportioning ---------------------------------------------------------------

    def conserve_flux(
        self, mask_footprint: bool = True, min_model: float = DEFAULT_MIN_MODEL
    ) -> Blend:
        """Re-apportion the observed flux between the sources (see `weight_sources`).

        Parameters
        ----------
        mask_footprint
            Set pixels of zero weight to 0 first.
        min_model
            Rendered models below ``min_model`` times the band's noise rms count as 0, so
            that the far wings of the rendered models (the difference kernels reach
            tens of pixels) do not collect the noise of pixels that hold no flux.
            A pixel where every rendered model is below the cut goes to no source; the
            per-band sum of those pixels is stored as ``unassigned_flux``, so that the
            sources' re-apportioned fluxes plus ``unassigned_flux`` add up to the
            (masked) observed image.

        Returns
        -------
        Blend
            This blend, for chaining. With a `background`, the image shared is the
            observed image minus the fitted sky.
        """
        self._check_fittable()
        obs = self.observation
        bbox = self.bbox
        ry, rx = obs.diff_kernel.radius
        rendered = []
        total = np.zeros(obs.shape, dtype=np.float32)
        cut = None
        if min_model > 0:
            cut = (min_model * np.asarray(obs.noise_rms, dtype=np.float32))[:, None, None]
        for source in self.sources:
            if source.is_null:
                rendered.append(None)
                continue
            box = source.bbox.grow((ry, rx)) & bbox
            model = np.abs(obs.diff_kernel(source.get_model(box).data))
            if cut is not None:
                model[model < cut] = 0
            rendered.append((box, model))
            total[(slice(None), *box.slices_in(bbox))] += model
        images = obs._images
        if self.background is not None:
            images = images - self.background.model_array()
        if mask_footprint:
            images = np.where(obs._weights > 0, images, 0)
        # pixels where no rendered model reaches the cut go to no source: their sum is kept
        self.unassigned_flux = np.where(total > 0, 0, images).sum(axis=(1, 2), dtype=np.float64)
        for source, entry in zip(self.sources, rendered):
            if entry is None:
                source.flux, source.flux_box = None, None
                continue
            box, model = entry
            s_img = (slice(None), *box.slices_in(bbox))
            denom = total[s_img]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(denom > 0, model / denom, 0)
            np.clip(ratio, 0, 1, out=ratio)
            source.flux = Image((ratio * images[s_img]).astype(np.float32), self.bands, box.origin)
            source.flux_box = box
        return self

    # -- peaks -----------------------------------------------------------------------

    def peaks(self) -> np.ndarray:
        """The peaks of the sources that have one.

        Returns
        -------
        numpy.ndarray
            ``(n, 2)`` absolute ``(y, x)``, in the order of `sources`.
        """
        out = [s.peak for s in self.sources if s.peak is not None]
        return np.array(out, dtype=float).reshape(-1, 2)

    def nearest_peak(self, center: Sequence[float]) -> tuple[int | None, float]:
        """The source whose peak is nearest ``center`` and its distance in pixels.

        Parameters
        ----------
        center
            Absolute ``(y, x)``.

        Returns
        -------
        index, distance
            The source's index in `sources` (None and inf when no source has a peak).
        """
        best, dist = None, np.inf
        for i, source in enumerate(self.sources):
            if source.peak is None:
                continue
            d = float(np.hypot(*(np.asarray(source.peak, float) - np.asarray(center, float))))
            if d < dist:
                best, dist = i, d
        return best, dist

    def check_new_peak(self, center: Sequence[float], min_separation: float = 2.0) -> None:
        """Refuse a new peak within ``min_separation`` pixels of an existing one.

        A new source there would duplicate the existing source (they would split its
        flux between them).

        Parameters
        ----------
        center
            Absolute ``(y, x)`` of the new peak.
        min_separation
            Smallest distance in pixels allowed to an existing peak (0: no check).

        Raises
        ------
        ValueError
            Naming the existing source, its peak and the distance.
        """
        if min_separation < 0 or not np.isfinite(min_separation):
            raise ValueError(f"min_separation must be >= 0 pixels, got {min_separation}")
        index, dist = self.nearest_peak(center)
        if index is not None and dist < min_separation:
            source = self.sources[index]
            sid = source.metadata.get("id")
            name = f"source {index}" + (f" (id {sid})" if sid is not None else "")
            y, x = (f"{float(c):g}" for c in center)
            raise ValueError(
                f"the new peak (y, x)=({y}, {x}) is {dist:.1f} px from the peak {source.peak} "
                f"of {name}, closer than min_separation={min_separation} px: it would "
                "duplicate that source (pass a smaller min_separation to add it anyway)"
            )

    def far_from_peaks(self, min_separation: float = 2.0) -> np.ndarray:
        """Where a new peak may go: at least ``min_separation`` px from every existing peak.

        Parameters
        ----------
        min_separation
            The distance in pixels, as for `check_new_peak`.

        Returns
        -------
        numpy.ndarray
            ``(h, w)`` boolean map of the blend box, True where a new peak may go.
        """
        (y0, _), (x0, _) = self.bbox.bounds
        ys, xs = np.indices(self.bbox.shape)
        far = np.ones(self.bbox.shape, dtype=bool)
        for py, px in self.peaks():
            far &= np.hypot(ys + y0 - py, xs + x0 - px) >= min_separation
        return far

    # -- text and pictures -----------------------------------------------------------

    def __repr__(self) -> str:
        try:
            log_l = f"{self.log_likelihood:.1f}"
        except (ValueError, AttributeError):  # no data to compare with
            log_l = "n/a (no data)"
        return (
            f"Blend(sources={len(self.sources)}, bands={''.join(self.bands)}, bbox={self.bbox}, "
            f"it={self.it}, logL={log_l})"
        )

    def _repr_png_(self) -> bytes | None:
        """A picture of the scene in Jupyter (drawn by `vermilion.display` when asked)."""
        return picture_png(self)


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _nonnegative_solve(normal: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """``argmin_{x >= 0} x^T N x / 2 - r^T x`` from the normal equations ``(N, r)``.

    Lawson and Hanson's active-set algorithm (as `scipy.optimize.nnls`, which needs the
    design matrix and costs 0.15 s of import in every worker) on the ``k x k`` normal
    equations. None when a subsystem is singular or it does not finish in ``3 k`` outer
    steps (the caller then clips the unconstrained solution).
    """
    k = rhs.size
    x = np.zeros(k)
    active = np.zeros(k, dtype=bool)  # the components allowed to be positive
    tol = 1e-12 * (float(np.abs(rhs).max()) + 1e-300)
    for _ in range(3 * k):
        grad = rhs - normal @ x
        candidates = ~active & (grad > tol)
        if not candidates.any():
            return x
        active[np.argmax(np.where(candidates, grad, -np.inf))] = True
        for _ in range(3 * k):
            z = np.zeros(k)
            try:
                z[active] = np.linalg.solve(normal[np.ix_(active, active)], rhs[active])
            except np.linalg.LinAlgError:
                return None
            if np.all(z[active] > 0):
                x = z
                break
            # step from x towards z until a component reaches 0; it leaves the active set
            blocking = active & (z <= 0)
            alpha = np.min(x[blocking] / (x[blocking] - z[blocking]))
            x = x + alpha * (z - x)
            active &= x > tol
            x[~active] = 0
        else:
            return None
    return None


def _check_fit_arguments(max_iter, e_rel, min_iter, resize, keep_best) -> None:
    """Refuse arguments of `Blend.fit` that make no sense, naming the argument."""
    if not _is_int(max_iter) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if not _is_int(min_iter) or min_iter < 0:
        raise ValueError(f"min_iter must be an integer >= 0, got {min_iter!r}")
    if (
        isinstance(e_rel, bool | np.bool_)
        or not isinstance(e_rel, int | float | np.integer | np.floating)
        or not np.isfinite(e_rel)
        or e_rel < 0
    ):
        raise ValueError(
            f"e_rel must be a finite number >= 0 (a relative change of logL, e.g. 1e-4), "
            f"got {e_rel!r}"
        )
    if resize is not None and (not _is_int(resize) or resize < 1):
        raise ValueError(f"resize must be None or an integer >= 1 (iterations), got {resize!r}")
    if not isinstance(keep_best, bool | np.bool_):
        raise ValueError(f"keep_best must be True or False, got {keep_best!r}")


#: Rubin's name of `Blend` (``lsst.scarlet.lite.Blend`` as imported by meas_extensions_scarlet).
LiteBlend = Blend
