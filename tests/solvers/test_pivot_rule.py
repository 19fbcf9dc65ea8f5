"""The pivot rule (``hessinv_ref.factorization``): a route refuses only when
``H + εI`` is numerically singular at the working precision, or when its own
elimination breaks down on a nonsingular matrix, and then it says which.

* :func:`test_damping_sweep_judges_the_problem_not_the_lift`: on a few drawn
  networks, ``ε`` from ``1e-12 ‖H‖`` to ``1e300``, in float64 and float32,
  every exact route either solves within its conditioning bound, or raises
  with the right verdict: "the matrix" only where ``κ_2(H + εI)`` is within
  a factor ``16 P`` of ``1/eps``, "the route" only with a named alternative
  that does factor it.  Where ``H + εI`` is positive definite and well
  conditioned (the Levenberg-Marquardt case of a large ``ε``) every route
  solves without a warning; ``banded`` and ``dense`` never refuse a matrix
  with ``κ_2 <= 1/(16 P eps)``.  A damping the precision cannot hold (above
  ``3.4e38`` in float32) is a ``ValueError``.
* a truly singular ``H`` (softmax head with a bias, ``ε = 0``): every route
  raises, and the message names the matrix;
* a route that breaks down on a nonsingular matrix (found by search: an
  exactly singular Riccati and LDU pivot where ``κ(H) ≈ 3e6``): the message
  names the route's fault and a route that solves it, which does.

The reference is the float64 dense solve of the float64 ``H`` (NumPy); the
float32 problems are the float64 ones rounded once (as in
``tests/test_float32.py``).
"""

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _backend import ON_NUMPY, B, N
from hessinv_ref import Curvature, IllConditionedPivotWarning, SingularPivotError
from hessinv_ref import factorization
from hessinv_ref.testing import random_problem
from hessinv_ref.testing.strategies import architectures, seeds

from .conftest import BACKEND_ROUTES, C_ROUTE, relative_error, riccati_growth

ROUTES = BACKEND_ROUTES + ("dense",)

NETWORKS = {
    "tanh-softmax-bias": dict(depth=3, width=3, batch=2, activation="tanh", head="softmax", bias=True, seed=0),
    "mixed-sigmoid-mse": dict(depth=4, width=3, batch=2, layers="mixed", activation="sigmoid", head="mse",
                              scale=2.0, seed=157),
    "residual-gelu-mse": dict(depth=6, width=2, batch=3, layers="residual", activation="gelu", head="mse", seed=2),
    "deep-mixed-softmax": dict(depth=8, width=2, batch=2, layers="mixed",
                               activation=["tanh", "silu", "softplus", "gelu", "sigmoid", "tanh", "relu"],
                               head="softmax", bias=False, scale=1.5, seed=4),
}
"""Indefinite at small ``ε`` (10 to 23 negative eigenvalues); in the first,
the most negative eigenvalue is ``-‖H‖_2``, so ``ε = ‖H‖_2`` makes
``H + εI`` exactly singular: the sweep meets a singular matrix too."""

RELATIVE_DAMPINGS = (-12, -8, -4, -2, 0, 2, 4, 7, 10, 12, 15, 20, 50, 100, 200)
"""``ε = ‖H‖_2 · 10^k``; then ``ε = 1e300`` as well."""

C_SINGULAR = 16.0
"""A "matrix is singular" verdict needs ``κ_2 >= 1/(C_SINGULAR · P · eps)``:
the verdict is ``κ_1 >= 1/eps`` for an estimate ``κ_1 <= P κ_2`` (the
1-norm and 2-norm condition numbers differ by at most the size), with room
for the rounding of the float32 ``H`` and of the estimate."""


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _bound(kappa, fact, eps):
    """The documented accuracy: ``C_ROUTE eps max(κ, pivot_condition)``, and
    for ``riccati`` at least ``C_ROUTE eps κ (1 + max ‖K_l‖)`` (see
    ``conftest.route_bound``), with the working precision's ``eps``."""
    bound = C_ROUTE * eps * max(kappa, fact.pivot_condition)
    if fact.method == "riccati":
        bound = max(bound, C_ROUTE * eps * kappa * riccati_growth(fact))
    return bound


