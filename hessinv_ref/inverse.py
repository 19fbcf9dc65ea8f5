r"""Solving :math:`(H + εI)\, x = g`: one entry point for every route.

=============  ==================================================  =====================
``method``     what it does                                        cost
=============  ==================================================  =====================
``banded``     banded LU with partial pivoting of :math:`K'`       :math:`O(L (p+2a)^3)`
``riccati``    the dual-network (stagewise Newton) sweep           :math:`O(L (a+p)^3)`
``ldu``        the paper's block LDU of :math:`K'`                  :math:`O(L (p+2a)^3)`
``dense``      LU of the dense :math:`H + εI` (the oracle)         :math:`O(L^3 p^3)`
``cg``         conjugate gradients on the R-operator (inexact)     iterations × HVP
``minres``     MINRES on the R-operator (inexact)                  iterations × HVP
=============  ==================================================  =====================

On the NumPy backend the default is ``banded`` (:data:`DEFAULT_METHOD`),
the most robust exact route, at a cost linear in depth.  Its partial
pivoting crosses layer blocks, so a small or indefinite Schur complement
cannot spoil it.  ``riccati`` and ``ldu`` eliminate layer by layer without
pivoting across layers.  When :math:`H + εI` is positive definite the
Riccati pivots are Schur complements of it, never worse conditioned than the
matrix, and ``riccati`` is as accurate as ``banded`` and the fastest exact
route (the one that yields the inertia: choose it when
:math:`H + εI \succ 0` is known).  When :math:`H + εI` is indefinite,
``riccati`` and ``ldu`` can lose digits in proportion to their pivots'
condition and element growth, and can meet a singular pivot on a
nonsingular matrix; they then raise
:class:`~hessinv_ref.factorization.SingularPivotError` naming ``banded``.

The evidence (``hessinv-ref bench --sweeps robustness``: 200 random
problems, seed 0, depth 1-8, widths 1-4, batch 1-3, every layer kind,
activation and head; each at a small damping :math:`10^u \|H\|_2`,
``u`` uniform in ``[-4, 0]`` (146 indefinite, 54 positive definite), and
at a large one, ``u`` in ``[1, 30]``; float64 and float32; errors
against the float64 dense solve).  "Refused" counts refusals of a
nonsingular matrix (``cause="route"``), of 400 cells per precision; the
errors are the worst forward error over ``eps κ_2(H + εI)`` among the cells
solved without a warning::

    route     refused      indefinite       large damping    backward error / eps
              f64  f32     f64     f32      f64     f32      worst, f64   f32
    banded      0    1     0.5     0.48     6.5     2.4      1.1          0.96
    riccati     0    4     120     3.8      2.3     1.7      3.1e3        8.8e2
    ldu         0    2     68      2.2      7.3     5.7      3.9e4        1.9e2

(The one ``banded`` refusal is a float32 network whose Hessian is zero, at
``ε ≈ 1e-7``: the lifted matrix is singular at that precision while
:math:`H + εI = εI`, and the message names ``riccati``.)  Before the pivot
rule judged the problem instead of the lifted matrix, the same command
counted 122 (float64) and 176 (float32) refusals by ``banded`` of the 200
large dampings, where :math:`κ_2 \le 1.25`.

Cost, linear in depth for both: ``hessinv-ref bench --sweeps depth --width
10 --depths 16,32,64,128,256 --repeats 5 --timer cpu --no-memory
--dense-max-s 5 --cg-max-s 1`` (one BLAS thread, a shared 2-core VM) gave
log-log slopes of 1.09 for setup + ``banded`` and 1.05 for setup +
``riccati`` (factor and one solve: 24 to 510 ms, against 4.4 to 92 ms).
``banded`` took 1.5 to 1.75 ms per layer up to ``L = 128`` and 2.0 ms at
``L = 256``, where its lifted condition estimate passed ``1/sqrt(eps)`` and
it estimated :math:`κ(H + εI)` as well (a fixed number of extra solves and
R-operator products per factorization, each linear in depth).  ``riccati`` is about five
times faster at this width and is the default off NumPy (``banded`` needs
LAPACK's band routines).

Every factorization reports :attr:`~hessinv_ref.factorization.Factorization.pivot_condition`
and :meth:`~hessinv_ref.factorization.Factorization.backward_error` so a lost
digit is never silent; the pivot rule, and what a
:class:`~hessinv_ref.factorization.SingularPivotError` says, are in
:mod:`hessinv_ref.factorization`.

Array backends and the routes
-----------------------------
Every route runs on the array backend of its curvature, the one active when
the curvature was built (:mod:`hessinv_ref.backend`), except two that need
SciPy-only machinery: ``banded`` (LAPACK's band LU)
exists on NumPy only, and ``cg``/``minres`` on NumPy and CuPy.  Off NumPy the
default (``method=None``, see :func:`default_method`) is therefore
``riccati``; asking for a route the backend lacks raises
:class:`~hessinv_ref.backend.BackendNotSupportedError`.
"""

