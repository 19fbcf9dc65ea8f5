"""Every exact route against the dense oracle, and the Factorization contract.

The central property (:func:`test_exact_routes_agree_with_dense`): on drawn
networks (mixed Dense/Residual, every activation, depth 1-8, widths 1-4,
batch 1-3, both heads, biases on/off, ``ε`` log-uniform in ``[1e-3, 10]``,
one to three right-hand sides), ``riccati``, ``ldu`` and ``banded`` agree
with ``dense`` within a bound stated in the conditioning; ``logdet``,
``inertia`` and ``is_positive_definite`` equal those of the dense
eigenvalues; ``banded`` is backward stable; and a pivot warning is issued
exactly when the documented rule says so.  The tolerances and why they are
what they are live in ``tests/solvers/conftest.py``.

The routes run on the active backend (right-hand sides moved there with
``B``), the oracles on NumPy copies.  ``banded`` (LAPACK's band LU) and
``as_operator`` (a SciPy ``LinearOperator``) exist on NumPy only: on another
backend the properties cover ``riccati``, ``ldu`` and ``dense``, and
:func:`test_numpy_only_routes_refuse_on_other_backends` checks the refusal.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given

import hessinv_ref
from _backend import ON_NUMPY, B, N, numpy_only, refuses
from hessinv_ref import Curvature, IllConditionedPivotWarning, SingularPivotError
from hessinv_ref.backend import get_backend
from hessinv_ref.solvers import RiccatiFactorization
from hessinv_ref.testing import random_problem
from solvers.conftest import (
    BACKEND_ROUTES,
    C_ROUTE,
    EPS,
    EXACT_ROUTES,
    KAPPA_MAX,
    dense_reference,
    factorize_recording,
    forward_bound,
    relative_error,
    route_bound,
    solve_cases,
    term_scale,
)

ROUTES = EXACT_ROUTES + ("dense",)
BANDED_IS_NUMPY_ONLY = numpy_only("the banded LU (method='banded') is LAPACK's, through SciPy")


def _routes(routes):
    """``routes`` for ``parametrize``, ``banded`` marked NumPy-only."""
    return [pytest.param(r, marks=BANDED_IS_NUMPY_ONLY) if r == "banded" else r for r in routes]


def _available(routes):
    """The routes of ``routes`` that the active backend has."""
    return tuple(r for r in routes if r != "banded" or ON_NUMPY)


def check_routes(case):
    """Run every check of the central property on one drawn case and return
    the measured ratios ``error / tolerance`` (for reporting)."""
    curv = case.curvature()
    eps = case.damping
    ref = dense_reference(curv, eps)
    assume(ref.kappa < KAPPA_MAX)
    P = curv.P
    g = case.rhs(P)
    gb = B(g)
    x_dense = N(curv.factorize(eps, "dense").solve(gb))
    # The oracle itself: LU against an independent LAPACK solve (eigvalsh's
    # matrix); both backward stable, so within 2 C ε κ of each other.
    assert relative_error(x_dense, ref.solve(g)) <= 2 * C_ROUTE * EPS * ref.kappa

    measured, solutions = {}, {}
    for method in BACKEND_ROUTES:
        fact, ill = factorize_recording(curv, eps, method)
        # factorization.py's rule: warn iff some pivot has rcond < sqrt(eps).
        assert bool(ill) == (fact.pivot_condition > 1 / math.sqrt(EPS)), (
            f"{method}: warned={bool(ill)} but pivot_condition={fact.pivot_condition:.3g}"
        )
        x = N(fact.solve(gb))
        assert x.shape == g.shape and x.dtype == np.float64
        err, tol = relative_error(x, x_dense), route_bound(ref.kappa, fact)
        assert err <= tol, (
            f"{method}: relative error {err:.3e} > {tol:.3e} (kappa {ref.kappa:.3g}, "
            f"pivot_condition {fact.pivot_condition:.3g})"
        )
        measured[method] = dict(
            err=err,
            err_over_tol=err / tol,
            err_over_eps_kappa=err / (EPS * ref.kappa),
            err_over_documented=err / (EPS * max(ref.kappa, fact.pivot_condition)),
            pd=ref.positive_definite,
        )
        solutions[method] = (x, tol)
        if ref.positive_definite and method == "riccati":
            # PD: the Riccati pivots are Schur complements of H + εI, never
            # worse conditioned (κ_1 <= p κ_2 for the 1-norm estimate), and
            # the route is as accurate as the dense solve.
            p_max = max(b.Jx.shape[1] for b in curv.blocks)
            assert fact.pivot_condition <= p_max * ref.kappa * (1 + 1e-6)
            assert err <= C_ROUTE * EPS * ref.kappa, f"riccati on PD: {err:.3e}"
            assert all(pv.kind == "cholesky" for pv in fact.pivots)

        check_logdet_and_inertia(fact, ref, tol)
        if method == "banded":
            measured["banded"]["backward_error"] = check_backward_error(curv, fact, ref, x, g)

    # The routes against each other.  Each route's bound already budgets for
    # two solves' errors (its own and the dense LU's), so two routes must
    # agree within the larger of their bounds, not the sum: this is not
    # implied by the comparisons with dense above.
    for i, a in enumerate(BACKEND_ROUTES):
        for b in BACKEND_ROUTES[i + 1:]:
            (xa, ta), (xb, tb) = solutions[a], solutions[b]
            assert relative_error(xa, xb) <= max(ta, tb), f"{a} vs {b}"

    dense = curv.factorize(eps, "dense")
    check_logdet_and_inertia(dense, ref, forward_bound(ref.kappa, dense))
    return measured


def check_logdet_and_inertia(fact, ref, tol):
    """``logdet``/``inertia``/``is_positive_definite`` against the eigenvalues.

    ``log|det(A + δA)| - log|det A| = tr(A^{-1} δA) + ...``, at most
    ``P κ ‖δA‖/‖A‖ ≈ P · tol`` (``tol`` is the route's forward-error bound,
    ``κ`` times its relative backward error); the sum of ``P`` logarithms
    adds ``ε Σ|log|λ_i||`` of rounding.  Signs and counts are exact: every
    eigenvalue is at least ``|λ|_max / KAPPA_MAX`` from zero."""
    sign, logabs = fact.logdet()
    d_sign, d_logabs = np.linalg.slogdet(ref.A)
    assert sign == d_sign, f"{fact.method}: sign {sign} != {d_sign}"
    w = ref.w
    logdet_tol = w.size * tol + C_ROUTE * EPS * float(np.sum(np.abs(np.log(np.abs(w)))))
    assert abs(logabs - d_logabs) <= logdet_tol, f"{fact.method}: logdet {logabs} vs {d_logabs}"
    assert fact.inertia() == (w.size - ref.n_neg, ref.n_neg, 0), fact.method
    assert fact.is_positive_definite == ref.positive_definite


def check_backward_error(curv, fact, ref, x, g):
    """``banded`` is backward stable, and ``backward_error`` reports it.

    The normwise backward error ``η = ‖A x - g‖_1 / (‖A‖_1 ‖x‖_1 + ‖g‖_1)``
    with the dense ``A`` is at most ``C_ROUTE · ε · max(1, ρ)``, ``ρ`` the
    term scale of :func:`term_scale` (measured: <= 3.4 ε over 1500 draws).
    The library's ``backward_error`` forms the residual with the
    R-operator instead; it can exceed ``η`` by exactly the R-operator's own
    disagreement with ``A x`` (its rounding), which is measured here and
    allowed for: on a saturated softmax (``p ≈ 1 - 1e-11``) that rounding
    alone gives ``backward_error ≈ 600 ε`` for every route, dense included.
    """
    X, G = x.reshape(curv.P, -1), g.reshape(curv.P, -1)
    A = ref.A
    normA = np.linalg.norm(A, 1)
    den = normA * np.abs(X).sum(axis=0) + np.abs(G).sum(axis=0)
    eta = np.abs(A @ X - G).sum(axis=0) / den
    rho = term_scale(curv, X, G, fact.damping)
    assert eta.max() <= C_ROUTE * EPS * max(1.0, rho), f"banded: backward error {eta.max() / EPS:.3g} eps"

    est = fact.norm_estimate()
    # onenormest gives a lower bound, in practice exact or within 3x.
    assert normA / 3 <= est <= normA * (1 + 1e-12)
    rop = np.abs(N(curv.hvp(B(X))) - (A - fact.damping * np.eye(curv.P)) @ X).sum(axis=0)
    allowed = (C_ROUTE * EPS * max(1.0, rho) * den + rop) / (est * np.abs(X).sum(axis=0) + np.abs(G).sum(axis=0))
    be = fact.backward_error(B(x), B(g))
    assert be <= allowed.max() * (1 + 1e-9), f"backward_error {be:.3g} > {allowed.max():.3g}"
    return float(eta.max() / EPS)


@given(solve_cases())
def test_exact_routes_agree_with_dense(case):
    check_routes(case)


# -- indefinite problems with many negative eigenvalues ------------------------


def test_inertia_and_logdet_with_many_negative_eigenvalues():
    # A tall tanh chain with gain 2 and small damping: a third of the
    # eigenvalues of H + εI are negative (measured: 32 of 96).
    curv = Curvature(*random_problem(8, 3, 2, activation="tanh", scale=2.0, seed=0))
    eps = 1e-3
    ref = dense_reference(curv, eps)
    assert ref.n_neg >= 25 and ref.kappa < 1e6, (ref.n_neg, ref.kappa)
    for method in _available(ROUTES):
        fact, _ = factorize_recording(curv, eps, method)
        check_logdet_and_inertia(fact, ref, route_bound(ref.kappa, fact))
        assert not fact.is_positive_definite
    riccati = curv.factorize(eps, "riccati")
    # Sylvester: the pivots' negative eigenvalues add up to H + εI's.
    assert sum(pv.n_neg for pv in riccati.pivots) == ref.n_neg
    assert any(pv.kind == "lu" for pv in riccati.pivots)


def test_positive_definite_case_is_reported_positive_definite():
    curv = Curvature(*random_problem(5, 3, 2, layers="mixed", activation="tanh", seed=2))
    eps = 10.0  # far above |λ_min(H)|
    ref = dense_reference(curv, eps)
    assert ref.positive_definite
    for method in _available(ROUTES):
        fact = curv.factorize(eps, method)
        assert fact.is_positive_definite
        assert fact.inertia() == (curv.P, 0, 0)


# -- factor once, solve many ---------------------------------------------------

_LAYER_WORK = ("forward", "vjp", "jvp", "second_order", "jacobians", "curvature",
               "stacked_blocks", "forward_run", "vjp_run")


def _forbid_layer_work(monkeypatch):
    """Make every per-layer computation raise, so that any recomputation of
    the passes or the blocks fails the test."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a pass over the layers was repeated")

    for cls in vars(hessinv_ref.layers).values():
        if isinstance(cls, type) and issubclass(cls, hessinv_ref.layers.Layer):
            for name in _LAYER_WORK:
                if name in vars(cls):
                    monkeypatch.setattr(cls, name, forbidden)


