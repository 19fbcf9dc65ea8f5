"""Hessian-vector products: the R-operator, the matrix polynomial and the dense
oracle agree; the dense Hessian agrees with finite differences of the gradient;
the structured factors of the notation page (docs/theory/notation.md) §2-§4 are what they claim to be.

Every route runs on the active backend (problems from the strategies are
already there, vectors are moved with ``B``); the dense oracles are NumPy
computations on copies (``N``), with the factors of the polynomial built here
from the blocks.  The ``scipy.sparse`` displays of those factors
(``HessianPolynomial.M`` and friends) exist on NumPy only: there they are
checked against the dense factors, and elsewhere they must refuse.
"""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from _backend import ON_NUMPY, B, N, host_blocks, numpy_only, refuses
from hessinv_ref import Curvature, LayerBlocks, hessian, hvp, polynomial_hvp
from hessinv_ref.dense import hessian_from_blocks
from hessinv_ref.testing import central_jacobian, central_step, random_problem
from hessinv_ref.testing.strategies import problems, vectors
from tolerances import assert_fd_close, assert_rounding_close

# relu is fine wherever no finite difference is taken: every route below is
# exact algebra on the same piecewise-smooth blocks.
any_problem = problems(include_relu=True)
SPARSE_DISPLAY = "the scipy.sparse displays of the polynomial's factors"


def problem_size(net, X):
    """``n`` for rounding tolerances: every route is a chain of sums over at
    most the parameters and the activations of the whole network."""
    return net.n_params + sum(net.activation_sizes(X.shape[0]))


def hessian_scale(curv, v):
    r"""A bound on the terms of ``H v`` by every route: ``|Hxx| |v|`` plus the
    tangent and adjoint chains taken in absolute values, i.e. the dense
    formula of the notation page (docs/theory/notation.md) §4 evaluated on ``|Jz|, |Jx|, |H..|, |v|``.

    This is the scale of the rounding errors (not ``|H v|``, which may be a
    cancellation of large terms in a deep or badly scaled chain)."""
    abs_blocks = [LayerBlocks(*(B(np.abs(m)) for m in blk)) for blk in host_blocks(curv)]
    return float(np.max(N(hessian_from_blocks(abs_blocks)) @ np.abs(v), initial=0.0))


def dense_factors(curv):
    r"""The factors of the notation page (docs/theory/notation.md) §4, ``(M, Dx, P_down, Hxx, Hxz, Hzz)``, as
    dense NumPy matrices built here from (copies of) the blocks, independently
    of :class:`~hessinv_ref.polynomial.HessianPolynomial`: ``M`` unit block
    lower-bidiagonal with :math:`-J_{z,l}` at block (l, l-1), ``P_down`` the
    block down-shift, the others block-diagonal."""
    blocks = host_blocks(curv)
    L = len(blocks)
    a = [blocks[0].Jz.shape[1]] + [b.Jz.shape[0] for b in blocks]  # a_0 .. a_L
    t_off = np.concatenate([[0], np.cumsum(a[1:])])  # t_1 .. t_L
    in_off = np.concatenate([[0], np.cumsum(a[:-1])])  # z_0 .. z_{L-1}
    M = np.eye(t_off[-1])
    Pd = np.zeros((in_off[-1], t_off[-1]))
    for l in range(2, L + 1):
        M[t_off[l - 1]:t_off[l], t_off[l - 2]:t_off[l - 1]] = -blocks[l - 1].Jz
        Pd[in_off[l - 1]:in_off[l], t_off[l - 2]:t_off[l - 1]] = np.eye(a[l - 1])
    bd = scipy.linalg.block_diag
    return (M, bd(*(b.Jx for b in blocks)), Pd, bd(*(b.Hxx for b in blocks)),
            bd(*(b.Hxz for b in blocks)), bd(*(b.Hzz for b in blocks)))


