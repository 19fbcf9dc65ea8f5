r"""The iterative baseline: Krylov methods on the R-operator.

What a user without the structured solvers would reach for: conjugate
gradients (``method="cg"``, for :math:`H + εI \succ 0`) or MINRES
(``method="minres"``, for symmetric indefinite :math:`H + εI`) from
``scipy.sparse.linalg``, with one R-operator product per iteration.  They
are inexact by design: they stop at a relative residual
:math:`\|(H + εI) x - g\| \le \mathrm{rtol}\,\|g\|`.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse.linalg as spla

from ..factorization import Factorization

__all__ = ["KrylovSolver", "KrylovConvergenceWarning"]


class KrylovConvergenceWarning(RuntimeWarning):
    """The Krylov method stopped at ``maxiter`` before reaching ``rtol``."""


class KrylovSolver(Factorization):
    """CG or MINRES on :math:`H + εI` applied by the R-operator.

    Not a factorization: every :meth:`solve` iterates afresh, and ``logdet``
    and ``inertia`` are not available.

    Parameters
    ----------
    curvature : Curvature
    damping : float
    method : {"cg", "minres"}
    rtol : float
        Relative residual at which to stop (default ``1e-10``).
    maxiter : int, optional
        Iteration cap (default ``10 P``).

    Attributes
    ----------
    iterations : list of int
        Iterations used by each column of the last :meth:`solve`.
    """

    def __init__(self, curvature, damping, method="cg", rtol=1e-10, maxiter=None):
        super().__init__(curvature, damping)
        if method not in ("cg", "minres"):
            raise ValueError(f"method: expected 'cg' or 'minres', got {method!r}")
        rtol = float(rtol)
        if not 0 < rtol < 1:
            raise ValueError(f"rtol: expected a number in (0, 1), got {rtol}")
        self.method, self.rtol = method, rtol
        self.maxiter = 10 * self.P if maxiter is None else int(maxiter)
        self.iterations = []

    def _solve(self, G):
        op = spla.LinearOperator((self.P, self.P), matvec=self.matvec, dtype=np.float64)
        krylov = spla.cg if self.method == "cg" else spla.minres
        X = np.zeros_like(G)
        self.iterations = []
        for j in range(G.shape[1]):
            count = [0]

            def callback(_xk, count=count):
                count[0] += 1

            X[:, j], info = krylov(op, G[:, j], rtol=self.rtol, maxiter=self.maxiter, callback=callback)
            self.iterations.append(count[0])
            if info > 0:
                warnings.warn(
                    f"{self.method}: no convergence to rtol={self.rtol:g} in "
                    f"{self.maxiter} iterations",
                    KrylovConvergenceWarning,
                    stacklevel=3,
                )
        return X
