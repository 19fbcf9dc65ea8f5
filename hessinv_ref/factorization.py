r"""The common result of every inverse route: a factorization of :math:`H + εI`.

A :class:`Factorization` is made once per damping ``ε`` from a
:class:`~hessinv_ref.curvature.Curvature` (whose per-layer blocks are computed
once per point) and then answers, without refactoring:

* :meth:`~Factorization.solve`: :math:`(H + εI)^{-1} g` for ``g`` of shape
  (P,) or (P, k);
* :meth:`~Factorization.logdet`: ``(sign, log|det(H + εI)|)``;
* :meth:`~Factorization.inertia`: ``(n_pos, n_neg, n_zero)`` eigenvalue counts;
* :meth:`~Factorization.backward_error`: the normwise backward error of a
  computed solution, with the residual from the R-operator;
* :meth:`~Factorization.as_operator`: a ``LinearOperator`` for
  :math:`(H + εI)^{-1}` (SciPy's on NumPy, ``cupyx``'s on CuPy).

Every route computes on the array backend of its
:class:`~hessinv_ref.curvature.Curvature` (``curvature.backend`` and
``curvature.xp``, the backend active when the curvature was built; see
:mod:`hessinv_ref.backend`), in its working precision (``curvature.dtype``,
``float64`` or ``float32``): right-hand sides must belong to that backend
and be in that precision (integer ones are cast), and results come back in
it, on the device of the inputs.

Numerical honesty: the pivot rule
---------------------------------
Each exact route eliminates by dividing by *pivots*: the Riccati
:math:`Q_{xx}^{(l)}` (symmetric Schur complements of :math:`H + εI`), the
Schur complements :math:`S_l` of the lifted :math:`K'` (``ldu``), the whole
:math:`K'` (``banded``), or :math:`H + εI` itself (``dense``).  Each pivot's
reciprocal condition number ``rcond`` (1-norm; LAPACK's estimate on NumPy,
the exact value elsewhere) is judged in the units that govern the route's
rounding:

* The pivots of :math:`K'` are *equilibrated* first: their rows, then their
  columns, are scaled by powers of two so that each has largest entry about
  1 (the rule of LAPACK's ``?geequb``), and the scaled matrix is the one
  factored.  :math:`K'` holds :math:`H_{xx} + εI` next to Jacobian blocks and
  identities of order one, so unscaled its condition grows like ``ε`` even
  when :math:`H + εI` has condition 1 (the case of a Levenberg-Marquardt or
  trust-region loop that raises ``ε``); scaled, it stays near the condition
  of the problem.  The Riccati and dense pivots are symmetric Schur
  complements of :math:`H + εI`, or the matrix itself, and are judged as
  they are.
* ``rcond < eps``, with ``eps`` the machine epsilon of the working precision
  (``2.2e-16`` in ``float64``, ``1.2e-7`` in ``float32``): the pivot is
  singular to working precision (LAPACK's rule in ``?gesvx``), and the
  elimination stops.  The threshold depends neither on the pivot's size nor
  on the size of the system.
* ``rcond < sqrt(eps)``: the solve goes on, but more than half the digits
  may be lost, so :class:`IllConditionedPivotWarning` is issued.  For
  ``banded``, whose one pivot is the whole lifted :math:`\tilde K`, an
  estimate past ``sqrt(eps)`` is first replaced by the condition of
  :math:`H + εI` itself (:meth:`Factorization.condition_estimate` with the
  route's own solves): on deep chains :math:`\tilde K` is worse conditioned
  than the matrix by the growth of the Jacobian products, and it is the
  matrix's condition that bounds the error of ``x``
  (:mod:`hessinv_ref.solvers.banded`).

A singular pivot says that the *route* cannot go on, not yet that
:math:`H + εI` is singular: an elimination without pivoting across layers
(``riccati``, ``ldu``) can meet a singular pivot on a perfectly nonsingular
indefinite matrix, and ``banded`` on a deep chain whose Jacobian products
grow.  So before raising, the factorization judges the matrix itself (this
costs nothing unless a pivot fails):

* ``dense``: its pivot is :math:`H + εI`; the verdict is immediate.
* otherwise the other exact routes are tried in turn (``banded`` where the
  backend has it, ``riccati``, ``ldu``, and last ``dense`` when
  :math:`P \le` :data:`DENSE_JUDGE_MAX_P`).  The first that factors
  estimates :math:`κ_1(H + εI)` (:meth:`Factorization.condition_estimate`).
  If :math:`κ_1 \ge 1/\mathrm{eps}` the matrix is numerically singular
  (``cause="matrix"``: no exact route can solve it at this precision; raise
  the damping).  Otherwise this route's elimination broke down on a
  nonsingular matrix (``cause="route"``), and the message names the route
  that factored it.  A failing ``dense`` is itself the verdict "matrix".
  If no other route factors and ``P`` is too large for ``dense``, the cause
  is left open (``cause=None``) and the message says so.

:class:`SingularPivotError` carries the verdict (``cause``,
``matrix_rcond``, ``judged_by``, ``alternative``).  No route returns a
result computed through a singular pivot.  A damping that the working
precision cannot represent (``ε`` above ``3.4e38`` in ``float32``) is a
``ValueError``.
"""

