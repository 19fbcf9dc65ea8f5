r"""The generic backend: one Array API namespace and what the standard lacks.

:class:`Backend` is the interface every backend implements, with generic
methods written with the Array API standard alone (they are what the
``"array_api_strict"`` backend runs); the NumPy and CuPy backends override
them with LAPACK and ``cupyx.scipy``.  :class:`DenseLU` is the generic LU of
one square block, and :class:`BackendNotSupportedError` what a backend raises
for an operation it cannot do.
"""

from __future__ import annotations

import numpy as np

from .fallbacks import _erfc_array_api, _exact_rcond, _expit_array_api, _hager_onenormest

__all__ = ["Backend", "BackendNotSupportedError", "DenseLU"]


class BackendNotSupportedError(NotImplementedError):
    """An operation the active backend cannot do (for example the banded LU
    on CuPy).  The message names the backend and what to use instead."""

    def __init__(self, what, backend, instead=""):
        msg = f"{what} is not available on the {backend!r} backend"
        if instead:
            msg += f"; {instead}"
        super().__init__(msg)


# -- dense LU of one square block ----------------------------------------------------


class DenseLU:
    r"""An LU factorization of one square matrix ``A`` on the active backend.

    The generic version (any Array API namespace) keeps ``A`` and calls
    ``xp.linalg.solve`` per solve, since the standard has no LU; its
    reciprocal condition number :math:`1/(\|A\|_1 \|A^{-1}\|_1)` is exact,
    from ``xp.linalg.inv``.  NumPy uses LAPACK ``dgetrf``/``dgetrs``/``dgecon``
    (an estimate of the same number), CuPy ``cupyx.scipy.linalg``.

    Attributes
    ----------
    A : array, shape (n, n)
        The factored matrix, as given.
    rcond : float
        Reciprocal 1-norm condition number (0 when ``A`` is exactly
        singular or the factorization produced non-finite values).
    """

    def __init__(self, backend, A):
        self.backend, self.A = backend, A
        xp = backend.xp
        try:
            inv = xp.linalg.inv(A)
        except np.linalg.LinAlgError:
            self.rcond = 0.0
            return
        self.rcond = _exact_rcond(xp, A, inv)

    def solve(self, R, trans=False):
        """:math:`A^{-1} R` (``trans=False``) or :math:`A^{-T} R`."""
        A = self.A.mT if trans else self.A
        return self.backend.xp.linalg.solve(A, R)

    def slogdet(self):
        """``(sign, log|det A|)`` as floats."""
        sign, logabs = self.backend.xp.linalg.slogdet(self.A)
        return float(sign), float(logabs)


# -- the backend object ---------------------------------------------------------------


