"""The public entry points of the inverse: ``solve``, ``factorize``,
``Curvature.factorize``, ``hessian_operator``, ``inverse_operator`` and
``Factorization.as_operator``.

Argument errors name the argument and say what was expected and what was
given; the entry points agree with each other; the operators are SciPy
``LinearOperator``\\ s that match the dense matrices; and no route modifies
its inputs.
"""

import copy
import inspect
import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from hessinv_ref import (
    DEFAULT_METHOD,
    METHODS,
    Curvature,
    IllConditionedPivotWarning,
    LayerBlocks,
    SingularPivotError,
    factorize,
    hessian,
    hessian_operator,
    inverse_operator,
    solve,
)
from hessinv_ref.backend import use_backend
from hessinv_ref.inverse import default_method
from hessinv_ref.polynomial import HessianPolynomial
from hessinv_ref.solvers import BandedFactorization
from hessinv_ref.testing import random_problem
from solvers.conftest import C_ROUTE, EPS, EXACT_ROUTES, dense_reference, forward_bound, relative_error

EXACT = EXACT_ROUTES + ("dense",)


@pytest.fixture(scope="module")
def problem():
    return random_problem(4, 3, 2, layers="mixed", activation="tanh", seed=11)


def _entry_points(problem, damping):
    """Every public way to pass a damping, as zero-argument callables."""
    net, params, X, y = problem
    g = np.ones(net.n_params)
    return {
        "solve": lambda: solve(net, params, X, y, g, damping=damping),
        "factorize": lambda: factorize(net, params, X, y, damping=damping),
        "Curvature.factorize": lambda: Curvature(net, params, X, y).factorize(damping),
        "inverse_operator": lambda: inverse_operator(net, params, X, y, damping=damping),
        "hessian_operator": lambda: hessian_operator(net, params, X, y, damping),
        "Curvature.operator": lambda: Curvature(net, params, X, y).operator(damping),
        "factorize(cg)": lambda: factorize(net, params, X, y, damping=damping, method="cg"),
    }


# -- argument errors -------------------------------------------------------------


@pytest.mark.parametrize("damping", [-1e-3, -math.inf, math.inf, math.nan, np.float64(-2.0)])
def test_bad_damping_values_raise_value_error_naming_damping(problem, damping):
    for name, call in _entry_points(problem, damping).items():
        with pytest.raises(ValueError, match="damping") as info:
            call()
        assert "finite number >= 0" in str(info.value), name


@pytest.mark.parametrize("damping", ["0.1", None, [0.1], True, 1j, np.array([0.1])])
def test_non_number_damping_raises_type_error(problem, damping):
    for name, call in _entry_points(problem, damping).items():
        with pytest.raises(TypeError, match="damping"):
            call()


@pytest.mark.parametrize("damping", [1, np.float32(0.5), np.int64(2), 0.25])
def test_real_number_dampings_are_accepted(problem, damping):
    fact = factorize(*problem, damping=damping)
    assert fact.damping == float(damping) and type(fact.damping) is float


def test_zero_damping_is_a_valid_value(problem):
    # This problem's softmax head has a bias, so H is singular: ε = 0 gets as
    # far as the factorization (not a ValueError) and fails there.
    with pytest.raises(SingularPivotError):
        factorize(*problem, damping=0)
    net, params, X, y = random_problem(2, 2, 3, head="mse", bias=False, seed=1)
    assert factorize(net, params, X, y, damping=0.0).damping == 0.0


