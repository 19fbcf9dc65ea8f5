"""Activations: f' and f'' against central differences, tails, GELU's exact form.

The activations run on the active backend (arrays moved there with ``B``);
the oracles (finite differences, SciPy) compute on NumPy copies (``N``).
"""

import numpy as np
import pytest
from scipy.stats import norm

from _backend import B, N, host
from hessinv_ref import ACTIVATIONS, get_activation
from hessinv_ref.activations import Activation
from hessinv_ref.testing import central_step
from tolerances import assert_fd_close

# Moderate values where every activation is far from flat, plus the tails
# where a naive exp() overflows or the derivatives vanish.
GRID = np.concatenate([np.linspace(-8.0, 8.0, 81), [-50.0, -30.0, -20.0, 20.0, 30.0, 50.0]])
SMOOTH = sorted(name for name in ACTIVATIONS if name != "relu")
# relu is tested only where it is smooth: the kink at 0 and a margin
# larger than any step stay out of its grid.
RELU_GRID = GRID[np.abs(GRID) > 1e-2]


def _elementwise_fd(fun, u):
    """Central difference of an elementwise function (of NumPy arrays) at
    every point of ``u`` at once."""
    h = central_step(u)
    up, um = u + h, u - h
    return (fun(up) - fun(um)) / (up - um), h


def _grid(name):
    return RELU_GRID if name == "relu" else GRID


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_first_derivative_matches_central_differences(name):
    act, u = ACTIVATIONS[name], _grid(name)
    fd, h = _elementwise_fd(host(act.f), u)
    # The functions are elementwise: one call on the whole grid gives every
    # point's value.  Each point is its own one-dimensional problem, so the
    # scale is per point.
    f, df = host(act.f)(u), host(act.df)(u)
    for k in range(u.size):
        assert_fd_close(df[k:k + 1], fd[k:k + 1], h[k], scale=abs(f[k]), what=f"{name}'({u[k]})")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_second_derivative_matches_central_differences(name):
    act, u = ACTIVATIONS[name], _grid(name)
    fd, h = _elementwise_fd(host(act.df), u)
    df, d2f = host(act.df)(u), host(act.d2f)(u)
    for k in range(u.size):
        assert_fd_close(d2f[k:k + 1], fd[k:k + 1], h[k], scale=abs(df[k]), what=f"{name}''({u[k]})")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("u", [-1e4, -500.0, -50.0, 50.0, 500.0, 1e4])
def test_large_arguments_are_finite_without_overflow(name, u):
    act = ACTIVATIONS[name]
    # Overflow in exp() would be silent inf/nan without the errstate; underflow
    # to 0 in the tails is the correct result, so it stays allowed.  (The
    # array-api-strict backend computes with NumPy underneath, so the
    # errstate covers it too; the finiteness check covers any backend.)
    x = B(np.array([u]))
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        values = [act.f(x), act.df(x), act.d2f(x)]
    assert all(np.all(np.isfinite(N(v))) for v in values)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("u", [-1e300, -1e155, 1e155, 1e300])
def test_derivatives_stay_finite_where_u_squared_overflows(name, u):
    # u*u is inf here: a formula such as φ(u) (2 - u²) would give 0 * inf = NaN
    # for gelu'' although the true value is 0; no errstate, since squaring u
    # inside exp(-u²/2) overflowing to exp(-inf) = 0 is the correct path
    act = ACTIVATIONS[name]
    x = B(np.array([u]))
    with np.errstate(all="ignore"):
        values = [act.f(x), act.df(x), act.d2f(x)]
    assert all(np.all(np.isfinite(N(v))) for v in values), [N(v) for v in values]


@pytest.mark.parametrize("u", [-50.0, 50.0])
def test_saturating_limits(u):
    pos = u > 0
    sig, soft = host(ACTIVATIONS["sigmoid"].f), host(ACTIVATIONS["softplus"].f)
    assert sig(np.array([u]))[0] == pytest.approx(1.0 if pos else 0.0, abs=1e-20)
    # softplus(u) = u + log1p(exp(-u)) for u > 0 and log1p(exp(u)) for u < 0;
    # np.exp(-50) ~ 2e-22 is far below an ulp of 50 but not of the negative tail.
    expected = u if pos else np.exp(u)
    assert soft(np.array([u]))[0] == pytest.approx(expected, rel=1e-12)


def test_relu_derivatives_and_convention():
    relu = ACTIVATIONS["relu"]
    u = np.array([-3.0, -1e-300, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(host(relu.f)(u), [0.0, 0.0, 0.0, 1e-300, 2.0])
    # σ'(0) = 0 as in PyTorch, σ'' = 0 everywhere by convention (documented:
    # the distribution at the kink has no finite-dimensional Hessian).
    np.testing.assert_array_equal(host(relu.df)(u), [0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(host(relu.d2f)(u), np.zeros(5))


def test_gelu_is_the_exact_erf_form():
    u = np.linspace(-6.0, 6.0, 241)
    f, df = host(ACTIVATIONS["gelu"].f)(u), host(ACTIVATIONS["gelu"].df)(u)
    # Two evaluations of Φ (erfc here: SciPy's, or on a backend without it
    # the series/continued fraction of hessinv_ref.backend, relative error
    # below 2e-14; ndtr in scipy) agree to a few ulps of their size; the
    # product with u scales that by |u|.
    np.testing.assert_allclose(f, u * norm.cdf(u), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(df, norm.cdf(u) + u * norm.pdf(u), rtol=1e-14, atol=1e-15)
    # and not the tanh approximation, which differs by up to ~1e-3 here
    approx = 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u**3)))
    assert np.max(np.abs(f - approx)) > 1e-5


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_shapes_are_preserved_and_input_untouched(name):
    act = ACTIVATIONS[name]
    before = np.linspace(-2, 2, 6).reshape(2, 3)
    u = B(before)
    for fun in (act.f, act.df, act.d2f):
        out = fun(u)
        assert out.shape == u.shape
        # a result must not alias the input (the identity's f is the trap)
        out[...] = 7.0
        np.testing.assert_array_equal(N(u), before)


def test_get_activation_by_name_and_instance():
    assert get_activation("tanh") is ACTIVATIONS["tanh"]
    custom = ACTIVATIONS["silu"]
    assert get_activation(custom) is custom
    assert set(ACTIVATIONS) == {"identity", "tanh", "sigmoid", "softplus", "gelu", "silu", "relu"}
    assert all(isinstance(a, Activation) and a.name == n for n, a in ACTIVATIONS.items())


def test_unknown_activation_name():
    with pytest.raises(ValueError, match=r"activation: expected one of .*'tanh'.*got 'tanhh'"):
        get_activation("tanhh")


def test_activation_of_wrong_type():
    with pytest.raises(TypeError, match="activation: expected a name .* got int"):
        get_activation(3)
