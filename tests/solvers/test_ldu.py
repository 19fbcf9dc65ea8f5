"""The paper's block LDU (block Thomas) of ``K' = Π K Π^T``.

``factors()`` must give ``K' = Lf D Uf`` with ``Lf`` unit block
lower-bidiagonal, ``D = blockdiag(S_l)`` and ``Uf`` unit block
upper-bidiagonal, ``S_l`` the Schur complements of the notation page (docs/theory/notation.md) §5.  And the
instability the paper warns about must be visible, not silent.

The Schur complements are checked on every backend; ``factors()`` returns
``scipy.sparse`` matrices (a display), so the product ``Lf D Uf`` is checked
on NumPy only, and elsewhere ``factors()`` must refuse.
"""

import numpy as np
import scipy.sparse as sp
import pytest
from hypothesis import given

from _backend import ON_NUMPY, B, N, numpy_only, refuses
from hessinv_ref import Curvature
from hessinv_ref.solvers import LDUFactorization, LiftedSystem
from hessinv_ref.testing import random_problem

from .conftest import (
    C_ROUTE,
    EPS,
    dense_reference,
    factorize_recording,
    forward_bound,
    relative_error,
    solve_cases,
)


def _block(Mat, off, i, j):
    return Mat[off[i]:off[i + 1], off[j]:off[j + 1]]


def _host_tridiagonal(T):
    """The blocks of ``K'`` (a BlockTridiagonal) as NumPy copies."""
    return [N(b) for b in T.diag], [N(b) for b in T.lower], [N(b) for b in T.upper]


@given(solve_cases(max_depth=6))
def test_schur_complements_match_their_definition(case):
    """``S_1 = B_{1,1}``, ``S_l = B_{l,l} - B_{l,l-1} S_{l-1}^{-1} B_{l-1,l}``,
    with dense solves of NumPy copies."""
    curv = case.curvature()
    fact, _ = factorize_recording(curv, case.damping, "ldu")
    T = LiftedSystem(curv.blocks, case.damping).K_pivoted
    diag, lower, upper = _host_tridiagonal(T)
    S = [N(s) for s in fact.S]
    n, L = sum(d.shape[0] for d in diag), curv.depth
    assert len(S) == L and all(s.shape == d.shape for s, d in zip(S, diag))
    np.testing.assert_array_equal(S[0], diag[0])  # S_1 = B_{1,1}
    pc = fact.pivot_condition
    for l in range(1, L):
        sol = np.linalg.solve(S[l - 1], upper[l - 1])
        S_def = diag[l] - lower[l - 1] @ sol
        size = np.max(np.abs(diag[l])) + np.max(np.abs(lower[l - 1])) * np.max(np.abs(sol))
        # Two different LU solves with S_{l-1} differ by its condition times
        # rounding (bounded by pivot_condition); measured <= 2e-4 of this.
        assert np.max(np.abs(S[l] - S_def)) <= C_ROUTE * n * EPS * pc * size, f"S_{l + 1}"


