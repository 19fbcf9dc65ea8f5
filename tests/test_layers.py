"""Layers: every derivative of the layer protocol against finite differences.

For each layer type and activation, at a drawn point ``(x, z_in)`` with a drawn
cotangent ``b_out`` and tangent ``(t_in, v)``:

* first order: ``[Jz, Jx]`` is the central-difference Jacobian of ``forward``
  in ``(z_in, x)``, and ``jvp``/``vjp`` are the products with it;
* second order: the central-difference Jacobian of ``vjp = (b_in, g_x)`` in
  ``(z_in, x)`` at fixed ``b_out`` is ``[[Hzz, Hxz^T], [Hxz, Hxx]]``, and
  ``second_order`` is the product with it.

The layers compute on the active backend; the points are drawn with NumPy
and every layer call goes through :class:`_backend.Hosted` (arguments moved
with ``from_numpy``, results back with ``to_numpy``), so the finite
differences and the comparisons are NumPy arithmetic on any backend.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _backend import ON_NUMPY, B, Hosted, N, host
from hessinv_ref import ACTIVATIONS, Dense, Residual, SoftmaxCrossEntropy, SquaredError
from hessinv_ref.testing import central_directional, central_jacobian, central_step
from hessinv_ref.testing.strategies import seeds
from tolerances import assert_fd_close, assert_rounding_close

HIDDEN = ("dense", "residual")
HEADS = ("softmax", "mse")
CASES = [(kind, act) for kind in HIDDEN for act in sorted(ACTIVATIONS)] + [(h, None) for h in HEADS]
CASE_IDS = [f"{k}-{a}" if a else k for k, a in CASES]

# Pre-activations of a relu layer closer than this to the kink are rejected:
# the steps move them by at most ~1e-4, and finite differences across the kink
# are meaningless.
RELU_MARGIN = 1e-2


@dataclass
class Case:
    """A layer and a point: parameters ``x``, input ``z_in``, cotangent
    ``b_out``, tangents ``t_in`` and ``v`` (NumPy arrays; :attr:`host` is
    the layer with NumPy in and out)."""

    layer: object
    x: np.ndarray
    z_in: np.ndarray
    b_out: np.ndarray
    t_in: np.ndarray
    v: np.ndarray

    @property
    def a_in(self):
        return self.z_in.size

    @property
    def host(self):
        return Hosted(self.layer)

    def split(self, w):
        """``w = (z_in, x)`` -> ``(x, z_in)`` in the protocol's argument order."""
        return w[self.a_in:], w[:self.a_in]

    def factor_scales(self):
        r"""Max-abs sizes ``(J, H)`` of the *factors* of the first- and
        second-order blocks, for rounding tolerances.

        Every built-in layer is ``u = Z W^T + c`` followed by an output map, so
        ``J = G A`` and ``H = A^T Λ A + C`` with ``A = ∂u/∂(z_in, x)`` (entries
        from ``W``, ``Z`` and 1), ``G = ∂z_out/∂u``, ``Λ`` and the delta ``D``
        of the output map.  Rounding is relative to these factors, not to
        ``J`` or ``H``, whose entries may be cancellations (a softmax
        gradient sums to zero over the classes, so its ``J_z`` entries are
        differences of rows of ``W``).
        """
        layer, L, batch = self.layer, self.host, self.z_in.size // self.layer.n_in
        W, c = L.unpack(self.x)
        Z = self.z_in.reshape(batch, layer.n_in)
        U = Z @ W.T + (c if layer.bias else 0.0)
        a = max(1.0, np.abs(W).max(), np.abs(Z).max())
        if layer.is_loss:
            _, grad, hess = L.loss_terms(U)
            beta = abs(self.b_out[0])
            G, Lam, D = np.abs(grad).max(), beta * np.abs(hess).max(), beta * np.abs(grad).max()
        else:
            act, b = Hosted(layer.activation), np.abs(self.b_out).reshape(U.shape)
            G = np.abs(act.df(U)).max()
            Lam, D = (b * np.abs(act.d2f(U))).max(), (b * np.abs(act.df(U))).max()
        skip = 1.0 if isinstance(layer, Residual) else 0.0
        return G * a + skip, Lam * a * a + D


