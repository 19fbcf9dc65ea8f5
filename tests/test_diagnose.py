"""The diagnosis of a failed oracle check: each known mistake, made on purpose,
is named, with the layer where the error lives; an unknown one is not.

The wrong candidates are built independently of :mod:`hessinv_ref.testing.diagnose`
(the GGN from the chain's blocks with the hidden curvature dropped, the block
diagonal from the dense Hessian, the layouts by reshaping), so a test checks
the diagnosis, not the diagnosis against itself.
"""

import numpy as np
import pytest

from hessinv_ref import Curvature, hvp, solve
from hessinv_ref.dense import hessian_from_blocks
from hessinv_ref.polynomial import HessianPolynomial
from hessinv_ref.testing import central_jacobian, central_step, random_problem
from hessinv_ref.testing import diagnose
from hessinv_ref.testing.asserts import (
    assert_gradient_close,
    assert_hvp_close,
    assert_inverse_hvp_close,
    default_problems,
)
from tolerances import assert_fd_close, assert_rounding_close

PROBLEMS = {p.name: p for p in default_problems()}


def _only(*names):
    return [PROBLEMS[n] for n in names]


def _failure(helper, candidate, *names, **kwargs):
    """The AssertionError message of ``helper`` on the named default problems;
    every failure in it says where the error lives (or that it is not finite)."""
    with pytest.raises(AssertionError) as info:
        helper(candidate, problems=_only(*names), **kwargs)
    msg = str(info.value)
    blocks = msg.split("\nproblem ")[1:]
    assert blocks, msg
    for block in blocks:
        assert "\n  worst entry   layer " in block or "\n  non-finite    " in block, block
        assert "\n  likely cause  " in block, block
    return msg


def _cause_line(msg):
    lines = [line for line in msg.splitlines() if line.strip().startswith("likely cause")]
    assert lines, msg
    return lines


# -- the Gauss-Newton matrix, built two independent ways ----------------------------------------


def _ggn_blocks(net, params, X, y):
    """math §9: the chain's blocks with every hidden Hxx, Hxz, Hzz zeroed and the
    head's Hxz replaced by its loss-curvature part U_x^T Λ A_z (the first-order
    cross term dropped); Hxx_L and Hzz_L are already pure loss curvature."""
    curv = Curvature(net, params, X, y)
    blocks = [blk._replace(Hxx=np.zeros_like(blk.Hxx), Hxz=np.zeros_like(blk.Hxz), Hzz=np.zeros_like(blk.Hzz))
              for blk in curv.blocks[:-1]]
    head, x = curv.layers[-1], curv.xs[-1]
    W, _ = head.unpack(x)
    W = np.asarray(W)
    B, n, m = curv.batch, head.n_in, head.n_out
    Z = np.asarray(curv.z[-2]).reshape(B, n)
    Lam = np.asarray(head.loss_terms(head.logits(x, curv.z[-2]))[2])
    Ux = np.zeros((B * m, head.n_params))  # du/dx_L
    Az = np.zeros((B * m, B * n))          # du/dz_{L-1}
    for i in range(B):
        for k in range(m):
            Ux[i * m + k, k * n:(k + 1) * n] = Z[i]
            if head.bias:
                Ux[i * m + k, m * n + k] = 1.0
            Az[i * m + k, i * n:(i + 1) * n] = W[k]
    L = np.zeros((B * m, B * m))
    for i in range(B):
        L[i * m:(i + 1) * m, i * m:(i + 1) * m] = Lam[i]
    head_blk = curv.blocks[-1]
    np.testing.assert_allclose(Ux.T @ L @ Ux, head_blk.Hxx, rtol=0, atol=1e-14 * (1 + np.abs(head_blk.Hxx).max()))
    return blocks + [head_blk._replace(Hxz=Ux.T @ L @ Az)]


def ggn_hvp(net, params, X, y, v):
    return HessianPolynomial(_ggn_blocks(net, params, X, y)).matvec(v)