def test_damping_is_keyword_only_and_required(problem):
    net, params, X, y = problem
    g = np.ones(net.n_params)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'damping'"):
        solve(net, params, X, y, g)
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'damping'"):
        factorize(net, params, X, y)
    # by position: a message that says damping is keyword-only and how to call
    calls = {
        "solve": lambda: solve(net, params, X, y, g, 0.1),
        "factorize": lambda: factorize(net, params, X, y, 0.1),
        "inverse_operator": lambda: inverse_operator(net, params, X, y, 0.1),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=rf"{name}: damping is keyword-only .*call {name}\(\.\.\., damping=0\.1\)"):
            call()
    with pytest.raises(TypeError, match=r"2 extra positional argument\(s\): 0\.1, 'cg'"):
        solve(net, params, X, y, g, 0.1, "cg")
    # the documented signature is unchanged: damping keyword-only, no *args
    for fn in (solve, factorize, inverse_operator):
        param = inspect.signature(fn).parameters["damping"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is inspect.Parameter.empty


@pytest.mark.parametrize("shape_of", [lambda P: (P + 1,), lambda P: (P - 1, 2), lambda P: (P, 2, 1), lambda P: ()])
def test_wrong_rhs_shape_names_the_argument_and_both_shapes(problem, shape_of):
    net = problem[0]
    P = net.n_params
    bad = np.ones(shape_of(P))
    with pytest.raises(ValueError) as info:
        solve(*problem, bad, damping=0.1)
    msg = str(info.value)
    assert msg.startswith("g:") and f"({P},)" in msg and str(bad.shape) in msg, msg
    fact = factorize(*problem, damping=0.1)
    with pytest.raises(ValueError) as info:
        fact.solve(bad)
    msg = str(info.value)
    assert msg.startswith("rhs:") and f"({P},)" in msg and str(bad.shape) in msg, msg


def test_non_finite_or_complex_rhs_is_refused(problem):
    P = problem[0].n_params
    g = np.ones(P)
    g[0] = np.nan
    with pytest.raises(ValueError, match="g"):
        solve(*problem, g, damping=0.1)
    with pytest.raises(TypeError, match="rhs"):
        factorize(*problem, damping=0.1).solve(np.ones(P, dtype=complex))


@pytest.mark.parametrize("method", ["LU", "Banded", "", 3, "cholesky"])
def test_unknown_method_lists_the_methods(problem, method):
    with pytest.raises(ValueError, match="method") as info:
        factorize(*problem, damping=0.1, method=method)
    for name in METHODS:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="method"):
        solve(*problem, np.ones(problem[0].n_params), damping=0.1, method=method)


@pytest.mark.parametrize("method", EXACT)
def test_options_to_an_exact_route_raise_type_error(problem, method):
    with pytest.raises(TypeError, match=rf"method '{method}' takes no options, got 'rtol'; "
                                        r"\['rtol', 'maxiter'\] are options of the Krylov routes"):
        factorize(*problem, damping=0.1, method=method, rtol=1e-8)
    with pytest.raises(TypeError, match=rf"method '{method}' takes no options, got 'maxiter'"):
        Curvature(*problem).factorize(0.1, method, maxiter=3)
    with pytest.raises(TypeError, match=rf"method '{method}' takes no options, got 'rtol'"):
        solve(*problem, np.ones(problem[0].n_params), damping=0.1, method=method, rtol=1e-8)


# -- the entry points agree --------------------------------------------------------


def test_default_method_is_banded_on_numpy_and_riccati_elsewhere(problem):
    """``method=None`` (every entry point's default) means
    :func:`~hessinv_ref.inverse.default_method`: the banded LU on NumPy, the
    Riccati sweep on a backend without LAPACK's band routines."""
    assert DEFAULT_METHOD == "banded"
    for fn in (solve, factorize, inverse_operator, Curvature.factorize):
        assert inspect.signature(fn).parameters["method"].default is None, fn.__qualname__
    with use_backend("numpy"):
        assert default_method() == "banded"
    with use_backend("array_api_strict"):
        assert default_method() == "riccati"
    assert isinstance(factorize(*problem, damping=0.1), BandedFactorization)
    assert isinstance(Curvature(*problem).factorize(0.1), BandedFactorization)
    assert set(METHODS) == {"riccati", "banded", "ldu", "dense", "cg", "minres"}


# cg on this indefinite problem warns a breakdown (tested in solvers/test_krylov.py)
@pytest.mark.filterwarnings("ignore::hessinv_ref.solvers.KrylovBreakdownWarning")
@pytest.mark.parametrize("method", EXACT + ("cg", "minres"))
def test_solve_is_factorize_then_solve(problem, method):
    net = problem[0]
    G = np.random.default_rng(0).standard_normal((net.n_params, 2))
    fact = factorize(*problem, damping=0.2, method=method)
    assert fact.method == method
    # The same arithmetic on the same inputs: identical results.
    np.testing.assert_array_equal(solve(*problem, G, damping=0.2, method=method), fact.solve(G))
    np.testing.assert_array_equal(solve(*problem, G[:, 0], damping=0.2, method=method), fact.solve(G[:, 0]))
    np.testing.assert_array_equal(Curvature(*problem).factorize(0.2, method).solve(G), fact.solve(G))


