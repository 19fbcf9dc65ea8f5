"""The lifted system ``K``, the pivot ``Π`` and ``K' = Π K Π^T`` (the notation page (docs/theory/notation.md) §5).

Each test rebuilds the object from the formulas of the notation page (docs/theory/notation.md) with dense
NumPy arrays, from the per-layer blocks and the factors of the Hessian
polynomial, and compares it with what :mod:`hessinv_ref.solvers.lifted`
builds.  Assembling ``K``, permuting it and cutting it into blocks only moves
entries (every product is with a 0/1 selection matrix, and ``x · 0 = 0``,
``x · 1 = x``, ``x + 0 = x`` are exact), so those comparisons are exact.
Eliminating ``t`` and ``λ`` is real arithmetic and gets a rounding tolerance.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hessinv_ref import Curvature, LayerBlocks, hessian
from hessinv_ref.polynomial import HessianPolynomial
from hessinv_ref.solvers import LiftedSystem, Pivot
from hessinv_ref.testing import random_problem
from tolerances import assert_rounding_close

from .conftest import solve_cases


def _dense_K(curv, damping):
    """``K`` of the notation page (docs/theory/notation.md) §5 from the dense polynomial factors."""
    poly = curv.polynomial()
    M, Dx, Pd = poly.M.toarray(), poly.Dx.toarray(), poly.P_down.toarray()
    Hxx, Hxz, Hzz = poly.Hxx.toarray(), poly.Hxz.toarray(), poly.Hzz.toarray()
    P, A = Dx.shape[1], M.shape[0]
    return np.block(
        [
            [Hxx + damping * np.eye(P), Hxz @ Pd, Dx.T],
            [-Dx, M, np.zeros((A, A))],
            [-Pd.T @ Hxz.T, -Pd.T @ Hzz @ Pd, M.T],
        ]
    )


def _expected_blocks(blocks, damping):
    """``B_{l,l}``, ``B_{l,l-1}``, ``B_{l,l+1}`` of the notation page (docs/theory/notation.md) §5, written out
    here with ``np.block`` (1-based ``l`` as dict keys)."""
    L = len(blocks)
    p = [b.Jx.shape[1] for b in blocks]
    a = [b.Jz.shape[0] for b in blocks]
    Z = np.zeros

    def nxt(l, name, shape):  # Hzz_{L+1}, Hxz_{L+1}, Jz_{L+1} are zero
        return getattr(blocks[l], name) if l < L else Z(shape)

    diag, lower, upper = {}, {}, {}
    for l in range(1, L + 1):
        b, pl, al = blocks[l - 1], p[l - 1], a[l - 1]
        Hzz_next = nxt(l, "Hzz", (al, al))
        diag[l] = np.block(
            [
                [b.Hxx + damping * np.eye(pl), Z((pl, al)), b.Jx.T],
                [-b.Jx, np.eye(al), Z((al, al))],
                [Z((al, pl)), -Hzz_next, np.eye(al)],
            ]
        )
        if l >= 2:
            pm, am = p[l - 2], a[l - 2]
            lower[l] = np.block(
                [
                    [Z((pl, pm)), b.Hxz, Z((pl, am))],
                    [Z((al, pm)), -b.Jz, Z((al, am))],
                    [Z((al, pm)), Z((al, am)), Z((al, am))],
                ]
            )
        if l < L:
            pn, an = p[l], a[l]
            nb = blocks[l]
            upper[l] = np.block(
                [
                    [Z((pl, pn)), Z((pl, an)), Z((pl, an))],
                    [Z((al, pn)), Z((al, an)), Z((al, an))],
                    [-nb.Hxz.T, Z((al, an)), -nb.Jz.T],
                ]
            )
    return diag, lower, upper


@given(solve_cases(max_depth=6))
def test_K_is_the_matrix_of_math_md(case):
    curv = case.curvature()
    lifted = LiftedSystem(curv.blocks, case.damping)
    K = lifted.K
    N = curv.P + 2 * sum(lifted.a)
    assert K.shape == (N, N)
    np.testing.assert_array_equal(K.toarray(), _dense_K(curv, case.damping))


@given(solve_cases(max_depth=6))
def test_pivoted_K_is_block_tridiagonal_with_the_blocks_of_math_md(case):
    curv = case.curvature()
    lifted = LiftedSystem(curv.blocks, case.damping)
    Pi = lifted.Pi.to_dense()
    Kp = lifted.K_pivoted.to_dense()
    # Π K Π^T by dense products with the 0/1 matrix: exact.
    np.testing.assert_array_equal(Pi @ lifted.K.toarray() @ Pi.T, Kp)

    sizes = [p + 2 * a for p, a in zip(lifted.p, lifted.a)]
    assert tuple(lifted.K_pivoted.sizes) == tuple(sizes) == lifted.Pi.block_sizes
    off = np.concatenate([[0], np.cumsum(sizes)])
    diag, lower, upper = _expected_blocks(curv.blocks, case.damping)
    L = curv.depth
    for i in range(1, L + 1):
        for j in range(1, L + 1):
            got = Kp[off[i - 1]:off[i], off[j - 1]:off[j]]
            if i == j:
                want, name = diag[i], f"B_{i},{i}"
            elif i == j + 1:
                want, name = lower[i], f"B_{i},{j}"
            elif j == i + 1:
                want, name = upper[i], f"B_{i},{j}"
            else:  # outside the band of blocks: exactly zero
                want, name = np.zeros_like(got), f"block ({i},{j})"
            np.testing.assert_array_equal(got, want, err_msg=name)


@given(solve_cases(max_depth=5), st.integers(1, 3))
def test_block_tridiagonal_matvec_is_the_dense_product(case, k):
    curv = case.curvature()
    T = LiftedSystem(curv.blocks, case.damping).K_pivoted
    Kp = T.to_dense()
    U = np.random.default_rng(case.seed).standard_normal((Kp.shape[0], k))
    # Two summation orders of the same row sums: rounding relative to |K'| |u|.
    scale = float(np.max(np.abs(Kp) @ np.abs(U)))
    assert_rounding_close(T.matvec(U), Kp @ U, n=Kp.shape[0], scale=scale, what="K' u")
    assert_rounding_close(T.matvec(U[:, 0]), Kp @ U[:, 0], n=Kp.shape[0], scale=scale, what="K' u (1-D)")


@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=6).flatmap(
        lambda p: st.tuples(st.just(p), st.lists(st.integers(1, 5), min_size=len(p), max_size=len(p)))
    )
)
def test_pivot_is_a_permutation_into_layer_order(sizes):
    p, a = sizes
    pivot = Pivot(p, a)
    N = sum(p) + 2 * sum(a)
    Pi = pivot.to_dense()
    assert Pi.shape == (N, N) and pivot.N == N
    assert set(np.unique(Pi)) <= {0.0, 1.0}
    np.testing.assert_array_equal(Pi.sum(axis=0), np.ones(N))
    np.testing.assert_array_equal(Pi.sum(axis=1), np.ones(N))
    np.testing.assert_array_equal(Pi @ Pi.T, np.eye(N))  # orthogonal: Π^{-1} = Π^T
    np.testing.assert_array_equal(pivot.matrix().toarray(), Pi)

    # Label every unknown of (x, t, λ) order by (kind, layer, index) and
    # check Π puts them in the order (x_1, t_1, λ_1, ..., x_L, t_L, λ_L).
    labels = [("x", l, i) for l, n in enumerate(p) for i in range(n)]
    labels += [("t", l, i) for l, n in enumerate(a) for i in range(n)]
    labels += [("λ", l, i) for l, n in enumerate(a) for i in range(n)]
    want = [
        (kind, l, i)
        for l in range(len(p))
        for kind, n in (("x", p[l]), ("t", a[l]), ("λ", a[l]))
        for i in range(n)
    ]
    assert [labels[j] for j in pivot.perm] == want

    u = np.random.default_rng(N).standard_normal((N, 2))
    np.testing.assert_array_equal(pivot.apply(u), Pi @ u)
    np.testing.assert_array_equal(pivot.inverse(u), Pi.T @ u)
    np.testing.assert_array_equal(pivot.inverse(pivot.apply(u)), u)
    np.testing.assert_array_equal(pivot.apply(pivot.inverse(u[:, 0])), u[:, 0])


@given(solve_cases(max_depth=8))
def test_eliminating_t_and_lambda_gives_the_damped_hessian(case):
    """``H + εI`` is the Schur complement of the ``(t, λ)`` block of ``K``:
    this checks the lift itself, against the dense ``hessian()``."""
    net, params, X, y = case.problem()
    curv = case.curvature()
    K = LiftedSystem(curv.blocks, case.damping).K.toarray()
    P = curv.P
    schur = K[:P, :P] - K[:P, P:] @ np.linalg.solve(K[P:, P:], K[P:, :P])
    want = hessian(net, params, X, y) + case.damping * np.eye(P)
    # Rounding is relative to the terms the elimination adds up, which the
    # Hessian polynomial with |blocks| bounds (they may cancel to a small H).
    # Measured: max error 0.25 N eps max(terms) over 300 draws.
    absblocks = [LayerBlocks(*(np.abs(m) for m in b)) for b in curv.blocks]
    scale = float(np.max(HessianPolynomial(absblocks).to_dense())) + case.damping
    assert_rounding_close(schur, want, n=K.shape[0], scale=scale, what="Schur complement of K")


@given(solve_cases(max_depth=6))
def test_rhs_and_unpivot_round_trip_the_lifted_unknowns(case):
    curv = case.curvature()
    lifted = LiftedSystem(curv.blocks, case.damping)
    P, A = curv.P, sum(lifted.a)
    g = case.rhs(P)
    r = lifted.rhs(g)
    zeros = np.zeros((2 * A,) + g.shape[1:])
    np.testing.assert_array_equal(r, lifted.Pi.to_dense() @ np.concatenate([g, zeros]))
    w = np.random.default_rng(case.seed).standard_normal((P + 2 * A,) + g.shape[1:])
    x, t, lam = lifted.unpivot(lifted.Pi.apply(w))
    np.testing.assert_array_equal(x, w[:P])
    np.testing.assert_array_equal(t, w[P:P + A])
    np.testing.assert_array_equal(lam, w[P + A:])


def test_lifted_solution_carries_the_r_operator_tangents():
    """Solving ``K [x; t; λ] = [g; 0; 0]`` densely: the second block row
    makes ``t = M^{-1} D_x x``, the R-forward pass of ``x`` (the notation page (docs/theory/notation.md) §4)."""
    net, params, X, y = random_problem(4, 3, 2, layers="mixed", seed=3)
    curv = Curvature(net, params, X, y)
    lifted = LiftedSystem(curv.blocks, 0.3)
    g = np.random.default_rng(0).standard_normal(curv.P)
    K = lifted.K.toarray()
    w = np.linalg.solve(K, np.concatenate([g, np.zeros(K.shape[0] - curv.P)]))
    P, A = curv.P, sum(lifted.a)
    x, t = w[:P], w[P:P + A]
    tangent = curv.polynomial().tangent(x)
    # t and tangent(x) agree to the solve's accuracy; κ(K) of this small,
    # well-damped problem is modest, so 1e-10 relative is ample.
    assert np.linalg.norm(t - tangent) <= 1e-10 * np.linalg.norm(tangent)


@pytest.mark.parametrize("damping", [0.0, 2.5])
def test_damping_enters_only_the_x_diagonal(damping):
    curv = Curvature(*random_problem(3, 2, 2, seed=1))
    K0 = LiftedSystem(curv.blocks, 0.0).K.toarray()
    K = LiftedSystem(curv.blocks, damping).K.toarray()
    D = np.zeros_like(K)
    D[np.arange(curv.P), np.arange(curv.P)] = damping
    np.testing.assert_array_equal(K - K0, D)