@numpy_only("factors() returns scipy.sparse matrices")
@given(solve_cases(max_depth=6))
def test_factors_reproduce_K_pivoted_with_the_stated_structure(case):
    curv = case.curvature()
    fact, _ = factorize_recording(curv, case.damping, "ldu")
    Lf, D, Uf = fact.factors()
    assert all(sp.issparse(m) for m in (Lf, D, Uf))
    T = LiftedSystem(curv.blocks, case.damping).K_pivoted
    Kp = T.to_dense()
    Lf, D, Uf = Lf.toarray(), D.toarray(), Uf.toarray()
    off, L = T.offsets, curv.depth

    for i in range(L):
        for j in range(L):
            lb, db, ub = _block(Lf, off, i, j), _block(D, off, i, j), _block(Uf, off, i, j)
            if i == j:
                np.testing.assert_array_equal(lb, np.eye(lb.shape[0]), err_msg=f"Lf[{i},{i}]")
                np.testing.assert_array_equal(ub, np.eye(ub.shape[0]), err_msg=f"Uf[{i},{i}]")
                np.testing.assert_array_equal(db, fact.S[i], err_msg=f"D[{i},{i}]")
                continue
            np.testing.assert_array_equal(db, 0 * db, err_msg=f"D[{i},{j}]")
            if i != j + 1:
                np.testing.assert_array_equal(lb, 0 * lb, err_msg=f"Lf[{i},{j}]")
            if j != i + 1:
                np.testing.assert_array_equal(ub, 0 * ub, err_msg=f"Uf[{i},{j}]")

    # (The Schur complements themselves: test_schur_complements_match_their_definition.)
    # Lf D Uf = K'.  LU is backward stable in the size of its factors:
    # |K' - Lf D Uf| <= γ_n |Lf| |D| |Uf| (the off-diagonal factors come from
    # backward-stable solves with S_l, whose residuals obey the same bound).
    # Measured: at most 0.21 n eps max(|Lf||D||Uf|) over 300 draws.
    prod = Lf @ D @ Uf
    size = np.max(np.abs(Lf) @ np.abs(D) @ np.abs(Uf))
    err = np.max(np.abs(prod - Kp))
    assert err <= C_ROUTE * max(T.sizes) * EPS * size, f"|K' - Lf D Uf| = {err:.3e}"
    # The nonzero pattern outside the tridiagonal band of blocks stays empty.
    for i in range(L):
        for j in range(L):
            if abs(i - j) > 1:
                np.testing.assert_array_equal(_block(prod, off, i, j), 0.0)


def test_log_determinant_is_the_product_of_the_schur_complements():
    curv = Curvature(*random_problem(5, 3, 2, layers="mixed", head="mse", seed=3))
    fact = LDUFactorization(curv, 0.05)
    sign, logabs = 1.0, 0.0
    for S in fact.S:
        s, la = np.linalg.slogdet(N(S))
        sign, logabs = sign * s, logabs + la
    got = fact.logdet()
    assert got[0] == sign
    # Same LU pivots, summed in the same order up to the permutation sign.
    assert abs(got[1] - logabs) <= C_ROUTE * EPS * sum(S.shape[0] for S in fact.S) * max(1.0, abs(logabs))


def test_unpivoted_elimination_can_be_worse_conditioned_than_the_matrix():
    """The paper's warning, made visible: on this problem κ(H + εI) ≈ 700,
    yet an LDU pivot, equilibrated, has condition ≈ 1.1e6 (unscaled it
    reads 1.5e8), while banded LU, pivoting across blocks, stays within a
    small factor of κ (NumPy only: the banded LU is).  Both answers are
    still within their stated bounds."""
    curv = Curvature(
        *random_problem(4, 3, 2, layers="mixed", activation="sigmoid", head="mse", scale=2.0, seed=157)
    )
    eps = 0.01
    ref = dense_reference(curv, eps)
    assert ref.kappa < 1e3
    ldu, ill = factorize_recording(curv, eps, "ldu")
    assert not ill and ldu.pivot_condition > 1e3 * ref.kappa  # below 1/sqrt(eps): no warning
    g = np.random.default_rng(0).standard_normal(curv.P)
    x = ref.solve(g)
    assert relative_error(ldu.solve(B(g)), x) <= forward_bound(ref.kappa, ldu)
    if ON_NUMPY:
        banded, ill_banded = factorize_recording(curv, eps, "banded")
        assert not ill_banded and banded.pivot_condition < 10 * ref.kappa
        assert relative_error(banded.solve(B(g)), x) <= forward_bound(ref.kappa, banded)


@pytest.mark.skipif(ON_NUMPY, reason="NumPy has scipy.sparse: factors() is tested above")
def test_factors_refuse_on_other_backends():
    fact = LDUFactorization(Curvature(*random_problem(3, 2, 2, seed=0)), 0.1)
    with refuses():
        fact.factors()