def _factorize(curv, damping, method):
    """``(fact or SingularPivotError, IllConditionedPivotWarnings)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IllConditionedPivotWarning)
        try:
            out = curv.factorize(damping, method)
        except SingularPivotError as err:
            out = err
    return out, [w for w in caught if issubclass(w.category, IllConditionedPivotWarning)]


def _kappa(w, damping):
    """``κ_2(H + εI)`` from the float64 eigenvalues ``w`` of ``H``."""
    s = np.abs(w + damping)
    return math.inf if s.min() == 0 else float(s.max() / s.min())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_damping_sweep_judges_the_problem_not_the_lift(name, dtype):
    problem = NETWORKS[name]
    c64 = Curvature(*random_problem(**problem))
    curv = c64 if dtype == "float64" else Curvature(*random_problem(**problem, dtype=dtype))
    H = N(c64.hessian())
    w = np.linalg.eigvalsh(H)
    P, eps = c64.P, _eps(dtype)
    norm_H = float(np.max(np.abs(w)))
    g = np.random.default_rng(0).standard_normal(P)
    largest = float(np.finfo(dtype).max)
    seen = set()  # (verdict, route) pairs met, to show the sweep covers what it claims
    for damping in [norm_H * 10.0**k for k in RELATIVE_DAMPINGS] + [1e300]:
        if damping > largest:
            for method in ROUTES:
                with pytest.raises(ValueError, match=r"damping: expected at most .*float32"):
                    curv.factorize(damping, method)
            seen.add(("unrepresentable", None))
            continue
        kappa = _kappa(w, damping)
        x_ref = np.linalg.solve(H + damping * np.eye(P), g)
        positive_definite = bool(w[0] + damping > 0)
        for method in ROUTES:
            out, ill = _factorize(curv, damping, method)
            where = f"{method}, {dtype}, damping {damping:.3g}, kappa {kappa:.3g}"
            if isinstance(out, SingularPivotError):
                seen.add((out.cause, method))
                assert out.cause in ("matrix", "route"), f"{where}: not judged: {out}"
                assert out.precision == dtype and f"in {dtype}" in str(out), where
                if out.cause == "matrix":
                    assert kappa >= 1 / (C_SINGULAR * P * eps), f"{where}: a well-conditioned matrix called singular"
                    assert "H + damping*I itself is numerically singular" in str(out), where
                else:
                    alt = out.alternative
                    assert method != "dense" and alt in ROUTES and alt != method, where
                    assert f"use method={alt!r}" in str(out), where
                    fact, _ = _factorize(curv, damping, alt)
                    assert not isinstance(fact, SingularPivotError), f"{where}: the named {alt} fails too"
                    x = fact.solve(B(g.astype(dtype)))
                    assert relative_error(x, x_ref) <= _bound(kappa, fact, eps), f"{where}: {alt}"
                if method in ("banded", "dense"):
                    assert kappa > 1 / (C_SINGULAR * P * eps), f"{where}: refused a nonsingular matrix"
                continue
            seen.add(("solved", method))
            fact = out
            assert bool(ill) == (fact.pivot_condition > 1 / math.sqrt(eps)), where  # warn iff the rule says
            if positive_definite and kappa <= 0.01 / math.sqrt(eps):
                assert not ill, f"{where}: warned on a well-conditioned positive definite matrix"
            x = fact.solve(B(g.astype(dtype)))
            assert N(x).dtype == np.dtype(dtype)
            err = relative_error(x, x_ref)
            assert err <= _bound(kappa, fact, eps), f"{where}: error {err:.3g}"
    # the large dampings were solved by every route, in both precisions
    assert {("solved", m) for m in ROUTES} <= seen
    if dtype == "float32":
        assert ("unrepresentable", None) in seen


@settings(max_examples=10)
@given(
    arch=architectures(6, 3, 3, include_relu=True, max_classes=3),
    seed=seeds(),
    dtype=st.sampled_from(["float64", "float32"]),
    exponent=st.floats(1.0, 30.0),
)
def test_large_damping_is_never_refused_nor_warned(arch, seed, dtype, exponent):
    """Levenberg-Marquardt: ``ε = 10^k ‖H‖_2`` with ``k`` in ``[1, 30]`` makes
    ``H + εI`` positive definite with ``κ_2 <= 11/9``; every route solves it,
    with no warning, to a few units of eps."""
    c64 = Curvature(*arch.problem(seed))
    curv = c64 if dtype == "float64" else Curvature(*arch.problem(seed, dtype=dtype))
    H = N(c64.hessian())
    w = np.linalg.eigvalsh(H)
    damping = max(float(np.max(np.abs(w))), 1e-3) * 10.0**exponent
    kappa = _kappa(w, damping)
    assert kappa <= 11 / 9 * (1 + 1e-12)
    g = np.random.default_rng(seed).standard_normal(c64.P)
    x_ref = np.linalg.solve(H + damping * np.eye(c64.P), g)
    for method in ROUTES:
        fact, ill = _factorize(curv, damping, method)
        assert not isinstance(fact, SingularPivotError), f"{method}, {dtype}: {fact}"
        assert not ill, f"{method}, {dtype}: {ill[0].message}"
        err = relative_error(fact.solve(B(g.astype(dtype))), x_ref)
        assert err <= _bound(kappa, fact, _eps(dtype)), (method, dtype, err)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ROUTES)
def test_a_singular_hessian_is_reported_as_the_matrix(method, dtype):
    """Softmax head with a bias, ``ε = 0``: shifting every class's bias
    leaves the loss unchanged, so ``H`` is singular; no route may blame
    itself."""
    curv = Curvature(*random_problem(3, 3, 2, head="softmax", bias=True, seed=0, dtype=dtype))
    with pytest.raises(SingularPivotError) as info:
        curv.factorize(0.0, method)
    err = info.value
    assert err.method == method and err.cause == "matrix" and err.alternative is None
    assert err.matrix_rcond < _eps(dtype)
    msg = str(err)
    assert "no exact route can solve it; raise the damping" in msg
    assert ("or work in float64" in msg) == (dtype == "float32")
    if method == "dense":  # its pivot is the matrix
        assert err.judged_by == "dense"
        assert msg.startswith(f"dense: H + damping*I itself is numerically singular in {dtype} (condition estimate")
    else:
        assert msg.startswith(f"{method}: the pivot of ")
        assert "H + damping*I itself is numerically singular at this precision" in msg
        assert err.judged_by in ROUTES and err.judged_by != method
        assert f"from method={err.judged_by!r}" in msg


ROUTE_BREAKDOWN = dict(depth=3, width=3, batch=3, n_in=1, head="mse", bias=False, seed=2)
"""Found by a search over small networks at ``ε = 0``: ``κ_2(H) ≈ 2.7e6``,
far from singular in float64, yet the second Riccati pivot (rcond about
``2e-18``) and the second LDU Schur complement (about ``4e-17``) are
singular to rounding: the head's block leaves a null direction that only
the cross terms of the first layer fix, and the layer-by-layer eliminations
meet it before those terms arrive."""


@pytest.mark.parametrize("method", ["riccati", "ldu"])
def test_a_route_breakdown_names_the_route_and_one_that_solves_it(method):
    curv = Curvature(*random_problem(**ROUTE_BREAKDOWN))
    H = N(curv.hessian())
    w = np.linalg.eigvalsh(H)
    kappa = _kappa(w, 0.0)
    assert kappa < 1e7  # nonsingular: kappa * eps ~ 1e-9
    with pytest.raises(SingularPivotError) as info, warnings.catch_warnings():
        # (the Riccati pivot of layer 3, met before the breakdown, warns)
        warnings.simplefilter("ignore", IllConditionedPivotWarning)
        curv.factorize(0.0, method)
    err = info.value
    assert err.cause == "route" and err.layer == 2 and err.rcond < _eps("float64")
    alt = err.alternative
    # the first judge that factors it: banded (NumPy only); elsewhere ldu
    # breaks down on it too, and the dense check decides
    assert alt == ("banded" if ON_NUMPY else "dense")
    assert re.search(
        rf"^{method}: the pivot of layer 2 is singular in float64 \(condition estimate .*\); "
        rf"H \+ damping\*I is not singular \(condition estimate .*, from method='{alt}'\): "
        rf"this route's elimination broke down; use method='{alt}'$",
        str(err),
    ), str(err)
    # the judge's estimate of κ_1 is within the factor P of κ_2 (1-norm vs 2-norm)
    assert kappa / curv.P <= 1 / err.matrix_rcond <= curv.P * kappa
    fact = curv.factorize(0.0, alt)
    g = np.random.default_rng(1).standard_normal(curv.P)
    x = fact.solve(B(g))
    assert relative_error(x, np.linalg.solve(H, g)) <= _bound(kappa, fact, _eps("float64"))


def test_an_unjudged_breakdown_says_it_was_not_judged(monkeypatch):
    """``diagnose=False`` (what the judges themselves use) raises the bare
    rule; and when every other route fails too and ``P`` is above the dense
    check's limit, the cause stays open and the message says why."""
    from hessinv_ref.solvers import RiccatiFactorization

    curv = Curvature(*random_problem(3, 3, 2, head="softmax", bias=True, seed=0))
    with pytest.raises(SingularPivotError) as info:
        RiccatiFactorization(curv, 0.0, diagnose=False)
    assert info.value.cause is None
    assert str(info.value).endswith("H + damping*I is singular or this route cannot factor it")

    monkeypatch.setattr(factorization, "DENSE_JUDGE_MAX_P", curv.P - 1)
    with pytest.raises(SingularPivotError) as info:
        curv.factorize(0.0, "riccati")
    others = "banded, ldu" if ON_NUMPY else "ldu"
    assert info.value.cause is None
    assert f"({others} broke down as well, and P = {curv.P} is above the dense check's limit" in str(info.value)


