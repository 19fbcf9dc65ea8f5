"""Exercise 5: backprop as a block-bidiagonal solve.

The student assembles ``M`` (identity blocks, ``-Jz_l`` at block ``(l, l-1)``)
and ``Dx = blockdiag(Jx_l)`` from the per-layer blocks and computes the
gradient as ``gᵀ = e_L M⁻¹ Dx`` (:ref:`notation §2 <notation-2>`), graded against
:class:`~hessinv_ref.polynomial.HessianPolynomial` and
:meth:`~hessinv_ref.curvature.Curvature.gradient`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.linalg

from ...curvature import Curvature
from ...network import Network
from ...polynomial import HessianPolynomial
from ..harness import Check, Variant, block_locator, compare
from ._common import problem, problem_cases

NUMBER = 5
TITLE = "Assembling M and Dx, and the gradient as e_L M⁻¹ Dx"
FILE = "ex05_backprop_matrix.md"
NAMES = ("assemble_M", "assemble_Dx", "gradient_via_M")


def forbidden():
    return [
        (HessianPolynomial.M, "HessianPolynomial.M"), (HessianPolynomial.Dx, "HessianPolynomial.Dx"),
        (HessianPolynomial.solve_M, "HessianPolynomial.solve_M"),
        (HessianPolynomial.solve_MT, "HessianPolynomial.solve_MT"),
        (Curvature.gradient, "Curvature.gradient"), (Network.gradient, "Network.gradient"),
    ]


def _case(params):
    curv = Curvature(*problem(params))
    poly = HessianPolynomial(curv.blocks)
    return SimpleNamespace(curv=curv, blocks=curv.blocks, poly=poly)


_SEEDED = [
    {"depth": 3, "width": 2, "batch": 2, "layers": "dense", "activation": "tanh", "head": "softmax", "scale": 1.5, "seed": 0},
    {"depth": 4, "width": 3, "batch": 1, "layers": "mixed", "activation": "softplus", "head": "mse", "scale": 1.0, "seed": 1},
    {"depth": 2, "width": 2, "batch": 3, "layers": "residual", "activation": "gelu", "head": "softmax", "scale": 1.0, "seed": 2},
]


def _cases():
    return problem_cases(_SEEDED, build=_case)


def _M(blocks, sign=-1.0, identity=True, with_z0=False):
    """M from the blocks, with the sign of the Jz blocks and the diagonal switchable."""
    sizes = ([blocks[0].Jz.shape[1]] if with_z0 else []) + [b.Jz.shape[0] for b in blocks]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    M = np.eye(off[-1]) if identity else np.zeros((off[-1], off[-1]))
    for k in range(1, len(sizes)):
        layer = k if with_z0 else k + 1  # block k holds z_k (with z_0) or z_{k+1} (without)
        M[off[k]:off[k + 1], off[k - 1]:off[k]] = sign * blocks[layer - 1].Jz
    return M


def _a(blocks):
    return [blk.Jz.shape[0] for blk in blocks]


def _p(blocks):
    return [blk.Jx.shape[1] for blk in blocks]


def _students(student, name, blocks):
    return student.call(name, tuple(blocks))


def check_M(student, c):
    blocks = c.blocks
    compare("M", _students(student, "assemble_M", blocks), c.poly.M.toarray(), variants=[
        Variant("sign of the -Jz block: M has -Jz_l below its identity diagonal, since M t = Dx v "
                "reads t_l - Jz_l t_{l-1} = Jx_l v_l", lambda: _M(blocks, sign=1.0)),
        Variant("your M is the transpose: -Jz_l belongs below the diagonal, at block row l, column l-1 "
                "(z_l depends on z_{l-1})", lambda: _M(blocks).T),
        Variant("the diagonal blocks of M are identities (the z_l - Jz_l z_{l-1} of each row)",
                lambda: _M(blocks, identity=False)),
        Variant("M has one block row and column per layer, l = 1..L: z_0 is the input, not an unknown, so "
                "Jz_1 does not appear in M", lambda: _M(blocks, with_z0=True)),
    ], hint="block (l, l) = I of size a_l, block (l, l-1) = -Jz_l for l = 2..L, zeros elsewhere",
       locate=block_locator(_a(blocks), "block", _a(blocks)))


def check_Dx(student, c):
    blocks = c.blocks
    compare("Dx", _students(student, "assemble_Dx", blocks), c.poly.Dx.toarray(), variants=[
        Variant("your Dx is the transpose: Dx = blockdiag(Jx_1, ..., Jx_L) is (Σ a_l) × (Σ p_l)",
                lambda: scipy.linalg.block_diag(*[b.Jx.T for b in blocks])),
        Variant("blockdiag of the Jx_lᵀ: each Jx_l is (a_l × p_l) and goes in as it is",
                lambda: scipy.linalg.block_diag(*[b.Jx.T for b in blocks]).T),
    ], locate=block_locator(_a(blocks), "block", _p(blocks)))


def check_gradient(student, c):
    blocks = c.blocks
    M, Dx = c.poly.M.toarray(), c.poly.Dx.toarray()
    e_L = np.zeros(M.shape[0])
    e_L[-1] = 1.0
    b = scipy.linalg.solve_triangular(M, e_L, lower=True, unit_diagonal=True, trans="T")

    def via_M():
        u = scipy.linalg.solve_triangular(M, e_L, lower=True, unit_diagonal=True)
        return Dx.T @ u

    compare("g", _students(student, "gradient_via_M", blocks), c.curv.gradient(), variants=[
        Variant("only the last layer's gradient is there: you solved M u = e_L, but b = e_L M⁻¹ is a row "
                "vector: solve b M = e_L, i.e. Mᵀ bᵀ = e_L (a backward substitution). If assemble_M fails "
                "too, fix it first: a transposed M does the same", via_M),
        Variant("your gradient is what an M with +Jz_l blocks gives: check the sign of the -Jz block "
                "(see the assemble_M check)", lambda: Dx.T @ scipy.linalg.solve_triangular(
                    _M(blocks, sign=1.0), e_L, lower=True, unit_diagonal=True, trans="T")),
        Variant("you returned b, one entry per activation: the gradient is g = Dxᵀ bᵀ (one entry per parameter)",
                lambda: b),
    ], locate=block_locator(_p(blocks), "g_l of layer"))


CHECKS = [
    Check("M", "assemble_M: identity blocks, -Jz_l below the diagonal", check_M, _cases()),
    Check("Dx", "assemble_Dx: blockdiag(Jx_1..Jx_L)", check_Dx, _cases()),
    Check("gradient", "gradient_via_M: gᵀ = e_L M⁻¹ Dx matches backprop", check_gradient, _cases()),
]
