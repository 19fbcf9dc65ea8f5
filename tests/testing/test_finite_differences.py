"""The central-difference helpers on functions with known derivatives."""

import numpy as np
import pytest

from hessinv_ref.testing import central_directional, central_error_bound, central_jacobian, central_step
from hessinv_ref.testing.finite_differences import EPS


def f(x):
    """R^3 -> R^2 with a hand-written Jacobian."""
    return np.array([np.sin(x[0]) * x[1], np.exp(x[2]) + x[0] ** 3])


def jac_f(x):
    return np.array([[np.cos(x[0]) * x[1], np.sin(x[0]), 0.0], [3 * x[0] ** 2, 0.0, np.exp(x[2])]])


X0 = np.array([0.3, -1.2, 0.7])


def test_step_is_cbrt_eps_times_scale():
    h = central_step(np.array([0.0, 0.5, -4.0, 1e6]))
    np.testing.assert_allclose(h, np.cbrt(EPS) * np.array([1.0, 1.0, 4.0, 1e6]), rtol=1e-15)


def test_jacobian_of_a_known_function():
    h = central_step(X0)
    J = central_jacobian(f, X0)
    assert J.shape == (2, 3)
    # the derivatives of f are O(3) here, so a safety of 100 over the bound
    # with scale 3 is ample, and far below the O(1) error of a wrong Jacobian
    err = np.abs(J - jac_f(X0)).max()
    assert err <= 100 * central_error_bound(h, 3.0)
    assert err < 1e-8


def test_jacobian_of_a_scalar_function_and_error_shrinks_as_h_squared():
    g = lambda x: float(np.sum(np.sin(x)))  # noqa: E731
    for h, expected_err in ((1e-2, 1e-2**2 / 6), (1e-3, 1e-3**2 / 6)):
        J = central_jacobian(g, X0, h)
        assert J.shape == (1, 3)
        err = np.abs(J[0] - np.cos(X0)).max()
        # truncation dominates at these steps: the error is the h^2/6 |f'''| term
        assert 0.2 * expected_err < err <= expected_err


def test_directional_derivative():
    d = np.array([1.0, -2.0, 0.5])
    got = central_directional(f, X0, d)
    np.testing.assert_allclose(got, jac_f(X0) @ d, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"d: expected shape \(3,\)"):
        central_directional(f, X0, d[:2])


def test_bound_balances_truncation_and_rounding():
    h = np.cbrt(EPS)
    assert central_error_bound(h, 1.0) == pytest.approx(h * h / 6 + EPS / h)
    # the default step is near the minimiser of the bound
    assert central_error_bound(h, 1.0) < central_error_bound(10 * h, 1.0)
    assert central_error_bound(h, 1.0) < central_error_bound(h / 10, 1.0)


def test_x_must_be_a_vector():
    with pytest.raises(ValueError, match=r"x: expected a flat vector of shape \(n,\), got shape \(2, 2\)"):
        central_jacobian(f, np.zeros((2, 2)))