def _forbid_factoring(monkeypatch):
    """Make each route's factorization step raise (the solve phase must only
    use what ``__init__`` stored).  These are the routes' current internals:
    if one is renamed, this fails loudly rather than passing silently."""
    from hessinv_ref.solvers import banded as banded_mod
    from hessinv_ref.solvers import ldu as ldu_mod
    from hessinv_ref.solvers import riccati as riccati_mod

    def forbidden(*args, **kwargs):
        raise AssertionError("solve refactored")

    monkeypatch.setattr(riccati_mod, "SymmetricPivot", forbidden)
    monkeypatch.setattr(ldu_mod, "_lu_pivot", forbidden)
    monkeypatch.setattr(banded_mod, "_band_routines", forbidden)  # LAPACK gbtrf/gbtrs lookup
    # the active backend's dense factorizations (dense's LU, the pivots' LU,
    # Cholesky, eigenvalues): solving may only apply stored factors
    be = get_backend()
    for name in ("lu", "cholesky", "eigvalsh"):
        monkeypatch.setattr(be, name, forbidden)
    for cls in (hessinv_ref.solvers.RiccatiFactorization, hessinv_ref.solvers.LDUFactorization,
                hessinv_ref.solvers.BandedFactorization, hessinv_ref.DenseFactorization):
        monkeypatch.setattr(cls, "__init__", forbidden)


