"""The ``assert_*`` oracle helpers: pass on our own routes, fail on perturbed ones.

The perturbed candidates are built from the explicit per-layer blocks with one
term changed (a dropped ``Hxz``, a transposed ``Jz``), or from the right
answer with a classic slip (a summed instead of averaged loss, a wrong
damping), and the failure must name the problem and the quantity.
"""

import numpy as np
import pytest

from hessinv_ref import Curvature, Network, hvp, polynomial_hvp, solve
from hessinv_ref.dense import hessian_from_blocks
from hessinv_ref.polynomial import HessianPolynomial
from hessinv_ref.testing import random_problem
from hessinv_ref.testing.asserts import (
    C_TOL,
    OracleProblem,
    assert_gradient_close,
    assert_hvp_close,
    assert_inverse_hvp_close,
    default_problems,
)

# -- our own routes pass ----------------------------------------------------------------------


def test_our_gradient_passes():
    report = assert_gradient_close(lambda net, p, X, y: net.gradient(p, X, y))
    assert report.passed and len(report.comparisons) == len(default_problems())


@pytest.mark.parametrize("route", [hvp, polynomial_hvp], ids=["rop", "polynomial"])
def test_our_hvps_pass(route):
    assert assert_hvp_close(route).passed


@pytest.mark.filterwarnings("ignore::hessinv_ref.IllConditionedPivotWarning")
@pytest.mark.parametrize("method", ["banded", "ldu", "dense"])
def test_our_inverse_routes_pass(method):
    report = assert_inverse_hvp_close(
        lambda net, p, X, y, g, d: solve(net, p, X, y, g, damping=d, method=method))
    # the paper's problem brings two dampings
    assert report.passed and len(report.comparisons) == 7


# -- perturbed candidates fail, naming the problem and the quantity ---------------------------


def _blocks(net, params, X, y, change):
    """The explicit blocks with ``change(layer_index, blocks) -> blocks`` applied."""
    blocks = Curvature(net, params, X, y).blocks
    return [change(l, blk) for l, blk in enumerate(blocks)]


def _drop_hxz(l, blk):
    return blk._replace(Hxz=np.zeros_like(blk.Hxz))


def _transpose_square_jz(l, blk):
    return blk._replace(Jz=blk.Jz.T) if blk.Jz.shape[0] == blk.Jz.shape[1] else blk


def hvp_without_hxz(net, params, X, y, v):
    return HessianPolynomial(_blocks(net, params, X, y, _drop_hxz)).matvec(v)


def hvp_with_transposed_jz(net, params, X, y, v):
    return HessianPolynomial(_blocks(net, params, X, y, _transpose_square_jz)).matvec(v)


def gradient_with_transposed_jz(net, params, X, y):
    """Backprop b_{l-1} = b_l Jz_l with Jz transposed wherever it is square."""
    curv = Curvature(net, params, X, y)
    blocks = [_transpose_square_jz(l, blk) for l, blk in enumerate(curv.blocks)]
    b, grads = np.ones(1), []
    for blk in reversed(blocks):
        grads.append(b @ blk.Jx)
        b = b @ blk.Jz
    return np.concatenate(grads[::-1])


def test_dropped_hxz_fails_and_names_problem_and_quantity():
    with pytest.raises(AssertionError) as info:
        assert_hvp_close(hvp_without_hxz)
    msg = str(info.value)
    # Hxz of the first layer multiplies t_0 = 0, so the one-layer logistic model is unaffected
    assert msg.startswith("assert_hvp_close: 5 of 6 comparisons failed")
    assert "'logistic'" not in msg
    assert "problem 'paper', Hv:\n" in msg
    assert "  rebuild       random_problem(depth=6, width=3, batch=2, activation='tanh'" in msg
    assert "  error         max|Hv_c - Hv| / max(|H||v|) = " in msg and "> tolerance" in msg
    # a dropped Hxz is none of the known mistakes; the message says so, and where the error is
    assert "likely cause  no known cause matched" in msg and "worst entry   layer " in msg


def test_transposed_jz_fails_where_jz_is_square_and_not_elsewhere():
    report = assert_hvp_close(hvp_with_transposed_jz, raise_on_failure=False)
    failed = {c.problem for c in report.failures}
    # every hidden Jz of these is square; the logistic model has none
    assert {"paper", "residual", "mse", "indefinite", "near-singular"} <= failed
    assert "logistic" not in failed
    with pytest.raises(AssertionError, match=r"problem 'paper'.*gradient"):
        assert_gradient_close(gradient_with_transposed_jz)


def test_gradient_of_the_summed_loss_fails_by_the_batch_size():
    report = assert_gradient_close(lambda net, p, X, y: len(X) * net.gradient(p, X, y),
                                   raise_on_failure=False)
    assert {c.problem for c in report.failures} == {p.name for p in default_problems()}
    assert all(c.error > 0.5 for c in report.failures)


def test_inverse_with_dropped_hxz_or_wrong_damping_fails():
    def inverse_without_hxz(net, p, X, y, g, d):
        H = hessian_from_blocks(_blocks(net, p, X, y, _drop_hxz))
        return np.linalg.solve(H + d * np.eye(len(g)), g)

    with pytest.raises(AssertionError, match=r"problem 'paper'.*\(H \+ 0\.1 I\)\^-1 g"):
        assert_inverse_hvp_close(inverse_without_hxz)

    def off_damping(net, p, X, y, g, d):
        return solve(net, p, X, y, g, damping=d * (1 + 1e-6))

    report = assert_inverse_hvp_close(off_damping, raise_on_failure=False)
    assert {c.problem for c in report.failures} >= {"paper", "near-singular"}


