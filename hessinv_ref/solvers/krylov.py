r"""The iterative baseline: Krylov methods on the R-operator.

What a user without the structured solvers would reach for: conjugate
gradients (``method="cg"``, for :math:`H + εI \succ 0`) or MINRES
(``method="minres"``, for symmetric indefinite :math:`H + εI`) from
``scipy.sparse.linalg`` (NumPy backend) or ``cupyx.scipy.sparse.linalg``
(CuPy), with one R-operator product per iteration.  Other backends have no
Krylov solvers and refuse at construction with
:class:`~hessinv_ref.backend.BackendNotSupportedError`.

They are inexact by design, so they must say when they failed.  The rules:

* **Converged means the true residual.**  After the iteration, one more
  R-operator product gives the true relative residual
  :math:`\rho = \|(H + εI)x - g\| / \|g\|` (2-norms; :math:`\rho = 0` for
  :math:`g = 0`), and a column has converged when :math:`\rho \le
  \mathrm{rtol}`: no slack.  SciPy's own ``info`` is not trusted alone:
  CG's recursively updated residual drifts from the true one, and MINRES
  stops with ``info = 0`` on its estimate of a normwise backward error, on
  a least-squares solution of a singular system or on a condition estimate
  above ``0.1/eps``, any of which can leave :math:`\rho` far above
  ``rtol``.  When SciPy stops short, the method is *restarted* from its
  last iterate within the same ``maxiter`` budget, as long as each restart
  at least halves :math:`\rho`; so a residual that drifted, or a MINRES
  stop on the backward error, is finished off rather than reported.
* **Non-convergence warns** :class:`KrylovConvergenceWarning` with the
  method, :math:`\rho`, ``rtol``, the iterations and why it stopped.
* **Breakdown.**  CG needs :math:`H + εI \succ 0`.  Every product it asks
  for is watched: a direction with :math:`p^T (H + εI) p \le 0` proves the
  matrix indefinite or singular.  CG then goes on (its iterates may still
  converge), but the result warns :class:`KrylovBreakdownWarning` (a
  :class:`KrylovConvergenceWarning`) naming the iteration and the value,
  even if :math:`\rho \le \mathrm{rtol}` in the end; at
  :math:`p^T (H + εI) p = 0` (the step divides by it) or an iterate that
  is not finite, either method stops there and returns its last finite
  iterate.  A breakdown warns rather than raises so that a comparison of
  the routes (``hessinv-ref demo``, ``bench``, ``gpu-check``) can report
  the baseline's failure; to make it an error, turn the warning into one
  (``warnings.simplefilter("error", KrylovConvergenceWarning)``).
* **Scaling.**  The system is solved as :math:`(H + εI)/s\; y = g/γ`,
  :math:`x = (γ/s)\, y`, with :math:`γ` the power of two just below
  :math:`\max|g|` and :math:`s` the power of two just below :math:`ε` when
  :math:`ε > 1` (else :math:`s = 1`).  Powers of two scale exactly, so
  nothing changes for moderate data; but a large damping (``1e300``), whose
  squared norms overflow inside MINRES (it used to return ``x = 0``),
  becomes a system with :math:`εI/s` between :math:`I` and :math:`2I`.
  :math:`s` is never below 1, so a tiny :math:`ε` cannot blow the operator
  up.
"""

from __future__ import annotations

import math
import numbers
import warnings

from ..backend import namespace_of
from ..factorization import Factorization, machine_eps
from ..finite import check_finite, largest
from ..rop import rop_hvp_cached

__all__ = ["KrylovSolver", "KrylovConvergenceWarning", "KrylovBreakdownWarning", "OPTIONS"]

OPTIONS = ("rtol", "maxiter")
"""The option keywords of the ``cg`` and ``minres`` routes."""


class KrylovConvergenceWarning(RuntimeWarning):
    """A Krylov route returned a column whose true relative residual is
    above ``rtol`` (or that met a breakdown, :class:`KrylovBreakdownWarning`)."""