def _logits(net, X, y):
    def f(theta):
        curv = Curvature(net, theta, X, y)
        return np.asarray(curv.layers[-1].logits(curv.xs[-1], curv.z[-2]))
    return f


@pytest.mark.parametrize("head", ["softmax", "mse"])
def test_logits_jacobian_matches_central_differences(head):
    net, params, X, y = random_problem(3, 2, 2, head=head, n_classes=3, bias=True, seed=6)
    theta = np.asarray(net.flatten(params))
    J, Lam = diagnose.Problem(net, theta, X, y).logits_jacobian
    fd = central_jacobian(_logits(net, X, y), theta)
    assert_fd_close(J.reshape(-1, net.n_params), fd, central_step(theta), scale=1.0, what="du/dtheta")
    assert Lam.shape == (2, 3, 3)


@pytest.mark.parametrize("head", ["softmax", "mse"])
def test_ggn_equals_the_chain_with_the_hidden_curvature_dropped(head):
    net, params, X, y = random_problem(4, 3, 3, layers="mixed", head=head, n_classes=2, bias=True, seed=2)
    prob = diagnose.Problem(net, net.flatten(params), X, y)
    G_chain = hessian_from_blocks(_ggn_blocks(net, params, X, y))
    assert_rounding_close(prob.G, G_chain, n=net.n_params, scale=np.abs(G_chain).max(), what="G")
    assert np.linalg.eigvalsh(prob.G).min() > -1e3 * net.n_params * np.finfo(float).eps * np.abs(prob.G).max()
    v = np.random.default_rng(0).standard_normal(net.n_params)
    assert_rounding_close(prob.ggn_hvp(v)[0], prob.G @ v, n=net.n_params, scale=np.abs(prob.G).max() * np.abs(v).max(),
                          what="G v")


@pytest.mark.parametrize("head", ["softmax", "mse"])
def test_ggn_of_a_single_head_layer_is_its_hessian(head):
    # u is linear in theta, so the dropped term vanishes
    net, params, X, y = random_problem(1, 3, 4, head=head, n_classes=2, bias=True, seed=1)
    prob = diagnose.Problem(net, net.flatten(params), X, y)
    assert_rounding_close(prob.G, prob.H, n=net.n_params, scale=np.abs(prob.H).max(), what="G = H")


# -- layouts and locations -------------------------------------------------------------------------


def test_layouts_are_the_named_flattenings_and_only_the_ones_that_differ():
    net, params, X, y = random_problem(3, 2, 2, bias=True, seed=0)
    theta = np.asarray(net.flatten(params))
    lay = diagnose.layouts(net)
    assert set(lay) == {"column-major", "bias first", "reversed"}
    per_layer = net.unflatten(theta)
    colmajor = np.concatenate([np.concatenate([np.asarray(d["weight"]).ravel(order="F"), np.asarray(d["bias"])])
                               for d in per_layer])
    biasfirst = np.concatenate([np.concatenate([np.asarray(d["bias"]), np.asarray(d["weight"]).ravel()])
                                for d in per_layer])
    reverse = np.concatenate([np.concatenate([np.asarray(d["weight"]).ravel(), np.asarray(d["bias"])])
                              for d in per_layer[::-1]])
    np.testing.assert_array_equal(theta[lay["column-major"]], colmajor)
    np.testing.assert_array_equal(theta[lay["bias first"]], biasfirst)
    np.testing.assert_array_equal(theta[lay["reversed"]], reverse)
    np.testing.assert_array_equal(diagnose._to_ours(theta[lay["reversed"]], lay["reversed"]), theta)
    # no bias: bias-first is our layout; one layer: reversing changes nothing
    assert "bias first" not in diagnose.layouts(random_problem(3, 2, 2, bias=False, seed=0)[0])
    assert set(diagnose.layouts(random_problem(1, 3, 2, bias=False, seed=0)[0])) == {"column-major"}


