"""The fast paths compute what the plain (textbook) paths compute.

Every speed-up keeps the explicit route next to it; here each pair is run
on the same point and must agree to rounding:

* per-layer blocks: ``stacked_blocks`` (vectorised, many layers at once)
  against ``jacobians`` + ``curvature`` (explicit Kronecker products);
* the forward and backward passes: ``forward_run``/``vjp_run`` against
  ``forward``/``vjp`` layer by layer;
* the Riccati sweeps on stage matrices against the line-by-line sweeps;
* the linear-time banded condition estimate against LAPACK ``dgbcon``;
* the linear-time sparse assembly of ``K'`` against its dense blocks.
"""

import itertools

import numpy as np
import pytest
import scipy.linalg.lapack as lapack

from hessinv_ref import ACTIVATIONS, Curvature, Dense, Network, Residual, SoftmaxCrossEntropy
from hessinv_ref.solvers import RiccatiFactorization
from hessinv_ref.solvers.banded import gbcon_1norm, to_banded
from hessinv_ref.solvers.lifted import LiftedSystem
from hessinv_ref.testing import random_problem

EPS = np.finfo(float).eps


def PlainCurvature(*problem):
    """The textbook route for the passes and the blocks."""
    return Curvature(*problem, path="reference")


def PlainRiccati(curv, damping):
    """The reference sweeps, line by line."""
    return RiccatiFactorization(curv, damping, path="reference")


def assert_close_to_rounding(a, b, what, factor=64):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
    err = float(np.max(np.abs(a - b), initial=0.0))
    assert err <= factor * EPS * scale, f"{what}: max error {err:.3g} > {factor} eps * {scale:.3g}"


