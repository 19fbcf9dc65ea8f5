"""The ``"cupy"`` backend: CuPy on the current CUDA device, through
``array_api_compat.cupy`` (the ``gpu`` extra installs both), with
``cupyx.scipy`` for what NumPy takes from SciPy.

Nothing here imports CuPy until the backend is selected, so this module
loads on a machine without it.
"""

from __future__ import annotations

import inspect

import numpy as np

from .base import Backend, DenseLU


class _CupyLU(DenseLU):
    """``cupyx.scipy.linalg.lu_factor``/``lu_solve``; exact condition number."""

    def __init__(self, backend, A):
        import cupyx.scipy.linalg as cla

        super().__init__(backend, A)
        if self.rcond > 0:
            self._lu = cla.lu_factor(A, check_finite=False)

    def solve(self, R, trans=False):
        import cupyx.scipy.linalg as cla

        return cla.lu_solve(self._lu, R, trans=1 if trans else 0, check_finite=False)


class _CupyBackend(Backend):  # pragma: no cover - needs a CUDA device
    name = "cupy"
    _lu_class = _CupyLU

    def __init__(self):
        import cupy
        from array_api_compat import cupy as cupy_xp

        super().__init__(cupy_xp, None, cupy.ndarray)
        self._cupy = cupy

    def _same_device(self, a):
        return a.device == self._cupy.cuda.Device()

    def erfc(self, u):
        import cupyx.scipy.special as csp

        return csp.erfc(u)

    def expit(self, u):
        import cupyx.scipy.special as csp

        return csp.expit(u)

    def cholesky(self, A):
        # cupy.linalg.cholesky does not raise on a matrix that is not
        # positive definite unless asked to, and its factor is then garbage
        import cupyx

        try:
            with cupyx.errstate(linalg="raise"):
                return self._cupy.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            return None

    def cho_solve(self, C, R):
        import cupyx.scipy.linalg as cla

        Y = cla.solve_triangular(C, R, lower=True, check_finite=False)
        return cla.solve_triangular(C, Y, lower=True, trans="T", check_finite=False)

    def linear_operator(self, shape, matvec, dtype):
        import cupyx.scipy.sparse.linalg as cspla

        return cspla.LinearOperator(shape, matvec=matvec, rmatvec=matvec, matmat=matvec, dtype=dtype)

    def krylov(self, method):
        import cupyx.scipy.sparse.linalg as cspla

        solver = {"cg": cspla.cg, "minres": cspla.minres}[method]
        if "rtol" in inspect.signature(solver).parameters:
            return solver

        def with_rtol(A, b, rtol, **kwargs):  # CuPy < 14 calls it ``tol``
            return solver(A, b, tol=rtol, **kwargs)

        return with_rtol
