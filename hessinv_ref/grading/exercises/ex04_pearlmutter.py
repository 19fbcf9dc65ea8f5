"""Exercise 4: Pearlmutter's Hessian-vector product for a whole chain.

The student writes the R-forward pass (tangents ``t_l``) and the R-backward
pass (adjoints ``λ_l`` and ``Hv``) from the layers' own vector products,
``jvp``, ``vjp`` and ``second_order`` (:ref:`notation §4 <notation-4>`), on a
:class:`~hessinv_ref.curvature.Curvature` that supplies the cached passes
``z`` and ``b``.  Graded against the library's R-operator and the dense
Hessian; wrong variants come from :func:`_passes` with one step changed.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ...curvature import Curvature
from ...dense import hessian_from_blocks
from ...dense import hessian as dense_hessian
from ...rop import polynomial_hvp, rop_hvp_cached
from ...rop import hvp as reference_hvp
from ...layers import AffineLayer, Dense
from ...polynomial import HessianPolynomial
from ..harness import Check, CheckFailure, Variant, as_array, block_locator, compare, compare_pieces, methods
from ._common import describe_problem, problem, problem_cases

NUMBER = 4
TITLE = "Pearlmutter's HVP for a whole chain, from per-layer products"
FILE = "ex04_pearlmutter.md"
NAMES = ("r_forward", "r_backward", "chain_hvp")


def forbidden():
    import sys

    hvp_module = sys.modules[rop_hvp_cached.__module__]
    return [
        (reference_hvp, "hessinv_ref.hvp"), (rop_hvp_cached, "hessinv_ref.rop.rop_hvp_cached"),
        (polynomial_hvp, "hessinv_ref.polynomial_hvp"), (dense_hessian, "hessinv_ref.hessian"),
        (hessian_from_blocks, "hessinv_ref.dense.hessian_from_blocks"),
        (Curvature.blocks, "Curvature.blocks (explicit blocks: use the vector products)"),
    ] + (methods(hvp_module, ("_rop_hvp_1",), "hessinv_ref.rop (R-operator)")
         + methods(Curvature, ("hvp", "hessian", "polynomial", "operator"), "Curvature.{name}")
         + methods(HessianPolynomial, ("matvec", "terms"), "HessianPolynomial.{name}")
         + methods(Dense, ("jacobians", "curvature"), "layer.{name} (explicit blocks: use jvp, vjp, second_order)")
         + methods(AffineLayer, ("jacobians", "curvature"),
                   "layer.{name} (explicit blocks: use jvp, vjp, second_order)"))


def _case(params):
    net, theta, X, y = problem(params)
    v = np.random.default_rng(params["seed"] + 1).standard_normal(net.n_params)
    return SimpleNamespace(net=net, params=theta, X=X, y=y, v=v, curv=Curvature(net, theta, X, y))


def _describe(params):
    return describe_problem(params) + "; v = numpy.random.default_rng(seed + 1).standard_normal(net.n_params)"


_SEEDED = [
    {"depth": 3, "width": 2, "batch": 2, "layers": "dense", "activation": "tanh", "head": "softmax", "scale": 1.5, "seed": 0},
    {"depth": 4, "width": 3, "batch": 1, "layers": "mixed", "activation": "softplus", "head": "mse", "scale": 1.0, "seed": 1},
    {"depth": 1, "width": 2, "batch": 3, "layers": "dense", "activation": "tanh", "head": "softmax", "scale": 1.0, "seed": 2},
    {"depth": 3, "width": 2, "batch": 2, "layers": "residual", "activation": "gelu", "head": "softmax", "scale": 1.5, "seed": 3},
]


def _cases():
    cases = problem_cases(_SEEDED, build=_case)
    cases.describe = _describe
    return cases


def _forward(curv, v, carry=True):
    """R-forward: t_l = jvp(x_l, z_{l-1}, t_{l-1}, v_l); ``carry=False`` drops t_{l-1}."""
    vs = curv.split(v)
    t = [np.zeros_like(curv.z[0])]
    for l, layer in enumerate(curv.layers, 1):
        t_in = t[l - 1] if carry else np.zeros_like(t[l - 1])
        t.append(layer.jvp(curv.xs[l - 1], curv.z[l - 1], t_in, vs[l - 1]))
    return t


def _backward(curv, t, v, lam_so=True, hv_so=True, hv_jx=True, lam0=0.0):
    """R-backward with each term switchable, for the wrong variants."""
    vs = curv.split(v)
    L = curv.depth
    lam, Hv = np.full(1, lam0), [None] * L
    for l in range(L, 0, -1):
        layer, x = curv.layers[l - 1], curv.xs[l - 1]
        jz_lam, jx_lam = layer.vjp(x, curv.z[l - 1], lam)
        r_z, r_x = layer.second_order(x, curv.z[l - 1], curv.b[l], t[l - 1], vs[l - 1])
        Hv[l - 1] = (jx_lam if hv_jx else 0.0) + (r_x if hv_so else 0.0)
        lam = jz_lam + (r_z if lam_so else 0.0)
    return np.concatenate(Hv)


NO_CARRY = ("t_l must carry t_{l-1} forward: pass t_{l-1} as jvp's t_in, "
            "t_l = Jz_l t_{l-1} + Jx_l v_l (only t_0 is zero)")
LAM_NO_SO = ("λ misses the layer's curvature: λ_{l-1} = Jz_lᵀ λ_l + Hzz_l t_{l-1} + Hxz_lᵀ v_l, "
             "and the last two terms are the first output of layer.second_order")
HV_NO_SO = ("(Hv)_l misses Hxz_l t_{l-1} + Hxx_l v_l, the second output of "
            "layer.second_order(x_l, z_{l-1}, b_l, t_{l-1}, v_l)")
HV_NO_JX = "(Hv)_l misses Jx_lᵀ λ_l, the second output of layer.vjp(x_l, z_{l-1}, λ_l)"
LAM0 = ("your result is Hv + g (the gradient): λ_L must start at 0, not at b_L = 1. λ = R{b}ᵀ is the "
        "change of b, and b_L = 1 does not change")


def _backward_variants(curv, t, v):
    return [
        Variant(LAM_NO_SO, lambda: _backward(curv, t, v, lam_so=False)),
        Variant(HV_NO_SO, lambda: _backward(curv, t, v, hv_so=False)),
        Variant(HV_NO_JX, lambda: _backward(curv, t, v, hv_jx=False)),
        Variant(LAM0, lambda: _backward(curv, t, v, lam0=1.0)),
    ]


def check_forward(student, c):
    got = student.call("r_forward", Curvature(c.net, c.params, c.X, c.y), c.v.copy())
    ref = _forward(c.curv, c.v)
    L = c.curv.depth
    if not isinstance(got, (list, tuple)):
        raise CheckFailure(f"`r_forward` must return a list of L + 1 = {L + 1} arrays, got a {type(got).__name__}",
                           hint="collect the tangents in a list, [t_0, t_1, ..., t_L], and return the list")
    if len(got) == L:
        raise CheckFailure(f"`r_forward` returned {L} tangents, expected L + 1 = {L + 1}",
                           hint="start the list with t_0 = 0 (the input does not move), then t_1..t_L")
    if len(got) != L + 1:
        raise CheckFailure(f"`r_forward` returned {len(got)} tangents, expected L + 1 = {L + 1}",
                           hint="one tangent per activation z_0, ..., z_L: t_0 = 0, then one per layer "
                           "(check the range of your loop)")
    got = [as_array(f"t_{l}", t) for l, t in enumerate(got)]
    for l, (g, r) in enumerate(zip(got, ref)):
        if g.shape != r.shape:
            raise CheckFailure(f"t_{l} has shape {g.shape}, expected {r.shape}",
                               hint=f"t_l has one entry per activation of layer l (a_{l} = {r.size}), flat")
    compare_pieces([f"t_{l}" for l in range(L + 1)], got, ref, variants=[
        Variant(NO_CARRY, lambda: _forward(c.curv, c.v, carry=False)),
    ])


def check_backward(student, c):
    t = _forward(c.curv, c.v)
    got = student.call("r_backward", Curvature(c.net, c.params, c.X, c.y), [ti.copy() for ti in t], c.v.copy())
    compare("Hv", got, c.curv.hvp(c.v), variants=_backward_variants(c.curv, t, c.v), locate=_locate(c))


def check_chain(student, c):
    got = student.call("chain_hvp", c.net, c.params, c.X.copy(), c.y.copy(), c.v.copy())
    ref = c.curv.hessian() @ c.v
    t = _forward(c.curv, c.v)
    variants = [Variant(NO_CARRY, lambda: _backward(c.curv, _forward(c.curv, c.v, carry=False), c.v))]
    compare("chain_hvp(net, params, X, y, v)", got, ref, rtol=1e-7, variants=variants + _backward_variants(c.curv, t, c.v),
            locate=_locate(c))


def _locate(c):
    """Entry i of Hv as a parameter of layer l (Hv has one entry per parameter, layer after layer)."""
    return block_locator([layer.n_params for layer in c.curv.layers], "(Hv)_l of layer")


CHECKS = [
    Check("r_forward", "r_forward: tangents t_l = R{z_l}", check_forward, _cases()),
    Check("r_backward", "r_backward: Hv from the reference tangents", check_backward, _cases()),
    Check("chain_hvp", "chain_hvp matches the dense Hessian times v", check_chain, _cases()),
]