def make_layer(kind, activation, n_in, n_out, bias, batch, rng):
    """A layer of the given kind; loss heads come bound to drawn targets."""
    if kind == "dense":
        return Dense(n_in, n_out, activation, bias=bias)
    if kind == "residual":
        return Residual(n_in, activation, bias=bias)
    if kind == "softmax":
        n_classes = max(n_out, 2)
        return SoftmaxCrossEntropy(n_in, n_classes, bias=bias).bind(B(rng.integers(0, n_classes, batch)))
    return SquaredError(n_in, n_out, bias=bias).bind(B(rng.standard_normal((batch, n_out))))


@st.composite
def cases(draw, kind, activation):
    """A small layer of ``kind`` and a random point for it."""
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch, bias = draw(st.integers(1, 3)), draw(st.booleans())
    gain = draw(st.sampled_from([0.5, 1.0, 2.0]))
    rng = np.random.default_rng(draw(seeds()))
    layer = make_layer(kind, activation, n_in, n_out, bias, batch, rng)
    x = N(layer.init(rng, scale=gain))
    z_in = rng.standard_normal(batch * layer.n_in)
    a_out = layer.out_dim(batch)
    # A loss head's b_out is a scalar β; drawing β != 1 checks that every
    # second-order term is scaled by it.
    b_out = rng.standard_normal(a_out)
    t_in, v = rng.standard_normal(z_in.size), rng.standard_normal(layer.n_params)
    if activation == "relu":
        W, c = Hosted(layer).unpack(x)
        U = z_in.reshape(batch, layer.n_in) @ W.T + (c if bias else 0.0)
        assume(np.min(np.abs(U)) > RELU_MARGIN)
    return Case(layer, x, z_in, b_out, t_in, v)


def parametrize_cases(test):
    """Run ``test(case)`` for every layer type × activation with drawn cases."""

    @pytest.mark.parametrize(("kind", "activation"), CASES, ids=CASE_IDS)
    @given(data=st.data())
    def wrapper(kind, activation, data):
        test(data.draw(cases(kind, activation), label="case"))

    wrapper.__name__ = test.__name__
    wrapper.__doc__ = test.__doc__
    return wrapper


