"""Exercise 9: a new layer type of the student's design, checked end to end.

The student's ``make_layer()`` returns any object that follows the layer
protocol (see :mod:`hessinv_ref.layers`).  Nothing here knows what the layer
computes, so every method is graded against central differences of the
student's *own* functions: ``vjp``, ``jvp`` and ``jacobians`` against
``forward``; ``second_order`` and ``curvature`` against ``vjp``.  Then the
layer goes into a :class:`~hessinv_ref.network.Network`: the library's
gradient, R-operator and dense Hessian must match finite differences of the
loss, and every exact inverse route must match the dense oracle.

The diagnoses are generic too: they compare the student's answer with
finite differences along part of the direction, with the student's other
methods (a vjp that agrees with its own jvp but not with forward), and with
transposes.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np

from ...factorization import IllConditionedPivotWarning
from ...layers import Dense, Layer, LossHead, SoftmaxCrossEntropy
from ...network import Network
from ...testing.finite_differences import central_directional, central_jacobian
from ..harness import Cases, Check, CheckFailure, Variant, compare, expect
from ._common import unpack

NUMBER = 9
TITLE = "A new layer type of your design, checked end to end"
FILE = "ex09_new_layer.md"
NAMES = ("make_layer",)

MAX_WIDTH, MAX_PARAMS = 32, 200
"""Grading cost grows with the layer: keep it small (finite differences take every column)."""

FD = {"rtol": 1e-6, "atol": 1e-7}
"""Finite differences with step eps^(1/3) are good to ~1e-10 relative; allow for third
derivatives a few orders of magnitude above the values."""


def forbidden():
    return []


def _case(params):
    return SimpleNamespace(batch=params["batch"], seed=params["seed"])


CASES = Cases(
    seeded=[{"batch": 2, "seed": 0}, {"batch": 1, "seed": 1}, {"batch": 3, "seed": 2}],
    space={"batch": range(1, 4), "seed": range(0, 2**16)},
    build=_case,
    describe=lambda p: f"batch B = {p['batch']}; x, z_in, b_out, t_in, v drawn from default_rng({p['seed']})",
)


def _layer(student):
    layer = student.call("make_layer")
    for attr in ("n_in", "n_out", "n_params"):
        value = getattr(layer, attr, None)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise CheckFailure(f"your layer's `{attr}` is {value!r}, expected a positive int",
                               hint="set n_in, n_out (per-sample widths) and n_params in __init__")
    for method in ("forward", "vjp", "jvp", "second_order", "jacobians", "curvature"):
        if not callable(getattr(layer, method, None)):
            raise CheckFailure(f"your layer has no method `{method}`",
                               hint="the layer protocol is in the docstring of hessinv_ref.layers")
    return layer


def _method(student, layer, name):
    """The student's ``layer.name`` as a guarded call, on copies of its arrays (finite differences
    reuse the point, which a method writing into its inputs would corrupt)."""
    fn = getattr(layer, name)
    return lambda *args: student.invoke(f"layer.{name}", fn,
                                        *[a.copy() if isinstance(a, np.ndarray) else a for a in args])


def _point(student, layer, c):
    """x, z_in, b_out, t_in, v for this case (x from the layer's init when it has one)."""
    rng = np.random.default_rng(c.seed)
    init = getattr(layer, "init", None)
    if callable(init):
        x = np.asarray(student.invoke("layer.init", init, np.random.default_rng(c.seed + 100)), dtype=float)
        expect(x.shape == (layer.n_params,), f"layer.init returned shape {x.shape}, expected ({layer.n_params},)",
               hint="init returns all the layer's parameters as one flat vector of n_params entries")
    else:
        x = rng.uniform(-1.0, 1.0, layer.n_params)
    a_in, a_out = c.batch * layer.n_in, c.batch * layer.n_out
    return SimpleNamespace(x=x, z=rng.standard_normal(a_in), b=rng.standard_normal(a_out),
                           t=rng.standard_normal(a_in), v=rng.standard_normal(layer.n_params))


def _fd_jacobians(student, layer, p):
    fwd = _method(student, layer, "forward")
    Jz = central_jacobian(lambda z: fwd(p.x, z), p.z)
    Jx = central_jacobian(lambda x: fwd(p.x if x is None else x, p.z), p.x)
    return Jz, Jx


def _fd_vjp_jacobians(student, layer, p):
    vjp = _method(student, layer, "vjp")

    def both(x, z):
        b_in, g = unpack(vjp(x, z, p.b), 2, "layer.vjp", ("b_in", "g_x"))
        return np.concatenate([np.asarray(b_in, dtype=float).ravel(), np.asarray(g, dtype=float).ravel()])

    a_in = p.z.size
    dz = central_jacobian(lambda z: both(p.x, z), p.z)
    dx = central_jacobian(lambda x: both(x, p.z), p.x)
    return dz[:a_in], dz[a_in:], dx[a_in:]  # Hzz, Hxz, Hxx (Hzz = d b_in/dz, Hxz = d g_x/dz)


# -- checks of the layer alone -------------------------------------------------------------


def check_protocol(student, _case):
    layer = _layer(student)
    expect(not isinstance(layer, (Dense, LossHead)),
           f"make_layer returned {type(layer).__name__}, a built-in layer (or a subclass of Dense)",
           hint="design a new layer type: a 1-D convolution, a residual block with layer norm, a gated unit...")
    expect(not getattr(layer, "is_loss", False), "your layer says it is a loss head (is_loss = True)",
           hint="write a hidden layer: the grader puts it between a Dense layer and a softmax head")
    expect(layer.n_in <= MAX_WIDTH and layer.n_out <= MAX_WIDTH and layer.n_params <= MAX_PARAMS,
           f"the layer from make_layer() is too big to grade quickly: n_in={layer.n_in}, n_out={layer.n_out}, "
           f"n_params={layer.n_params}", hint=f"return a small instance: widths <= {MAX_WIDTH}, "
           f"n_params <= {MAX_PARAMS}")
    out_dim = getattr(layer, "out_dim", None)
    if callable(out_dim):
        got = student.invoke("layer.out_dim", out_dim, 3)
        expect(got == 3 * layer.n_out, f"layer.out_dim(3) is {got}, expected 3 * n_out = {3 * layer.n_out}",
               hint="subclass hessinv_ref.Layer, which provides out_dim")
    else:
        raise CheckFailure("your layer has no `out_dim(batch)` method",
                           hint="subclass hessinv_ref.Layer, which provides it")


def check_forward(student, c):
    layer = _layer(student)
    p = _point(student, layer, c)
    fwd = _method(student, layer, "forward")
    out = np.asarray(fwd(p.x, p.z), dtype=float)
    expect(out.shape == (c.batch * layer.n_out,), f"forward returned shape {out.shape}, expected "
           f"({c.batch * layer.n_out},) = (B n_out,)", hint="activations are flat, sample-major vectors")
    expect(bool(np.all(np.isfinite(out))), "forward returned NaN or inf",
           hint="look for an overflow (exp of a large number), a division by zero or the log of a number <= 0")
    expect(bool(np.array_equal(out, np.asarray(fwd(p.x, p.z), dtype=float))),
           "forward gives different results for the same input", hint="a layer must be deterministic")
    z2 = p.z.copy()
    z2[: layer.n_in] += 1.0  # move sample 0 only
    if c.batch > 1:
        other = np.asarray(fwd(p.x, z2), dtype=float)[layer.n_out:]
        expect(np.allclose(other, out[layer.n_out:], rtol=1e-12, atol=1e-12),
               "changing sample 0's input changed another sample's output",
               hint="samples are independent: sample i's n_in inputs sit at z_in[i n_in:(i+1) n_in]. "
               "(Batch statistics, as in batch norm, do not fit the protocol: normalise per sample)")


def check_vjp(student, c):
    layer = _layer(student)
    p = _point(student, layer, c)
    Jz, Jx = _fd_jacobians(student, layer, p)
    b_in, g = unpack(_method(student, layer, "vjp")(p.x, p.z, p.b), 2, "layer.vjp", ("b_in", "g_x"))

    def via_jvp(z_dir):
        jvp = _method(student, layer, "jvp")
        n = p.z.size if z_dir else p.x.size
        cols = []
        for i in range(n):
            e = np.zeros(n)
            e[i] = 1.0
            args = (e, np.zeros_like(p.x)) if z_dir else (np.zeros_like(p.z), e)
            cols.append(float(np.dot(p.b, np.asarray(jvp(p.x, p.z, *args), dtype=float).ravel())))
        return np.array(cols)

    agree = ("your vjp agrees with your jvp (the dot-product test passes) but not with forward: "
             "the derivative itself is wrong, in both")
    compare("b_in (vs b_out Jz by central differences of forward)", b_in, p.b @ Jz, **FD,
            variants=[Variant(agree, lambda: via_jvp(True))],
            hint="your vjp and jvp disagree too: <b_out, jvp(x, z, t, 0)> must equal <vjp(x, z, b_out)[0], t>")
    compare("g_x (vs b_out Jx by central differences of forward)", g, p.b @ Jx, **FD,
            variants=[Variant(agree, lambda: via_jvp(False))],
            hint="check the parameter layout: g_x[i] is the derivative along x[i], in the order of your forward")


def check_jvp(student, c):
    layer = _layer(student)
    p = _point(student, layer, c)
    Jz, Jx = _fd_jacobians(student, layer, p)
    got = _method(student, layer, "jvp")(p.x, p.z, p.t, p.v)
    compare("t_out (vs central differences of forward)", got, Jz @ p.t + Jx @ p.v, **FD, variants=[
        Variant("your jvp only follows the input direction t_in: add Jx v, the change due to the parameters",
                Jz @ p.t),
        Variant("your jvp only follows the parameter direction v: add Jz t_in, the change due to the input",
                Jx @ p.v),
    ])


def check_jacobians(student, c):
    layer = _layer(student)
    p = _point(student, layer, c)
    Jz, Jx = _fd_jacobians(student, layer, p)
    got = unpack(_method(student, layer, "jacobians")(p.x, p.z), 2, "layer.jacobians", ("Jz", "Jx"))
    compare("Jz (vs central differences of forward)", got[0], Jz, **FD,
            hint="Jz[k, i] = ∂z_out[k]/∂z_in[i]: shape (B n_out, B n_in)")
    compare("Jx (vs central differences of forward)", got[1], Jx, **FD,
            hint="Jx[k, i] = ∂z_out[k]/∂x[i]: shape (B n_out, n_params)")


def check_second_order(student, c):
    layer = _layer(student)
    p = _point(student, layer, c)
    vjp = _method(student, layer, "vjp")

    def along(t, v):
        def f(s):
            b_in, g = unpack(vjp(p.x + s[0] * v, p.z + s[0] * t, p.b), 2, "layer.vjp", ("b_in", "g_x"))
            return np.concatenate([np.asarray(b_in, dtype=float).ravel(), np.asarray(g, dtype=float).ravel()])
        return central_directional(f, np.zeros(1), np.ones(1))

    a_in = p.z.size
    got = unpack(_method(student, layer, "second_order")(p.x, p.z, p.b, p.t, p.v), 2, "layer.second_order",
                 ("r_z", "r_x"))
    full = along(p.t, p.v)
    only_v, only_t = (lambda: along(np.zeros_like(p.t), p.v)), (lambda: along(p.t, np.zeros_like(p.v)))
    for i, (name, part) in enumerate((("r_z = Hzz t + Hxzᵀ v", slice(0, a_in)), ("r_x = Hxz t + Hxx v", slice(a_in, None)))):
        compare(f"{name} (vs central differences of your vjp)", got[i], full[part], **FD, variants=[
            Variant("your second_order only follows the parameter direction v: it must also include the "
                    "change along t_in (Hzz t_in into r_z, Hxz t_in into r_x)", lambda: only_v()[part]),
            Variant("your second_order only follows the input direction t_in: it must also include the "
                    "change along v (Hxzᵀ v into r_z, Hxx v into r_x)", lambda: only_t()[part]),
        ], hint="second_order is the derivative of your vjp along (t_in, v) at fixed b_out: differentiate "
           "every factor of vjp that depends on z_in or x (the product rule)")


def check_curvature(student, c):
    layer = _layer(student)
    p = _point(student, layer, c)
    Hzz, Hxz, Hxx = _fd_vjp_jacobians(student, layer, p)
    got = unpack(_method(student, layer, "curvature")(p.x, p.z, p.b), 3, "layer.curvature", ("Hxx", "Hxz", "Hzz"))
    hint = ("the blocks are derivatives of your vjp at fixed b_out: Hzz = ∂b_in/∂z_in, Hxz = ∂g_x/∂z_in, "
            "Hxx = ∂g_x/∂x (if the vjp check fails, fix vjp first)")
    compare("Hxx (vs central differences of your vjp)", got[0], Hxx, **FD, hint=hint)
    compare("Hxz (vs central differences of your vjp)", got[1], Hxz, **FD, variants=[
        Variant(f"your Hxz matches the transpose of the reference: Hxz is (n_params × B n_in) = {Hxz.shape}, "
                "Hxz[i, j] = ∂g_x[i]/∂z_in[j]", Hxz.T)], hint=hint)
    compare("Hzz (vs central differences of your vjp)", got[2], Hzz, **FD, hint=hint)


# -- the layer inside a network ----------------------------------------------------------------------


def _network(student, c):
    layer = _layer(student)
    net = Network([Dense(2, layer.n_in, "tanh"), layer, SoftmaxCrossEntropy(layer.n_out, 3)])
    rng = np.random.default_rng(c.seed)
    first, head = net.layers[0], net.layers[-1]
    p = _point(student, layer, c)
    theta = np.concatenate([first.init(rng), p.x, head.init(rng)])
    X = rng.standard_normal((c.batch, 2))
    y = rng.integers(0, 3, c.batch)
    return SimpleNamespace(net=net, theta=theta, X=X, y=y, v=rng.standard_normal(net.n_params),
                           g=rng.standard_normal(net.n_params))


def _check_block_shapes(student, n):
    """The library assembles the explicit blocks without checking their shapes; check them here so
    that a wrong shape is reported as such rather than as a matmul error deep inside the oracle."""
    layer, B = n.net.layers[1], n.X.shape[0]
    x = n.net.layer_vectors(n.theta)[1]
    z = np.random.default_rng(0).standard_normal(B * layer.n_in)
    b = np.ones(B * layer.n_out)
    a_in, a_out, p = B * layer.n_in, B * layer.n_out, layer.n_params
    names = (("jacobians", ("Jz", "Jx"), ((a_out, a_in), (a_out, p)), (x, z)),
             ("curvature", ("Hxx", "Hxz", "Hzz"), ((p, p), (p, a_in), (a_in, a_in)), (x, z, b)))
    for method, parts, shapes, args in names:
        got = unpack(_method(student, layer, method)(*args), len(parts), f"layer.{method}", parts)
        for part, value, shape in zip(parts, got, shapes):
            expect(np.shape(value) == shape, f"layer.{method} returns {part} of shape {np.shape(value)} for a "
                   f"batch of {B}, expected {shape}", hint="the shapes are in the table of the exercise")


def _lib(student, label, fn, *args, **kwargs):
    """Call the library with the student's layer inside: their errors are reported as theirs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedPivotWarning)
        return student.invoke(label, lambda: fn(*args, **kwargs))


def check_network_hvp(student, c):
    from ...rop import hvp

    n = _network(student, c)
    grad = lambda th: _lib(student, "net.gradient with your layer", n.net.gradient, th, n.X, n.y)  # noqa: E731
    loss = lambda th: _lib(student, "net.loss with your layer", n.net.loss, th, n.X, n.y)  # noqa: E731
    compare("the network's gradient (vs central differences of the loss)", grad(n.theta),
            central_jacobian(loss, n.theta)[0], rtol=1e-5, atol=1e-8,
            hint="the network's gradient is backprop through your vjp: if the vjp check fails, fix that "
            "first; otherwise check out_dim and the flat layout of your outputs")
    compare("hessinv_ref.hvp with your layer (vs central differences of the gradient)",
            _lib(student, "hessinv_ref.hvp with your layer", hvp, n.net, n.theta, n.X, n.y, n.v),
            central_directional(grad, n.theta, n.v), rtol=1e-5, atol=1e-8,
            hint="the R-operator uses your jvp, vjp and second_order: the first failing check above shows which")


def check_network_hessian(student, c):
    from ...dense import hessian

    n = _network(student, c)
    _check_block_shapes(student, n)
    H = np.asarray(_lib(student, "hessinv_ref.hessian with your layer", hessian, n.net, n.theta, n.X, n.y))
    grad = lambda th: _lib(student, "net.gradient with your layer", n.net.gradient, th, n.X, n.y)  # noqa: E731
    compare("the dense Hessian from your jacobians and curvature (vs central differences of the gradient)",
            H, central_jacobian(grad, n.theta), rtol=1e-5, atol=1e-8,
            hint="the dense oracle assembles your explicit jacobians() and curvature(): the layer checks above "
            "show which is off")


def check_network_solve(student, c):
    from ...dense import hessian
    from ...inverse import solve

    n = _network(student, c)
    _check_block_shapes(student, n)
    A = np.asarray(_lib(student, "hessinv_ref.hessian with your layer", hessian, n.net, n.theta, n.X, n.y))
    ref = np.linalg.solve(A + np.eye(A.shape[0]), n.g)
    for method in ("riccati", "banded", "ldu"):
        got = _lib(student, f"hessinv_ref.solve(method={method!r}) with your layer", solve, n.net, n.theta, n.X,
                   n.y, n.g, damping=1.0, method=method)
        compare(f"hessinv_ref.solve(..., damping=1, method={method!r}) with your layer", got, ref, rtol=1e-7)


_NET = Cases(
    seeded=[{"batch": 2, "seed": 0}, {"batch": 1, "seed": 1}],
    space={"batch": range(1, 3), "seed": range(0, 2**16)},
    build=_case,
    describe=lambda p: (f"Network([Dense(2, n_in, 'tanh'), your layer, SoftmaxCrossEntropy(n_out, 3)]), batch "
                        f"{p['batch']}, parameters and data from default_rng({p['seed']})"),
)

CHECKS = [
    Check("protocol", "make_layer() returns a new layer that follows the protocol", check_protocol),
    Check("forward", "forward: flat output, per-sample, deterministic", check_forward, CASES),
    Check("vjp", "vjp matches central differences of forward", check_vjp, CASES),
    Check("jvp", "jvp matches central differences of forward", check_jvp, CASES),
    Check("jacobians", "jacobians match central differences of forward", check_jacobians, CASES),
    Check("second_order", "second_order matches central differences of vjp", check_second_order, CASES),
    Check("curvature", "curvature blocks match central differences of vjp", check_curvature, CASES),
    Check("network_hvp", "in a Network: gradient and hvp match finite differences", check_network_hvp, _NET,
          max_examples=2),
    Check("network_hessian", "in a Network: dense Hessian matches finite differences", check_network_hessian,
          _NET, max_examples=1),
    Check("network_solve", "in a Network: riccati, banded and ldu solves match the dense oracle",
          check_network_solve, _NET, max_examples=1),
]
