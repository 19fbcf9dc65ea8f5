r"""Array backends: the one place that says which array library does the math.

Every core module (layers, the passes, the HVP routes, the structured
solvers, the factorization objects) computes with the namespace of a
:class:`Backend`, never with ``numpy`` directly.  Three backends are known:

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

One idiom: selected at the door, then the data's own namespace
---------------------------------------------------------------
*Selection happens where inputs enter.*  The active backend
(:func:`get_backend`) is read only where data comes in: the network's
validation of ``params``, ``X``, ``y`` and parameter-space vectors (which
refuses arrays of another library), :meth:`~hessinv_ref.network.Network.init`,
the construction of a :class:`~hessinv_ref.point.Point` (which stores it as
``point.backend``, and its namespace as ``point.xp``), and the helpers of
:mod:`hessinv_ref.testing` and the tools that create inputs.

*Everything after that computes in the namespace of the data it was
given.*  The algorithms and routes read the point's backend
(``xp = self.curvature.xp`` at the top of a method, ``point.backend.lu(A)``
for a routine the standard lacks); the layers, activations and helpers,
which receive arrays only, ask :func:`namespace_of` (``xp =
namespace_of(u).xp``, ``namespace_of(u).erfc(u)``).  None of them calls
:func:`get_backend` or uses the :data:`xp` proxy.  So a point built under
one backend keeps computing there when the active backend changes
afterwards, and the core pays one dictionary lookup per function for its
namespace, not one context-variable lookup per array operation.

The :data:`xp` proxy (the *active* namespace, looked up at each attribute
access) stays for users, notebooks and tests that want "whatever backend is
active now"; the core does not import it (``tests/test_import_graph.py``
checks that, and names the door functions allowed to call
:func:`get_backend`).

Selecting a backend
-------------------
:func:`set_backend` sets it for the rest of the program, :func:`use_backend`
for a ``with`` block (restored on exit, also after an exception), and the
environment variable ``HESSINV_REF_BACKEND`` picks the starting one (for a
whole test run).  :func:`get_backend` returns the active :class:`Backend`.
The choice applies to *new* inputs: a point, a curvature or a factorization
built before the change keeps the backend it was built with.

Inputs and devices
------------------
Arrays given to the library must belong to the active backend (and to its
device): a NumPy array given while ``"cupy"`` is active, or the reverse,
raises ``TypeError`` naming the argument, instead of being copied behind
the caller's back.  Move data explicitly with :func:`from_numpy` and
:func:`to_numpy`.  Results are arrays of the inputs' backend, on their
device.  Vectors given to a point's methods later (``curv.hvp(v)``,
``fact.solve(g)``) must belong to the point's backend, the one it was
built with.

What the Array API standard lacks
---------------------------------
The standard (2023.12) has no ``erfc``, no logistic sigmoid, no Cholesky
*solve*, no LU, no condition estimate, no Krylov solvers and no linear
operators.  The :class:`Backend` methods below supply them, and this package
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

The package, one idea per module
--------------------------------
This module is the *registry*: the backend names, the active backend, the
``xp`` proxy, :func:`namespace_of` and the explicit moves between libraries.  The backends
themselves live beside it, none importing the registry:

* :mod:`hessinv_ref.backend.base`: :class:`Backend` (the interface and its
  generic Array API methods), :class:`DenseLU`,
  :class:`BackendNotSupportedError`;
* :mod:`hessinv_ref.backend.numpy_backend`, :mod:`~hessinv_ref.backend.cupy_backend`,
  :mod:`~hessinv_ref.backend.strict_backend`: one backend each;
* :mod:`hessinv_ref.backend.fallbacks`: the ``erfc`` series, the sigmoid,
  the exact condition number and Hager's estimator, written with the
  standard alone;
* :mod:`hessinv_ref.backend.constants`: the machine epsilon and the other
  limits of a working precision, defined once for the whole library.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

import numpy as np

# The backends and the fallbacks; the private names too stay importable from
# here, as they were when this package was one module.
from .base import Backend, BackendNotSupportedError, DenseLU, _describe, _is_foreign_array
from .constants import _precision_name
from .cupy_backend import _CupyBackend, _CupyLU
from .fallbacks import (
    _ERFC_CF_DEPTH,
    _ERFC_CUT,
    _ERFC_SERIES_TERMS,
    _erfc_array_api,
    _exact_rcond,
    _expit_array_api,
    _hager_onenormest,
)
from .numpy_backend import _LAPACK_CACHE, _NumpyBackend, _NumpyLU, _lapack
from .strict_backend import _StrictBackend

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "Backend",
    "BackendNotSupportedError",
    "DenseLU",
    "check_dtype",
    "from_numpy",
    "get_backend",
    "namespace_of",
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


# The context variable holds the Backend object itself, not its name, so
# get_backend() is one call.  The core reads it only at the door (see the
# module notes); after that it uses the backend of its data.
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
:func:`set_backend` last chose.  For users, notebooks and tests that want the
active namespace; the core does not use it (it computes in the namespace of
its data: ``point.xp``, :func:`namespace_of`)."""


