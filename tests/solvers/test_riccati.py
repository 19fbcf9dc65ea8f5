"""The Riccati (stagewise Newton) sweep of the notation page (docs/theory/notation.md) §6.

The factorization's gains ``K_l`` and cost-to-go Hessians ``S_l`` are checked
against their *definition*: the quadratic program of §6, written out densely
over the layers ``l+1..L`` and minimised (made stationary) over their
parameters by a dense solve.  Then the pivots: Cholesky exactly where
``Q_xx`` is positive definite, LU elsewhere, and the inertia they carry
(counted from the eigenvalues of an LU pivot when asked for).

The factorization runs on the active backend; its gains, cost-to-go
matrices and solutions are copied to NumPy (``N``) for the dense oracles.
"""

import numpy as np
import pytest
from hypothesis import given

from _backend import B, N, host_blocks
from hessinv_ref import Curvature, SingularPivotError
from hessinv_ref.solvers import RiccatiFactorization
from hessinv_ref.testing import random_problem
from hessinv_ref.testing.strategies import Architecture

from .conftest import C_ROUTE, EPS, dense_reference, relative_error, riccati_growth, route_bound, solve_cases

FAST = [True, False]  # the stage-matrix sweeps and the plain, line-by-line ones


def _use(monkeypatch, fast):
    monkeypatch.setattr(RiccatiFactorization, "fast", fast, raising=False)


def _tiny_indefinite():
    # Depth 3, width 2, batch 2, tanh with gain 2.5: H + 0.01 I has 6 negative
    # eigenvalues of 21, κ ≈ 190, and the first two pivots are indefinite.
    return Curvature(*random_problem(3, 2, 2, activation="tanh", scale=2.5, seed=1))


def cost_to_go(blocks, damping, l):
    r"""The quadratic form of stages ``l+1..L`` in ``(t_l, x_{l+1}, .., x_L)``.

    Stage ``j`` costs ``½ [t_{j-1}; x_j]^T [[Hzz_j, Hxz_j^T], [Hxz_j, Hxx_j + εI]] [t_{j-1}; x_j]``
    with ``t_j = Jz_j t_{j-1} + Jx_j x_j``.  Returns its Hessian ``W`` and the
    sizes ``(a_l, [p_{l+1}, ..])``.  ``blocks`` are NumPy (``host_blocks``).
    """
    L = len(blocks)
    a_l = blocks[l].Jz.shape[1] if l < L else blocks[-1].Jz.shape[0]
    ps = [b.Jx.shape[1] for b in blocks[l:]]
    n = a_l + sum(ps)
    off = np.concatenate([[a_l], a_l + np.cumsum(ps)])
    Phi = np.eye(a_l, n)  # t_l as a linear map of the variables
    W = np.zeros((n, n))
    for j in range(l + 1, L + 1):
        b = blocks[j - 1]
        E = np.zeros((b.Jx.shape[1], n))
        E[:, off[j - l - 1]:off[j - l]] = np.eye(b.Jx.shape[1])
        stage = np.block([[b.Hzz, b.Hxz.T], [b.Hxz, b.Hxx + damping * np.eye(b.Hxx.shape[0])]])
        T = np.vstack([Phi, E])
        W += T.T @ stage @ T
        Phi = b.Jz @ Phi + b.Jx @ E
    return W, a_l


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("damping", [0.01, 10.0])
def test_gains_and_cost_to_go_match_their_definition(damping, fast, monkeypatch):
    _use(monkeypatch, fast)
    curv = _tiny_indefinite()
    blocks = host_blocks(curv)
    L = curv.depth
    fact = curv.factorize(damping, "riccati")
    ref = dense_reference(curv, damping)
    assert ref.positive_definite == (damping == 10.0)  # one PD case, one indefinite

    # Stage 0 is the whole program: its Hessian in x is H + εI (§6's claim).
    W0, a0 = cost_to_go(blocks, damping, 0)
    scale = np.max(np.abs(ref.A))
    np.testing.assert_allclose(W0[a0:, a0:], ref.A, rtol=0, atol=10 * curv.P * EPS * scale)

    assert fact.S[0] is None
    np.testing.assert_array_equal(N(fact.S[L]), np.zeros(fact.S[L].shape))
    for l in range(0, L):
        W, a = cost_to_go(blocks, damping, l)
        Wtt, Wtx, Wxx = W[:a, :a], W[:a, a:], W[a:, a:]
        sol = np.linalg.solve(Wxx, Wtx.T)  # the stationary x as a function of t_l is -sol t_l
        # Both sides are a few dense solves with W_xx: rounding relative to
        # κ(W_xx) times the size of the terms.
        w = np.linalg.eigvalsh(Wxx)
        kappa = np.max(np.abs(w)) / np.min(np.abs(w))
        tol = C_ROUTE * W.shape[0] * EPS * kappa
        K_def = -sol[: blocks[l].Jx.shape[1]]  # K_{l+1}: rows of x_{l+1}
        K = N(fact.gains[l])
        assert K.shape == K_def.shape
        assert np.max(np.abs(K - K_def)) <= tol * max(1.0, np.max(np.abs(K_def))), f"K_{l + 1}"
        if l >= 1:
            S_def = Wtt - Wtx @ sol
            S = N(fact.S[l])
            size = np.max(np.abs(Wtt)) + np.max(np.abs(Wtx @ sol))
            assert np.max(np.abs(S - S_def)) <= tol * size, f"S_{l}"