CASES = [
    dict(layers=layers, head=head, bias=bias, activation=act)
    for layers, head, bias, act in itertools.product(
        ("dense", "residual"), ("softmax", "mse"), (True, False), sorted(ACTIVATIONS)
    )
]
SIZES = [dict(depth=5, width=3, batch=2), dict(depth=3, width=2, batch=1), dict(depth=1, width=2, batch=3)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_fast_blocks_and_passes_match_the_plain_ones(case):
    for seed, size in enumerate(SIZES):
        problem = random_problem(seed=seed, **size, **case)
        plain, fast = PlainCurvature(*problem), Curvature(*problem)
        for name in ("z", "b"):
            for l, (u, w) in enumerate(zip(getattr(plain, name), getattr(fast, name))):
                assert_close_to_rounding(u, w, f"{name}[{l}]")
                assert not w.flags.writeable
        assert_close_to_rounding(plain.gradient(), fast.gradient(), "gradient")
        assert len(plain.blocks) == len(fast.blocks)
        for l, (bp, bf) in enumerate(zip(plain.blocks, fast.blocks), start=1):
            for field, u, w in zip(bp._fields, bp, bf):
                assert_close_to_rounding(u, w, f"layer {l} {field}")
                assert not w.flags.writeable, f"layer {l} {field} is writeable"
                assert w.dtype == np.float64


def test_runs_split_at_every_change_of_layer():
    """Dense layers of two input widths, residual blocks, another activation, no bias:
    each change starts a new run, and the blocks still match."""
    net = Network([
        Dense(3, 4), Dense(4, 4), Residual(4), Residual(4), Dense(4, 2, "sigmoid"),
        Dense(2, 2, "sigmoid", bias=False), SoftmaxCrossEntropy(2, 3),
    ])
    rng = np.random.default_rng(0)
    params = net.init(seed=rng, scale=1.5)
    X, y = rng.standard_normal((2, 3)), np.array([0, 2])
    fast = Curvature(net, params, X, y)
    assert [(s, e) for s, e, _ in fast._runs()] == [(0, 1), (1, 2), (2, 4), (4, 5), (5, 6), (6, 7)]
    plain = PlainCurvature(net, params, X, y)
    for bp, bf in zip(plain.blocks, fast.blocks):
        for field, u, w in zip(bp._fields, bp, bf):
            assert_close_to_rounding(u, w, field)


class ScaledDense(Dense):
    """A subclass that changes the output map: the fast builder does not know
    it, so it must take the explicit route."""

    def _output(self, U, Z):
        return 2.0 * self.activation.f(U)

    def _delta(self, U, b_out):
        return 2.0 * super()._delta(U, b_out)

    def _lambda(self, U, b_out, dU):
        return 2.0 * super()._lambda(U, b_out, dU)

    def _lambda_blocks(self, U, b_out):
        return 2.0 * super()._lambda_blocks(U, b_out)

    def _out_jvp(self, U, dU):
        return 2.0 * super()._out_jvp(U, dU)

    def _out_jacobian(self, U):
        return 2.0 * super()._out_jacobian(U)


def test_subclasses_take_the_explicit_route():
    layer = ScaledDense(2, 2)
    assert layer.stack_key() is None
    net = Network([ScaledDense(2, 2), ScaledDense(2, 2), SoftmaxCrossEntropy(2, 2)])
    params = net.init(seed=1)
    X, y = np.random.default_rng(1).standard_normal((2, 2)), np.array([1, 0])
    fast, plain = Curvature(net, params, X, y), PlainCurvature(net, params, X, y)
    assert_close_to_rounding(fast.gradient(), plain.gradient(), "gradient")
    for bp, bf in zip(plain.blocks, fast.blocks):
        for field, u, w in zip(bp._fields, bp, bf):
            assert_close_to_rounding(u, w, field)


def test_fast_paths_leave_inputs_untouched():
    net, params, X, y = random_problem(depth=4, width=3, batch=2, seed=3)
    theta = net.flatten(params)
    copies = [theta.copy(), X.copy(), y.copy()]
    curv = Curvature(net, theta, X, y)
    curv.blocks
    g = np.ones(net.n_params)
    for method in ("riccati", "ldu", "banded"):
        curv.factorize(0.5, method).solve(g)
    for before, after in zip(copies, (theta, X, y)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(g, 1.0)


@pytest.mark.parametrize("seed", range(12))
def test_riccati_stage_sweeps_match_the_plain_sweeps(seed):
    rng = np.random.default_rng(seed)
    problem = random_problem(
        depth=1 + seed % 6, width=1 + seed % 4, batch=1 + seed % 3, seed=seed,
        bias=bool(seed % 2), layers=("dense", "residual")[seed % 3 == 0], scale=1.5,
    )
    curv = Curvature(*problem)
    G = rng.standard_normal((curv.P, 3))
    for damping in (0.5, 5.0):
        plain, fast = PlainRiccati(curv, damping), RiccatiFactorization(curv, damping)
        assert plain.inertia() == fast.inertia()
        assert [p.kind for p in plain.pivots] == [p.kind for p in fast.pivots]
        sp, lp = plain.logdet()
        sf, lf = fast.logdet()
        assert sp == sf and abs(lp - lf) <= 1e-10 * max(1.0, abs(lp))
        # the same recursion to rounding, amplified by the conditioning of
        # the pivots: compare relative to the pivots' condition
        kappa = max(plain.pivot_condition, fast.pivot_condition)
        tol = 1e3 * EPS * kappa * max(1, curv.depth)
        for l in range(1, curv.depth + 1):
            if plain.S[l] is not None:
                np.testing.assert_allclose(fast.S[l], plain.S[l], rtol=tol,
                                           atol=tol * max(1.0, np.abs(plain.S[l]).max()))
        x_plain, x_fast = plain.solve(G), fast.solve(G)
        scale = max(1.0, np.abs(x_plain).max())
        assert np.abs(x_plain - x_fast).max() <= tol * scale
        assert fast.backward_error(x_fast, G) < 1e-12


def _band_factors(curv, damping):
    Kp = LiftedSystem(curv.blocks, damping).K_pivoted.to_sparse()
    _, kl, ku = to_banded(Kp)
    work, _, _ = to_banded(Kp, extra_rows=kl)
    lub, piv, info = lapack.dgbtrf(work, kl, ku)
    return lub, piv, kl, ku, float(abs(Kp).sum(axis=0).max()), info


@pytest.mark.parametrize("seed", range(20))
def test_banded_condition_estimate_is_lapack_dgbcon(seed):
    problem = random_problem(depth=1 + seed % 6, width=1 + seed % 4, batch=1 + seed % 3,
                             seed=seed, bias=bool(seed % 2), scale=2.0)
    curv = Curvature(*problem)
    for damping in (1e-3, 0.1, 10.0):
        lub, piv, kl, ku, anorm, info = _band_factors(curv, damping)
        if info > 0:
            continue
        ours = gbcon_1norm(lub, piv, kl, ku, anorm)
        theirs, _ = lapack.dgbcon(kl, ku, lub, piv, anorm)
        n = lub.shape[1]
        if theirs < n * EPS:  # singular: both below the rule's threshold
            assert ours < n * EPS
        else:
            assert abs(ours - theirs) <= 1e-8 * theirs, (ours, theirs)


def test_block_tridiagonal_sparse_assembly_matches_the_blocks():
    curv = Curvature(*random_problem(depth=4, width=3, batch=2, seed=5))
    T = LiftedSystem(curv.blocks, 0.3).K_pivoted
    dense = np.zeros(T.shape)
    o = T.offsets
    for l, D in enumerate(T.diag):
        dense[o[l]:o[l + 1], o[l]:o[l + 1]] = D
        if l + 1 < len(T.diag):
            dense[o[l + 1]:o[l + 2], o[l]:o[l + 1]] = T.lower[l]
            dense[o[l]:o[l + 1], o[l + 1]:o[l + 2]] = T.upper[l]
    np.testing.assert_array_equal(T.to_sparse().toarray(), dense)