# -- the namespace of given arrays ----------------------------------------------------

# array type -> Backend, filled on first sight of each type: namespace_of is
# then one dict lookup per array
_BACKEND_OF_TYPE = {}

# the top-level module of an array type -> the backend that may own it, tried
# on a type's first sight (so a NumPy array never imports CuPy)
_LIBRARY_OF_MODULE = {"numpy": "numpy", "cupy": "cupy", "array_api_strict": "array_api_strict"}


def _backend_of_type(a):
    """The backend whose :meth:`~Backend.is_array` accepts ``a``, found on the
    first array of its type and cached for the type."""
    t = type(a)
    candidates = list(_INSTANCES.values())
    name = _LIBRARY_OF_MODULE.get(t.__module__.split(".")[0])
    if name is not None and name not in _INSTANCES:
        try:
            candidates.append(_make(name))
        except ImportError:  # pragma: no cover - an array of a library that cannot be a backend here
            pass
    for be in candidates:
        if be.is_array(a):
            _BACKEND_OF_TYPE[t] = be
            return be
    raise TypeError(
        f"expected an array of one of the backends {list(BACKENDS)}, got {t.__module__}.{t.__qualname__}"
    )


def namespace_of(*arrays):
    """The :class:`Backend` the given arrays belong to.

    The core's way to its array namespace after the door: a function that
    receives arrays computes with ``namespace_of(a).xp`` (and the routines
    the standard lacks, ``namespace_of(u).erfc(u)``), whatever backend is
    active.  The backend of each array type is found once and cached, so a
    call costs a dictionary lookup per array.

    Parameters
    ----------
    *arrays : array
        One or more arrays of one backend (any device of it).

    Returns
    -------
    Backend

    Raises
    ------
    TypeError
        For no array, for an object that is no backend's array (a Python
        list or number, an array of another library), naming its type, and
        for arrays of two backends (move one explicitly with
        :func:`to_numpy` / :func:`from_numpy`).

    Examples
    --------
    >>> import numpy as np
    >>> from hessinv_ref.backend import namespace_of
    >>> namespace_of(np.ones(3)).name
    'numpy'
    """
    if len(arrays) == 1:  # the usual call: one dict lookup
        backend = _BACKEND_OF_TYPE.get(type(arrays[0]))
        if backend is not None:
            return backend
    elif not arrays:
        raise TypeError("namespace_of: expected at least one array, got none")
    backend = None
    for a in arrays:
        be = _BACKEND_OF_TYPE.get(type(a))
        if be is None:
            be = _backend_of_type(a)
        if backend is None:
            backend = be
        elif be is not backend:
            raise TypeError(
                f"expected arrays of one backend, got a {backend.name} array and a {be.name} "
                f"array ({_describe(a)}); move one explicitly with hessinv_ref.backend.to_numpy(...) "
                f"or from_numpy(...)"
            )
    return backend


# -- moving data --------------------------------------------------------------------


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
    name = _precision_name(dtype)
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype: expected one of {list(FLOAT_DTYPES)}, got {dtype!r}")
    return name
