"""Exercise 2: a Dense layer's vector-Jacobian and Jacobian-vector products.

For ``z_out = σ(Z Wᵀ + c)`` (per sample), the student writes backprop
(``b_in = b_out J_z``, ``g = b_out J_x``) and the forward tangent
(``t_out = J_z t_in + J_x v``) in matrix form, graded against
:class:`~hessinv_ref.layers.Dense`'s ``vjp`` and ``jvp``.
"""

from __future__ import annotations

import numpy as np

from ...layers import AffineLayer, Dense
from ..harness import Check, Variant, compare, methods
from ._common import dense_cases, unpack

NUMBER = 2
TITLE = "A Dense layer's VJP and JVP"
FILE = "ex02_dense_vjp_jvp.md"
NAMES = ("dense_vjp", "dense_jvp")


def forbidden():
    # Dense's own methods (fast paths may override them) and the shared ones of AffineLayer.
    return (methods(Dense, ("vjp", "jvp", "jacobians"), "hessinv_ref's Dense.{name}")
            + methods(AffineLayer, ("vjp", "jvp", "jacobians", "_affine_vjp", "_affine_jvp"),
                      "hessinv_ref's AffineLayer.{name}"))


def _reference_vjp(c):
    b_in, g = c.layer.vjp(c.x, c.Z.ravel(), c.b_out.ravel())
    n_w = c.n_out * c.n_in
    return b_in.reshape(c.B, c.n_in), g[:n_w].reshape(c.n_out, c.n_in), g[n_w:]


def _student_vjp(student, c):
    out = student.call("dense_vjp", c.W.copy(), c.c.copy(), c.Z.copy(), c.b_out.copy(), c.act)
    return unpack(out, 3, "dense_vjp", ("b_in", "g_W", "g_c"))


_NO_DSIGMA = ("missing σ'(u): backprop through the activation first, D = b_out ⊙ σ'(u) with "
              "u = Z Wᵀ + c, then b_in = D W, g_W = Dᵀ Z, g_c = Σ_i D_i")


def _pre(c):
    return c.Z @ c.W.T + c.c


def check_b_in(student, c):
    b_in, _, _ = _student_vjp(student, c)
    U = _pre(c)
    D = c.b_out * c.act.df(U)
    compare("b_in", b_in, _reference_vjp(c)[0], variants=[
        Variant(_NO_DSIGMA, c.b_out @ c.W),
        Variant("σ' is evaluated at Z Wᵀ: the pre-activation includes the bias, u = Z Wᵀ + c",
                (c.b_out * c.act.df(c.Z @ c.W.T)) @ c.W),
        Variant("you used σ'' where σ' belongs: D = b_out ⊙ σ'(u)", (c.b_out * c.act.d2f(U)) @ c.W),
        Variant("you multiplied by Wᵀ where W belongs: W is (n_out × n_in), so b_in = D W", lambda: D @ c.W.T
                if c.n_in == c.n_out else None),
    ])


def check_g_W(student, c):
    _, g_W, _ = _student_vjp(student, c)
    U = _pre(c)
    D = c.b_out * c.act.df(U)
    compare("g_W", g_W, _reference_vjp(c)[1], variants=[
        Variant(_NO_DSIGMA, c.b_out.T @ c.Z),
        Variant("off by the batch mean: g_W = Dᵀ Z sums over the samples (the loss head already divides by B)",
                D.T @ c.Z / c.B if c.B > 1 else None),
        Variant("your g_W is the transpose of the gradient: W is (n_out × n_in), so g_W = Dᵀ Z, not Zᵀ D",
                c.Z.T @ D),
    ])


def check_g_c(student, c):
    _, _, g_c = _student_vjp(student, c)
    U = _pre(c)
    D = c.b_out * c.act.df(U)
    compare("g_c", g_c, _reference_vjp(c)[2], variants=[
        Variant("off by the batch mean: g_c = Σ_i D_i is a sum over samples (the loss head already "
                "divides by B)", D.mean(axis=0) if c.B > 1 else None),
        Variant(_NO_DSIGMA, c.b_out.sum(axis=0)),
    ], hint="the bias enters every sample's u = Z Wᵀ + c, so its gradient sums D over the batch")


def _jvp_case(c, along):
    T = c.T if along in ("z", "both") else np.zeros_like(c.T)
    V_W = c.V_W if along in ("x", "both") else np.zeros_like(c.V_W)
    v_c = c.v_c if along in ("x", "both") else np.zeros_like(c.v_c)
    return T, V_W, v_c


def _check_jvp(student, c, along):
    T, V_W, v_c = _jvp_case(c, along)
    got = student.call("dense_jvp", c.W.copy(), c.c.copy(), c.Z.copy(), T.copy(), V_W.copy(), v_c.copy(), c.act)
    ref = c.layer.jvp(c.x, c.Z.ravel(), T.ravel(), c.layer.pack(V_W, v_c)).reshape(c.B, c.n_out)
    U = _pre(c)
    ds = c.act.df(U)
    dU = T @ c.W.T + c.Z @ V_W.T + v_c
    compare("t_out", got, ref, variants=[
        Variant("missing σ'(u): the tangent of u is dU = T Wᵀ + Z V_Wᵀ + v_c, and t_out = σ'(u) ⊙ dU", dU),
        Variant("missing the bias direction: dU = T Wᵀ + Z V_Wᵀ + v_c includes v_c",
                ds * (T @ c.W.T + c.Z @ V_W.T) if along != "z" else None),
        Variant("missing the input direction: dU includes T Wᵀ (the change of z_in moves u too)",
                ds * (c.Z @ V_W.T + v_c) if along == "both" else None),
        Variant("missing the weight direction: dU includes Z V_Wᵀ", ds * (T @ c.W.T + v_c) if along != "z" else None),
        Variant("you multiplied by W where Wᵀ belongs: dU = T Wᵀ + ... (T is B × n_in)",
                lambda: ds * (T @ c.W + c.Z @ V_W.T + v_c) if c.n_in == c.n_out else None),
        Variant("you used σ'' where σ' belongs: t_out = σ'(u) ⊙ dU", c.act.d2f(U) * dU),
    ])


CHECKS = [
    Check("vjp_b_in", "dense_vjp: b_in = b_out J_z", check_b_in, dense_cases()),
    Check("vjp_g_W", "dense_vjp: gradient of W", check_g_W, dense_cases()),
    Check("vjp_g_c", "dense_vjp: gradient of c", check_g_c, dense_cases()),
    Check("jvp_z", "dense_jvp along z_in only (V = 0)", lambda s, c: _check_jvp(s, c, "z"),
          dense_cases(("W", "c", "Z", "T"))),
    Check("jvp_x", "dense_jvp along the parameters only (T = 0)", lambda s, c: _check_jvp(s, c, "x"),
          dense_cases(("W", "c", "Z", "V_W", "v_c"))),
    Check("jvp_full", "dense_jvp along (T, V_W, v_c)", lambda s, c: _check_jvp(s, c, "both"),
          dense_cases(("W", "c", "Z", "T", "V_W", "v_c"))),
]