@given(any_problem, st.data())
def test_rop_polynomial_and_dense_agree(problem, data):
    net, params, X, y = problem
    v = data.draw(vectors(net.n_params), label="v")
    curv = Curvature(net, params, X, y)
    Hv = N(curv.hessian()) @ v
    n, scale = problem_size(net, X), hessian_scale(curv, v)
    for name, route in (("R-operator", hvp), ("polynomial", polynomial_hvp)):
        got = route(net, params, X, y, B(v))
        assert got.shape == v.shape
        assert_rounding_close(got, Hv, n=n, scale=scale, what=f"{name} vs dense H @ v")
    assert_rounding_close(curv.hvp(B(v)), Hv, n=n, scale=scale, what="Curvature.hvp vs dense")


@given(problems(max_depth=4, include_relu=True), st.integers(1, 3), st.data())
def test_matrix_of_vectors(problem, k, data):
    net, params, X, y = problem
    V = data.draw(vectors(net.n_params, k), label="V")
    curv = Curvature(net, params, X, y)
    HV = N(curv.hessian()) @ V
    n = problem_size(net, X)
    scale = max(hessian_scale(curv, V[:, j]) for j in range(k))
    for name, route in (("R-operator", hvp), ("polynomial", polynomial_hvp)):
        got = N(route(net, params, X, y, B(V)))
        assert got.shape == (net.n_params, k)
        assert_rounding_close(got, HV, n=n, scale=scale, what=f"{name} on (P, {k})")
        # column j of the batched product is the product with column j
        for j in range(k):
            assert_rounding_close(got[:, j], route(net, params, X, y, B(V[:, j])), n=n, scale=scale,
                                  what=f"{name} column {j}")


@given(any_problem)
def test_dense_hessian_is_symmetric(problem):
    net, params, X, y = problem
    curv = Curvature(net, params, X, y)
    H = N(curv.hessian())
    assert H.shape == (net.n_params, net.n_params)
    # H[i, j] and H[j, i] are the same sum of terms assembled in mirrored order
    scale = hessian_scale(curv, np.ones(net.n_params))
    assert_rounding_close(H, H.T, n=problem_size(net, X), scale=scale, what="H - H^T")


@given(problems())
def test_dense_hessian_matches_central_differences_of_the_gradient(problem):
    net, params, X, y = problem
    theta = net.flatten(params)
    H = hessian(net, theta, X, y)
    t0 = N(theta)  # the differences are taken on NumPy, each gradient on the backend
    h = central_step(t0)
    fd = central_jacobian(lambda t: net.gradient(B(t), X, y), t0, h)
    scale = np.abs(N(net.gradient(theta, X, y))).max()
    assert_fd_close(H, fd, h, scale=scale, what=f"Hessian of {net!r}")


@given(any_problem)
def test_polynomial_to_dense_equals_the_dense_oracle(problem):
    net, params, X, y = problem
    curv = Curvature(net, params, X, y)
    H = N(curv.hessian())
    scale = hessian_scale(curv, np.ones(net.n_params))
    assert_rounding_close(curv.polynomial().to_dense(), H, n=problem_size(net, X), scale=scale,
                          what="HessianPolynomial.to_dense() vs hessian()")


@given(any_problem, st.data())
def test_each_polynomial_term_against_dense_factors(problem, data):
    """The four terms of the notation page (docs/theory/notation.md) §4, each against the same expression on
    dense factors (:func:`dense_factors`), and their sum against H v."""
    net, params, X, y = problem
    v = data.draw(vectors(net.n_params), label="v")
    curv = Curvature(net, params, X, y)
    poly = curv.polynomial()
    M, Dx, Pd, Hxx, Hxz, Hzz = dense_factors(curv)
    t = scipy.linalg.solve_triangular(M, Dx @ v, lower=True)
    lam_from = lambda w: scipy.linalg.solve_triangular(M.T, Pd.T @ w, lower=False)  # noqa: E731
    expected = (Hxx @ v, Hxz @ Pd @ t, Dx.T @ lam_from(Hxz.T @ v), Dx.T @ lam_from(Hzz @ Pd @ t))
    n, scale = problem_size(net, X), hessian_scale(curv, v)
    terms = [N(t) for t in poly.terms(B(v))]
    names = ("Hxx v", "Hxz P t", "Dx^T M^-T P^T Hxz^T v", "Dx^T M^-T P^T Hzz P t")
    for name, got, want in zip(names, terms, expected):
        assert_rounding_close(got, want, n=n, scale=scale, what=f"term {name}")
    assert_rounding_close(sum(terms), N(curv.hessian()) @ v, n=n, scale=scale, what="sum of terms vs H v")