from __future__ import annotations

import math
import warnings

# The exception base class only: LinAlgError is what NumPy, SciPy, CuPy and
# array-api-strict raise for linear-algebra failures, so callers can catch
# every backend's failures and ours with one class.  No array math here.
from numpy.linalg import LinAlgError

from .backend import BackendNotSupportedError, check_dtype, namespace_of
from .backend.constants import EPS, float_info, machine_eps  # EPS: still importable from here
from .finite import check_damping  # still importable from here
from .rop import norm_estimate, rop_hvp_cached

__all__ = [
    "Factorization",
    "SingularPivotError",
    "IllConditionedPivotWarning",
    "check_pivot",
    "check_damping",
    "equilibrate",
    "power_of_two_reciprocal",
    "judge_breakdown",
    "ROUTES",
    "DENSE_JUDGE_MAX_P",
    "slogdet_of_blocks",
]

DENSE_JUDGE_MAX_P = 2000
"""Largest ``P`` for which a failed route's diagnosis may factor the dense
:math:`H + εI` (when no structured route factors it): a few seconds and
``32 P^2`` bytes at this size."""


def _precision(dtype):
    """``"float64"``/``"float32"`` for the messages (any backend's dtype)."""
    try:
        return check_dtype(dtype)
    except ValueError:
        return str(dtype)


