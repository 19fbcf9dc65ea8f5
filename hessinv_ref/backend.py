r"""Array backends: the one place that says which array library does the math.

Every core module (layers, the passes, the HVP routes, the structured
solvers, the factorization objects) computes with the *active namespace*
:data:`xp`, never with ``numpy`` directly.  Three backends are known:

``"numpy"`` (the default)
    NumPy, with SciPy's LAPACK wrappers for the small dense factorizations.
``"cupy"``
    CuPy on the current CUDA device, through ``array_api_compat.cupy`` (the
    ``gpu`` extra installs both), with ``cupyx.scipy`` for what NumPy takes
    from SciPy.
``"array_api_strict"``
    The ``array-api-strict`` package's minimal namespace, with arrays placed
    on its virtual device ``"device1"``.  Such arrays refuse conversion to
    NumPy and refuse to mix with arrays on another device, exactly as CuPy
    arrays do; the CI runs the core test modules under this backend, so a
    stray ``np.`` call, an implicit host round-trip, an unsupported in-place
    write or a missing ``device=`` fails on a CPU-only machine.

Selecting a backend
-------------------
:func:`set_backend` sets it for the rest of the program, :func:`use_backend`
for a ``with`` block (restored on exit, also after an exception), and the
environment variable ``HESSINV_REF_BACKEND`` picks the starting one (for a
whole test run).  :func:`get_backend` returns the active :class:`Backend`.

Inputs and devices
------------------
Arrays given to the library must belong to the active backend (and to its
device): a NumPy array given while ``"cupy"`` is active, or the reverse,
raises ``TypeError`` naming the argument, instead of being copied behind
the caller's back.  Move data explicitly with :func:`from_numpy` and
:func:`to_numpy`.  Results are arrays of the active backend, on the device
of the inputs.

What the Array API standard lacks
---------------------------------
The standard (2023.12) has no ``erfc``, no logistic sigmoid, no Cholesky
*solve*, no LU, no condition estimate, no Krylov solvers and no linear
operators.  The :class:`Backend` methods below supply them, and this module
is the only place with backend-specific code:

* :meth:`Backend.erfc`, :meth:`Backend.expit`: SciPy / ``cupyx.scipy.special``
  where available; otherwise a series and continued fraction for ``erfc``
  (relative error below ``1e-13``) and the overflow-free form of the
  sigmoid;
* :meth:`Backend.cholesky`, :meth:`Backend.cho_solve`,
  :meth:`Backend.cho_rcond`, :meth:`Backend.eigvalsh`, :class:`DenseLU`:
  LAPACK through SciPy on NumPy (called directly: the pivots of a tall-skinny
  chain are tiny and the wrappers' checks would dominate), ``cupyx.scipy``
  on CuPy, and ``xp.linalg`` otherwise, where the condition number is then
  computed exactly from the inverse rather than estimated;
* :meth:`Backend.onenormest`: SciPy's estimator on NumPy, Hager's
  algorithm elsewhere;
* :meth:`Backend.linear_operator`, :meth:`Backend.krylov`: ``scipy`` or
  ``cupyx.scipy.sparse.linalg``; not available on ``"array_api_strict"``;
* the banded LU (``method="banded"``) exists on NumPy only.

Anything missing raises :class:`BackendNotSupportedError`, which names the
backend and the alternatives.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
import os

import numpy as np

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "Backend",
    "BackendNotSupportedError",
    "DenseLU",
    "check_dtype",
    "from_numpy",
    "get_backend",
    "set_backend",
    "to_numpy",
    "use_backend",
    "xp",
]

BACKENDS = ("numpy", "cupy", "array_api_strict")
"""The names :func:`set_backend` accepts: ``"numpy"`` (the default),
``"cupy"`` (GPUs; needs the ``gpu`` extra) and ``"array_api_strict"`` (the
strict Array API namespace on the CPU, which checks that the core uses
nothing outside the standard)."""

ENV_VAR = "HESSINV_REF_BACKEND"
"""Environment variable read once at import: the starting backend."""

FLOAT_DTYPES = ("float64", "float32")
"""The working precisions; ``float64`` is the default everywhere."""


class BackendNotSupportedError(NotImplementedError):
    """An operation the active backend cannot do (for example the banded LU
    on CuPy).  The message names the backend and what to use instead."""

    def __init__(self, what, backend, instead=""):
        msg = f"{what} is not available on the {backend!r} backend"
        if instead:
            msg += f"; {instead}"
        super().__init__(msg)


# -- the erfc fallback -------------------------------------------------------------
#
# Below |u| = 1.5 the series erf(u) = 2/√π e^{-u²} Σ_n (2u²)^n u / (2n+1)!!
# (all terms positive, no cancellation) and erfc = 1 - erf; above, the
# continued fraction erfc(u) = e^{-u²}/√π · 1/(u + (1/2)/(u + (2/2)/(u + ...)))
# evaluated from a fixed depth.  Against scipy.special.erfc on [-6, 26] the
# relative error stays below 2e-14 (the cancellation of 1 - erf near 1.5);
# ``tests/test_backend.py`` checks it.  References: Abramowitz and Stegun
# 7.1.6 (series) and 7.1.14 (continued fraction).

_ERFC_CUT = 1.5
_ERFC_SERIES_TERMS = 60
_ERFC_CF_DEPTH = 100


def _erfc_array_api(xp, u):
    a = xp.abs(u)
    # Each branch on the arguments where it converges; where() picks.
    s = xp.minimum(a, _ERFC_CUT)
    term, total, two_s2 = s, s, 2.0 * s * s
    for n in range(1, _ERFC_SERIES_TERMS):
        term = term * two_s2 / (2 * n + 1)
        total = total + term
    erf_small = (2.0 / math.sqrt(math.pi)) * xp.exp(-s * s) * total
    c = xp.maximum(a, _ERFC_CUT)
    f = c
    for k in range(_ERFC_CF_DEPTH, 0, -1):
        f = c + (0.5 * k) / f
    erfc_large = xp.exp(-c * c) / (math.sqrt(math.pi) * f)
    erfc_abs = xp.where(a < _ERFC_CUT, 1.0 - erf_small, erfc_large)
    return xp.where(u < 0, 2.0 - erfc_abs, erfc_abs)


# -- dense LU of one square block ----------------------------------------------------


def _exact_rcond(xp, A, inv):
    r""":math:`1/(\|A\|_1 \|A^{-1}\|_1)` from ``A`` and its computed inverse;
    0 when the inverse is not finite (``A`` numerically singular)."""
    anorm = float(xp.max(xp.sum(xp.abs(A), axis=0)))
    inorm = float(xp.max(xp.sum(xp.abs(inv), axis=0)))
    return 1.0 / (anorm * inorm) if math.isfinite(inorm) and anorm * inorm > 0 else 0.0


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


# -- the backend objects --------------------------------------------------------------


class Backend:
    """One array library and the few routines the Array API standard lacks.

    Attributes
    ----------
    name : str
        One of :data:`BACKENDS`.
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

    def asarray(self, a, name, dtype=None):
        """``a`` as an array of this backend, checked, never an implicit copy
        from another array library or device.

        Python numbers and (nested) lists are converted; an array of this
        backend is returned as is (cast to ``dtype`` if given, which copies);
        an array of another library or on another device raises.

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
            raise TypeError(
                f"{name}: expected a {self.name} array (the active backend is {self.name!r}), "
                f"got {_describe(a)}; convert it explicitly with "
                f"hessinv_ref.backend.{'to_numpy' if self.name == 'numpy' else 'from_numpy'}"
                f"(...) or select its backend with hessinv_ref.set_backend(...)"
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
        xp = self.xp
        e = xp.exp(-xp.abs(u))
        return xp.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

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
        xp = self.xp
        x = xp.full((n,), 1.0 / n, dtype=dtype, device=self.device)
        est = 0.0
        for _ in range(5):
            y = matvec(x)
            est = float(xp.sum(xp.abs(y)))
            one = xp.ones_like(y)
            z = matvec(xp.where(y >= 0, one, -one))  # A^T sign(y), A symmetric
            j = int(xp.argmax(xp.abs(z)))
            if float(xp.abs(z[j])) <= float(xp.sum(z * x)):
                break
            x = xp.zeros((n,), dtype=dtype, device=self.device)
            x[j] = 1.0
        return est

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


class _NumpyBackend(Backend):
    name = "numpy"
    _lu_class = _NumpyLU

    def __init__(self):
        super().__init__(np, None, np.ndarray)

    def asarray(self, a, name, dtype=None):
        if not self.is_array(a) and _is_foreign_array(a):
            return super().asarray(a, name, dtype)
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


class _StrictBackend(Backend):
    name = "array_api_strict"

    def __init__(self):
        import array_api_strict

        # "device1" behaves like a GPU: no conversion to NumPy, no mixing
        # with arrays on the default CPU device.
        device = array_api_strict.Device("device1")
        super().__init__(array_api_strict, device, type(array_api_strict.asarray(0.0)))


_FACTORIES = {"numpy": _NumpyBackend, "cupy": _CupyBackend, "array_api_strict": _StrictBackend}
_INSTANCES = {}


def _make(name):
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {name!r}")
    if name not in _INSTANCES:
        try:
            _INSTANCES[name] = _FACTORIES[name]()
        except ImportError as err:
            extra = {"cupy": "pip install 'hessinv_ref[gpu]'", "array_api_strict": "pip install array-api-strict"}
            raise ImportError(
                f"backend {name!r} needs a package that is not installed ({err.name}); {extra.get(name, '')}"
            ) from err
    return _INSTANCES[name]


def _initial():
    name = os.environ.get(ENV_VAR, "numpy").strip() or "numpy"
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}: expected one of {list(BACKENDS)}, got {name!r}")
    return name


# The context variable holds the Backend object itself, not its name: the
# core looks it up several times per layer, so get_backend() must be one
# call, not a call and a dict lookup.
_ACTIVE = contextvars.ContextVar("hessinv_ref_backend", default=None)


def get_backend():
    """The active :class:`Backend`."""
    be = _ACTIVE.get()
    if be is None:  # first use in this context: the environment's choice
        be = _make(_initial())
        _ACTIVE.set(be)
    return be


def set_backend(name):
    """Make ``name`` (one of :data:`BACKENDS`) the active backend.

    Returns the previous backend's name.

    Examples
    --------
    >>> import hessinv_ref
    >>> previous = hessinv_ref.set_backend("numpy")
    >>> hessinv_ref.get_backend().name
    'numpy'
    """
    backend = _make(name)  # fails before anything changes
    previous = get_backend().name
    _ACTIVE.set(backend)
    return previous


@contextlib.contextmanager
def use_backend(name):
    """Context manager: ``name`` is active inside the block, and the previous
    backend again afterwards (also when the block raises).

    Examples
    --------
    >>> import hessinv_ref
    >>> with hessinv_ref.use_backend("numpy") as be:
    ...     be.name
    'numpy'
    """
    backend = _make(name)
    get_backend()  # so that the reset below restores a concrete backend
    token = _ACTIVE.set(backend)
    try:
        yield backend
    finally:
        _ACTIVE.reset(token)


class _ActiveNamespace:
    """``xp.<name>`` is ``<name>`` of the active backend's namespace, looked
    up at call time, so ``from .backend import xp`` follows
    :func:`set_backend`.

    ``__getattribute__`` rather than ``__getattr__``: the latter runs only
    after the normal lookup has failed, which costs more than the lookup
    itself, and the core does this several times per layer."""

    __slots__ = ()

    def __getattribute__(self, attr):
        be = _ACTIVE.get()
        return getattr((be if be is not None else get_backend()).xp, attr)

    def __repr__(self):
        return f"<active array namespace: {get_backend().name}>"


xp = _ActiveNamespace()
"""The active backend's array namespace, looked up at each use: ``xp.zeros`` or
``xp.linalg.solve`` are NumPy's, CuPy's or ``array_api_strict``'s as
:func:`set_backend` last chose.  The core modules compute through it."""


# -- moving data --------------------------------------------------------------------


def _is_foreign_array(a):
    return hasattr(a, "__array_namespace__") or isinstance(a, np.ndarray)


def _describe(a):
    t = type(a)
    dev = getattr(a, "device", None)
    where = f" on {dev!r}" if dev is not None and not isinstance(a, np.ndarray) else ""
    return f"{t.__module__}.{t.__qualname__}{where}"


def to_numpy(a):
    """A NumPy copy (or view, for NumPy input) of an array of any backend.

    The one sanctioned way out of a device: an explicit copy.  Python
    numbers and NumPy arrays pass through ``numpy.asarray``.
    """
    if isinstance(a, np.ndarray) or not hasattr(a, "__array_namespace__"):
        return np.asarray(a)
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):  # pragma: no cover
        return a.get()
    if hasattr(a, "to_device"):
        mod = type(a).__module__.split(".")[0]
        if mod == "array_api_strict":
            import array_api_strict

            a = a.to_device(array_api_strict.Device("CPU_DEVICE"))
        return np.asarray(a)
    return np.from_dlpack(a)  # pragma: no cover - other libraries


def from_numpy(a, backend=None):
    """An explicit copy of ``a`` (NumPy array or array-like) onto the device
    of ``backend`` (default: the active one)."""
    be = get_backend() if backend is None else _make(backend)
    a = np.asarray(a)
    if be.name == "numpy":
        return a.copy()
    if be.name == "cupy":  # pragma: no cover - needs a CUDA device
        return be._cupy.asarray(a)
    return be.xp.asarray(a, device=be.device, copy=True)


def check_dtype(dtype):
    """Validate a working precision: ``"float64"`` or ``"float32"``, or a
    dtype of those names from any backend (``numpy.float32``,
    ``array_api_strict.float32``, ...); returns the name."""
    name = getattr(dtype, "__name__", None) or str(getattr(dtype, "name", dtype))
    name = name.rsplit(".", 1)[-1]  # "array_api_strict.float64" -> "float64"
    name = {"double": "float64", "single": "float32"}.get(name, name)
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype: expected one of {list(FLOAT_DTYPES)}, got {dtype!r}")
    return name
