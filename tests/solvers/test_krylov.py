"""The iterative baselines ``cg`` and ``minres`` on the R-operator.

They are inexact by design, so what is tested is that they say when they
failed.  A column counts as converged when its *true* relative residual
``ρ = ‖(H + εI)x - g‖ / ‖g‖`` is at most ``rtol``; ``fact.residuals`` must
be that residual (checked against the dense ``A`` here), and then the
forward error is at most ``κ ρ``, plus the rounding every solve has
(``C_ROUTE ε κ``).
"""

import warnings

import numpy as np
import pytest

from hessinv_ref import Curvature, factorize, solve
from hessinv_ref.solvers import KrylovBreakdownWarning, KrylovConvergenceWarning, KrylovSolver
from hessinv_ref.testing import random_problem

from .conftest import C_ROUTE, EPS, dense_reference, relative_error

RTOL = 1e-12


@pytest.fixture(scope="module")
def pd_curv():
    # ε = 10 dominates H: κ(H + εI) ≈ 1.3.
    return Curvature(*random_problem(5, 3, 2, layers="mixed", activation="tanh", seed=2))


@pytest.fixture(scope="module")
def indefinite_curv():
    # 19 negative eigenvalues of 96 at ε = 0.1, κ ≈ 900.
    return Curvature(*random_problem(8, 3, 2, activation="tanh", scale=2.0, seed=0))


@pytest.fixture(scope="module")
def singular_curv():
    # A softmax head with a bias: adding a constant to every class's bias
    # leaves the loss unchanged, so H has a null space and H + 0 I is singular.
    return Curvature(*random_problem(3, 3, 2, seed=1))


def true_residuals(ref, X, G):
    """``‖A x_j - g_j‖ / ‖g_j‖`` per column, with the dense ``A``."""
    X, G = X.reshape(len(X), -1), G.reshape(len(G), -1)
    return np.linalg.norm(ref.A @ X - G, axis=0) / np.linalg.norm(G, axis=0)


def assert_reported_residuals(fact, ref, X, G):
    """``fact.residuals`` are the true residuals, to the rounding of forming
    one: ``|δρ| <= C_ROUTE ε (‖A‖ ‖x‖ + ‖g‖) / ‖g‖`` per column."""
    X2, G2 = X.reshape(len(X), -1), G.reshape(len(G), -1)
    normA = np.linalg.norm(ref.A, 2)
    for j, (reported, dense) in enumerate(zip(fact.residuals, true_residuals(ref, X, G))):
        scale = (normA * np.linalg.norm(X2[:, j]) + np.linalg.norm(G2[:, j])) / np.linalg.norm(G2[:, j])
        assert abs(reported - dense) <= C_ROUTE * EPS * scale, (j, reported, dense)
    assert fact.converged == [r <= fact.rtol for r in fact.residuals]


def test_cg_converges_to_the_dense_answer(pd_curv):
    eps = 10.0
    ref = dense_reference(pd_curv, eps)
    assert ref.positive_definite and ref.kappa < 10
    G = np.random.default_rng(0).standard_normal((pd_curv.P, 3))
    fact = pd_curv.factorize(eps, "cg", rtol=RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KrylovConvergenceWarning)
        X = fact.solve(G)
    assert fact.converged == [True] * 3 and fact.breakdowns == [None] * 3
    assert_reported_residuals(fact, ref, X, G)
    # ‖r‖ <= rtol ‖g‖  =>  ‖δx‖/‖x‖ <= κ rtol.
    assert relative_error(X, ref.solve(G)) <= ref.kappa * RTOL + C_ROUTE * EPS * ref.kappa
    assert len(fact.iterations) == 3
    # κ ≈ 1.3: CG's error falls by (√κ-1)/(√κ+1) ≈ 0.07 per step, so far
    # fewer than P steps are needed (measured 10 of P = 60).
    assert all(1 <= it <= 20 for it in fact.iterations), fact.iterations
    x1 = fact.solve(G[:, 0])
    assert x1.shape == (pd_curv.P,) and len(fact.iterations) == len(fact.residuals) == 1


