"""Exercise 3: a Dense layer's second-order products and curvature blocks.

The student writes the R-backward terms of one layer,
``(Hzz t + Hxzᵀ v, Hxz t + Hxx v)`` (:ref:`notation §3 <notation-3>`-:ref:`§4 <notation-4>`), in matrix form, and the
explicit blocks ``Hxx, Hxz, Hzz`` in the flat layout (parameters: W row-major
then c; activations sample-major), graded against
:class:`~hessinv_ref.layers.Dense`'s ``second_order`` and ``curvature``.

Wrong variants are built here from the same formulas with one ingredient
changed, so each hint names exactly the ingredient the answer got wrong.
"""

from __future__ import annotations

import numpy as np

from ...layers import AffineLayer, Dense
from ..harness import Check, Variant, compare, methods
from ._common import dense_cases, unpack

NUMBER = 3
TITLE = "A Dense layer's second-order products and its Hxx, Hxz, Hzz"
FILE = "ex03_dense_curvature.md"
NAMES = ("dense_second_order", "dense_curvature")


def forbidden():
    return (methods(Dense, ("second_order", "curvature"), "hessinv_ref's Dense.{name}")
            + methods(AffineLayer, ("second_order", "curvature", "_cross", "_C"), "hessinv_ref's AffineLayer.{name}"))


# The hints, once each: they name the ingredient that is wrong.
SIGMA1 = "you used σ' where σ'' belongs: the curvature of u ↦ b·σ(u) is Λ = diag(b_out ⊙ σ''(u))"
NO_B = ("missing the b-contraction: every second derivative is weighted by b_out, "
        "Λ = diag(b_out ⊙ σ''(u)) (and the cross term by D = b_out ⊙ σ'(u))")
NO_CROSS = ("missing the cross term: u = Z Wᵀ is bilinear, so ∂²(b·z)/∂W∂z ≠ 0 even where σ'' = 0. "
            "With D = b_out ⊙ σ'(u) it adds D V_W to Hxzᵀ v and Dᵀ T to the W part of Hxz t")
NO_CROSS_BLOCK = ("missing the cross term C: u = Z Wᵀ is bilinear, so Hxz = A_xᵀ Λ A_z + C, where C holds "
                  "D_ik = b_ik σ'(u_ik) at row W_kj, column (sample i, input j), and zeros in the bias rows; "
                  "it is there even where σ'' = 0")
CROSS_ONLY = "only the cross term is there: the Λ = diag(b_out ⊙ σ''(u)) part through dU is missing"
MEAN = "off by the batch mean: the bias part of Hxx v and Hxz t sums over the samples, Σ_i R{D}_i"


def _ingredients(c, lam="ok", cross=True):
    U = c.Z @ c.W.T + c.c
    D = c.b_out * c.act.df(U)
    Lam = {"ok": c.b_out * c.act.d2f(U), "sigma1": c.b_out * c.act.df(U), "no_b": c.act.d2f(U),
           "zero": np.zeros_like(U)}[lam]
    return U, (D if cross else np.zeros_like(D)), Lam


def _second_order(c, T, V_W, v_c, **how):
    """(r_z, r_W, r_c) from the formulas, with ingredients changed per ``how``."""
    _, D, Lam = _ingredients(c, **how)
    RD = Lam * (T @ c.W.T + c.Z @ V_W.T + v_c)
    return RD @ c.W + D @ V_W, RD.T @ c.Z + D.T @ T, RD.sum(axis=0)


def _explicit(c, **how):
    """(Hxx, Hxz, Hzz) from A_x, A_z, Λ and the cross term C."""
    U, D, Lam = _ingredients(c, **how)
    B, n_in, n_out = c.B, c.n_in, c.n_out
    eye_out = np.eye(n_out)
    A_W = np.einsum("kl,ij->iklj", eye_out, c.Z).reshape(B * n_out, n_out * n_in)
    A_x = np.hstack([A_W, np.tile(eye_out, (B, 1))])
    A_z = np.kron(np.eye(B), c.W)
    L = np.diag(Lam.ravel())
    C = np.einsum("ik,jl->kjil", D, np.eye(n_in)).reshape(n_out * n_in, B * n_in)
    C = np.vstack([C, np.zeros((n_out, B * n_in))])
    return A_x.T @ L @ A_x, A_x.T @ L @ A_z + C, A_z.T @ L @ A_z


def _variants_so(c, T, V_W, v_c, part):
    """Variants of one output ``part`` (0: r_z, 1: x part as one flat vector)."""
    def pick(r):
        return r[0] if part == 0 else np.concatenate([r[1].ravel(), r[2]])

    out = [
        Variant(SIGMA1, lambda: pick(_second_order(c, T, V_W, v_c, lam="sigma1"))),
        Variant(NO_B, lambda: pick(_second_order(c, T, V_W, v_c, lam="no_b"))),
        Variant(NO_CROSS, lambda: pick(_second_order(c, T, V_W, v_c, cross=False))),
        Variant(CROSS_ONLY, lambda: pick(_second_order(c, T, V_W, v_c, lam="zero"))),
    ]
    if part == 1 and c.B > 1:
        def mean():
            r = _second_order(c, T, V_W, v_c)
            return np.concatenate([r[1].ravel(), r[2] / c.B])
        out.append(Variant(MEAN, mean))
    return out