@pytest.mark.parametrize("fast", FAST)
def test_pivot_kinds_follow_definiteness_and_S_is_symmetric(fast, monkeypatch):
    _use(monkeypatch, fast)
    curv = Curvature(*random_problem(8, 3, 2, activation="tanh", scale=2.0, seed=0))
    for damping, expect_pd in ((1e-3, False), (30.0, True)):
        fact = curv.factorize(damping, "riccati")
        assert dense_reference(curv, damping).positive_definite == expect_pd
        kinds = []
        for l, (pivot, blk) in enumerate(zip(fact.pivots, host_blocks(curv)), start=1):
            assert pivot.layer == l
            S = N(fact.S[l])
            np.testing.assert_array_equal(S, S.T)  # symmetrised every step: exactly
            Q = blk.Hxx + damping * np.eye(blk.Hxx.shape[0]) + blk.Jx.T @ S @ blk.Jx
            w = np.linalg.eigvalsh(Q)
            # Decidable: no eigenvalue of Q_xx within rounding of zero.
            assert np.min(np.abs(w)) > 1e-8 * np.max(np.abs(w))
            assert pivot.kind == ("cholesky" if w[0] > 0 else "lu"), f"layer {l}"
            assert (pivot.n_pos, pivot.n_neg) == (int(np.sum(w > 0)), int(np.sum(w < 0)))
            kinds.append(pivot.kind)
        assert ("lu" in kinds) == (not expect_pd)


@given(solve_cases(max_depth=6))
def test_pivots_carry_the_inertia_and_logdet(case):
    """Sylvester: ``H + εI`` is congruent to ``blockdiag(Q_xx^{(l)})``."""
    curv = case.curvature()
    ref = dense_reference(curv, case.damping)
    if ref.kappa > 1e10:
        return  # inertia not decidable in floating point
    fact = curv.factorize(case.damping, "riccati")
    assert sum(p.n_neg for p in fact.pivots) == ref.n_neg
    assert sum(p.n_pos for p in fact.pivots) == curv.P - ref.n_neg
    # log|det| = Σ log|det Q_xx|; accuracy as in test_factorization.
    _, logabs = np.linalg.slogdet(ref.A)
    tol = curv.P * route_bound(ref.kappa, fact)
    tol += C_ROUTE * EPS * float(np.sum(np.abs(np.log(np.abs(ref.w)))))
    assert abs(fact.logdet()[1] - logabs) <= tol


def test_singular_head_pivot_names_the_last_layer():
    # The head is eliminated first; with a bias, its softmax block is singular.
    curv = Curvature(*random_problem(4, 3, 2, head="softmax", bias=True, seed=1))
    with pytest.raises(SingularPivotError, match="riccati: the pivot of layer 4") as info:
        curv.factorize(0.0, "riccati")
    assert info.value.layer == 4 and info.value.method == "riccati"


@pytest.mark.parametrize("fast", FAST)
def test_both_sweeps_solve_the_same_system(fast, monkeypatch):
    _use(monkeypatch, fast)
    curv = _tiny_indefinite()
    ref = dense_reference(curv, 0.01)
    fact = curv.factorize(0.01, "riccati")
    G = np.random.default_rng(3).standard_normal((curv.P, 2))
    assert relative_error(fact.solve(B(G)), ref.solve(G)) <= route_bound(ref.kappa, fact)


def test_indefinite_accuracy_follows_the_gains_not_the_pivot_condition():
    """Four parameters, three scalar-or-diagonal pivots: ``pivot_condition``
    is 1, yet the first pivot is -145 against ‖H + εI‖ ≈ 2, so the gains are
    ~330 and the sweep loses ~2.5 digits more than κ ≈ 9 explains.  Measured:
    up to 32x ``ε max(κ, pivot_condition)`` over right-hand sides, which is
    why :func:`route_bound` adds ``ε κ growth`` for ``riccati``."""
    arch = Architecture(n_in=1, widths=(1, 1), kinds=("residual", "residual"), activations=("gelu", "relu"),
                        biases=(False, False, False), head="mse", n_out=2, batch=3)
    curv = Curvature(*arch.problem(3507310294, scale=1.7427234026364746))
    eps = 0.00378587011028084
    ref = dense_reference(curv, eps)
    fact = curv.factorize(eps, "riccati")
    assert curv.P == 4 and ref.kappa < 10 and ref.n_neg == 1
    # scalar pivots: condition 1 (to rounding, where rcond is 1/(|q| |1/q|))
    assert abs(fact.pivot_condition - 1.0) < 1e-12 and riccati_growth(fact) > 100
    G = np.stack([np.random.default_rng(s).standard_normal(curv.P) for s in range(300)], axis=1)
    assert relative_error(fact.solve(B(G)), ref.solve(G)) <= route_bound(ref.kappa, fact)