class SingularPivotError(LinAlgError):
    """A pivot of a factorization is singular to working precision.

    The message says whose fault it is (see the module notes on the rule):

    * ``cause="matrix"``: :math:`H + εI` itself is numerically singular at
      the working precision; no exact route can solve it; raise the damping.
      A typical case is ``damping=0`` with a softmax head that has a bias:
      adding a constant to every class's bias leaves the loss unchanged, so
      ``H`` has a null space.
    * ``cause="route"``: the matrix is not singular, but this route's
      elimination met a singular pivot; ``alternative`` names a route that
      factored the same matrix.
    * ``cause=None``: not judged (a factorization built with
      ``diagnose=False``, or no other route could judge).

    Attributes
    ----------
    method : str
        The route that failed (``"riccati"``, ``"ldu"``, ``"banded"``, ``"dense"``).
    layer : int or None
        The layer ``l`` (1-based) whose pivot failed, ``None`` for a route
        without layers (``"dense"``, ``"banded"``).
    rcond : float
        Reciprocal condition estimate of the failed pivot (0 when exactly
        singular).
    cause : {"matrix", "route", None}
    matrix_rcond : float or None
        Reciprocal 1-norm condition estimate of :math:`H + εI`, from the
        route ``judged_by``.
    judged_by : str or None
        The route whose factorization judged the matrix.
    alternative : str or None
        With ``cause="route"``: the route to use instead.
    precision : str or None
        The working precision, ``"float64"`` or ``"float32"``.
    """

    def __init__(self, method, layer, rcond, detail="", *, cause=None, matrix_rcond=None,
                 judged_by=None, alternative=None, precision=None):
        if cause not in ("matrix", "route", None):
            raise ValueError(f"cause: expected 'matrix', 'route' or None, got {cause!r}")
        self.method, self.layer, self.rcond = method, layer, float(rcond)
        self.detail, self.cause = detail, cause
        self.matrix_rcond = None if matrix_rcond is None else float(matrix_rcond)
        self.judged_by, self.alternative, self.precision = judged_by, alternative, precision
        super().__init__(self._message())

    def _message(self):
        where = f"layer {self.layer}" if self.layer is not None else "the matrix"
        prec = f" in {self.precision}" if self.precision else ""
        if self.cause == "matrix" and self.judged_by == self.method:  # dense: the pivot is the matrix
            msg = (f"{self.method}: H + damping*I itself is numerically singular{prec} (condition "
                   f"estimate {_cond(self.rcond)}): no exact route can solve it; raise the damping")
            return msg + (" or work in float64" if self.precision == "float32" else "")
        msg = f"{self.method}: the pivot of {where} is singular{prec} (condition estimate {_cond(self.rcond)})"
        if self.cause == "matrix":
            msg += (
                f"; H + damping*I itself is numerically singular at this precision (condition "
                f"estimate {_cond(self.matrix_rcond)}, from method={self.judged_by!r}): no exact route "
                f"can solve it; raise the damping"
            )
            if self.precision == "float32":
                msg += " or work in float64"
        elif self.cause == "route":
            msg += (
                f"; H + damping*I is not singular (condition estimate {_cond(self.matrix_rcond)}, "
                f"from method={self.judged_by!r}): this route's elimination broke down; "
                f"use method={self.alternative!r}"
            )
        else:
            msg += "; H + damping*I is singular or this route cannot factor it"
        if self.detail:
            msg += f" ({self.detail})"
        return msg


def _cond(rcond):
    """``1/rcond`` for a message (``inf`` for 0)."""
    return "inf" if not rcond else f"{1.0 / rcond:.3g}"


class IllConditionedPivotWarning(RuntimeWarning):
    """A pivot's condition number exceeds ``1/sqrt(eps)``; the solve may
    have lost more than half its digits.  Check
    :meth:`Factorization.backward_error`."""


def check_pivot(method, layer, rcond, n=None, dtype=None):
    """Apply the module's rule to one pivot.

    Parameters
    ----------
    method : str
        The route, for the messages.
    layer : int or None
        The layer ``l`` (1-based), ``None`` for a whole-matrix pivot.
    rcond : float
        The pivot's reciprocal condition estimate (of the equilibrated pivot
        for the routes on :math:`K'`).
    n : int, optional
        The pivot's size, named in the warning; the thresholds do not depend
        on it.
    dtype : dtype, optional
        The precision the pivot was factored in; its machine epsilon sets
        the thresholds (``eps`` and ``sqrt(eps)``).  Default ``float64``.

    Raises :class:`SingularPivotError` (``cause=None``: the factorization
    judges the matrix before the error reaches the caller) or warns
    :class:`IllConditionedPivotWarning`; returns ``rcond`` (a float).
    """
    eps = machine_eps(dtype)
    rcond = float(rcond)
    # math.isfinite on a Python float: this runs once per layer on a scalar
    if not math.isfinite(rcond) or rcond < eps:
        # the precision's name only for the message: naming it costs more
        # than the check, and the check runs once per pivot
        prec = None if dtype is None else _precision(dtype)
        raise SingularPivotError(method, layer, rcond if math.isfinite(rcond) else 0.0, precision=prec)
    if rcond < math.sqrt(eps):
        where = f"layer {layer}" if layer is not None else "the matrix"
        size = "" if n is None else f" ({n} x {n})"
        warnings.warn(
            f"{method}: the pivot of {where}{size} has condition estimate "
            f"{1.0 / rcond:.3g} > 1/sqrt(eps) = {1 / math.sqrt(eps):.3g}; the solution may "
            f"have lost more than half its digits (see backward_error)",
            IllConditionedPivotWarning,
            stacklevel=3,
        )
    return rcond


