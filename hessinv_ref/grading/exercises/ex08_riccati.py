"""Exercise 8: the Riccati (stagewise Newton) sweep and the inertia it yields.

The student computes the pivots ``Qxx⁽ˡ⁾`` of the backward sweep, solves
``(H + εI) x = g`` with the backward and forward sweeps (:ref:`notation §6 <notation-6>`), and
reads the inertia and ``log|det|`` of ``H + εI`` off the pivots (Sylvester's
law).  Graded against :class:`~hessinv_ref.solvers.riccati.RiccatiFactorization`'s
cost-to-go matrices and the dense oracle; wrong variants come from
:func:`_sweep` with one ingredient changed.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np

from ...curvature import Curvature
from ...dense import DenseFactorization, hessian_from_blocks
from ...factorization import IllConditionedPivotWarning, SingularPivotError
from ...inverse import factorize, factorize_curvature, solve
from ...solvers.banded import BandedFactorization
from ...solvers.ldu import LDUFactorization
from ...solvers.riccati import RiccatiFactorization, SymmetricPivot
from ..harness import Cases, Check, CheckFailure, Variant, block_locator, compare, compare_pieces
from ._common import describe_problem, problem, unpack

NUMBER = 8
TITLE = "The Riccati sweep and the inertia it yields"
FILE = "ex08_riccati.md"
NAMES = ("riccati_pivots", "riccati_solve", "inertia_from_pivots", "logdet_from_pivots")


def forbidden():
    return [(RiccatiFactorization, "hessinv_ref's RiccatiFactorization"), (SymmetricPivot, "SymmetricPivot"),
            (factorize, "hessinv_ref.factorize"), (solve, "hessinv_ref.solve"),
            (factorize_curvature, "Curvature.factorize"), (DenseFactorization, "DenseFactorization"),
            (LDUFactorization, "LDUFactorization"), (BandedFactorization, "BandedFactorization"),
            (hessian_from_blocks, "hessinv_ref.dense.hessian_from_blocks"), (Curvature.hessian, "Curvature.hessian")]


def _case(params):
    curv = Curvature(*problem(params))
    damping = params["damping"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedPivotWarning)
        for _ in range(4):  # a drawn problem may have a (nearly) singular pivot: damp it more
            try:
                fac = RiccatiFactorization(curv, damping)
                break
            except SingularPivotError:
                damping *= 10
    blocks = curv.blocks
    A = curv.hessian() + damping * np.eye(curv.P)
    pivots = [blk.Hxx + damping * np.eye(blk.Hxx.shape[0]) + blk.Jx.T @ fac.S[l] @ blk.Jx
              for l, blk in enumerate(blocks, 1)]
    g = np.random.default_rng(params["seed"] + 1).standard_normal(curv.P)
    w = np.linalg.eigvalsh(A)
    return SimpleNamespace(blocks=blocks, damping=damping, A=A, pivots=pivots, g=g, eigenvalues=w)


def _describe(params):
    return (describe_problem(params) + f"; damping ε = {params['damping']}, "
            "g = default_rng(seed + 1).standard_normal(P)")


_PD = {"depth": 3, "width": 2, "batch": 2, "layers": "dense", "activation": "tanh", "head": "softmax", "scale": 1.0,
       "damping": 1.0}
_INDEF = [
    {"depth": 3, "width": 2, "batch": 3, "layers": "dense", "activation": "tanh", "head": "softmax", "scale": 2.0,
     "damping": 0.01, "seed": 2},
    {"depth": 4, "width": 2, "batch": 2, "layers": "dense", "activation": "tanh", "head": "mse", "scale": 2.0,
     "damping": 0.01, "seed": 0},
]
_SPACE = {"depth": range(1, 5), "width": range(1, 4), "batch": range(1, 4), "layers": ["dense", "mixed"],
          "activation": ["tanh", "softplus", "gelu"], "head": ["softmax", "mse"], "scale": [1.0, 2.0],
          "damping": [0.01, 0.1, 1.0], "seed": range(0, 2**16)}


def _cases(seeded, **space):
    return Cases(seeded=seeded, space={**_SPACE, **space}, build=_case, describe=_describe)


def _sweep(blocks, damping, g=None, *, cost_to_go=True, s_in_qxx=True, eps=True, schur=True, schur_sign=1.0,
           qx_sign=-1.0):
    """The Riccati sweep with ingredients switchable; returns (pivots, x or None)."""
    L = len(blocks)
    S = np.zeros((blocks[-1].Jz.shape[0],) * 2)
    gs = None if g is None else np.split(g, np.cumsum([b.Jx.shape[1] for b in blocks])[:-1])
    s = np.zeros(S.shape[0])
    pivots, gains, ks = [None] * L, [None] * L, [None] * L
    for l in range(L, 0, -1):
        blk = blocks[l - 1]
        S_l = S if cost_to_go else np.zeros_like(S)
        Qxx = blk.Hxx + (damping if eps else 0.0) * np.eye(blk.Hxx.shape[0])
        if s_in_qxx:
            Qxx = Qxx + blk.Jx.T @ S_l @ blk.Jx
        Qxz = blk.Hxz + blk.Jx.T @ S_l @ blk.Jz
        Qzz = blk.Hzz + blk.Jz.T @ S_l @ blk.Jz
        K = -np.linalg.solve(Qxx, Qxz)
        pivots[l - 1], gains[l - 1] = Qxx, K
        if gs is not None:
            qx = qx_sign * gs[l - 1] + blk.Jx.T @ s
            ks[l - 1] = -np.linalg.solve(Qxx, qx)
            s = blk.Jz.T @ s + Qxz.T @ ks[l - 1]
        S = Qzz + (schur_sign * Qxz.T @ K if schur else 0.0)
        S = 0.5 * (S + S.T)
    if gs is None:
        return pivots, None
    t, xs = np.zeros(blocks[0].Jz.shape[1]), []
    for l in range(1, L + 1):
        blk = blocks[l - 1]
        x = ks[l - 1] + gains[l - 1] @ t
        t = blk.Jz @ t + blk.Jx @ x
        xs.append(x)
    return pivots, np.concatenate(xs)


NO_S = ("Qxx misses the cost-to-go: Qxx = Hxx_l + εI + Jx_lᵀ S_l Jx_l, where S_l carries the curvature of "
        "the layers above (S_L = 0)")
NO_EPS = "the damping is missing: Qxx = Hxx_l + εI + Jx_lᵀ S_l Jx_l"
NO_SCHUR = ("S_{l-1} misses the elimination of x_l: S_{l-1} = Qzz + Qxzᵀ K_l (the Schur complement), "
            "with K_l = -Qxx⁻¹ Qxz")
SCHUR_SIGN = ("sign of the Schur complement: S_{l-1} = Qzz + Qxzᵀ K_l, a plus, since K_l = -Qxx⁻¹ Qxz already "
              "carries the minus (S_{l-1} = Qzz - Qxzᵀ Qxx⁻¹ Qxz)")
QX_SIGN = ("your x is -(H + εI)⁻¹ g: the linear term of the cost is -gᵀx, so qx = -g_l + Jx_lᵀ s_l "
           "and k_l = -Qxx⁻¹ qx")


def check_pivots(student, c):
    got = student.call("riccati_pivots", tuple(c.blocks), c.damping)
    L = len(c.blocks)
    if not isinstance(got, (list, tuple)) or len(got) != L:
        n = len(got) if isinstance(got, (list, tuple)) else type(got).__name__
        raise CheckFailure(f"`riccati_pivots` must return a list of L = {L} matrices, got {n}",
                           hint="pivots[l - 1] is Qxx of layer l, for l = 1..L")
    for l, (Q, ref) in enumerate(zip(got, c.pivots), 1):
        if np.shape(Q) != ref.shape:
            raise CheckFailure(f"Qxx of layer {l} has shape {np.shape(Q)}, expected {ref.shape}",
                               hint="Qxx of layer l is p_l × p_l; the list runs l = 1..L (index l - 1)")

    def message(k, right):
        # The sweep runs from layer L down, so the highest wrong layer is where the error starts.
        l = k + 1
        return f"Qxx of layer {l} is wrong" + ("" if l == L else f" (layer {L} is right)" if l == L - 1 else
                                               f" (layers {l + 1}..{L} are right)")

    compare_pieces([f"Qxx of layer {l}" for l in range(1, L + 1)], got, c.pivots, rtol=1e-8, last_first=True,
                   message=message, variants=[
                       Variant(NO_S, lambda: _sweep(c.blocks, c.damping, cost_to_go=False)[0]),
                       Variant(NO_S, lambda: _sweep(c.blocks, c.damping, s_in_qxx=False)[0]),
                       Variant(NO_EPS, lambda: _sweep(c.blocks, c.damping, eps=False)[0]),
                       Variant(NO_SCHUR, lambda: _sweep(c.blocks, c.damping, schur=False)[0]),
                       Variant(SCHUR_SIGN, lambda: _sweep(c.blocks, c.damping, schur_sign=-1.0)[0]),
                   ])


def check_solve(student, c):
    got = student.call("riccati_solve", tuple(c.blocks), c.damping, c.g.copy())
    compare("x", got, np.linalg.solve(c.A, c.g), rtol=1e-7, variants=[
        Variant(QX_SIGN, lambda: _sweep(c.blocks, c.damping, c.g, qx_sign=1.0)[1]),
        Variant(NO_S, lambda: _sweep(c.blocks, c.damping, c.g, cost_to_go=False)[1]),
        Variant(NO_S, lambda: _sweep(c.blocks, c.damping, c.g, s_in_qxx=False)[1]),
        Variant(NO_EPS, lambda: _sweep(c.blocks, c.damping, c.g, eps=False)[1]),
        Variant(NO_SCHUR, lambda: _sweep(c.blocks, c.damping, c.g, schur=False)[1]),
        Variant(SCHUR_SIGN, lambda: _sweep(c.blocks, c.damping, c.g, schur_sign=-1.0)[1]),
    ], hint="x must solve (H + εI) x = g: check the backward sweep's s_l and k_l, then the forward roll-out "
       "x_l = k_l + K_l t_{l-1}, t_l = Jz_l t_{l-1} + Jx_l x_l",
       locate=block_locator([blk.Jx.shape[1] for blk in c.blocks], "x_l of layer"))


def check_inertia(student, c):
    got = student.call("inertia_from_pivots", [Q.copy() for Q in c.pivots])
    got = unpack(got, 3, "inertia_from_pivots", ("n_pos", "n_neg", "n_zero"))
    w = c.eigenvalues
    ref = (int(np.sum(w > 0)), int(np.sum(w < 0)), 0)
    dets = [np.linalg.det(Q) for Q in c.pivots]
    by_det = (sum(Q.shape[0] for Q in c.pivots) - sum(d < 0 for d in dets), sum(d < 0 for d in dets), 0)
    by_layer = (sum(d > 0 for d in dets), sum(d < 0 for d in dets), 0)
    diag_neg = sum(int(np.sum(np.diag(Q) < 0)) for Q in c.pivots)
    by_diag = (sum(Q.shape[0] for Q in c.pivots) - diag_neg, diag_neg, 0)
    compare("(n_pos, n_neg, n_zero)", np.asarray(got, dtype=float), np.asarray(ref, dtype=float), atol=0.5,
            rtol=0.0, variants=[
                Variant("you counted pivots with a negative determinant: a pivot with two negative eigenvalues "
                        "has a positive determinant. Count the negative eigenvalues of each Qxx "
                        "(np.linalg.eigvalsh) and add them up", np.asarray(by_det, dtype=float)),
                Variant("you counted layers, not eigenvalues: each Qxx of size p_l contributes p_l eigenvalues, "
                        "and their signs add up over the layers", np.asarray(by_layer, dtype=float)),
                Variant("the signs of a matrix's diagonal entries are not the signs of its eigenvalues: use "
                        "np.linalg.eigvalsh on each Qxx", np.asarray(by_diag, dtype=float)),
            ], hint="by Sylvester's law of inertia, H + εI has as many negative eigenvalues as all the pivots "
            "Qxx together")


def check_logdet(student, c):
    got = unpack(student.call("logdet_from_pivots", [Q.copy() for Q in c.pivots]), 2, "logdet_from_pivots",
                 ("sign", "logabsdet"))
    sign, logabs = np.linalg.slogdet(c.A)
    compare("sign", np.asarray(got[0], dtype=float), sign, atol=1e-12, rtol=0.0, hint=(
        "the sign of det(H + εI) is the product of the pivots' signs, (-1)^(number of negative eigenvalues)"))
    compare("log|det|", np.asarray(got[1], dtype=float), logabs, rtol=1e-9, atol=1e-9, variants=[
        Variant("you returned log|det| of the last pivot only: sum log|det Qxx| over all the layers",
                lambda: np.linalg.slogdet(c.pivots[-1])[1]),
    ], hint="log|det(H + εI)| = Σ_l log|det Qxx⁽ˡ⁾| (np.linalg.slogdet avoids overflow)")


CHECKS = [
    Check("pivots_damped", "riccati_pivots: Qxx per layer (ε = 1)", check_pivots,
          _cases([{**_PD, "seed": 0}, {**_PD, "layers": "mixed", "head": "mse", "seed": 1}], damping=[1.0])),
    Check("pivots_indefinite", "riccati_pivots: Qxx per layer (ε = 0.01, indefinite)", check_pivots, _cases(_INDEF, scale=[2.0])),
    Check("solve_damped", "riccati_solve: x = (H + εI)⁻¹ g (ε = 1)", check_solve,
          _cases([{**_PD, "seed": 0}, {**_PD, "depth": 4, "head": "mse", "seed": 3}], damping=[1.0])),
    Check("solve_indefinite", "riccati_solve: x = (H + εI)⁻¹ g (ε = 0.01, indefinite)", check_solve,
          _cases(_INDEF, scale=[2.0])),
    Check("inertia", "inertia_from_pivots matches the eigenvalue signs of H + εI", check_inertia,
          _cases(_INDEF + [{**_PD, "seed": 0}], scale=[2.0])),
    Check("logdet", "logdet_from_pivots matches slogdet(H + εI)", check_logdet, _cases(_INDEF + [{**_PD, "seed": 0}])),
]