def test_minres_reaches_the_true_relative_residual_on_an_indefinite_problem(indefinite_curv):
    """MINRES stops on a backward error, up to κ times looser than a
    relative residual; the route restarts it until the true residual is
    below rtol, so no warning and the forward error of a relative residual."""
    eps = 0.1
    ref = dense_reference(indefinite_curv, eps)
    assert ref.n_neg >= 10 and ref.kappa < 1e4
    G = np.random.default_rng(1).standard_normal((indefinite_curv.P, 2))
    fact = indefinite_curv.factorize(eps, "minres", rtol=RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KrylovConvergenceWarning)
        X = fact.solve(G)
    assert fact.converged == [True, True]
    assert all(r <= RTOL for r in true_residuals(ref, X, G))
    assert_reported_residuals(fact, ref, X, G)
    assert relative_error(X, ref.solve(G)) <= ref.kappa * RTOL + C_ROUTE * EPS * ref.kappa
    assert len(fact.iterations) == 2 and all(it >= 1 for it in fact.iterations)


def test_cg_on_an_indefinite_problem_reports_a_breakdown(indefinite_curv):
    """CG needs H + εI > 0: a direction with pᵀAp <= 0 is a breakdown of
    its assumption, reported whatever the residual is in the end."""
    eps = 0.01
    ref = dense_reference(indefinite_curv, eps)
    assert ref.n_neg > 0
    g = np.random.default_rng(2).standard_normal(indefinite_curv.P)
    fact = indefinite_curv.factorize(eps, "cg", rtol=RTOL, maxiter=50)
    with pytest.warns(KrylovBreakdownWarning, match=r"cg: breakdown: p\^T \(H \+ damping\*I\) p = -.* <= 0 "
                      r"at iteration \d+, so H \+ damping\*I is not positive definite") as record:
        x = fact.solve(g)
    assert fact.breakdowns[0] is not None and "iteration" in fact.breakdowns[0]
    assert "minres" in str(record[0].message) and "riccati" in str(record[0].message)
    assert_reported_residuals(fact, ref, x, g)
    assert np.all(np.isfinite(x))


def test_cg_on_a_singular_matrix_breaks_down_clearly(singular_curv):
    """damping = 0 on a singular H: CG's iterates run off to inf.  The route
    stops at the breakdown and returns its last finite iterate, with a
    message that says breakdown, not one about an argument ``v`` the user
    never passed."""
    ref = dense_reference(singular_curv, 0.0)
    assert np.min(np.abs(ref.w)) < 1e-12 * np.max(np.abs(ref.w))
    g = np.random.default_rng(0).standard_normal(singular_curv.P)
    fact = singular_curv.factorize(0.0, "cg")
    with pytest.warns(KrylovBreakdownWarning, match="cg: breakdown") as record:
        x = fact.solve(g)
    message = str(record[0].message)
    assert "v:" not in message and "not converged" in message and "singular" in message
    assert np.all(np.isfinite(x)) and fact.converged == [False]
    assert_reported_residuals(fact, ref, x, g)


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_near_singular_problems_warn_with_the_true_residual(method, singular_curv):
    """g not in the range of a singular H: no x has a small residual.  SciPy's
    MINRES stops with info = 0 on a least-squares solution (residual about
    0.5 here); the route must say it did not converge."""
    ref = dense_reference(singular_curv, 0.0)
    g = np.random.default_rng(0).standard_normal(singular_curv.P)
    fact = singular_curv.factorize(0.0, method)
    with pytest.warns(KrylovConvergenceWarning, match=f"{method}: .*true relative residual") as record:
        x = fact.solve(g)
    assert fact.converged == [False] and fact.residuals[0] > 1e-3
    assert f"{fact.residuals[0]:.2e}" in str(record[0].message)
    assert_reported_residuals(fact, ref, x, g)


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_too_few_iterations_warn(method, indefinite_curv):
    fact = indefinite_curv.factorize(0.1, method, maxiter=2)
    G = np.random.default_rng(3).standard_normal((indefinite_curv.P, 2))
    with pytest.warns(KrylovConvergenceWarning) as record:
        X = fact.solve(G)
    assert X.shape == G.shape
    assert fact.iterations == [2, 2] and fact.converged == [False, False]
    messages = [str(w.message) for w in record if issubclass(w.category, KrylovConvergenceWarning)]
    assert len(messages) == 2
    for j, msg in enumerate(messages):
        assert msg.startswith(f"{method}: column {j}: ")
        assert f"true relative residual ||(H + damping*I) x - g|| / ||g|| = {fact.residuals[j]:.2e} > rtol = 1e-10" in msg
        assert "after 2 iterations (maxiter = 2 reached)" in msg and "riccati" in msg
    assert_reported_residuals(fact, dense_reference(indefinite_curv, 0.1), X, G)


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_huge_damping_is_solved_not_zeroed(method, pd_curv):
    """ε = 1e300: MINRES's squared norms overflow on the raw system and it
    returned x = 0 with info = 0.  On the system scaled by a power of two
    near 1/ε it is x = g/ε to rounding (‖H‖/ε ~ 1e-300)."""
    eps = 1e300
    g = np.random.default_rng(4).standard_normal(pd_curv.P)
    fact = pd_curv.factorize(eps, method)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning either
        x = fact.solve(g)
    assert fact.converged == [True] and fact.residuals[0] <= fact.rtol
    assert relative_error(x * eps, g) <= 4 * EPS


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_the_scaling_is_exact(method, indefinite_curv):
    """g is scaled by a power of two, which is exact: 2^k g gives exactly
    2^k x, for tiny and huge k."""
    g = np.random.default_rng(5).standard_normal(indefinite_curv.P)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KrylovConvergenceWarning)
        fact = indefinite_curv.factorize(0.1, method)
        x = fact.solve(g)
        for k in (-900, -30, 40, 900):
            np.testing.assert_array_equal(fact.solve(np.ldexp(g, k)), np.ldexp(x, k))


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_a_zero_column_is_solved_exactly(method, pd_curv):
    G = np.zeros((pd_curv.P, 2))
    G[:, 1] = 1.0
    fact = pd_curv.factorize(10.0, method)
    X = fact.solve(G)
    assert np.all(X[:, 0] == 0) and fact.iterations[0] == 0
    assert fact.residuals[0] == 0.0 and fact.converged == [True, True]


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_krylov_offers_no_logdet_inertia_or_pivots(method, pd_curv):
    fact = pd_curv.factorize(1.0, method)
    assert isinstance(fact, KrylovSolver) and fact.method == method
    for call in (fact.logdet, fact.inertia, lambda: fact.is_positive_definite, lambda: fact.pivot_condition):
        with pytest.raises(NotImplementedError, match=method):
            call()


