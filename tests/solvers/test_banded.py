"""``method="banded"``: LAPACK banded LU with partial pivoting of ``K'``.

This ties the route to ``scipy.linalg.solve_banded``: the band the
factorization stores, handed to ``solve_banded`` with its ``(kl, ku)``,
solves the same system; ``kl``/``ku`` are the true bandwidths of ``K'``, and
they do not grow with depth.
"""

import numpy as np
import scipy.linalg
from hypothesis import given

from hessinv_ref import Curvature
from hessinv_ref.solvers import BandedFactorization, LiftedSystem
from hessinv_ref.testing import random_problem

from .conftest import (
    C_ROUTE,
    EPS,
    dense_reference,
    factorize_recording,
    relative_error,
    solve_cases,
)


def _bandwidths(A):
    i, j = np.nonzero(A)
    return int(max(0, (i - j).max(initial=0))), int(max(0, (j - i).max(initial=0)))


@given(solve_cases(max_depth=6))
def test_band_storage_holds_K_pivoted_with_its_true_bandwidths(case):
    curv = case.curvature()
    fact, _ = factorize_recording(curv, case.damping, "banded")
    Kp = LiftedSystem(curv.blocks, case.damping).K_pivoted.to_dense()
    N = Kp.shape[0]
    assert (fact.kl, fact.ku) == _bandwidths(Kp)
    assert fact.ab.shape == (fact.kl + fact.ku + 1, N)
    # solve_banded's layout: ab[ku + i - j, j] = K'[i, j] inside the band,
    # and the corners outside the matrix are zero.
    for i in range(N):
        for j in range(max(0, i - fact.kl), min(N, i + fact.ku + 1)):
            assert fact.ab[fact.ku + i - j, j] == Kp[i, j]
    assert np.count_nonzero(fact.ab) == np.count_nonzero(Kp)  # nothing lost, nothing added

    # Block tridiagonal with blocks of size n_l = p_l + 2 a_l: the band is at
    # most two neighbouring blocks wide, whatever the depth.
    n = [p + 2 * a for p, a in curv.sizes()]
    widest = max([n[l] + n[l + 1] - 1 for l in range(len(n) - 1)], default=0)
    assert max(fact.kl, fact.ku) <= max(widest, max(n) - 1)


@given(solve_cases(max_depth=8))
def test_solve_banded_on_the_stored_band_gives_the_same_solution(case):
    curv = case.curvature()
    fact, _ = factorize_recording(curv, case.damping, "banded")
    g = case.rhs(curv.P)
    lifted = LiftedSystem(curv.blocks, case.damping)
    u = scipy.linalg.solve_banded((fact.kl, fact.ku), fact.ab, lifted.rhs(g))
    x_sb, _, _ = lifted.unpivot(u)
    x = fact.solve(g)
    # Both are banded LU with partial pivoting of the same K' (LAPACK gbsv =
    # gbtrf + gbtrs; gtsv when kl = ku = 1): any difference is rounding,
    # bounded by the condition of K' that the factorization reports.
    assert relative_error(x, x_sb) <= C_ROUTE * EPS * fact.pivot_condition


def test_bandwidths_do_not_grow_with_depth():
    widths = set()
    for depth in (3, 4, 8, 16):  # (depth 2 has only the head as a neighbour)
        curv = Curvature(*random_problem(depth, 3, 2, seed=0))
        fact = BandedFactorization(curv, 0.1)
        widths.add((fact.kl, fact.ku))
    assert len(widths) == 1, widths


def test_determinant_of_K_pivoted_is_that_of_the_damped_hessian():
    """``det K' = det K = det(M) det(M^T) det(H + εI) = det(H + εI)`` (``M``
    unit triangular, ``det Π^2 = 1``): banded LU's logdet needs nothing else."""
    curv = Curvature(*random_problem(5, 3, 2, activation="tanh", scale=2.0, seed=1))
    eps = 0.01
    ref = dense_reference(curv, eps)
    assert ref.n_neg > 0 and ref.n_neg % 2 == 1  # an odd count: the sign is -1
    Kp = LiftedSystem(curv.blocks, eps).K_pivoted.to_dense()
    sK, lK = np.linalg.slogdet(Kp)
    sA, lA = np.linalg.slogdet(ref.A)
    fact = BandedFactorization(curv, eps)
    sB, lB = fact.logdet()
    assert sK == sA == sB == -1.0
    tol = C_ROUTE * Kp.shape[0] * EPS * max(ref.kappa, fact.pivot_condition)
    assert abs(lK - lA) <= tol and abs(lB - lA) <= tol
