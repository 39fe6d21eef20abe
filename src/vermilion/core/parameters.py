"""Optimizable parameters: the array, its optimizer state, step, gradient and prox.

The optimizer state lives in the parameter, never in the model, so a fit can be
stopped, stored and resumed (warm restart), and the model itself never depends on
the optimizer that produced it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from .bbox import Box

__all__ = [
    "ADAPROX_SCHEMES",
    "AdaproxParameter",
    "FistaParameter",
    "FixedParameter",
    "Parameter",
    "parameter",
    "relative_step",
]


def relative_step(x: np.ndarray, factor: float = 0.1, minimum: float = 0, axis=None) -> float:
    """Step proportional to the mean of ``x``, never below ``minimum``.

    Parameters
    ----------
    x
        The values.
    factor
        Step relative to the mean.
    minimum
        Smallest step.
    axis
        Axis of the mean (None: all).

    Returns
    -------
    float or numpy.ndarray
        The step.
    """
    return np.maximum(minimum, factor * np.mean(x, axis=axis))


class Parameter(ABC):
    """An array with what is needed to optimize it.

    A subclass implements `update` (one optimizer step).

    Parameters
    ----------
    x
        The values (updated in place where possible).
    helpers
        Optimizer state arrays of the same shape as ``x`` (resized with it).
    step
        A number, or a function of ``x`` returning one (or an array).
    grad
        Optional ``grad(input_grad, x, *args)`` turning the gradient handed to
        `update` into the gradient with respect to ``x``.
    prox
        Optional proximal operator ``prox(x) -> x`` applied after each step.
    """

    def __init__(
        self,
        x: np.ndarray,
        helpers: dict[str, np.ndarray] | None = None,
        step: float | Callable | None = None,
        grad: Callable | None = None,
        prox: Callable | None = None,
    ) -> None:
        self.x = x
        self.helpers = helpers or {}
        self._step = step
        self.grad = grad
        self.prox = prox

    @property
    def step(self):
        """The step size (evaluated at ``x`` when it is a function)."""
        return self._step(self.x) if callable(self._step) else self._step

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``x``."""
        return self.x.shape

    @property
    def dtype(self):
        """Type of ``x``."""
        return self.x.dtype

    def _gradient(self, input_grad: np.ndarray, *args) -> np.ndarray:
        return input_grad if self.grad is None else self.grad(input_grad, self.x, *args)

    @abstractmethod
    def update(self, it: int, input_grad: np.ndarray, *args) -> None:
        """One optimizer step.

        Parameters
        ----------
        it
            The iteration number (0 first).
        input_grad
            The gradient handed down by the model (turned into the gradient with respect
            to ``x`` by ``grad`` when given).
        *args
            Passed on to ``grad``.
        """

    def resize(self, old_box: Box, new_box: Box) -> None:
        """Move ``x`` and its helper arrays from ``old_box`` onto ``new_box`` (zero padded).

        Parameters
        ----------
        old_box
            The box ``x`` is on.
        new_box
            The box to move it onto.
        """
        s_new, s_old = new_box.overlapped_slices(old_box)

        def move(a: np.ndarray) -> np.ndarray:
            out = np.zeros(new_box.shape, dtype=a.dtype)
            out[s_new] = a[s_old]
            return out

        self.x = move(self.x)
        for key, value in self.helpers.items():
            if isinstance(value, np.ndarray) and value.shape == old_box.shape:
                self.helpers[key] = move(value)

    def copy(self) -> Parameter:
        """A copy with its own ``x`` and helper arrays.

        Returns
        -------
        Parameter
            Of the same type.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.x = self.x.copy()
        clone.helpers = {
            k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.helpers.items()
        }
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.x.shape})"


class FixedParameter(Parameter):
    """A parameter that is never updated."""

    def __init__(self, x: np.ndarray) -> None:
        super().__init__(x)

    def update(self, it: int, input_grad: np.ndarray, *args) -> None:
        """Nothing: a fixed parameter does not move.

        Parameters
        ----------
        it
            Ignored.
        input_grad
            Ignored.
        *args
            Ignored.
        """
        pass


def parameter(x) -> Parameter:
    """Wrap a plain array as a `FixedParameter`; pass parameters through.

    Parameters
    ----------
    x
        An array or a `Parameter`.

    Returns
    -------
    Parameter
        ``x`` itself or a `FixedParameter` of it.
    """
    return x if isinstance(x, Parameter) else FixedParameter(x)


# ---- proximal ADAM (Melchior et al. 2019, arXiv:1910.10094) -------------------------


def _update_moments(g, m, v, b1, b2) -> None:
    """Exponential moving averages of the gradient and its square (in place)."""
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g


def _adam(it, g, m, v, vhat, b1, b2, eps, p):
    _update_moments(g, m, v, b1, b2)
    t = it + 1
    phi = m / (1 - b1**t)
    psi = np.sqrt(v / (1 - b2**t)) + eps
    return phi, psi


def _nadam(it, g, m, v, vhat, b1, b2, eps, p):
    _update_moments(g, m, v, b1, b2)
    t = it + 1
    phi = (b1 * m + (1 - b1) * g) / (1 - b1**t)
    psi = np.sqrt(v / (1 - b2**t)) + eps
    return phi, psi


def _amsgrad(it, g, m, v, vhat, b1, b2, eps, p):
    _update_moments(g, m, v, b1, b2)
    np.maximum(vhat, v, out=vhat)
    psi = np.sqrt(np.maximum(vhat, eps) if eps > 0 else vhat)
    return m, psi


def _padam(it, g, m, v, vhat, b1, b2, eps, p):
    _update_moments(g, m, v, b1, b2)
    np.maximum(vhat, v, out=vhat)
    psi = np.maximum(vhat, eps) ** p
    return m, psi


def _adamx(it, g, m, v, vhat, b1, b2, eps, p):
    _update_moments(g, m, v, b1, b2)
    # With a constant b1 the AdamX correction factor (1 - b1_t)^2 / (1 - b1_(t-1))^2 is 1.
    if it == 0:
        vhat[...] = v
    else:
        np.maximum(vhat, v, out=vhat)
    psi = np.sqrt(np.maximum(vhat, eps))
    return m, psi


def _radam(it, g, m, v, vhat, b1, b2, eps, p):
    _update_moments(g, m, v, b1, b2)
    t = it + 1
    phi = m / (1 - b1**t)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho > 4:
        psi = np.sqrt(v / (1 - b2**t)) + eps
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        psi = psi / r
    else:
        # Warm-up: without enough statistics to rectify the variance, take plain
        # Adam steps rather than raw gradient steps (which have the data's units).
        psi = np.sqrt(v / (1 - b2**t)) + eps
    return phi, psi


ADAPROX_SCHEMES = {
    "adam": _adam,
    "nadam": _nadam,
    "amsgrad": _amsgrad,
    "padam": _padam,
    "adamx": _adamx,
    "radam": _radam,
}


class AdaproxParameter(Parameter):
    """Proximal ADAM parameter (schemes adam, nadam, amsgrad (default), padam, adamx, radam).

    Parameters
    ----------
    x
        Initial values.
    step
        Step size, a number or ``step(x)`` (see `relative_step`).
    grad, prox
        See `Parameter`.
    b1, b2, eps, p
        Moment decay rates, floor of the second moment and the padam exponent.
    scheme
        Name of the update scheme.
    max_prox_iter
        Apply the prox up to this many times per step (until it stops changing ``x``).
    prox_e_rel
        Relative change below which repeated prox iterations stop.
    first_step_damping
        The first update is divided by this factor.
    """

    def __init__(
        self,
        x: np.ndarray,
        step: float | Callable,
        grad: Callable | None = None,
        prox: Callable | None = None,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
        p: float = 0.25,
        m0: np.ndarray | None = None,
        v0: np.ndarray | None = None,
        vhat0: np.ndarray | None = None,
        scheme: str = "amsgrad",
        max_prox_iter: int = 1,
        prox_e_rel: float = 1e-6,
        first_step_damping: float = 10.0,
    ) -> None:
        if scheme not in ADAPROX_SCHEMES:
            raise ValueError(
                f"Unknown adaprox scheme {scheme!r}; use one of {list(ADAPROX_SCHEMES)}"
            )
        helpers = {
            "m": np.zeros_like(x) if m0 is None else m0,
            "v": np.zeros_like(x) if v0 is None else v0,
            "vhat": np.zeros_like(x) if vhat0 is None else vhat0,
        }
        super().__init__(x, helpers, step, grad, prox)
        self.b1, self.b2, self.eps, self.p = b1, b2, eps, p
        self.scheme = scheme
        self.phi_psi = ADAPROX_SCHEMES[scheme]
        self.max_prox_iter = max_prox_iter
        self.prox_e_rel = prox_e_rel
        self.first_step_damping = first_step_damping

    def resize(self, old_box: Box, new_box: Box) -> None:
        """Move onto ``new_box``; pixels new to the box get the second moments of the old box.

        Zero moments would make a new pixel's first steps ``m / sqrt(v) ~ 3`` times the
        step size, the same for every new pixel: a ring of flux that costs tens of
        iterations to undo. With the box's largest second moment they start cautious.

        Parameters
        ----------
        old_box
            The box ``x`` is on.
        new_box
            The box to move it onto.
        """
        fill = {k: float(self.helpers[k].max(initial=0)) for k in ("v", "vhat")}
        super().resize(old_box, new_box)
        fresh = np.ones(new_box.shape, dtype=bool)
        s_new, _ = new_box.overlapped_slices(old_box)
        fresh[s_new] = False
        for key, value in fill.items():
            self.helpers[key][fresh] = value

    def update(self, it: int, input_grad: np.ndarray, *args) -> None:
        """One proximal ADAM step, then up to ``max_prox_iter`` proximal iterations.

        Parameters
        ----------
        it
            The iteration number (0 first: the step is divided by ``first_step_damping``).
        input_grad
            The gradient handed down by the model.
        *args
            Passed on to ``grad``.
        """
        g = self._gradient(input_grad, *args)
        h = self.helpers
        phi, psi = self.phi_psi(
            it, g, h["m"], h["v"], h["vhat"], self.b1, self.b2, self.eps, self.p
        )
        step = self.step
        if it == 0:
            step = step / self.first_step_damping
        self.x = self.x - (step * phi / psi).astype(self.x.dtype, copy=False)
        if self.prox is not None:
            for _ in range(self.max_prox_iter):
                before = self.x.copy() if self.max_prox_iter > 1 else None
                self.x = self.prox(self.x)
                if before is None:
                    break
                change = np.sum((self.x - before) ** 2)
                if change <= self.prox_e_rel**2 * np.sum(self.x**2):
                    break


class FistaParameter(Parameter):
    """Accelerated proximal gradient (FISTA, Beck & Teboulle 2009).

    ``x`` is the extrapolated point at which the gradient is evaluated; the last
    proximal iterate is kept in ``helpers["z"]`` and the momentum in ``t``.
    """

    def __init__(
        self,
        x: np.ndarray,
        step: float | Callable,
        grad: Callable | None = None,
        prox: Callable | None = None,
        t0: float = 1,
        z0: np.ndarray | None = None,
    ) -> None:
        super().__init__(x, {"z": x.copy() if z0 is None else z0}, step, grad, prox)
        self.t = t0

    def update(self, it: int, input_grad: np.ndarray, *args) -> None:
        """One FISTA step: gradient step, prox, momentum extrapolation.

        Parameters
        ----------
        it
            The iteration number.
        input_grad
            The gradient handed down by the model.
        *args
            Passed on to ``grad``.
        """
        g = self._gradient(input_grad, *args)
        y = self.x - (self.step * g).astype(self.x.dtype, copy=False)
        z = self.prox(y) if self.prox is not None else y
        t = 0.5 * (1 + np.sqrt(1 + 4 * self.t * self.t))
        omega = 1 + (self.t - 1) / t
        self.x = (self.helpers["z"] + omega * (z - self.helpers["z"])).astype(self.x.dtype)
        self.helpers["z"] = z
        self.t = t