def test_params_as_dicts_or_theta_give_the_same_solution(problem):
    net, params, X, y = problem
    g = np.random.default_rng(1).standard_normal(net.n_params)
    for method in EXACT:
        a = solve(net, params, X, y, g, damping=0.3, method=method)
        b = solve(net, net.flatten(params), X, y, g, damping=0.3, method=method)
        np.testing.assert_array_equal(a, b)


# -- operators ------------------------------------------------------------------------


def _vectors(P, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(P), rng.standard_normal((P, 3))


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_hessian_operator_matches_the_dense_matrix(problem, damping):
    net, params, X, y = problem
    op = hessian_operator(net, params, X, y, damping)
    P = net.n_params
    assert isinstance(op, spla.LinearOperator)
    assert op.shape == (P, P) and op.dtype == np.float64
    A = hessian(net, params, X, y) + damping * np.eye(P)
    curv = Curvature(net, params, X, y)
    absH = HessianPolynomial([LayerBlocks(*(np.abs(m) for m in b)) for b in curv.blocks]).to_dense()
    v, V = _vectors(P, 2)
    # R-operator against the dense matrix: rounding relative to the terms
    # both add up, bounded by the Hessian polynomial with |blocks|.
    for got, want, absv in (
        (op.matvec(v), A @ v, np.abs(v)),
        (op @ v, A @ v, np.abs(v)),
        (op.rmatvec(v), A @ v, np.abs(v)),  # symmetric
        (op.matmat(V), A @ V, np.abs(V)),
        (op @ V, A @ V, np.abs(V)),
    ):
        assert got.shape == want.shape
        scale = np.max((absH + damping * np.eye(P)) @ absv)
        assert np.max(np.abs(got - want)) <= 10 * P * EPS * scale


@pytest.mark.parametrize("method", [None] + list(EXACT))
def test_inverse_operators_match_the_dense_inverse(problem, method):
    net, params, X, y = problem
    P, eps = net.n_params, 0.2
    kwargs = {} if method is None else {"method": method}
    ref = dense_reference(Curvature(net, params, X, y), eps)
    fact = factorize(net, params, X, y, damping=eps, **kwargs)
    v, V = _vectors(P, 3)
    for op in (inverse_operator(net, params, X, y, damping=eps, **kwargs), fact.as_operator()):
        assert isinstance(op, spla.LinearOperator)
        assert op.shape == (P, P) and op.dtype == np.float64
        tol = forward_bound(ref.kappa, fact)
        for got, want in (
            (op.matvec(v), ref.solve(v)),
            (op @ v, ref.solve(v)),
            (op.rmatvec(v), ref.solve(v)),  # (H + εI)^{-1} is symmetric
            (op.matmat(V), ref.solve(V)),
            (op @ V, ref.solve(V)),
        ):
            assert got.shape == want.shape
            assert relative_error(got, want) <= tol
    # Composition with the forward operator is the identity, to rounding.
    fwd = hessian_operator(net, params, X, y, eps)
    round_trip = fwd @ (fact.as_operator() @ V)
    assert relative_error(round_trip, V) <= C_ROUTE * EPS * ref.kappa * P


def test_inverse_operator_works_with_scipy_eigensolvers(problem):
    """Shift-invert style use: the eigenvalues of (H + εI)^{-1} largest in
    magnitude are the reciprocals of those of H + εI nearest zero."""
    net, params, X, y = problem
    eps = 0.5
    ref = dense_reference(Curvature(net, params, X, y), eps)
    op = inverse_operator(net, params, X, y, damping=eps)
    vals = spla.eigsh(op, k=2, which="LM", return_eigenvectors=False, tol=1e-12)
    want = ref.w[np.argsort(np.abs(ref.w))[:2]]
    # Lanczos to tol 1e-12 on a well-separated end of the spectrum (κ ≈ 30):
    # eigenvalues to about tol times the spread; 1e-8 relative is ample.
    np.testing.assert_allclose(np.sort(1 / vals), np.sort(want), rtol=1e-8)


# -- inputs are never modified ------------------------------------------------------------


def _snapshot(*arrays):
    return [(np.array(a, copy=True), np.asarray(a).flags.writeable) for a in arrays]


def _assert_unchanged(before, arrays):
    for (copy_, writeable), a in zip(before, arrays):
        np.testing.assert_array_equal(np.asarray(a), copy_)
        assert np.asarray(a).dtype == copy_.dtype
        assert np.asarray(a).flags.writeable == writeable


@pytest.mark.filterwarnings("ignore::hessinv_ref.solvers.KrylovBreakdownWarning")
@pytest.mark.parametrize("head", ["softmax", "mse"])
@pytest.mark.parametrize("as_theta", [False, True])
def test_no_route_modifies_its_inputs(head, as_theta):
    net, params, X, y = random_problem(3, 3, 2, layers="mixed", head=head, seed=12)
    theta = net.flatten(params)
    P = net.n_params
    G = np.random.default_rng(5).standard_normal((P, 2))
    g = G[:, 0].copy()
    p_in = theta if as_theta else params
    param_arrays = [theta] if as_theta else [a for d in params for a in d.values()]
    params_copy = copy.deepcopy(params)
    arrays = param_arrays + [X, y, g, G]
    before = _snapshot(*arrays)

    for method in METHODS:
        solve(net, p_in, X, y, g, damping=0.1, method=method)
        fact = factorize(net, p_in, X, y, damping=0.1, method=method)
        fact.solve(G)
        fact.solve(g)
        fact.backward_error(fact.solve(g), g)
        fact.as_operator().matmat(G)
        if method in EXACT:
            fact.logdet()
            fact.inertia()
    curv = Curvature(net, p_in, X, y)
    curv.factorize(0.3).solve(G)
    hessian_operator(net, p_in, X, y, 0.1).matmat(G)
    inverse_operator(net, p_in, X, y, damping=0.1).matvec(g)

    _assert_unchanged(before, arrays)
    if not as_theta:
        for d, d0 in zip(params, params_copy):
            assert d.keys() == d0.keys()
            for k in d:
                np.testing.assert_array_equal(d[k], d0[k])


# -- inertia of the LU routes, shared norm estimates, user-layer block shapes ------


@pytest.mark.parametrize("method", ["banded", "ldu"])
def test_lu_route_inertia_is_computed_once_and_names_its_source(method):
    curv = Curvature(*random_problem(3, 3, 2, seed=4, scale=2.0))
    fact = curv.factorize(0.3, method)
    first = fact.inertia()
    assert fact._riccati is not None
    riccati = fact._riccati
    assert fact.inertia() == first and fact._riccati is riccati
    w = np.linalg.eigvalsh(curv.hessian() + 0.3 * np.eye(curv.P))
    assert first == (int(np.sum(w > 0)), int(np.sum(w < 0)), 0)


def test_banded_inertia_reports_a_riccati_breakdown_clearly():
    # damping 1e-9 with a softmax bias: banded factors H + εI (κ ~ 2e9), but
    # the first Riccati pivot is numerically singular
    curv = Curvature(*random_problem(2, 3, 2, head="softmax", bias=True, seed=3))
    with pytest.warns(IllConditionedPivotWarning):
        fact = curv.factorize(1e-9, "banded")
    with pytest.raises(SingularPivotError, match=r"banded\.inertia.*riccati.*method='dense'"):
        with pytest.warns(IllConditionedPivotWarning):  # the Riccati layers before the breakdown
            fact.inertia()


def test_norm_estimate_is_shared_by_the_routes_of_one_point(monkeypatch):
    from hessinv_ref import rop

    curv = Curvature(*random_problem(3, 2, 2, seed=1))
    a, b = curv.factorize(0.5, "banded"), curv.factorize(0.5, "riccati")
    calls = []
    original = rop.rop_hvp_cached  # what the estimator's products call
    monkeypatch.setattr(rop, "rop_hvp_cached", lambda c, v: (calls.append(1), original(c, v))[1])
    est = a.norm_estimate()
    n_calls = len(calls)
    assert n_calls > 0 and b.norm_estimate() == est and len(calls) == n_calls
    dense = np.abs(curv.hessian() + 0.5 * np.eye(curv.P)).sum(axis=0).max()
    assert est <= dense * (1 + 1e-12)  # onenormest never overestimates


def test_user_layer_with_a_transposed_block_is_named():
    from hessinv_ref import Dense, Network, SoftmaxCrossEntropy

    class Transposed(Dense):
        def curvature(self, x, z_in, b_out):
            Hxx, Hxz, Hzz = super().curvature(x, z_in, b_out)
            return Hxx, Hxz.T, Hzz

        def stack_key(self):
            return None

    net = Network([Transposed(2, 3), SoftmaxCrossEntropy(3, 2)])
    curv = Curvature(net, net.init(seed=0), np.ones((2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"layers\[0\].*Hxz should have shape \(9, 4\)"):
        curv.blocks