def test_an_offset_is_named_by_layer_part_and_index():
    net = random_problem(3, 2, 2, bias=True, seed=0)[0]  # sizes 6, 6, 9: W (2, 2) + b (2), then W (3, 2) + b (3)
    assert diagnose.describe_entry(net, 0) == "layer 1 of 3 (Dense), weight W[0, 0] at offset 0"
    assert diagnose.describe_entry(net, 5) == "layer 1 of 3 (Dense), bias b[1] at offset 5"
    assert diagnose.describe_entry(net, 6 + 6 + 3) == "layer 3 of 3 (SoftmaxCrossEntropy), weight W[1, 1] at offset 15"
    assert diagnose.describe_entry(net, 20) == "layer 3 of 3 (SoftmaxCrossEntropy), bias b[2] at offset 20"
    assert diagnose.describe_architecture(net) == (
        "2 x Dense(2, 2, activation='tanh', bias=True) -> SoftmaxCrossEntropy(2, 3, bias=True)")


# -- one deliberately wrong candidate per diagnosis -------------------------------------------------


def _gradient(net, p, X, y):
    return np.asarray(net.gradient(p, X, y))


def test_a_correct_candidate_passes_with_no_diagnosis():
    report = assert_gradient_close(_gradient, problems=_only("paper", "mse"))
    assert report.passed and all(c.diagnosis is None for c in report.comparisons)


def test_summed_loss_is_named_with_the_factor():
    msg = _failure(assert_gradient_close, lambda net, p, X, y: len(X) * _gradient(net, p, X, y), "paper", "mse")
    causes = _cause_line(msg)
    assert len(causes) == 2
    assert "loss summed instead of averaged (the answer is B = 2 times ours: the batch size)" in causes[0]
    # the squared-error head (B = 3) is averaged over B n_out = 6 elements: summing the batch is a factor 3
    assert "loss summed instead of averaged (the answer is B = 3 times ours" in causes[1]
    msg = _failure(assert_gradient_close, lambda net, p, X, y: 6 * _gradient(net, p, X, y), "mse")
    assert "B n_out = 6 times ours: mse_loss(reduction='sum')" in _cause_line(msg)[0]


def test_sign_flip_of_an_hvp():
    msg = _failure(assert_hvp_close, lambda net, p, X, y, v: -hvp(net, p, X, y, v), "residual")
    assert "likely cause  sign flip" in msg


def test_ggn_given_for_the_hessian():
    msg = _failure(assert_hvp_close, ggn_hvp, "paper", "mse")
    assert all("Gauss-Newton (GGN) instead of the Hessian (G v): matches" in line for line in _cause_line(msg))


def _block_diagonal_hvp(net, p, X, y, v):
    H = np.asarray(Curvature(net, p, X, y).hessian())
    off = net.offsets()
    out = np.zeros_like(v)
    for l in range(net.depth):
        s = slice(off[l], off[l + 1])
        out[s] = H[s, s] @ v[s]
    return out


def test_block_diagonal_approximation():
    msg = _failure(assert_hvp_close, _block_diagonal_hvp, "residual")
    assert "likely cause  block-diagonal approximation (blockdiag(H) v: the off-diagonal layer blocks dropped)" in msg


def test_block_diagonal_is_not_checked_when_p_is_too_large(monkeypatch):
    monkeypatch.setattr(diagnose, "DENSE_LIMIT", 10)
    msg = _failure(assert_hvp_close, _block_diagonal_hvp, "residual")
    assert "likely cause  no known cause matched" in msg
    assert ("not checked   block-diagonal approximation (P too large: the block-diagonal approximation needs "
            "a dense P x P matrix, P = 60 > DENSE_LIMIT = 10)") in msg
    # the layouts' answers at the permuted point need the dense H there for their scale
    assert ("not checked   weights flattened column-major, bias before weight, layers in reverse order "
            "(params read in that layout: P too large") in msg


def _relayout(net, theta, to_theirs):
    """Column-major weights, by reshaping each layer's W (as a Fortran reader would)."""
    out, off = np.array(theta, dtype=float), net.offsets()
    for l, layer in enumerate(net.layers):
        nw = layer.n_out * layer.n_in
        block = out[off[l]:off[l] + nw]
        if to_theirs:
            block[:] = block.reshape(layer.n_out, layer.n_in).ravel(order="F")
        else:
            block[:] = block.reshape(layer.n_out, layer.n_in, order="F").ravel()
    return out