class Backend:
    """One array library and the few routines the Array API standard lacks.

    Attributes
    ----------
    name : str
        One of :data:`~hessinv_ref.backend.BACKENDS`.
    xp : module
        The array namespace.
    device : object
        Where new arrays are created (``xp.asarray(..., device=device)``).
    array_type : type
        The array class of this backend.
    """

    name = None
    _lu_class = DenseLU

    def __init__(self, xp, device, array_type):
        self.xp, self.device, self.array_type = xp, device, array_type

    def __repr__(self):
        return f"<Backend {self.name!r} device={self.device!r}>"

    # -- inputs ------------------------------------------------------------------

    def is_array(self, a):
        """Whether ``a`` is an array of this backend (any device)."""
        return isinstance(a, self.array_type)

    def asarray(self, a, name, dtype=None, *, why=None):
        """``a`` as an array of this backend, checked, never an implicit copy
        from another array library or device.

        Python numbers and (nested) lists are converted; an array of this
        backend is returned as is (cast to ``dtype`` if given, which copies);
        an array of another library or on another device raises.

        ``why`` says, for the message, why this backend is the one expected:
        ``None`` (the door) means it is the active backend, and the message
        offers :func:`~hessinv_ref.backend.set_backend`; a point's methods pass
        ``"the point it goes with was built on the 'numpy' backend"``, where
        selecting another backend would not help.

        Raises
        ------
        TypeError
            For an array of another library, naming ``name``, its type and
            how to move it.
        ValueError
            For an array of this library on another device.
        """
        xp = self.xp
        if self.is_array(a):
            if not self._same_device(a):
                raise ValueError(
                    f"{name}: expected an array on the {self.name!r} backend's device "
                    f"{self.device!r}, got one on {a.device!r}; move it explicitly "
                    f"(mixing devices is never done implicitly)"
                )
        elif _is_foreign_array(a):
            move = f"hessinv_ref.backend.{'to_numpy' if self.name == 'numpy' else 'from_numpy'}(...)"
            if why is None:
                why, move = f"the active backend is {self.name!r}", f"{move} or select its backend with hessinv_ref.set_backend(...)"
            raise TypeError(
                f"{name}: expected a {self.name} array ({why}), got {_describe(a)}; convert it explicitly with {move}"
            )
        else:
            a = xp.asarray(a, device=self.device)
        if dtype is not None and a.dtype != dtype:
            a = xp.astype(a, dtype)
        return a

    def _same_device(self, a):
        return self.device is None or a.device == self.device

    def read_only(self, a):
        """Mark ``a`` read-only where the library can (NumPy); elsewhere a no-op.
        Internal caches are returned read-only so no caller can corrupt them."""
        return a

    def dtype(self, name):
        """The dtype object of this namespace for ``"float64"`` or ``"float32"``."""
        return getattr(self.xp, name)

    # -- special functions -----------------------------------------------------

    def erfc(self, u):
        """The complementary error function, elementwise."""
        return _erfc_array_api(self.xp, u)

    def expit(self, u):
        r"""The logistic sigmoid :math:`1/(1 + e^{-u})` without overflow:
        with :math:`e = e^{-|u|} \le 1`, it is :math:`1/(1+e)` for
        :math:`u \ge 0` and :math:`e/(1+e)` otherwise, both accurate in
        their tails."""
        return _expit_array_api(self.xp, u)

    # -- small dense linear algebra ------------------------------------------

    def cholesky(self, A):
        """The lower Cholesky factor of the symmetric ``A``, or ``None`` when
        ``A`` is not (numerically) positive definite."""
        xp = self.xp
        try:
            C = xp.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            return None
        return C if bool(xp.all(xp.isfinite(C))) else None

    def cho_solve(self, C, R):
        r""":math:`A^{-1} R` from ``C = cholesky(A)``:
        :math:`C^{-T} (C^{-1} R)` (generic: two general solves, since the
        standard has no triangular solve)."""
        xp = self.xp
        return xp.linalg.solve(C.mT, xp.linalg.solve(C, R))

    def cho_rcond(self, C, A):
        r"""Reciprocal 1-norm condition number of ``A = C C^T``
        (generic: exact, :math:`1/(\|A\|_1\|A^{-1}\|_1)`)."""
        xp = self.xp
        inv = self.cho_solve(C, xp.eye(A.shape[0], dtype=A.dtype, device=self.device))
        return _exact_rcond(xp, A, inv)

    def eigvalsh(self, A):
        """Eigenvalues of the symmetric ``A``, ascending."""
        return self.xp.linalg.eigvalsh(A)

    def lu(self, A):
        """A :class:`DenseLU` of the square ``A``."""
        return self._lu_class(self, A)

    # -- operators and iterations ------------------------------------------------

    def onenormest(self, matvec, n, dtype):
        r"""An estimate of :math:`\|A\|_1` for symmetric ``A`` given by
        ``matvec``: Hager's algorithm (at most 5 products with a vector;
        Higham, *Accuracy and Stability of Numerical Algorithms*, §15.3).
        Exact when it stops at a unit vector that attains the norm."""
        return _hager_onenormest(self.xp, self.device, matvec, n, dtype)

    def linear_operator(self, shape, matvec, dtype):
        """A ``LinearOperator`` of this backend (SciPy's or ``cupyx``'s)."""
        raise BackendNotSupportedError(
            "LinearOperator", self.name, "use the numpy or cupy backend, or call solve() directly"
        )

    def krylov(self, method):
        """``cg`` or ``minres`` of this backend, with SciPy's signature."""
        raise BackendNotSupportedError(
            f"the Krylov solver {method!r}", self.name, "use method='riccati' or 'ldu' on this backend"
        )

    def solve_banded(self):
        """LAPACK's band LU (``gbtrf``/``gbtrs``, ``gbcon``)."""
        raise BackendNotSupportedError(
            "the banded LU (method='banded')", self.name,
            "use method='riccati' or 'ldu', or set_backend('numpy')",
        )


# -- recognising arrays ---------------------------------------------------------------


def _is_foreign_array(a):
    return hasattr(a, "__array_namespace__") or isinstance(a, np.ndarray)


def _describe(a):
    t = type(a)
    dev = getattr(a, "device", None)
    where = f" on {dev!r}" if dev is not None and not isinstance(a, np.ndarray) else ""
    return f"{t.__module__}.{t.__qualname__}{where}"