class KrylovBreakdownWarning(KrylovConvergenceWarning):
    """CG met a direction with :math:`p^T (H + εI) p \\le 0` (the matrix is
    not positive definite), or an iterate stopped being finite."""


class _Breakdown(Exception):
    """Raised inside SciPy's iteration to stop it (never escapes)."""


def check_rtol(rtol):
    """``rtol``: a real number in (0, 1), returned as a float."""
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
        raise TypeError(f"rtol: expected a real number in (0, 1), got {type(rtol).__name__} {rtol!r}")
    rtol = float(rtol)
    if not 0 < rtol < 1:  # False for NaN too
        raise ValueError(f"rtol: expected a real number in (0, 1), got {rtol}")
    return rtol


def check_maxiter(maxiter):
    """``maxiter``: an int >= 1, returned as an int."""
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral):
        raise TypeError(f"maxiter: expected an int >= 1, got {type(maxiter).__name__} {maxiter!r}")
    if maxiter < 1:
        raise ValueError(f"maxiter: expected an int >= 1, got {maxiter}")
    return int(maxiter)


def _pow2_below(value):
    """The exponent ``e`` of the power of two with ``2**e <= value < 2**(e+1)``
    (``value`` a positive finite float)."""
    return math.frexp(value)[1] - 1


def _times_pow2(a, e):
    """``a * 2**e``, exact (in two steps, so ``2**e`` itself may be out of range)."""
    half = e // 2
    return (a * math.ldexp(1.0, half)) * math.ldexp(1.0, e - half)


def _norm(a):
    """The 2-norm, without overflow or underflow of the squares."""
    m = largest(a)
    return 0.0 if m == 0 else m * math.sqrt(float(namespace_of(a).xp.sum((a / m) ** 2)))


class _Column:
    """The bookkeeping of one right-hand side: iterations, the last finite
    iterate, the first breakdown.  ``xp``: the namespace of the iterates
    (the curvature's)."""

    def __init__(self, xp):
        self.xp = xp
        self.iterations, self.last, self.breakdown, self.fatal = 0, None, None, False

    def callback(self, xk):
        xp = self.xp
        self.iterations += 1
        if not bool(xp.all(xp.isfinite(xk))):
            self.fatal = True
            self.breakdown = self.breakdown or f"the iterate became non-finite (inf or NaN) at iteration {self.iterations}"
            raise _Breakdown
        self.last = xp.asarray(xk, copy=True)  # SciPy's CG updates x in place