@numpy_only(SPARSE_DISPLAY)
@given(any_problem)
def test_sparse_factors_are_the_dense_factors(problem):
    """``HessianPolynomial.M, .Dx, .P_down, .Hxx, .Hxz, .Hzz`` (sparse) hold
    exactly the blocks of :func:`dense_factors`."""
    curv = Curvature(*problem)
    poly = curv.polynomial()
    sparse = (poly.M, poly.Dx, poly.P_down, poly.Hxx, poly.Hxz, poly.Hzz)
    for name, S, D in zip(("M", "Dx", "P_down", "Hxx", "Hxz", "Hzz"), sparse, dense_factors(curv)):
        np.testing.assert_array_equal(S.toarray(), D, err_msg=name)


@pytest.mark.skipif(ON_NUMPY, reason="NumPy has scipy.sparse; the refusal is for other backends")
def test_sparse_displays_refuse_on_other_backends():
    poly = Curvature(*random_problem(3, 2, 2, seed=0)).polynomial()
    for name in ("M", "Dx", "P_down", "Hxx", "Hxz", "Hzz"):
        with refuses():
            getattr(poly, name)


@given(any_problem, st.data())
def test_solve_M_and_MT_against_triangular_solves(problem, data):
    net, params, X, y = problem
    curv = Curvature(net, params, X, y)
    poly = curv.polynomial()
    M = dense_factors(curv)[0]
    A = M.shape[0]
    assert A == sum(net.activation_sizes(X.shape[0])[1:])
    U = data.draw(vectors(A, 2), label="U")
    n = problem_size(net, X)
    # Substitution through the chain: the terms are bounded by the absolute
    # substitution |M|^{-1} |u| (products of |Jz| along the chain).
    absM = np.eye(A) - np.abs(np.eye(A) - M)
    solve = scipy.linalg.solve_triangular
    for u in (U[:, 0], U):
        got = N(poly.solve_M(B(u)))
        want = solve(M, u, lower=True)
        scale = np.max(solve(absM, np.abs(u), lower=True))
        assert_rounding_close(got, want.reshape(got.shape), n=n, scale=scale, what="solve_M")
        got_T = N(poly.solve_MT(B(u)))
        want_T = solve(M.T, u, lower=False)
        scale_T = np.max(solve(absM.T, np.abs(u), lower=False))
        assert_rounding_close(got_T, want_T.reshape(got_T.shape), n=n, scale=scale_T, what="solve_MT")


@numpy_only(SPARSE_DISPLAY)
@given(any_problem)
def test_M_is_unit_lower_block_bidiagonal_with_minus_Jz(problem):
    net, params, X, y = problem
    curv = Curvature(net, params, X, y)
    M = curv.polynomial().M.toarray()
    a = net.activation_sizes(X.shape[0])[1:]  # a_1 .. a_L
    off = np.concatenate([[0], np.cumsum(a)])
    L = net.depth
    for i in range(L):
        for j in range(L):
            block = M[off[i]:off[i + 1], off[j]:off[j + 1]]
            if i == j:
                want = np.eye(a[i])
            elif i == j + 1:
                want = -curv.blocks[i].Jz  # layer l = i + 1 at block (l, l - 1)
            else:
                want = np.zeros_like(block)
            np.testing.assert_array_equal(block, want, err_msg=f"block ({i + 1}, {j + 1}) of M")