from __future__ import annotations

import functools

from .curvature import Curvature, check_network
from .solvers.registry import DEFAULT_METHOD, METHODS, default_method, factorize_curvature

__all__ = ["METHODS", "DEFAULT_METHOD", "default_method", "factorize", "solve", "factorize_curvature"]

def _keyword_only_damping(n_positional):
    """Make a function whose ``damping`` is keyword-only say so when it is
    passed by position (Python's own message only counts the arguments).
    ``n_positional``: the positional parameters the function has.  The
    signature seen by ``inspect`` and the documentation is unchanged."""

    def wrap(fn):
        @functools.wraps(fn)
        def checked(*args, **kwargs):
            if len(args) > n_positional:
                extra = ", ".join(repr(a) for a in args[n_positional:])
                raise TypeError(
                    f"{fn.__name__}: damping is keyword-only (no value is right for every "
                    f"problem, so it is always named): call {fn.__name__}(..., damping={args[n_positional]!r}); "
                    f"got {len(args) - n_positional} extra positional argument(s): {extra}"
                )
            return fn(*args, **kwargs)

        return checked

    return wrap


@_keyword_only_damping(4)
def factorize(net, params, X, y, *, damping, method=None, **options):
    r"""Factor :math:`H + εI` once for many right-hand sides.

    Parameters
    ----------
    net : Network
    params : list of dict or ndarray, shape (P,)
    X : ndarray, shape (B, n_in)
    y : ndarray
        Labels (B,) or targets (B, n_out).
    damping : float
        :math:`ε \ge 0`.  Required and keyword-only: no value is right for
        every problem (passed by position, it raises ``TypeError`` saying so).
    method : str or None
        One of :data:`METHODS`; ``None`` (the default) picks
        :func:`default_method`: ``"banded"`` on NumPy, ``"riccati"`` on the
        other backends (see the module notes).
    **options
        ``rtol`` (a real number in (0, 1)) and ``maxiter`` (an int >= 1)
        for ``"cg"`` and ``"minres"``; any other keyword, or any option for
        an exact route, raises ``TypeError`` naming it.

    Returns
    -------
    Factorization
        With ``solve``, ``logdet``, ``inertia``, ``backward_error``,
        ``as_operator``.  To refactor for another ``ε`` without recomputing
        the per-layer blocks, use ``Curvature(...).factorize(ε, method)``.
    """
    return factorize_curvature(Curvature(net, params, X, y), damping, method, **options)


@_keyword_only_damping(5)
def solve(net, params, X, y, g, *, damping, method=None, **options):
    r"""Solve :math:`(H + εI)\, x = g` exactly in time linear in depth.

    Parameters
    ----------
    net, params, X, y
        The point, as in :func:`factorize`.
    g : ndarray, shape (P,) or (P, k)
        Right-hand side(s) in the flat parameter layout; not modified.
    damping : float
        :math:`ε \ge 0`, keyword-only, as in :func:`factorize`.
    method : str or None
        One of :data:`METHODS`; ``None`` for :func:`default_method`.
    **options
        ``rtol`` and ``maxiter`` for ``"cg"`` and ``"minres"`` (see
        :class:`~hessinv_ref.solvers.krylov.KrylovSolver`); the exact routes
        take none and raise ``TypeError`` when given one.

    Returns
    -------
    ndarray, same shape as ``g``

    Examples
    --------
    >>> import numpy as np
    >>> from hessinv_ref import solve, hessian
    >>> from hessinv_ref.testing import random_problem
    >>> net, params, X, y = random_problem(depth=6, width=3, batch=2, seed=1)
    >>> g = np.ones(net.n_params)
    >>> x = solve(net, params, X, y, g, damping=0.1)
    >>> A = hessian(net, params, X, y) + 0.1 * np.eye(net.n_params)
    >>> bool(np.allclose(A @ x, g))
    True
    """
    check_network(net).check_vector("g", g)
    return factorize(net, params, X, y, damping=damping, method=method, **options).solve(g)
