"""Exercise 7: the block-tridiagonal LDU (block Thomas) solve.

The student solves ``K' u = r`` for a block-tridiagonal ``K'`` given by its
diagonal, sub- and super-diagonal blocks (:ref:`notation §5 <notation-5>`), graded against a
dense solve; a dedicated check makes sure no dense solver ever sees the
whole matrix.  Wrong variants come from :func:`_block_solve` with one step
changed.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.linalg

from ...curvature import Curvature
from ...dense import DenseFactorization
from ...inverse import factorize, solve
from ...solvers.banded import BandedFactorization
from ...solvers.ldu import LDUFactorization
from ...solvers.lifted import BlockTridiagonal, LiftedSystem
from ..harness import Cases, Check, Variant, block_locator, compare
from ._common import describe_problem, problem

NUMBER = 7
TITLE = "The block-tridiagonal LDU solve"
FILE = "ex07_block_ldu.md"
NAMES = ("block_ldu_solve",)


def forbidden():
    return [(LDUFactorization, "hessinv_ref's LDUFactorization"), (BandedFactorization, "hessinv_ref's "
            "BandedFactorization"), (DenseFactorization, "hessinv_ref's DenseFactorization"),
            (solve, "hessinv_ref.solve"), (factorize, "hessinv_ref.factorize")]


def _random_system(sizes, k, rng):
    """Block diagonally dominant, so that elimination without pivoting across blocks is safe."""
    L = len(sizes)
    lower = [0.5 * rng.standard_normal((sizes[l + 1], sizes[l])) for l in range(L - 1)]
    upper = [0.5 * rng.standard_normal((sizes[l], sizes[l + 1])) for l in range(L - 1)]
    diag = [rng.standard_normal((n, n)) + (n + 4) * np.eye(n) for n in sizes]
    N = sum(sizes)
    r = rng.standard_normal(N) if k == 0 else rng.standard_normal((N, k))
    return diag, lower, upper, r


def _case(params):
    if "depth" in params:
        curv = Curvature(*problem(params))
        lifted = LiftedSystem(curv.blocks, params["damping"])
        T = lifted.K_pivoted
        g = np.random.default_rng(params["seed"] + 1).standard_normal(lifted.P)
        diag, lower, upper, r = T.diag, T.lower, T.upper, lifted.rhs(g)
    else:
        rng = np.random.default_rng(params["seed"])
        if params.get("equal"):
            sizes = [params["max_size"]] * params["L"]
        else:
            sizes = [int(s) for s in rng.integers(1, params["max_size"] + 1, params["L"])]
        diag, lower, upper, r = _random_system(sizes, params.get("k", 0), rng)
    dense = BlockTridiagonal(diag, lower, upper).to_dense()
    return SimpleNamespace(diag=[d.copy() for d in diag], lower=[b.copy() for b in lower],
                           upper=[b.copy() for b in upper], r=np.array(r), dense=dense,
                           sizes=[d.shape[0] for d in diag])


def _describe(params):
    if "depth" in params:
        return (describe_problem(params) + f"; the pivoted lifted system K' of damping {params['damping']}, "
                "r = Π [g; 0; 0] with g = default_rng(seed + 1).standard_normal(P)")
    c = _case(params)
    k = params.get("k", 0)
    return (f"L = {params['L']} blocks of sizes {c.sizes}, random block diagonally dominant (seed {params['seed']}), "
            + (f"r of shape {c.r.shape}" if k else "one right-hand side"))


def _cases(seeded, **space):
    base = {"L": range(1, 7), "max_size": range(1, 4), "seed": range(0, 2**16)}
    base.update(space)
    return Cases(seeded=seeded, space=base, build=_case, describe=_describe)


def _block_solve(diag, lower, upper, r, schur_sign=-1.0, forward=True, back=True):
    """Block LDU with one step switchable (the wrong variants)."""
    L = len(diag)
    S, U = [diag[0]], []
    for l in range(1, L):
        U.append(np.linalg.solve(S[l - 1], upper[l - 1]))
        S.append(diag[l] + schur_sign * lower[l - 1] @ U[l - 1])
    o = np.concatenate([[0], np.cumsum([d.shape[0] for d in diag])]).astype(int)
    c = []
    for l in range(L):
        y = r[o[l]:o[l + 1]]
        if forward and l > 0:
            y = y - lower[l - 1] @ c[l - 1]
        c.append(np.linalg.solve(S[l], y))
    u = list(c)
    if back:
        for l in range(L - 2, -1, -1):
            u[l] = c[l] - U[l] @ u[l + 1]
    return np.concatenate(u)


def _variants(c):
    args = (c.diag, c.lower, c.upper, c.r)
    return [
        Variant("you stopped after the forward sweep: the back substitution u_L = c_L, then "
                "u_l = c_l - S_l⁻¹ B_{l,l+1} u_{l+1} for l = L-1..1, is missing",
                lambda: _block_solve(*args, back=False)),
        Variant("forward substitution run backwards (or skipped): y_l = r_l - B_{l,l-1} S_{l-1}⁻¹ y_{l-1} needs "
                "the previous block's result, so this sweep must run l = 1, 2, ..., L (top to bottom)",
                lambda: _block_solve(*args, forward=False)),
        Variant("sign of the Schur-complement update: S_l = B_{l,l} - B_{l,l-1} S_{l-1}⁻¹ B_{l-1,l}",
                lambda: _block_solve(*args, schur_sign=1.0)),
    ]


def _solve(student, c, max_system=None):
    return student.call("block_ldu_solve", [d.copy() for d in c.diag], [b.copy() for b in c.lower],
                        [b.copy() for b in c.upper], c.r.copy(), max_system=max_system)


def _locate(c):
    """Row i of u as a row of block l (u_l, 1-based as in the exercise)."""
    return block_locator(c.sizes, "u_l of block")


def check_values(student, c):
    compare("u", _solve(student, c), np.linalg.solve(c.dense, c.r), rtol=1e-8, variants=_variants(c),
            locate=_locate(c))


def check_blockwise(student, c):
    got = _solve(student, c, max_system=max(c.sizes))
    compare("u", got, np.linalg.solve(c.dense, c.r), rtol=1e-8, variants=_variants(c), locate=_locate(c))


def check_network(student, c):
    compare("u", _solve(student, c), np.linalg.solve(c.dense, c.r), rtol=1e-7, variants=_variants(c),
            hint="K' is not symmetric and its blocks differ in size: use lower[l] and upper[l] as given",
            locate=_locate(c))


_NET = {"depth": 4, "width": 2, "batch": 1, "layers": "dense", "activation": "tanh", "head": "softmax",
        "scale": 1.0, "damping": 1.0}

CHECKS = [
    Check("equal_blocks", "solves block-tridiagonal systems, equal blocks", check_values,
          _cases([{"L": 3, "max_size": 1, "equal": True, "seed": 3}, {"L": 4, "max_size": 2, "equal": True, "seed": 0}],
                 equal=[True])),
    Check("unequal_blocks", "solves block-tridiagonal systems, blocks of any size", check_values,
          _cases([{"L": 4, "max_size": 3, "seed": 1}, {"L": 5, "max_size": 3, "seed": 2}])),
    Check("one_block", "a single block (L = 1)", check_values,
          _cases([{"L": 1, "max_size": 3, "seed": 4}], L=[1])),
    Check("several_rhs", "several right-hand sides, r of shape (N, k)", check_values,
          _cases([{"L": 3, "max_size": 3, "seed": 5, "k": 2}], k=range(1, 4))),
    Check("network", "solves a network's pivoted lifted system K'", check_network,
          Cases(seeded=[{**_NET, "seed": 0}, {**_NET, "depth": 3, "head": "mse", "seed": 1}],
                space={"depth": range(1, 5), "width": range(1, 3), "batch": range(1, 3), "layers": ["dense"],
                       "activation": ["tanh", "softplus"], "head": ["softmax", "mse"], "scale": [1.0],
                       "damping": [1.0], "seed": range(0, 2**16)},
                build=_case, describe=_describe)),
    Check("block_by_block", "works block by block (no solver sees the whole matrix)", check_blockwise,
          _cases([{"L": 4, "max_size": 2, "seed": 6}], L=range(2, 7))),
]
