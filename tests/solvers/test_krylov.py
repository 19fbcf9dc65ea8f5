"""The iterative baselines ``cg`` and ``minres`` on the R-operator.

They are inexact by design: a solution whose relative residual (CG) or
normwise backward error (MINRES) is at most ``rtol`` has a forward error of
at most about ``κ · rtol``, so that is the tolerance against the dense
answer, plus the rounding every solve has (``C_ROUTE ε κ``).
"""

import warnings

import numpy as np
import pytest

from hessinv_ref import Curvature, factorize, solve
from hessinv_ref.solvers import KrylovConvergenceWarning, KrylovSolver
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


def test_cg_converges_to_the_dense_answer(pd_curv):
    eps = 10.0
    ref = dense_reference(pd_curv, eps)
    assert ref.positive_definite and ref.kappa < 10
    G = np.random.default_rng(0).standard_normal((pd_curv.P, 3))
    fact = pd_curv.factorize(eps, "cg", rtol=RTOL)
    X = fact.solve(G)
    # ‖r‖ <= rtol ‖g‖  =>  ‖δx‖/‖x‖ <= κ rtol (measured 0.34 κ rtol).
    assert relative_error(X, ref.solve(G)) <= 2 * ref.kappa * RTOL + C_ROUTE * EPS * ref.kappa
    assert len(fact.iterations) == 3
    # κ ≈ 1.3: CG's error falls by (√κ-1)/(√κ+1) ≈ 0.07 per step, so far
    # fewer than P steps are needed (measured 10 of P = 60).
    assert all(1 <= it <= 20 for it in fact.iterations), fact.iterations
    x1 = fact.solve(G[:, 0])
    assert x1.shape == (pd_curv.P,) and len(fact.iterations) == 1


def test_minres_converges_on_an_indefinite_problem(indefinite_curv):
    eps = 0.1
    ref = dense_reference(indefinite_curv, eps)
    assert ref.n_neg >= 10 and ref.kappa < 1e4
    G = np.random.default_rng(1).standard_normal((indefinite_curv.P, 2))
    fact = indefinite_curv.factorize(eps, "minres", rtol=RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KrylovConvergenceWarning)
        X = fact.solve(G)
    # MINRES stops on a normwise backward error <= rtol: forward error
    # <= about 2 κ rtol (measured 0.4 κ rtol).
    assert relative_error(X, ref.solve(G)) <= 4 * ref.kappa * RTOL + C_ROUTE * EPS * ref.kappa
    assert len(fact.iterations) == 2 and all(it >= 1 for it in fact.iterations)


def test_cg_is_not_for_indefinite_problems(indefinite_curv):
    """CG on an indefinite matrix: it may stop anywhere; the route must
    either converge or say so, never return garbage silently."""
    eps = 0.01
    ref = dense_reference(indefinite_curv, eps)
    assert ref.n_neg > 0
    g = np.random.default_rng(2).standard_normal(indefinite_curv.P)
    fact = indefinite_curv.factorize(eps, "cg", rtol=RTOL, maxiter=50)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", KrylovConvergenceWarning)
        x = fact.solve(g)
    warned = any(issubclass(w.category, KrylovConvergenceWarning) for w in record)
    residual = np.linalg.norm(ref.A @ x - g) / np.linalg.norm(g)
    assert warned or residual <= 10 * RTOL


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_too_few_iterations_warn(method, indefinite_curv):
    fact = indefinite_curv.factorize(0.1, method, maxiter=2)
    G = np.random.default_rng(3).standard_normal((indefinite_curv.P, 2))
    with pytest.warns(KrylovConvergenceWarning, match=f"{method}: no convergence.*in 2 iterations"):
        X = fact.solve(G)
    assert X.shape == G.shape
    assert fact.iterations == [2, 2]


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
    fact = pd_curv.factorize(1.0, "minres", rtol=1e-6, maxiter=7)
    assert (fact.rtol, fact.maxiter) == (1e-6, 7)
    for bad in (0.0, 1.0, -1e-3):
        with pytest.raises(ValueError, match="rtol"):
            pd_curv.factorize(1.0, "cg", rtol=bad)
    with pytest.raises(TypeError):
        pd_curv.factorize(1.0, "cg", tol=1e-6)  # not an option of the Krylov routes


def test_solve_and_factorize_pass_the_options_through():
    net, params, X, y = random_problem(3, 2, 2, seed=8)
    g = np.random.default_rng(4).standard_normal(net.n_params)
    fact = factorize(net, params, X, y, damping=5.0, method="cg", rtol=1e-8, maxiter=40)
    assert (fact.rtol, fact.maxiter) == (1e-8, 40)
    np.testing.assert_array_equal(
        solve(net, params, X, y, g, damping=5.0, method="cg", rtol=1e-8, maxiter=40), fact.solve(g)
    )