class KrylovSolver(Factorization):
    """CG or MINRES on :math:`H + εI` applied by the R-operator.

    Not a factorization: every :meth:`solve` iterates afresh, and ``logdet``
    and ``inertia`` are not available.  See the module notes for when a
    column counts as converged, the restarts, breakdowns and the scaling.

    Parameters
    ----------
    curvature : Curvature
    damping : float
    method : {"cg", "minres"}
    rtol : float, optional
        The true relative residual to reach, a real number in (0, 1).
        Default ``1e-10``, or ``100 eps`` of the working precision if that
        is larger (``1.2e-5`` in ``float32``, where ``1e-10`` is out of
        reach).
    maxiter : int, optional
        Iteration cap per column, an int ``>= 1``, restarts included
        (default ``10 P``).

    Attributes
    ----------
    iterations : list of int
        Krylov iterations used by each column of the last :meth:`solve`
        (one R-operator product each; the true-residual checks and the
        restarts' initial residuals are not counted).
    residuals : list of float
        True relative residual :math:`\\|(H + εI)x - g\\| / \\|g\\|` of each
        returned column (0 for ``g = 0``).
    converged : list of bool
        ``residuals[j] <= rtol``.
    breakdowns : list of str or None
        What broke down in each column (see the module notes), ``None`` if
        nothing did.

    Raises
    ------
    BackendNotSupportedError
        On a backend without Krylov solvers (``array_api_strict``).
    TypeError, ValueError
        For an ``rtol`` or ``maxiter`` of the wrong type or value, naming it.
    """

    def __init__(self, curvature, damping, method="cg", rtol=None, maxiter=None):
        super().__init__(curvature, damping)
        if method not in ("cg", "minres"):
            raise ValueError(f"method: expected 'cg' or 'minres', got {method!r}")
        self.method = method
        self.rtol = max(1e-10, 100 * machine_eps(self.dtype)) if rtol is None else check_rtol(rtol)
        self.maxiter = 10 * self.P if maxiter is None else check_maxiter(maxiter)
        be = self.curvature.backend
        # the backend's solver and operator, fetched now: a backend without
        # them refuses here, with its message, before any work
        self._krylov = be.krylov(method)
        be.linear_operator((self.P, self.P), self.matvec, self.dtype)
        # s: the power of two just below ε when ε > 1 (see the module notes)
        self._s_exp = _pow2_below(self.damping) if self.damping > 1 else 0
        self.iterations, self.residuals, self.converged, self.breakdowns = [], [], [], []

    # -- the scaled operator (H + εI)/s, watched ------------------------------

    def _scaled(self, v):
        """``(H + εI) v / s`` by one R-operator product."""
        return _times_pow2(rop_hvp_cached(self.curvature, v) + self.damping * v, -self._s_exp)

    def _watched(self, col):
        """The operator SciPy iterates with: :meth:`_scaled`, checking what
        comes in (a non-finite vector stops the run as a breakdown, instead
        of a complaint about an argument the user never passed) and, for CG,
        the curvature :math:`v^T A v` of every vector it multiplies."""
        be = self.curvature.backend
        xp = be.xp

        def apply(v):
            v = be.asarray(v, "the Krylov iterate", why=self._foreign())
            if v.dtype != self.dtype:
                v = xp.astype(v, self.dtype)
            if not bool(xp.all(xp.isfinite(v))):
                col.fatal = True
                col.breakdown = col.breakdown or (
                    f"a non-finite vector (inf or NaN) reached the operator at iteration {col.iterations + 1}"
                )
                raise _Breakdown
            q = self._scaled(v)
            if self.method == "cg":
                self._watch_curvature(col, v, q)
            return q

        return be.linear_operator((self.P, self.P), apply, self.dtype)

    def _watch_curvature(self, col, p, q):
        xp = self.curvature.xp
        vv = float(xp.sum(p * p))
        if vv == 0:  # CuPy's CG multiplies its zero start: no information
            return
        pq = float(xp.sum(p * q))
        if pq > 0:
            return
        # p^T (H + εI) p / p^T p, in the unscaled units
        rayleigh = math.ldexp(pq / vv, self._s_exp) if math.isfinite(pq / vv) else pq / vv
        if col.breakdown is None:
            col.breakdown = (
                f"p^T (H + damping*I) p = {rayleigh:.2e} p^T p <= 0 at iteration {col.iterations + 1}, "
                f"so H + damping*I is not positive definite (indefinite or singular), which CG requires"
            )
        if not pq < 0:  # zero or NaN: the step divides by it
            col.fatal = True
            raise _Breakdown

    # -- solving -----------------------------------------------------------------

    def _solve(self, G):
        X = self.curvature.xp.zeros_like(G)
        self.iterations, self.residuals, self.converged, self.breakdowns = [], [], [], []
        k = G.shape[1]
        for j in range(k):
            X[:, j], col, residual, stop = self._solve_column(G[:, j])
            converged = residual <= self.rtol
            self.iterations.append(col.iterations)
            self.residuals.append(residual)
            self.converged.append(converged)
            self.breakdowns.append(col.breakdown)
            if col.breakdown is not None or not converged:
                self._warn(f"column {j}: " if k > 1 else "", col, residual, converged, stop)
        return X

    def _solve_column(self, g):
        r"""Solve for one column: ``(x, bookkeeping, residual, why it stopped)``.

        Each pass solves for the correction :math:`d` of the current
        :math:`y` from the true residual, :math:`A' d = g' - A' y` (the
        first pass from :math:`y = 0`: the plain Krylov solve), to
        :math:`\|A' d - r\| \le \mathrm{rtol} \|g'\|`; the next pass is
        a restart, iterative refinement with the Krylov method inside.  A
        pass whose true residual came out above what it was asked for
        (MINRES's test is a backward error, up to :math:`κ` times looser
        than a relative residual) makes the next pass ask for that factor
        less."""
        xp = self.curvature.xp
        col = _Column(xp)
        gmax = largest(g)
        if gmax == 0:  # x = 0 exactly, residual 0
            return xp.zeros_like(g), col, 0.0, None
        g_exp = _pow2_below(gmax)
        g1 = _times_pow2(g, -g_exp)  # max |g1| in [1, 2)
        g1_norm = _norm(g1)
        op = self._watched(col)
        y, r_vec, residual, stop = xp.zeros_like(g), g1, 1.0, None
        # how much larger the true residual came out than a pass's tolerance:
        # 1 for CG up to drift; MINRES stops on ||r|| <= rtol ||A|| ||x||, up
        # to κ times looser, so the next pass asks for that much less
        looseness = 1.0
        while True:
            budget = self.maxiter - col.iterations
            if budget <= 0:
                stop = f"maxiter = {self.maxiter} reached"
                break
            start, col.last = col.iterations, None
            r_exp = _pow2_below(largest(r_vec))
            # the tolerance relative to this pass's right-hand side r that
            # means rtol relative to g'
            inner_rtol = min(0.5, self.rtol / residual / looseness)
            try:
                d, info = self._krylov(op, _times_pow2(r_vec, -r_exp), rtol=inner_rtol, maxiter=budget,
                                       callback=col.callback)
            except _Breakdown:
                d, info = col.last, None
            if d is None or not bool(xp.all(xp.isfinite(d))):
                d = col.last
            y_new = y if d is None else y + _times_pow2(d, r_exp)
            r_new = g1 - self._scaled(y_new)  # the true residual: one R-operator product
            r = _norm(r_new) / g1_norm
            looseness = max(looseness, r / residual / inner_rtol)
            # the first pass is the method's answer, whatever its residual; a
            # restart is kept only if it improved on it
            improved = r <= residual / 2
            if r < residual or start == 0:
                y, r_vec, residual = y_new, r_new, r
            if col.fatal:
                stop = "the iteration broke down"
                break
            if residual <= self.rtol:
                break
            if info is not None and info > 0:
                stop = f"maxiter = {self.maxiter} reached"
                break
            if info is not None and info < 0:
                stop = f"the solver reported a breakdown (info = {info})"
                break
            if col.iterations == start or not improved:
                stop = "stagnated: a restart from the last iterate did not halve the residual"
                break
        x = _times_pow2(y, g_exp - self._s_exp)
        check_finite(f"{self.method} solution", x, cause="the solution's entries exceed the floating-point range")
        return x, col, residual, stop

    def _warn(self, where, col, residual, converged, stop):
        hint = (
            "try method='riccati' (exact; its inertia() tells whether H + damping*I is indefinite)"
            + (" or method='minres'" if self.method == "cg" else "")
        )
        rho = f"true relative residual ||(H + damping*I) x - g|| / ||g|| = {residual:.2e}"
        its = f"after {col.iterations} iterations" + (f" ({stop})" if stop else "")
        if col.breakdown is not None:
            outcome = (
                f"{its} the {rho} <= rtol = {self.rtol:g} anyway, but {self.method} has no guarantee here"
                if converged
                else f"not converged: {rho} > rtol = {self.rtol:g} {its}"
            )
            msg = f"{self.method}: {where}breakdown: {col.breakdown}; {outcome}; {hint}"
            category = KrylovBreakdownWarning
        else:
            msg = (
                f"{self.method}: {where}not converged: {rho} > rtol = {self.rtol:g} {its}; "
                f"H + damping*I is probably near-singular{' or indefinite' if self.method == 'cg' else ''}; {hint}"
            )
            category = KrylovConvergenceWarning
        # warn -> _warn -> _solve -> Factorization.solve -> the caller
        warnings.warn(msg, category, stacklevel=4)