@parametrize_cases
def test_jacobians_match_central_differences_of_forward(c):
    layer, L = c.layer, c.host
    Jz, Jx = L.jacobians(c.x, c.z_in)
    a_out = layer.out_dim(c.z_in.size // layer.n_in)
    assert Jz.shape == (a_out, c.a_in) and Jx.shape == (a_out, layer.n_params)

    w = np.concatenate([c.z_in, c.x])
    h = central_step(w)
    fd = central_jacobian(lambda w: L.forward(*c.split(w)), w, h)
    scale = np.max(np.abs(L.forward(c.x, c.z_in)))
    assert_fd_close(Jz, fd[:, :c.a_in], h, scale=scale, what=f"Jz of {layer!r}")
    assert_fd_close(Jx, fd[:, c.a_in:], h, scale=scale, what=f"Jx of {layer!r}")


@parametrize_cases
def test_jvp_and_vjp_are_products_with_the_jacobians(c):
    layer, L = c.layer, c.host
    Jz, Jx = L.jacobians(c.x, c.z_in)
    n = c.a_in + layer.n_params
    J, _ = c.factor_scales()
    tv = np.abs(np.concatenate([c.t_in, c.v])).max()
    assert_rounding_close(L.jvp(c.x, c.z_in, c.t_in, c.v), Jz @ c.t_in + Jx @ c.v,
                          n=n, scale=J * tv, what=f"jvp of {layer!r}")
    b_in, g_x = L.vjp(c.x, c.z_in, c.b_out)
    b = np.abs(c.b_out).max()
    assert_rounding_close(b_in, c.b_out @ Jz, n=n, scale=b * J, what=f"vjp (b_in) of {layer!r}")
    assert_rounding_close(g_x, c.b_out @ Jx, n=n, scale=b * J, what=f"vjp (g_x) of {layer!r}")


@parametrize_cases
def test_curvature_blocks_match_central_differences_of_vjp(c):
    layer, L = c.layer, c.host
    Hxx, Hxz, Hzz = L.curvature(c.x, c.z_in, c.b_out)
    p = layer.n_params
    assert Hxx.shape == (p, p) and Hxz.shape == (p, c.a_in) and Hzz.shape == (c.a_in, c.a_in)

    def vjp(w):
        return np.concatenate(L.vjp(*c.split(w), c.b_out))

    w = np.concatenate([c.z_in, c.x])
    h = central_step(w)
    fd = central_jacobian(vjp, w, h)  # rows (b_in, g_x), columns (z_in, x)
    expected = np.block([[Hzz, Hxz.T], [Hxz, Hxx]])
    assert_fd_close(expected, fd, h, scale=np.max(np.abs(vjp(w))),
                    what=f"[[Hzz, Hxz^T], [Hxz, Hxx]] of {layer!r}")


@parametrize_cases
def test_second_order_is_the_product_with_the_curvature_blocks(c):
    layer, L = c.layer, c.host
    Hxx, Hxz, Hzz = L.curvature(c.x, c.z_in, c.b_out)
    r_z, r_x = L.second_order(c.x, c.z_in, c.b_out, c.t_in, c.v)
    n = c.a_in + layer.n_params
    _, H = c.factor_scales()
    scale = H * np.abs(np.concatenate([c.t_in, c.v])).max()
    assert_rounding_close(r_z, Hzz @ c.t_in + Hxz.T @ c.v, n=n, scale=scale,
                          what=f"second_order (z part) of {layer!r}")
    assert_rounding_close(r_x, Hxz @ c.t_in + Hxx @ c.v, n=n, scale=scale,
                          what=f"second_order (x part) of {layer!r}")


@parametrize_cases
def test_jvp_and_second_order_match_directional_differences(c):
    """The matrix-free products against one central difference along ``(t_in, v)``,
    independently of the explicit blocks."""
    layer, L = c.layer, c.host
    w = np.concatenate([c.z_in, c.x])
    d = np.concatenate([c.t_in, c.v])
    # Difference along the unit direction, so that the step h moves w by h
    # and the bound's third derivative is the one along a unit vector.
    norm = np.linalg.norm(d)
    h = float(central_step(np.abs(w).max()))
    fd_t = central_directional(lambda w: L.forward(*c.split(w)), w, d / norm, h)
    assert_fd_close(L.jvp(c.x, c.z_in, c.t_in, c.v) / norm, fd_t, h,
                    scale=np.abs(L.forward(c.x, c.z_in)).max(), what=f"jvp of {layer!r}")
    fd_r = central_directional(lambda w: np.concatenate(L.vjp(*c.split(w), c.b_out)), w, d / norm, h)
    got = np.concatenate(L.second_order(c.x, c.z_in, c.b_out, c.t_in, c.v)) / norm
    scale = np.abs(np.concatenate(L.vjp(c.x, c.z_in, c.b_out))).max()
    assert_fd_close(got, fd_r, h, scale=scale, what=f"second_order of {layer!r}")


@parametrize_cases
def test_curvature_diagonal_blocks_are_symmetric(c):
    Hxx, _, Hzz = c.host.curvature(c.x, c.z_in, c.b_out)
    _, scale = c.factor_scales()
    for name, H in (("Hxx", Hxx), ("Hzz", Hzz)):
        # Both triangles are sums of the same products A_ki Λ_kk' A_k'j,
        # rounded in a different association.
        assert_rounding_close(H, H.T, n=H.shape[0], scale=scale, what=f"{name} - {name}^T of {c.layer!r}")


# -- loss heads against closed forms ----------------------------------------------


def _identity_head(cls, n, bias=False, y=None):
    """A head whose logits equal its input (W = I, c = 0), with NumPy in and
    out, and its parameters."""
    head = Hosted(cls(n, n, bias=bias).bind(B(y)))
    W = np.eye(n)
    return head, head.pack(W, np.zeros(n) if bias else None)


@pytest.mark.parametrize("n_classes", [2, 3, 7])
@pytest.mark.parametrize("bias", [False, True])
def test_cross_entropy_of_uniform_logits_is_log_n_classes(n_classes, bias):
    rng = np.random.default_rng(n_classes)
    head = Hosted(SoftmaxCrossEntropy(4, n_classes, bias=bias).bind(B(rng.integers(0, n_classes, 5))))
    loss = head.forward(np.zeros(head.n_params), rng.standard_normal(20))
    assert loss.shape == (1,)
    assert loss[0] == pytest.approx(np.log(n_classes), rel=1e-15)


def test_cross_entropy_hand_computed_two_samples():
    head, x = _identity_head(SoftmaxCrossEntropy, 3, y=np.array([2, 0]))
    logits = np.array([[1.0, 2.0, 3.0], [0.0, np.log(2.0), np.log(3.0)]])
    # sample 0: log(e + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2); sample 1: log(1 + 2 + 3) - 0
    expected = 0.5 * (np.log(1 + np.exp(-1) + np.exp(-2)) + np.log(6.0))
    assert head.forward(x, logits.ravel())[0] == pytest.approx(expected, rel=1e-15)
    # and its gradient in the logits is (softmax - onehot) / B
    p0 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    expected_grad = np.array([p0 - [0, 0, 1], np.array([1, 2, 3]) / 6 - [1, 0, 0]]) / 2
    b_in, _ = head.vjp(x, logits.ravel(), np.ones(1))
    np.testing.assert_allclose(b_in, expected_grad.ravel(), rtol=1e-14, atol=1e-16)


def test_cross_entropy_is_shift_invariant_and_stable_for_huge_logits():
    head, x = _identity_head(SoftmaxCrossEntropy, 3, y=np.array([1]))
    small = head.forward(x, np.array([0.5, -1.0, 2.0]))[0]
    huge = head.forward(x, np.array([1000.5, 999.0, 1002.0]))[0]
    assert np.isfinite(huge) and huge == pytest.approx(small, rel=1e-12)


def test_squared_error_is_the_mean_over_all_elements():
    y = np.array([[0.0, 0.0], [1.0, 1.0]])
    head, x = _identity_head(SquaredError, 2, y=y)
    # residuals 1, 2, 2, 3: (1 + 4 + 4 + 9) / 4, not / 2 (the batch)
    assert head.forward(x, np.array([1.0, 2.0, 3.0, 4.0]))[0] == pytest.approx(4.5, rel=1e-15)
    head_b = Hosted(SquaredError(2, 2, bias=True).bind(B(y)))
    x_b = head_b.pack(np.eye(2), np.array([1.0, -1.0]))
    # outputs [[2, 1], [4, 3]]: residuals 2, 1, 3, 2 -> (4 + 1 + 9 + 4) / 4
    assert head_b.forward(x_b, np.array([1.0, 2.0, 3.0, 4.0]))[0] == pytest.approx(4.5, rel=1e-15)


def test_head_without_targets_refuses_and_bind_copies():
    head = SoftmaxCrossEntropy(2, 3)
    with pytest.raises(ValueError, match=r"bind\(y\)"):
        host(head.forward)(np.zeros(head.n_params), np.zeros(2))
    bound = head.bind(B(np.array([1])))
    assert head.y is None and N(bound.y).tolist() == [1]
    if ON_NUMPY:  # read-only arrays exist on NumPy only (other backends have no flag)
        assert not bound.y.flags.writeable


# -- parameter layout ------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_pack_unpack_round_trip_and_row_major_layout(bias):
    layer = Hosted(Dense(3, 2, bias=bias))
    W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    c = np.array([7.0, 8.0]) if bias else None
    x = layer.pack(W, c)
    # torch.nn.Linear order: W row-major (W[k, j] at k * n_in + j), then bias
    np.testing.assert_array_equal(x, [1, 2, 3, 4, 5, 6] + ([7, 8] if bias else []))
    W2, c2 = layer.unpack(x)
    np.testing.assert_array_equal(W2, W)
    if bias:
        np.testing.assert_array_equal(c2, c)
    else:
        assert c2 is None
    np.testing.assert_array_equal(layer.pack(W2, c2), x)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_by_hand(name, bias):
    rng = np.random.default_rng(1)
    layer = Hosted(Dense(3, 4, name, bias=bias))
    W, c = rng.standard_normal((4, 3)), rng.standard_normal(4)
    X = rng.standard_normal((5, 3))
    x = layer.pack(W, c if bias else None)
    U = X @ W.T + (c if bias else 0.0)
    f = host(ACTIVATIONS[name].f)
    expected = f(U)
    np.testing.assert_allclose(layer.forward(x, X.ravel()), expected.ravel(), rtol=1e-14, atol=1e-15)
    res = Hosted(Residual(3, name, bias=bias))
    Wr = W[:3]
    xr = res.pack(Wr, c[:3] if bias else None)
    expected_r = X + f(X @ Wr.T + (c[:3] if bias else 0.0))
    np.testing.assert_allclose(res.forward(xr, X.ravel()), expected_r.ravel(), rtol=1e-14, atol=1e-15)


def test_layer_sizes():
    assert Dense(3, 4, bias=True).n_params == 16
    assert Dense(3, 4, bias=False).n_params == 12
    assert Residual(5, bias=True).n_params == 30
    head = SoftmaxCrossEntropy(4, 3)
    assert head.n_classes == 3 and head.out_dim(7) == 1
    assert Dense(3, 4).out_dim(7) == 28


# -- a saturated softmax head ----------------------------------------------------


def test_saturated_softmax_keeps_relative_accuracy():
    """With logits (0, -40) the minority probability is ~4e-18: the diagonal
    p(1-p) of the logit Hessian and the gradient p_y - 1 must come from the
    sum of the *other* probabilities, or they cancel to a few digits (or 0)."""
    from scipy.special import expit

    head = Hosted(SoftmaxCrossEntropy(1, 2, bias=False).bind(B(np.array([0]))))
    U = np.array([[0.0, -40.0]])
    _, grad, hess = head.loss_terms(U)
    p1 = expit(-40.0)          # softmax(0, -40)[1], exact to rounding
    p0 = expit(40.0)
    # relative errors of a few ulps: the inputs are exact, each formula is a
    # product or a sum of positive terms
    assert np.isclose(hess[0, 0, 0], p0 * p1, rtol=8 * np.finfo(float).eps, atol=0)
    assert np.isclose(hess[0, 1, 1], p0 * p1, rtol=8 * np.finfo(float).eps, atol=0)
    assert np.isclose(grad[0, 0], -p1, rtol=8 * np.finfo(float).eps, atol=0)
    dU = np.array([[1.0, -2.0]])
    assert np.allclose(head._loss_hvp(U, dU), (hess[0] @ dU[0])[None], rtol=8 * np.finfo(float).eps, atol=0)


def test_softmax_needs_two_classes():
    with pytest.raises(ValueError, match="n_classes"):
        SoftmaxCrossEntropy(3, 1)


def test_head_logits_are_the_affine_outputs():
    head = Hosted(SoftmaxCrossEntropy(2, 3))
    x = np.arange(head.n_params, dtype=float) / 10
    z_in = np.array([1.0, -1.0, 0.5, 2.0])
    W, c = head.unpack(x)
    assert np.allclose(head.logits(x, z_in), z_in.reshape(2, 2) @ W.T + c)