@given(any_problem)
def test_gradient_is_e_L_M_inverse_Dx(problem):
    """``b M = e_L`` and ``g^T = b Dx`` (the notation page (docs/theory/notation.md) §2), from the dense factors."""
    net, params, X, y = problem
    curv = Curvature(net, params, X, y)
    M, Dx = dense_factors(curv)[:2]
    e_L = np.zeros(M.shape[0])
    e_L[-1] = 1.0  # a_L = 1: the last activation is the loss
    b = scipy.linalg.solve_triangular(M.T, e_L, lower=False)
    n = problem_size(net, X)
    absM = np.eye(M.shape[0]) - np.abs(np.eye(M.shape[0]) - M)
    abs_b = scipy.linalg.solve_triangular(absM.T, e_L, lower=False)
    assert_rounding_close(b, np.concatenate([N(bl) for bl in curv.b[1:]]), n=n, scale=abs_b.max(),
                          what="b from b M = e_L vs the backward pass")
    assert_rounding_close(Dx.T @ b, net.gradient(params, X, y), n=n,
                          scale=np.max(np.abs(Dx.T) @ abs_b), what="gradient vs e_L M^-1 Dx")


def test_polynomial_sizes():
    net, params, X, y = random_problem(3, 4, 2, layers="mixed", bias=False)
    poly = Curvature(net, params, X, y).polynomial()
    P, a = net.n_params, net.activation_sizes(2)  # (8, 8, 8, 1)
    assert poly.P == P and poly.p == net.param_sizes and poly.a == a
    assert N(poly.tangent(B(np.ones(P)))).shape == (sum(a[1:]),)


@numpy_only(SPARSE_DISPLAY)
def test_polynomial_factor_shapes():
    net, params, X, y = random_problem(3, 4, 2, layers="mixed", bias=False)
    poly = Curvature(net, params, X, y).polynomial()
    P, a = net.n_params, net.activation_sizes(2)  # (8, 8, 8, 1)
    A, A_in = sum(a[1:]), sum(a[:-1])
    assert poly.P == P and poly.p == net.param_sizes and poly.a == a
    assert poly.M.shape == (A, A) and poly.Dx.shape == (A, P) and poly.P_down.shape == (A_in, A)
    assert poly.Hxx.shape == (P, P) and poly.Hxz.shape == (P, A_in) and poly.Hzz.shape == (A_in, A_in)
    # P_down moves t_l into the slot of the input z_l of layer l + 1; t_L falls off
    t = np.arange(1.0, A + 1)
    np.testing.assert_array_equal(poly.P_down @ t, np.concatenate([np.zeros(8), t[:16]]))


def test_hessian_of_linear_least_squares_by_hand():
    """A lone SquaredError layer is linear least squares: per output k the
    block of ``(W_k, c_k)`` is ``2/(B n_out) [X 1]^T [X 1]``, with no coupling."""
    net, params, X, y = random_problem(1, 3, 4, head="mse", n_classes=2)
    Xb = np.hstack([N(X), np.ones((4, 1))])
    G = Xb.T @ Xb * 2 / (4 * 2)
    # theta is W (2, 3) row-major then c (2,): gather (W_k, c_k) per output k
    perm = [0, 1, 2, 6, 3, 4, 5, 7]
    H = N(hessian(net, params, X, y))[np.ix_(perm, perm)]
    np.testing.assert_allclose(H, np.kron(np.eye(2), G), rtol=1e-13, atol=1e-15)


def test_polynomial_rejects_vectors_of_the_wrong_length():
    poly = Curvature(*random_problem(3, 3, 2, seed=0)).polynomial()
    for bad in (np.ones(poly.P + 5), np.ones(poly.P - 1)):
        with pytest.raises(ValueError, match=rf"v: expected shape \({poly.P},\)"):
            poly.matvec(B(bad))
    with pytest.raises(ValueError, match="u: expected shape"):
        poly.solve_M(B(np.ones(3)))


def test_hvp_of_an_empty_block_of_vectors():
    net, params, X, y = random_problem(3, 3, 2, seed=0)
    V = B(np.zeros((net.n_params, 0)))
    assert hvp(net, params, X, y, V).shape == (net.n_params, 0)
    assert polynomial_hvp(net, params, X, y, V).shape == (net.n_params, 0)