def test_tolerance_scales_with_the_condition_number():
    report = assert_inverse_hvp_close(lambda net, p, X, y, g, d: solve(net, p, X, y, g, damping=d))
    tol = {(c.problem, c.quantity): c.tolerance for c in report.comparisons}
    P = {p.name: p.net.n_params for p in default_problems()}
    eps = np.finfo(float).eps
    # near-singular: kappa ~ 1e6, so the tolerance is ~1e6 n eps, and still far below 1e-6
    near = tol[("near-singular", "(H + 1e-06 I)^-1 g")]
    assert 1e5 * C_TOL * P["near-singular"] * eps < near < 1e-6
    assert tol[("paper", "(H + 0.001 I)^-1 g")] > tol[("paper", "(H + 0.1 I)^-1 g")]


def test_a_small_perturbation_is_caught_by_default_and_accepted_with_rtol():
    def off(net, p, X, y, v):
        return hvp(net, p, X, y, v) * (1 + 1e-9)

    with pytest.raises(AssertionError):
        assert_hvp_close(off)
    assert assert_hvp_close(off, rtol=1e-6).passed
    with pytest.raises(AssertionError):
        assert_hvp_close(hvp, rtol=1e-300)  # rtol replaces the default, in both directions


# -- problems, shapes, inputs -------------------------------------------------------------------


def test_default_problems_cover_the_advertised_settings():
    probs = {p.name: p for p in default_problems()}
    paper = probs["paper"].net
    assert not any(layer.bias for layer in paper.layers)
    assert all(layer.activation.name == "tanh" for layer in paper.layers[:-1])
    assert type(paper.head).__name__ == "SoftmaxCrossEntropy"
    assert type(probs["residual"].net.layers[0]).__name__ == "Residual"
    assert type(probs["mse"].net.head).__name__ == "SquaredError"
    ind = probs["indefinite"]
    H = Curvature(ind.net, ind.params, ind.X, ind.y).hessian()
    assert np.linalg.eigvalsh(H + ind.damping[0] * np.eye(len(H)))[0] < 0
    near = probs["near-singular"]
    H = Curvature(near.net, near.params, near.X, near.y).hessian()
    w = np.abs(np.linalg.eigvalsh(H + near.damping[0] * np.eye(len(H))))
    assert w.max() / w.min() > 1e5


def test_custom_problems_as_tuples_and_oracle_problems():
    net, params, X, y = random_problem(2, 2, 3, head="mse", seed=9)
    report = assert_hvp_close(hvp, problems=[(net, params, X, y, "mine"),
                                             OracleProblem.random(depth=2, width=2, batch=1, seed=1)])
    assert [c.problem for c in report.comparisons] == ["mine", "random_problem(depth=2, width=2, batch=1, seed=1)"]
    # a single tuple is one problem
    assert len(assert_gradient_close(lambda n, p, X, y: n.gradient(p, X, y),
                                     problems=(net, params, X, y)).comparisons) == 1
    with pytest.raises(AssertionError, match="problem 'mine'"):
        assert_hvp_close(hvp_without_hxz, problems=[(net, params, X, y, "mine")])


def test_damping_override_and_singular_damping_is_refused():
    net, params, X, y = random_problem(1, 3, 2, bias=True, seed=0)  # softmax with bias: singular H
    ours = lambda n, p, X, y, g, d: solve(n, p, X, y, g, damping=d)  # noqa: E731
    report = assert_inverse_hvp_close(ours, problems=[(net, params, X, y)], damping=[1.0, 0.5])
    assert [c.quantity for c in report.comparisons] == ["(H + 1 I)^-1 g", "(H + 0.5 I)^-1 g"]
    with pytest.raises(ValueError, match="numerically singular"):
        assert_inverse_hvp_close(ours, problems=[(net, params, X, y)], damping=0.0)
    with pytest.raises(ValueError, match="damping"):
        assert_inverse_hvp_close(ours, damping=-1.0)


def test_wrong_shape_and_candidate_errors_name_the_problem():
    with pytest.raises(AssertionError, match=r"problem 'paper'.*shape \(53,\), expected \(54,\)"):
        assert_hvp_close(lambda net, p, X, y, v: hvp(net, p, X, y, v)[:-1])

    def boom(net, p, X, y, v):
        raise RuntimeError("kaput")

    with pytest.raises(RuntimeError, match="kaput") as info:
        assert_hvp_close(boom)
    assert any("problem 'paper'" in note for note in getattr(info.value, "__notes__", ["problem 'paper'"]))
    with pytest.raises(TypeError, match="candidate"):
        assert_hvp_close("not callable")
    with pytest.raises(ValueError, match="rtol"):
        assert_hvp_close(hvp, rtol=0.0)
    with pytest.raises(TypeError, match=r"problems\[0\]"):
        assert_hvp_close(hvp, problems=[42])


def test_a_candidate_that_scribbles_on_its_inputs_cannot_corrupt_the_reference():
    def scribbler(net, p, X, y, v):
        out = hvp(net, p, X, y, v)
        p[:] = 0.0
        X[:] = 0.0
        v[:] = 0.0
        return out

    assert assert_hvp_close(scribbler).passed
    probs = default_problems()
    before = [p.params.copy() for p in probs]
    assert_hvp_close(scribbler, problems=probs)
    for p, b in zip(probs, before):
        np.testing.assert_array_equal(p.params, b)


def test_params_reach_the_candidate_flat_in_our_layout():
    seen = []

    def spy(net, p, X, y):
        assert isinstance(net, Network)
        seen.append((p.shape, p.dtype))
        return net.gradient(p, X, y)

    assert_gradient_close(spy)
    assert all(shape == (P,) and dtype == np.float64
               for (shape, dtype), P in zip(seen, [p.net.n_params for p in default_problems()]))
