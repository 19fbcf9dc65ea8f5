r"""The iterative baseline: Krylov methods on the R-operator.

What a user without the structured solvers would reach for: conjugate
gradients (``method="cg"``, for :math:`H + εI \succ 0`) or MINRES
(``method="minres"``, for symmetric indefinite :math:`H + εI`) from
``scipy.sparse.linalg`` (NumPy backend) or ``cupyx.scipy.sparse.linalg``
(CuPy), with one R-operator product per iteration.  They are inexact by
design: they stop at a relative residual
:math:`\|(H + εI) x - g\| \le \mathrm{rtol}\,\|g\|`.  Other backends
have no Krylov solvers and refuse at construction with
:class:`~hessinv_ref.backend.BackendNotSupportedError`.
"""

from __future__ import annotations

import warnings

from ..backend import get_backend
from ..factorization import Factorization, machine_eps

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
    rtol : float, optional
        Relative residual at which to stop.  Default ``1e-10``, or
        ``100 eps`` of the working precision if that is larger (``1.2e-5``
        in ``float32``, where ``1e-10`` is out of reach).
    maxiter : int, optional
        Iteration cap (default ``10 P``).

    Attributes
    ----------
    iterations : list of int
        Iterations used by each column of the last :meth:`solve`.

    Raises
    ------
    BackendNotSupportedError
        On a backend without Krylov solvers (``array_api_strict``).
    """

    def __init__(self, curvature, damping, method="cg", rtol=None, maxiter=None):
        super().__init__(curvature, damping)
        if method not in ("cg", "minres"):
            raise ValueError(f"method: expected 'cg' or 'minres', got {method!r}")
        be = get_backend()
        # the backend's solver and operator, fetched now: a backend without
        # them refuses here, with its message, before any work
        self._krylov = be.krylov(method)
        self._operator = be.linear_operator((self.P, self.P), self.matvec, self.dtype)
        rtol = max(1e-10, 100 * machine_eps(self.dtype)) if rtol is None else float(rtol)
        if not 0 < rtol < 1:
            raise ValueError(f"rtol: expected a number in (0, 1), got {rtol}")
        self.method, self.rtol = method, rtol
        self.maxiter = 10 * self.P if maxiter is None else int(maxiter)
        self.iterations = []

    def _solve(self, G):
        xp = get_backend().xp
        op, krylov = self._operator, self._krylov
        X = xp.zeros_like(G)
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