@pytest.mark.parametrize("method", _routes(ROUTES))
def test_factor_once_then_solve_many_right_hand_sides(method, monkeypatch):
    curv = Curvature(*random_problem(6, 3, 2, layers="mixed", head="mse", seed=4))
    eps = 0.05
    ref = dense_reference(curv, eps)
    fact = curv.factorize(eps, method)
    blocks = curv._blocks
    assert blocks is not None

    _forbid_layer_work(monkeypatch)
    _forbid_factoring(monkeypatch)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((curv.P, 4))
    tol = route_bound(ref.kappa, fact)
    X = N(fact.solve(B(G)))
    assert X.shape == (curv.P, 4)
    assert relative_error(X, ref.solve(G)) <= tol
    for j in range(4):  # one column at a time, as (P,) and as (P, 1)
        assert relative_error(fact.solve(B(G[:, j])), X[:, j]) <= 2 * tol
        assert fact.solve(B(G[:, j:j + 1])).shape == (curv.P, 1)
    assert N(fact.solve(B(np.zeros(curv.P)))).tolist() == [0.0] * curv.P
    assert curv._blocks is blocks


def test_damping_sweep_reuses_the_cached_blocks(monkeypatch):
    curv = Curvature(*random_problem(5, 3, 2, activation="tanh", scale=1.5, seed=5))
    blocks = curv.blocks
    _forbid_layer_work(monkeypatch)  # the sweep must not revisit the layers
    g = np.random.default_rng(1).standard_normal(curv.P)
    for eps in (10.0, 1.0, 0.1, 0.01):
        ref = dense_reference(curv, eps)
        for method in BACKEND_ROUTES:
            fact, _ = factorize_recording(curv, eps, method)
            assert fact.damping == eps and fact.curvature is curv
            assert relative_error(fact.solve(B(g)), ref.solve(g)) <= route_bound(ref.kappa, fact)
        assert curv.blocks is blocks


