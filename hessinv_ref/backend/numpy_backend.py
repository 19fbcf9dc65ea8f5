"""The ``"numpy"`` backend: NumPy arrays, SciPy's LAPACK wrappers called
directly for the small dense factorizations, SciPy's special functions,
operators and Krylov solvers.

The pivots of a tall-skinny chain are tiny, so the LAPACK routines are
called directly (``potrf``, ``getrf``, ...): the ``scipy.linalg`` wrappers'
checks would dominate the cost.
"""

from __future__ import annotations

import numpy as np

from .base import Backend, DenseLU, _is_foreign_array


def _lapack(names, a):
    """SciPy's LAPACK routines ``names`` for the dtype of ``a``, cached:
    ``get_lapack_funcs`` costs microseconds, and the solvers call these once
    per layer."""
    key = (names, a.dtype.char)
    funcs = _LAPACK_CACHE.get(key)
    if funcs is None:
        from scipy.linalg import lapack

        funcs = _LAPACK_CACHE[key] = lapack.get_lapack_funcs(names, (a,))
    return funcs


_LAPACK_CACHE = {}


class _NumpyLU(DenseLU):
    """LAPACK ``?getrf``/``?getrs``/``?gecon`` called directly."""

    def __init__(self, backend, A):
        self.backend, self.A = backend, A
        getrf, getrs, gecon, lange = _lapack(("getrf", "getrs", "gecon", "lange"), A)
        self._getrs = getrs
        self.lu, self.piv, info = getrf(A)
        if info < 0:  # pragma: no cover - only on invalid arguments
            raise ValueError(f"getrf failed with info={info}")
        rcond, _ = gecon(self.lu, lange("1", A), norm="1")
        if info > 0 or not np.all(np.isfinite(self.lu)):
            rcond = 0.0
        self.rcond = float(rcond)

    def solve(self, R, trans=False):
        X, info = self._getrs(self.lu, self.piv, R, trans=1 if trans else 0)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise ValueError(f"getrs failed with info={info}")
        return X

    def slogdet(self):
        d = np.diag(self.lu)
        swaps = np.count_nonzero(self.piv != np.arange(self.piv.size))
        sign = (-1.0) ** int(swaps) * float(np.prod(np.sign(d)))
        return float(sign), float(np.sum(np.log(np.abs(d))))


class _NumpyBackend(Backend):
    name = "numpy"
    _lu_class = _NumpyLU

    def __init__(self):
        super().__init__(np, None, np.ndarray)

    def asarray(self, a, name, dtype=None, *, why=None):
        if type(a) is np.ndarray:  # the usual case, first: np.asarray would return it as is
            return a if dtype is None or a.dtype == dtype else a.astype(dtype)
        if not self.is_array(a) and _is_foreign_array(a):
            return super().asarray(a, name, dtype, why=why)
        a = np.asarray(a)
        if dtype is not None and a.dtype != dtype:
            a = a.astype(dtype)
        return a

    def read_only(self, a):
        a.flags.writeable = False
        return a

    def erfc(self, u):
        from scipy.special import erfc

        return erfc(u)

    def expit(self, u):
        from scipy.special import expit

        return expit(u)

    def cholesky(self, A):
        (potrf,) = _lapack(("potrf",), A)
        # A is symmetric, so A.T is the same matrix in the column-major
        # order LAPACK wants: no copy on the way in.
        C, info = potrf(A.T, lower=1, clean=1, overwrite_a=0)
        if info < 0:  # pragma: no cover - only on invalid arguments
            raise ValueError(f"potrf failed with info={info}")
        return C if info == 0 else None

    def cho_solve(self, C, R):
        (potrs,) = _lapack(("potrs",), C)
        X, info = potrs(C, R, lower=1)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise ValueError(f"potrs failed with info={info}")
        return X

    def cho_rcond(self, C, A):
        pocon, lange = _lapack(("pocon", "lange"), C)
        rcond, _ = pocon(C, lange("1", A), uplo="L")
        return float(rcond)

    def eigvalsh(self, A):
        import scipy.linalg

        return scipy.linalg.eigvalsh(A, check_finite=False)

    def onenormest(self, matvec, n, dtype):
        import scipy.sparse.linalg as spla

        return float(spla.onenormest(self.linear_operator((n, n), matvec, dtype)))

    def linear_operator(self, shape, matvec, dtype):
        import scipy.sparse.linalg as spla

        return spla.LinearOperator(shape, matvec=matvec, rmatvec=matvec, matmat=matvec, dtype=dtype)

    def krylov(self, method):
        import scipy.sparse.linalg as spla

        return {"cg": spla.cg, "minres": spla.minres}[method]

    def solve_banded(self):
        from scipy.linalg import lapack

        return lapack
