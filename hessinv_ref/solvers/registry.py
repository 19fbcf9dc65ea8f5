r"""The route registry: which class factors :math:`H + εI` for each ``method=``.

The table itself, :data:`~hessinv_ref.factorization.ROUTES`, is filled by
the routes (each registers itself under its ``method`` name); this module
imports every route so that the table is complete, checks ``method=`` and
its options, and is the one place the front door
(:func:`hessinv_ref.inverse.factorize`, :meth:`hessinv_ref.Curvature.factorize`)
and the tools look routes up here rather than importing each solver.
"""

from __future__ import annotations

from ..backend import get_backend

# Importing each exact route is what enters it in ROUTES: a subclass of
# Factorization with a ``method`` name registers itself when defined.
from ..dense import DenseFactorization
from ..factorization import ROUTES
from .banded import BandedFactorization
from .krylov import OPTIONS as KRYLOV_OPTIONS
from .krylov import KrylovSolver
from .ldu import LDUFactorization
from .riccati import RiccatiFactorization

__all__ = ["METHODS", "DEFAULT_METHOD", "ROUTES", "default_method", "factorize_curvature",
           "BandedFactorization", "DenseFactorization", "LDUFactorization", "RiccatiFactorization"]

METHODS = ("riccati", "banded", "ldu", "dense", "cg", "minres")
"""Every accepted value of ``method=`` (besides ``None``, the default): the exact
routes ``"riccati"``, ``"banded"``, ``"ldu"`` and ``"dense"``, and the Krylov
baselines ``"cg"`` and ``"minres"``, which stop at a residual tolerance.  The table
in :mod:`hessinv_ref.inverse`, and the documentation's page on the routes
(``docs/api/methods.md``), say what each computes and costs."""

DEFAULT_METHOD = "banded"
"""The route ``method=None`` means on the NumPy backend: banded LU with partial
pivoting of the pivoted lifted system, the most robust exact route.  Other
backends, which lack LAPACK's band LU, use ``"riccati"`` (see :func:`default_method`)."""


def default_method(backend=None):
    """The route ``method=None`` means on ``backend`` (a
    :class:`~hessinv_ref.backend.Backend`; ``None``: the active one):
    ``"banded"`` (:data:`DEFAULT_METHOD`) on NumPy, ``"riccati"`` elsewhere
    (the banded LU needs LAPACK's band routines, which only the NumPy
    backend has).  :func:`factorize_curvature` asks it for the curvature's
    backend."""
    be = get_backend() if backend is None else backend
    return DEFAULT_METHOD if be.name == "numpy" else "riccati"


def factorize_curvature(curvature, damping, method=None, **options):
    """Factor :math:`H + εI` at a :class:`~hessinv_ref.point.Point` (or a
    :class:`~hessinv_ref.curvature.Curvature`).

    ``method`` is one of :data:`METHODS`, or ``None`` for
    :func:`default_method` of the curvature's backend.  ``options`` go to the Krylov routes only
    (``rtol``, ``maxiter``: see
    :class:`~hessinv_ref.solvers.krylov.KrylovSolver`); an option the route
    does not take raises ``TypeError`` naming it and the route's options.
    """
    if method is None:
        method = default_method(curvature.backend)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    if method in ("cg", "minres"):
        unknown = sorted(set(options) - set(KRYLOV_OPTIONS))
        if unknown:
            raise TypeError(
                f"method {method!r}: unknown option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; the options of {method!r} are {list(KRYLOV_OPTIONS)}"
            )
        return KrylovSolver(curvature, damping, method=method, **options)
    if options:
        raise TypeError(
            f"method {method!r} takes no options, got {', '.join(map(repr, sorted(options)))}; "
            f"{list(KRYLOV_OPTIONS)} are options of the Krylov routes 'cg' and 'minres' only"
        )
    return ROUTES[method](curvature, damping)