# -- singular and ill-conditioned problems -------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("method", _routes(ROUTES))
def test_singular_hessian_raises_naming_the_layer(method, depth):
    # A softmax head with a bias: shifting every class's bias by the same
    # amount leaves the loss unchanged, so H has a null space; ε = 0.
    curv = Curvature(*random_problem(depth, 3, 2, head="softmax", bias=True, seed=0))
    w = np.linalg.eigvalsh(N(curv.hessian()))
    assert np.min(np.abs(w)) <= curv.P * EPS * np.max(np.abs(w))  # really singular
    with pytest.raises(SingularPivotError) as info:
        curv.factorize(0.0, method)
    err = info.value
    assert err.method == method
    assert "condition estimate" in str(err)
    assert err.rcond < EPS  # the rule: rcond < eps, whatever the pivot's size
    # the matrix is at fault, and the message says so (tests/solvers/test_pivot_rule.py)
    assert err.cause == "matrix" and "H + damping*I itself is numerically singular" in str(err)
    if method in ("riccati", "ldu"):
        assert isinstance(err.layer, int) and 1 <= err.layer <= depth
        assert f"layer {err.layer}" in str(err)
    else:
        assert err.layer is None
    if method == "riccati":
        # The head is eliminated first, and its own block carries the null direction.
        assert err.layer == depth


@pytest.mark.parametrize("method", _routes(ROUTES))
def test_ill_conditioned_pivot_warns_and_still_solves(method):
    # The same null direction made nonsingular by a tiny damping:
    # κ(H + εI) ≈ ‖H‖/ε ≈ 2e9, between the warning threshold 1/sqrt(eps)
    # ≈ 7e7 and the error threshold 1/eps ≈ 4.5e15.
    curv = Curvature(*random_problem(1, 3, 2, head="softmax", bias=True, seed=0))
    eps = 1e-9
    ref = dense_reference(curv, eps)
    assert 1e8 < ref.kappa < 1e11
    with pytest.warns(IllConditionedPivotWarning, match="condition estimate") as record:
        fact = curv.factorize(eps, method)
    assert fact.pivot_condition > 1 / math.sqrt(EPS)
    if method in ("riccati", "ldu"):
        assert any("layer 1" in str(w.message) for w in record)
    g = np.random.default_rng(0).standard_normal(curv.P)
    assert relative_error(fact.solve(B(g)), ref.solve(g)) <= route_bound(ref.kappa, fact)