def test_damping_beyond_the_working_precision_is_a_value_error():
    curv = Curvature(*random_problem(2, 2, 2, seed=0, dtype="float32"))
    for method in ROUTES + ("cg",) if ON_NUMPY else ROUTES:
        with pytest.raises(ValueError, match=r"damping: expected at most 3.4e\+38, the largest float32"):
            curv.factorize(1e39, method)
    assert curv.factorize(1e38, "riccati").damping == 1e38


@pytest.mark.skipif(not ON_NUMPY, reason="the banded LU is NumPy-only")
def test_the_threshold_does_not_grow_with_the_size_of_the_system():
    """float32, depth 32: ``K'`` has ``N = 1133`` rows, and the banded LU's
    (equilibrated) condition estimate, about 9e3, exceeds ``1/(N eps_32)``
    ≈ 7.4e3, the old size-dependent threshold, while ``κ_2(H + εI) ≈ 140``.
    The rule (``rcond < eps``, whatever the size) lets it solve; and since
    the lifted estimate is above ``1/sqrt(eps)``, the route judges the
    condition of ``H + εI`` itself (its ``pivot_condition``, within the
    factor ``P`` that separates 1- and 2-norm conditions), which is small:
    no warning, and the accuracy ``κ`` promises."""
    problem = dict(depth=32, width=4, batch=2, activation="tanh", head="softmax", seed=0)
    c64, c32 = Curvature(*random_problem(**problem)), Curvature(*random_problem(**problem, dtype="float32"))
    H = N(c64.hessian())
    w = np.linalg.eigvalsh(H)
    damping = 0.1 * float(np.max(np.abs(w)))
    kappa, eps = _kappa(w, damping), _eps("float32")
    assert kappa < 1e3
    fact, ill = _factorize(c32, damping, "banded")
    assert not isinstance(fact, SingularPivotError), str(fact)
    n_rows = fact.lifted.K_pivoted.shape[0]
    assert n_rows > 1000 and 1 / (n_rows * eps) < fact.lifted_condition < 1 / eps
    assert fact.lifted_condition > 1 / math.sqrt(eps)  # so the matrix itself was measured:
    assert kappa / c64.P <= fact.pivot_condition <= c64.P * kappa
    assert not ill
    g = np.ones(c64.P)
    x = fact.solve(B(g.astype(np.float32)))
    assert relative_error(x, np.linalg.solve(H + damping * np.eye(c64.P), g)) <= C_ROUTE * eps * kappa