def equilibrate(A):
    r"""Row and column scalings of ``A`` by powers of two: ``(r, c)`` with
    :math:`\max_j |r_i A_{ij}| \in [2^{-1/2}, 2^{1/2})` for every nonzero row,
    then the same for the columns of :math:`\mathrm{diag}(r) A`.

    Parameters
    ----------
    A : array, shape (m, n)
        Of any backend (computed in its namespace); not modified.

    Returns
    -------
    r : array, shape (m,)
    c : array, shape (n,)
        Powers of two (so scaling is exact), 1 for a zero row or column, in
        ``A``'s dtype.  The equilibrated matrix is
        ``r[:, None] * A * c[None, :]``.
    """
    xp = namespace_of(A).xp
    absA = xp.abs(A)
    r = power_of_two_reciprocal(xp.max(absA, axis=1))
    c = power_of_two_reciprocal(xp.max(absA * r[:, None], axis=0))
    return r, c


def power_of_two_reciprocal(m):
    r""":math:`2^{-\mathrm{round}(\log_2 m)}` elementwise: the exact scaling
    that brings a row or column whose largest entry is ``m`` to about 1.  It
    is 1 where ``m`` is 0 or not finite, and its exponent is clipped so that
    it stays a normal number of ``m``'s dtype."""
    xp = namespace_of(m).xp
    ok = (m > 0) & xp.isfinite(m)
    one = xp.ones_like(m)
    limit = float(math.floor(math.log2(float(float_info(m.dtype).max))) - 1)  # 1022 or 126
    e = xp.clip(xp.round(xp.log2(xp.where(ok, m, one))), min=-limit, max=limit)
    return xp.where(ok, 2.0 ** (-e), one)


def _judges(method, P):
    """The routes that may judge ``H + εI`` after ``method`` failed, in
    order: the structured ones first (linear in depth), the dense oracle
    last and only for small ``P``."""
    order = [m for m in ("banded", "riccati", "ldu") if m != method and m in ROUTES]
    if P <= DENSE_JUDGE_MAX_P and "dense" in ROUTES:
        order.append("dense")
    return order


ROUTES = {}
"""The exact routes by name, ``{"banded": BandedFactorization, ...}``: each
subclass of :class:`Factorization` with a ``method`` enters itself here
when its module is imported (``__init_subclass__``), so the base class can
ask another route for a verdict without importing the routes, which import
it.  The route registry (:mod:`hessinv_ref.solvers.registry`) is this table
plus the Krylov baselines."""


def _route_class(method):
    return ROUTES[method]


def judge_breakdown(fact, err):
    """The :class:`SingularPivotError` to raise for ``err``, a singular pivot
    met by the factorization ``fact``, with the verdict of the module's rule:
    is :math:`H + εI` numerically singular, or did the route break down?"""
    curv, damping = fact.curvature, fact.damping
    eps = machine_eps(fact.dtype)
    same = dict(precision=_precision(fact.dtype))

    def error(**verdict):
        return SingularPivotError(err.method, err.layer, err.rcond, err.detail, **same, **verdict)

    if fact.method == "dense":
        return error(cause="matrix", matrix_rcond=err.rcond, judged_by="dense")
    tried = []
    for method in _judges(fact.method, fact.P):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", IllConditionedPivotWarning)
                judge = _route_class(method)(curv, damping, diagnose=False)
                rcond = 1.0 / judge.condition_estimate()
        except BackendNotSupportedError:  # banded off NumPy
            continue
        except SingularPivotError as other:
            if method == "dense":  # the dense LU of H + εI failed: that is the verdict
                return error(cause="matrix", matrix_rcond=other.rcond, judged_by="dense")
            tried.append(method)
            continue
        if rcond < eps:
            return error(cause="matrix", matrix_rcond=rcond, judged_by=method)
        return error(cause="route", matrix_rcond=rcond, judged_by=method, alternative=method)
    detail = err.detail + "; " if err.detail else ""
    detail += (
        f"{', '.join(tried) or 'no other route'} broke down as well, and P = {fact.P} is above the "
        f"dense check's limit {DENSE_JUDGE_MAX_P}: H + damping*I is probably numerically singular"
    )
    return SingularPivotError(err.method, err.layer, err.rcond, detail, **same)