@pytest.mark.parametrize("method", _routes(EXACT_ROUTES))
def test_near_singular_deep_problem_is_never_silently_wrong(method):
    """The contract of factorization.py: a route either refuses
    (``SingularPivotError``), or warns, or is accurate.  Here (softmax head
    with a bias, depth 2, ε = 1e-9, κ ≈ 2e9) the Riccati sweep eliminates the
    head first and its gains blow up the next pivot: it refuses, while
    ``ldu`` and ``banded`` warn and solve."""
    curv = Curvature(*random_problem(2, 3, 2, head="softmax", bias=True, seed=3))
    eps = 1e-9
    ref = dense_reference(curv, eps)
    g = np.random.default_rng(0).standard_normal(curv.P)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", IllConditionedPivotWarning)
        try:
            fact = curv.factorize(eps, method)
        except SingularPivotError as err:
            assert f"layer {err.layer}" in str(err)
            return
    err = relative_error(fact.solve(B(g)), ref.solve(g))
    warned = any(issubclass(w.category, IllConditionedPivotWarning) for w in record)
    assert warned or err <= C_ROUTE * EPS * ref.kappa
    assert err <= route_bound(ref.kappa, fact)


# -- the rest of the Factorization interface -----------------------------------


@pytest.mark.parametrize("method", _routes(ROUTES))
def test_matvec_and_backward_error_follow_their_definitions(method):
    curv = Curvature(*random_problem(4, 3, 2, layers="mixed", seed=6))
    eps = 0.1
    ref = dense_reference(curv, eps)
    fact = curv.factorize(eps, method)
    rng = np.random.default_rng(2)
    V = rng.standard_normal((curv.P, 2))
    # matvec is (H + εI) v by the R-operator: rounding relative to |A| |v|.
    scale = float(np.max(np.abs(ref.A) @ np.abs(V)))
    assert np.max(np.abs(N(fact.matvec(B(V))) - ref.A @ V)) <= 10 * curv.P * EPS * scale

    # A deliberately perturbed solution: the backward error is then far
    # above rounding and must equal the formula (Rigal-Gaches) with the
    # dense matrix, up to the norm estimate (exact here: onenormest on a
    # small matrix; we check that too) and rounding of the residual.
    g = rng.standard_normal(curv.P)
    x = ref.solve(g) * (1 + 1e-6 * rng.standard_normal(curv.P))
    normA = np.linalg.norm(ref.A, 1)
    assert fact.norm_estimate() == pytest.approx(normA, rel=1e-12)
    want = np.abs(ref.A @ x - g).sum() / (normA * np.abs(x).sum() + np.abs(g).sum())
    assert want > 1e-9
    assert fact.backward_error(B(x), B(g)) == pytest.approx(want, rel=1e-6)
    # (P, k): the largest over the columns.
    X2 = np.stack([x, ref.solve(g)], axis=1)
    G2 = np.stack([g, g], axis=1)
    assert fact.backward_error(B(X2), B(G2)) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="x"):
        fact.backward_error(B(X2), B(g))


@pytest.mark.parametrize("method", _routes(ROUTES))
def test_repr_names_the_route(method):
    curv = Curvature(*random_problem(2, 2, 1, seed=0))
    fact = curv.factorize(0.5, method)
    assert fact.method == method
    assert method in repr(fact) and "damping=0.5" in repr(fact)


def test_pivot_condition_is_one_over_the_smallest_rcond():
    curv = Curvature(*random_problem(4, 3, 2, seed=7))
    fact = RiccatiFactorization(curv, 0.1)
    assert len(fact.pivot_rconds) == curv.depth
    assert fact.pivot_condition == pytest.approx(1 / min(p.rcond for p in fact.pivots))


# -- the NumPy-only parts refuse on other backends ---------------------------------


@pytest.mark.skipif(ON_NUMPY, reason="NumPy has every route; the refusal is for other backends")
def test_numpy_only_routes_refuse_on_other_backends():
    """``banded``, the Krylov baselines and the ``LinearOperator`` views name
    the backend instead of copying to the host, and the routes that exist
    here still work."""
    net, params, X, y = random_problem(3, 2, 2, seed=0)
    curv = Curvature(net, params, X, y)
    with refuses("banded"):
        curv.factorize(0.1, "banded")
    with refuses("banded"):
        hessinv_ref.solvers.BandedFactorization(curv, 0.1)
    g = B(np.ones(curv.P))
    for method in ("cg", "minres"):
        with refuses(method):
            hessinv_ref.solve(net, params, X, y, g, damping=0.1, method=method)
    with refuses("LinearOperator"):
        curv.operator(0.1)
    fact = curv.factorize(0.1, "riccati")
    with refuses():
        fact.as_operator()
    assert fact.solve(g).shape == (curv.P,)