def _check_so(student, c, along, part):
    T = c.T if along == "z" else np.zeros_like(c.T)
    V_W = c.V_W if along == "x" else np.zeros_like(c.V_W)
    v_c = c.v_c if along == "x" else np.zeros_like(c.v_c)
    out = student.call("dense_second_order", c.W.copy(), c.c.copy(), c.Z.copy(), c.b_out.copy(),
                       T.copy(), V_W.copy(), v_c.copy(), c.act)
    r_z, r_W, r_c = unpack(out, 3, "dense_second_order", ("r_z", "r_W", "r_c"))
    ref_z, ref_x = c.layer.second_order(c.x, c.Z.ravel(), c.b_out.ravel(), T.ravel(), c.layer.pack(V_W, v_c))
    if part == 0:
        name = "Hzz t" if along == "z" else "Hxzᵀ v"
        compare(f"r_z = {name}", r_z, ref_z.reshape(c.B, c.n_in), variants=[
            Variant(v.hint, (lambda v=v: v.array().reshape(c.B, c.n_in))) for v in _variants_so(c, T, V_W, v_c, 0)
        ])
        return
    name = "Hxz t" if along == "z" else "Hxx v"
    n_w = c.n_out * c.n_in
    variants = _variants_so(c, T, V_W, v_c, 1)
    compare(f"r_W (the W part of {name})", r_W, ref_x[:n_w].reshape(c.n_out, c.n_in), variants=[
        Variant(v.hint, (lambda v=v: v.array()[:n_w].reshape(c.n_out, c.n_in))) for v in variants
    ])
    compare(f"r_c (the c part of {name})", r_c, ref_x[n_w:], variants=[
        Variant(v.hint, (lambda v=v: v.array()[n_w:])) for v in variants
    ])


def _check_block(student, c, index):
    name = ("Hxx", "Hxz", "Hzz")[index]
    out = student.call("dense_curvature", c.W.copy(), c.c.copy(), c.Z.copy(), c.b_out.copy(), c.act)
    got = unpack(out, 3, "dense_curvature", ("Hxx", "Hxz", "Hzz"))[index]
    ref = c.layer.curvature(c.x, c.Z.ravel(), c.b_out.ravel())[index]
    variants = []
    if index == 1:
        variants.append(Variant(
            f"your Hxz matches the transpose of the reference: Hxz has one row per parameter "
            f"and one column per input entry, shape (p, B n_in) = {ref.shape}", ref.T))
    variants += [
        Variant(SIGMA1, lambda: _explicit(c, lam="sigma1")[index]),
        Variant(NO_B, lambda: _explicit(c, lam="no_b")[index]),
    ]
    if index == 1:
        variants.append(Variant(NO_CROSS_BLOCK, lambda: _explicit(c, cross=False)[index]))
    p, a_in = c.layer.n_params, c.B * c.n_in
    hint = (f"layout: parameters are W row-major then c (p = {p}), inputs sample-major (B n_in = {a_in}); "
            "Hzz is block-diagonal over the samples")
    compare(name, got, ref, variants=variants, hint=hint)


def _cases(names):
    return dense_cases(names)


_SO = ("W", "c", "Z", "b_out", "T", "V_W", "v_c")

CHECKS = [
    Check("so_Hzz_t", "second_order along z_in: r_z = Hzz t", lambda s, c: _check_so(s, c, "z", 0), _cases(_SO)),
    Check("so_Hxz_t", "second_order along z_in: (r_W, r_c) = Hxz t", lambda s, c: _check_so(s, c, "z", 1),
          _cases(_SO)),
    Check("so_HxzT_v", "second_order along x: r_z = Hxzᵀ v", lambda s, c: _check_so(s, c, "x", 0), _cases(_SO)),
    Check("so_Hxx_v", "second_order along x: (r_W, r_c) = Hxx v", lambda s, c: _check_so(s, c, "x", 1),
          _cases(_SO)),
    Check("Hxx", "dense_curvature: Hxx", lambda s, c: _check_block(s, c, 0), _cases(("W", "c", "Z", "b_out"))),
    Check("Hxz", "dense_curvature: Hxz", lambda s, c: _check_block(s, c, 1), _cases(("W", "c", "Z", "b_out"))),
    Check("Hzz", "dense_curvature: Hzz", lambda s, c: _check_block(s, c, 2), _cases(("W", "c", "Z", "b_out"))),
]