def test_column_major_output_and_column_major_reading():
    msg = _failure(assert_gradient_close, lambda net, p, X, y: _relayout(net, _gradient(net, p, X, y), True), "paper")
    assert "likely cause  weights flattened column-major (the answer written in that layout)" in msg

    def reads_and_writes(net, p, X, y):
        return _relayout(net, _gradient(net, _relayout(net, p, False), X, y), True)

    msg = _failure(assert_gradient_close, reads_and_writes, "mse")
    assert "weights flattened column-major (params read and the answer written in that layout)" in _cause_line(msg)[0]


def test_bias_before_weight_lives_in_the_layers_with_a_bias():
    def bias_first(net, p, X, y):
        g, off, parts = _gradient(net, p, X, y), net.offsets(), []
        for l, layer in enumerate(net.layers):
            nw = layer.n_out * layer.n_in
            parts += [g[off[l] + nw:off[l + 1]], g[off[l]:off[l] + nw]]
        return np.concatenate(parts)

    msg = _failure(assert_gradient_close, bias_first, "indefinite")
    assert "likely cause  bias before weight (the answer written in that layout)" in msg


def test_layers_in_reverse_order():
    def reversed_hvp(net, p, X, y, v):
        Hv, off = np.asarray(hvp(net, p, X, y, v)), net.offsets()
        return np.concatenate([Hv[off[l]:off[l + 1]] for l in reversed(range(net.depth))])

    msg = _failure(assert_hvp_close, reversed_hvp, "paper")
    assert "likely cause  layers in reverse order (the answer written in that layout)" in msg


def _float32(a):
    return a.astype(np.float32) if np.issubdtype(np.asarray(a).dtype, np.floating) else a


def test_float32_precision():
    def hvp32(net, p, X, y, v):
        return np.asarray(hvp(net, _float32(p), _float32(X), _float32(y), _float32(v)), dtype=np.float64)

    msg = _failure(assert_hvp_close, hvp32, "paper", "mse")
    assert all("float32 precision (every entry is a float32 number)" in line for line in _cause_line(msg))
    # a float32 answer passes the float32 tolerance the docs recommend
    assert assert_hvp_close(hvp32, problems=_only("paper", "mse"), rtol=1e-4).passed


def test_float32_rounding_of_float64_entries_is_recognised_by_its_size():
    def grad32(net, p, X, y):
        g = np.asarray(net.gradient(_float32(p), _float32(X), _float32(y)), dtype=np.float64)
        return g * (1 + 2 ** -40)  # no longer float32 numbers, still float32-sized errors

    msg = _failure(assert_gradient_close, grad32, "residual")
    assert "float32 precision (the error is the size of a float32 computation's" in msg


def _dense(net, p, X, y):
    return np.asarray(Curvature(net, p, X, y).hessian())


def test_damping_forgotten_with_a_singular_hessian_is_found_by_the_residual():
    # the paper's H is singular: the forgotten-damping "solution" is huge, yet H x = g
    msg = _failure(assert_inverse_hvp_close, lambda net, p, X, y, g, d: np.linalg.solve(_dense(net, p, X, y), g),
                   "paper")
    assert all("damping forgotten (H x = g; by the residual if H is singular): matches" in line
               for line in _cause_line(msg))


def test_damping_doubled():
    msg = _failure(assert_inverse_hvp_close, lambda net, p, X, y, g, d: solve(net, p, X, y, g, damping=2 * d),
                   "indefinite", "mse")
    assert all("likely cause  damping doubled ((H + 2 eps I)^-1 g)" in line for line in _cause_line(msg))


def test_summed_loss_in_an_inverse():
    def summed(net, p, X, y, g, d):
        return np.linalg.solve(len(X) * _dense(net, p, X, y) + d * np.eye(len(g)), g)

    msg = _failure(assert_inverse_hvp_close, summed, "residual")
    assert "loss summed instead of averaged ((2 H + eps I)^-1 g: the Hessian of the summed loss)" in msg