def test_options_and_defaults(pd_curv):
    fact = pd_curv.factorize(1.0, "cg")
    assert fact.rtol == 1e-10 and fact.maxiter == 10 * pd_curv.P
    fact = pd_curv.factorize(1.0, "minres", rtol=1e-6, maxiter=np.int64(7))
    assert (fact.rtol, fact.maxiter) == (1e-6, 7) and type(fact.maxiter) is int


@pytest.mark.parametrize("method", ["cg", "minres"])
@pytest.mark.parametrize("maxiter, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                            (10.0, TypeError), ("10", TypeError), (True, TypeError)])
def test_bad_maxiter_names_the_option(method, maxiter, error, pd_curv):
    with pytest.raises(error, match=r"maxiter: expected an int >= 1, got") as info:
        pd_curv.factorize(1.0, method, maxiter=maxiter)
    assert repr(maxiter) in str(info.value) or str(maxiter) in str(info.value)


@pytest.mark.parametrize("method", ["cg", "minres"])
@pytest.mark.parametrize("rtol, error", [(0.0, ValueError), (1.0, ValueError), (-1e-3, ValueError),
                                         (float("nan"), ValueError), (float("inf"), ValueError),
                                         ("1e-6", TypeError), (True, TypeError), (1e-6j, TypeError)])
def test_bad_rtol_names_the_option(method, rtol, error, pd_curv):
    with pytest.raises(error, match=r"rtol: expected a real number in \(0, 1\), got"):
        pd_curv.factorize(1.0, method, rtol=rtol)


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_unknown_options_are_named_with_the_route_options(method, pd_curv):
    net = pd_curv.net
    with pytest.raises(TypeError, match=rf"method '{method}': unknown option 'tol'; "
                                        rf"the options of '{method}' are \['rtol', 'maxiter'\]"):
        pd_curv.factorize(1.0, method, tol=1e-6)
    with pytest.raises(TypeError, match="unknown options 'atol', 'x0'"):
        solve(net, net.init(seed=0), np.zeros((1, net.n_in)), np.zeros(1, dtype=int),
              np.ones(net.n_params), damping=1.0, method=method, x0=None, atol=0.0)


def test_solve_and_factorize_pass_the_options_through():
    net, params, X, y = random_problem(3, 2, 2, seed=8)
    g = np.random.default_rng(4).standard_normal(net.n_params)
    fact = factorize(net, params, X, y, damping=5.0, method="cg", rtol=1e-8, maxiter=40)
    assert (fact.rtol, fact.maxiter) == (1e-8, 40)
    np.testing.assert_array_equal(
        solve(net, params, X, y, g, damping=5.0, method="cg", rtol=1e-8, maxiter=40), fact.solve(g)
    )