def slogdet_of_blocks(slogdets):
    r"""``(sign, log|det|)`` of a matrix factored as unit triangular times
    ``blockdiag(B_l)`` times unit triangular (block LDU, or the Riccati
    congruence), from the ``(sign, log|det B_l|)`` pairs of its pivots:
    :math:`\det = \prod_l \det B_l`, so the signs multiply and the logs add."""
    sign, logabs = 1.0, 0.0
    for s, la in slogdets:
        sign *= s
        logabs += la
    return float(sign), float(logabs)


class Factorization:
    """Base class: a factorization of :math:`H + εI` at one point.

    Subclasses implement :meth:`_factor` (called by the constructor),
    :meth:`_solve` (on a validated (P, k) array) and, where they can,
    :meth:`logdet` and :meth:`inertia`.

    Parameters
    ----------
    curvature : Curvature
        The point; its cached blocks and R-operator are used.
    damping : float
        :math:`ε \\ge 0`, representable in the working precision.
    diagnose : bool
        When a pivot is singular, judge whether :math:`H + εI` or the route
        is at fault before raising (the module notes); default ``True``.
        ``False`` raises at once with ``cause=None`` (used by the judges
        themselves).

    Raises
    ------
    SingularPivotError
        A pivot is singular to working precision; the message says whether
        the matrix is singular or the route broke down, and then which
        route to use.
    ValueError
        ``damping`` is negative, not finite, or above the largest number of
        the working precision.

    Attributes
    ----------
    dtype : dtype
        The working precision, ``curvature.dtype``: right-hand sides must
        be in it (or integer) and every result is in it.
    """

    method = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # an exact route declares its name; the Krylov solver's is per instance
        if isinstance(cls.__dict__.get("method"), str):
            ROUTES[cls.method] = cls

    def __init__(self, curvature, damping, *, diagnose=True):
        self.curvature = curvature
        self.damping = check_damping(damping)
        self.P = curvature.P
        self.dtype = curvature.dtype
        self._check_representable()
        self._riccati = None
        self.pivot_rconds = []
        try:
            self._factor()
        except SingularPivotError as err:
            if not diagnose or err.cause is not None:
                raise
            # the verdict replaces the bare pivot failure (same layer, same rcond)
            raise judge_breakdown(self, err) from None

    def _factor(self):
        """Factor :math:`H + εI`; each route's own (none for the Krylov
        solvers, which factor nothing).  A singular pivot raises
        :class:`SingularPivotError` from :func:`check_pivot`; the
        constructor then judges the matrix (:func:`judge_breakdown`)."""

    def _check_representable(self):
        """``ε`` must be a finite number of the working precision: ``1e300``
        is one in ``float64``, not in ``float32``."""
        largest = float(float_info(self.dtype).max)
        if self.damping > largest:
            raise ValueError(
                f"damping: expected at most {largest:.3g}, the largest {_precision(self.dtype)} "
                f"(the working precision), got {self.damping:g}"
            )

    @property
    def pivot_condition(self):
        r"""The largest condition estimate :math:`κ_1` over the pivots.

        What a pivot means depends on the route: a Riccati
        :math:`Q_{xx}^{(l)}` (``riccati``), an equilibrated Schur complement
        :math:`S_l` of :math:`K'` (``ldu``), the whole equilibrated :math:`K'`
        (``banded``) or the whole :math:`H + εI` (``dense``), so values are
        comparable only within a route.  For ``ldu`` and ``banded`` the
        forward error stays within about 16 eps times the larger of
        :math:`κ(H + εI)` and pivot_condition in the test suite.  For
        ``riccati`` on an indefinite :math:`H + εI` the pivots' conditions
        are not the whole story: a pivot much *smaller* than
        :math:`\|H + εI\|` makes large gains :math:`K_l`, and the tests bound
        that case with the element growth :math:`\max_l \|K_l\|` as well.  A
        positive definite :math:`H + εI` has Riccati pivots that are Schur
        complements of it, never worse conditioned than it.  The condition of
        :math:`H + εI` itself is :meth:`condition_estimate`.
        """
        if not self.pivot_rconds:
            raise NotImplementedError(f"{self.method}: this route has no pivots")
        return float(1.0 / min(self.pivot_rconds))

    def __repr__(self):
        return f"<{type(self).__name__} method={self.method!r} damping={self.damping:g} P={self.P}>"

    # -- solving ------------------------------------------------------------

    def solve(self, rhs):
        r"""Solve :math:`(H + εI)\, x = g`.

        Parameters
        ----------
        rhs : array, shape (P,) or (P, k)
            Right-hand side(s) ``g``, an array of the curvature's backend (or
            a list); not modified.  Integer arrays are cast to :attr:`dtype`;
            a floating array of another precision raises ``TypeError``
            (see :meth:`~hessinv_ref.network.Network.check_vector`).

        Returns
        -------
        array, same shape as ``rhs``, of :attr:`dtype`
        """
        g = self._check_vector("rhs", rhs)
        xp = self.curvature.xp
        # a private copy: no route may write into the caller's array
        G = xp.asarray(xp.reshape(g, (self.P, -1)), copy=True)
        X = self._solve(G)
        return xp.reshape(X, g.shape)

    def _check_vector(self, name, v):
        """``v`` validated by the network ((P,) or (P, k), real, finite), of
        the curvature's backend and in the working precision."""
        curv = self.curvature
        return curv.net.check_vector(name, v, dtype=self.dtype, backend=curv.backend)

    def _solve(self, G):
        raise NotImplementedError

    def _foreign(self):
        """Why a vector must belong to the curvature's backend (for
        :meth:`~hessinv_ref.backend.Backend.asarray`'s message)."""
        return f"the point it goes with was built on the {self.curvature.backend.name!r} backend"

    def matvec(self, x):
        r""":math:`(H + εI) x` by the R-operator, ``x`` of shape (P,) or (P, k)."""
        x = self.curvature.backend.asarray(x, "x", why=self._foreign())
        return rop_hvp_cached(self.curvature, x) + self.damping * x

    # -- accuracy -------------------------------------------------------------

    def norm_estimate(self):
        r"""An estimate of :math:`\|H + εI\|_1`; see
        :meth:`~hessinv_ref.curvature.Curvature.norm_estimate` (cached there,
        so routes compared at one point share it)."""
        return norm_estimate(self.curvature, self.damping)

    def condition_estimate(self):
        r"""An estimate of :math:`κ_1(H + εI) = \|H + εI\|_1 \|(H + εI)^{-1}\|_1`.

        :math:`\|H + εI\|_1` is :meth:`norm_estimate` (R-operator products,
        cached per damping); :math:`\|(H + εI)^{-1}\|_1` is the same
        estimator (the backend's ``onenormest``: SciPy's block estimator on
        NumPy, Hager's algorithm elsewhere) driven by this factorization's
        solves, since :math:`(H + εI)^{-1}` is symmetric.  About ten
        products and solves, each linear in depth; the estimate is as good as
        the solves are (see :attr:`pivot_condition`).  This is the number the
        pivot rule calls numerically singular when it reaches ``1/eps``.

        Returns
        -------
        float
            ``inf`` when the inverse's estimate is not finite.
        """
        be, why = self.curvature.backend, self._foreign()

        def solve(v):
            # SciPy's estimator hands over float64 vectors: take them to the working dtype
            v = be.asarray(v, "v", why=why)
            return self.solve(v if v.dtype == self.dtype else be.xp.astype(v, self.dtype))

        # (not Hager's one-vector start alone: its start, the constant vector,
        # can lie in a null direction of H, e.g. a softmax head's)
        inv_norm = float(be.onenormest(solve, self.P, self.dtype))
        kappa = self.norm_estimate() * inv_norm
        return kappa if math.isfinite(kappa) else math.inf

    def backward_error(self, x, rhs):
        r"""Normwise backward error of a computed solution ``x`` of
        :math:`(H + εI) x = g`:

        .. math::

            η(x) = \frac{\|(H + εI) x - g\|_1}{\|H + εI\|_1 \|x\|_1 + \|g\|_1},

        the smallest relative perturbation of ``H + εI`` and ``g`` for which
        ``x`` is exact (Rigal and Gaches, 1967).  The residual costs one
        R-operator product per column; the norm is estimated once.  For
        ``(P, k)`` inputs the largest over columns is returned.

        Returns
        -------
        float
        """
        x = self._check_vector("x", x)
        g = self._check_vector("rhs", rhs)
        if x.shape != g.shape:
            raise ValueError(f"x: expected the shape of rhs {g.shape}, got {x.shape}")
        xp = self.curvature.xp
        Xm, Gm = xp.reshape(x, (self.P, -1)), xp.reshape(g, (self.P, -1))
        R = self.matvec(Xm) - Gm
        num = xp.sum(xp.abs(R), axis=0)
        den = self.norm_estimate() * xp.sum(xp.abs(Xm), axis=0) + xp.sum(xp.abs(Gm), axis=0)
        # x = 0 and g = 0 is an exact solution (η = 0); divide by a safe
        # denominator there instead of dividing by zero and masking the result
        positive = den > 0
        eta = xp.where(positive, num / xp.where(positive, den, xp.ones_like(den)), xp.zeros_like(num))
        return float(xp.max(eta))

    # -- determinants and inertia ---------------------------------------------

    def logdet(self):
        """``(sign, log|det(H + εI)|)`` as Python floats, as :func:`numpy.linalg.slogdet`."""
        raise NotImplementedError(f"{self.method}: logdet is not available on this route")

    def inertia(self):
        """``(n_pos, n_neg, n_zero)``: counts of positive, negative and zero
        eigenvalues of :math:`H + εI`."""
        raise NotImplementedError(f"{self.method}: inertia is not available on this route")

    def _inertia_from_riccati(self):
        """Inertia for the routes whose factors do not carry it (``banded``,
        ``ldu``: LU of the non-symmetric :math:`K'`): from the pivots of a
        Riccati factorization of the same point, built once."""
        if self._riccati is None:
            try:
                self._riccati = ROUTES["riccati"](self.curvature, self.damping, diagnose=False)
            except SingularPivotError as err:
                raise SingularPivotError(
                    f"{self.method}.inertia (from the riccati pivots)",
                    err.layer,
                    err.rcond,
                    "this route factored H + damping*I, but the Riccati pivots that give "
                    "its inertia broke down; method='dense' gives it from the eigenvalues",
                ) from err
        return self._riccati.inertia()

    @property
    def is_positive_definite(self):
        """Whether :math:`H + εI \\succ 0` (from :meth:`inertia`)."""
        n_pos, n_neg, n_zero = self.inertia()
        return n_neg == 0 and n_zero == 0

    # -- as an operator -----------------------------------------------------------

    def as_operator(self):
        r"""A ``LinearOperator`` applying :math:`(H + εI)^{-1}` (symmetric, so
        ``rmatvec`` is the same solve), of :attr:`dtype`.

        SciPy's on NumPy, ``cupyx.scipy.sparse.linalg``'s on CuPy (the
        curvature's backend decides); other backends have none and raise
        :class:`~hessinv_ref.backend.BackendNotSupportedError` (call
        :meth:`solve` directly there).
        """
        return self.curvature.backend.linear_operator((self.P, self.P), self.solve, self.dtype)