@pytest.mark.parametrize(("cause", "matrix"), [
    ("Gauss-Newton (GGN) instead of the Hessian ((G + eps I)^-1 g)",
     lambda net, p, X, y: hessian_from_blocks(_ggn_blocks(net, p, X, y))),
    ("block-diagonal approximation ((blockdiag(H) + eps I)^-1 g: the off-diagonal layer blocks dropped)",
     lambda net, p, X, y: np.column_stack([_block_diagonal_hvp(net, p, X, y, e) for e in np.eye(net.n_params)])),
], ids=["ggn", "block-diagonal"])
def test_approximate_curvature_in_an_inverse(cause, matrix):
    def candidate(net, p, X, y, g, d):
        return np.linalg.solve(matrix(net, p, X, y) + d * np.eye(len(g)), g)

    msg = _failure(assert_inverse_hvp_close, candidate, "mse")
    assert f"likely cause  {cause}: matches" in msg


def test_an_unknown_error_matches_nothing_and_is_located():
    def one_wrong_entry(net, p, X, y, v):
        Hv = np.array(hvp(net, p, X, y, v))
        Hv[net.offsets()[2] + 4] += 1e-2  # layer 3, W[1, 1]
        return Hv

    msg = _failure(assert_hvp_close, one_wrong_entry, "paper")
    assert "likely cause  no known cause matched (tried: loss summed instead of averaged, sign flip" in msg
    assert "worst entry   layer 3 of 6 (Dense), weight W[1, 1] at offset 22" in msg
    assert "by layer      over tolerance in 1 of 6 layers: 3 (" in msg


def test_a_random_answer_matches_nothing_and_is_located():
    def random_answer(net, p, X, y, g, d):
        return np.random.default_rng(7).standard_normal(net.n_params)

    msg = _failure(assert_inverse_hvp_close, random_answer, "residual", "logistic")
    assert msg.count("likely cause  no known cause matched (tried: ") == 2
    assert msg.count("by layer      over tolerance in ") == 2


def test_the_layer_where_the_error_lives_and_its_bias():
    def bias_of_layer_2_doubled(net, p, X, y):
        g, off = _gradient(net, p, X, y), net.offsets()
        layer = net.layers[1]
        g[off[1] + layer.n_out * layer.n_in:off[2]] *= 2
        return g

    msg = _failure(assert_gradient_close, bias_of_layer_2_doubled, "residual")
    assert "worst entry   layer 2 of 5 (Residual), bias b[" in msg
    assert "over tolerance in 1 of 5 layers: 2 (" in msg and "bias only)" in msg
    assert "no known cause matched" in msg


def test_a_failure_reads_as_several_short_labelled_lines():
    msg = _failure(assert_gradient_close, lambda net, p, X, y: 2 * _gradient(net, p, X, y), "paper")
    lines = msg.splitlines()
    assert lines[0] == "assert_gradient_close: 1 of 1 comparisons failed"
    assert lines[1] == "problem 'paper', gradient:"
    labels = [line.split()[0] for line in lines[2:]]
    assert labels == ["architecture", "rebuild", "error", "worst", "by", "likely"]
    assert "5 x Dense(3, 3, activation='tanh', bias=False) -> SoftmaxCrossEntropy(3, 3, bias=False); seed 0" in lines[2]
    assert lines[4].split(None, 1)[1].startswith("max|g_c - g| / max(|b|^T|Jx|) = ")
    assert "> tolerance" in lines[4]


def test_non_finite_answers_are_located_not_diagnosed():
    def nan_in_layer_4(net, p, X, y, v):
        Hv = np.array(hvp(net, p, X, y, v))
        Hv[net.offsets()[3]] = np.nan
        return Hv

    msg = _failure(assert_hvp_close, nan_in_layer_4, "paper")
    assert "non-finite    1 entries are NaN or inf; the first: layer 4 of 6 (Dense), weight W[0, 0]" in msg
    assert "likely cause  not diagnosed (the answer has NaN or inf entries)" in msg
