"""Optimizer parameters on a simple constrained quadratic."""

from __future__ import annotations

import numpy as np
import pytest

from vermilion.core import (
    AdaproxParameter,
    Box,
    FistaParameter,
    FixedParameter,
    parameter,
    relative_step,
)
from vermilion.core.parameters import ADAPROX_SCHEMES

A = np.array([3.0, -1.0, 0.5, 10.0, -4.0], dtype=np.float32)
TARGET = np.maximum(A, 0)  # the minimum of sum (x - a)^2 subject to x >= 0


def loss(x: np.ndarray) -> float:
    return float(np.sum((x.astype(np.float64) - A) ** 2))


def positive(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


@pytest.mark.parametrize("scheme", sorted(ADAPROX_SCHEMES))
def test_adaprox_schemes_minimise_a_constrained_quadratic(scheme):
    p = AdaproxParameter(np.ones(5, dtype=np.float32), step=0.1, prox=positive, scheme=scheme)
    start = loss(p.x)
    history = []
    for it in range(1000):
        p.update(it, 2 * (p.x - A))
        assert np.all(p.x >= 0)  # the prox holds at every step
        history.append(loss(p.x))
    best = loss(TARGET)
    assert history[-1] - best <= 1e-6 * (start - best)
    np.testing.assert_allclose(p.x, TARGET, atol=1e-3)
    assert p.x.dtype == np.float32


def test_adam_first_step_is_damped():
    p = AdaproxParameter(np.ones(5, dtype=np.float32), step=0.1, scheme="adam")
    g = 2 * (p.x - A)
    p.update(0, g)
    # Adam's first step is step * sign(g); damped by 10.
    np.testing.assert_allclose(p.x, 1 - 0.01 * np.sign(g), rtol=1e-6)
    undamped = AdaproxParameter(
        np.ones(5, dtype=np.float32), step=0.1, scheme="adam", first_step_damping=1
    )
    undamped.update(0, g)
    np.testing.assert_allclose(undamped.x, 1 - 0.1 * np.sign(g), rtol=1e-6)


def test_adaprox_step_function_and_state_resume():
    """A copy of the parameter (its state) continues exactly like the original."""

    def run(p, start, n):
        for it in range(start, start + n):
            p.update(it, 2 * (p.x - A))
        return p

    step = lambda x: relative_step(x, factor=0.05, minimum=0.01)  # noqa: E731
    a = run(AdaproxParameter(np.ones(5, dtype=np.float32), step=step, prox=positive), 0, 40)
    b = run(a.copy(), 40, 40)
    c = run(AdaproxParameter(np.ones(5, dtype=np.float32), step=step, prox=positive), 0, 80)
    np.testing.assert_array_equal(b.x, c.x)
    for key in ("m", "v", "vhat"):
        np.testing.assert_array_equal(b.helpers[key], c.helpers[key])
    # the copy is independent
    assert not np.array_equal(a.x, b.x)


def test_max_prox_iter():
    calls = []

    def halve_above_one(x):
        calls.append(1)
        return np.where(x > 1, x / 2, x).astype(x.dtype)

    def run(value):
        calls.clear()
        p = AdaproxParameter(
            np.full(3, value, dtype=np.float32), step=1e-3, prox=halve_above_one, max_prox_iter=10
        )
        p.update(0, np.zeros(3, dtype=np.float32))
        return len(calls), float(p.x[0])

    # repeated until it stops changing x: 6 halvings and one call that changes nothing
    assert run(40.0) == (7, pytest.approx(40 / 64))
    # ... but at most max_prox_iter times
    assert run(2000.0) == (10, pytest.approx(2000 / 1024))
    assert run(0.5) == (1, 0.5)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="sgd"):
        AdaproxParameter(np.ones(2), step=0.1, scheme="sgd")


def test_fista_minimises_a_constrained_quadratic():
    # Lipschitz constant of the gradient 2 (x - a) is 2: step 1/2 solves it at once,
    # smaller steps converge with momentum.
    for step, n in ((0.5, 1), (0.05, 150)):
        p = FistaParameter(np.ones(5, dtype=np.float32), step=step, prox=positive)
        start = loss(p.x)
        for it in range(n):
            p.update(it, 2 * (p.x - A))
        z = p.helpers["z"]  # the last proximal iterate
        assert np.all(z >= 0)
        np.testing.assert_allclose(z, TARGET, atol=1e-4)
        assert loss(z) - loss(TARGET) <= 1e-6 * (start - loss(TARGET))


def test_fista_beats_plain_proximal_gradient():
    step, n = 0.01, 60
    p = FistaParameter(np.ones(5, dtype=np.float32), step=step, prox=positive)
    x = np.ones(5, dtype=np.float32)
    for it in range(n):
        p.update(it, 2 * (p.x - A))
        x = positive(x - step * 2 * (x - A))
    assert loss(p.helpers["z"]) < loss(x)


def test_fixed_parameter_and_wrapping():
    x = np.arange(4.0)
    p = parameter(x)
    assert isinstance(p, FixedParameter) and p.x is x
    p.update(0, np.ones(4))
    np.testing.assert_array_equal(p.x, np.arange(4.0))
    assert parameter(p) is p


def test_resize_moves_values_and_state():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = AdaproxParameter(x.copy(), step=0.1)
    p.helpers["m"][...] = x
    old, new = Box((3, 4), (10, 20)), Box((4, 3), (11, 21))
    p.resize(old, new)
    assert p.x.shape == (4, 3)
    # overlap rows 11-12, cols 21-23 move; the new row 13 is zero
    np.testing.assert_array_equal(p.x[:2], x[1:, 1:])
    np.testing.assert_array_equal(p.x[2:], 0)
    np.testing.assert_array_equal(p.helpers["m"], p.x)
    assert p.helpers["v"].shape == (4, 3)


def test_relative_step():
    x = np.array([1.0, 3.0])
    assert relative_step(x, factor=0.1) == pytest.approx(0.2)
    assert relative_step(x, factor=0.1, minimum=0.5) == 0.5
    np.testing.assert_allclose(
        relative_step(x, factor=0.1, minimum=np.array([0.1, 0.3])), [0.2, 0.3]
    )


def test_component_and_parameter_are_abstract_and_their_subclasses_instantiate():
    import numpy as np

    from vermilion.core import Box, Component, CubeComponent, FactorizedComponent, Parameter
    from vermilion.core.parameters import AdaproxParameter, FistaParameter, FixedParameter

    box = Box((3, 3))
    with pytest.raises(TypeError, match="abstract"):
        Component(("g",), box)
    with pytest.raises(TypeError, match="abstract"):
        Parameter(np.ones(3))
    spectrum, morph = np.ones(1, np.float32), np.ones((3, 3), np.float32)
    factorized = FactorizedComponent(("g",), spectrum, morph, box, (1, 1))
    cube = CubeComponent(("g",), np.ones((1, 3, 3), np.float32), box)
    assert factorized.get_model().data.shape == cube.get_model().data.shape == (1, 3, 3)
    for p in (FixedParameter(morph), FistaParameter(morph, 0.1), AdaproxParameter(morph, 0.1)):
        assert p.copy().shape == (3, 3)
