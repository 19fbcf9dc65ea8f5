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

Every route computes with the active array backend
(:mod:`hessinv_ref.backend`) in the working precision of its
:class:`~hessinv_ref.curvature.Curvature` (``curvature.dtype``, ``float64``
or ``float32``): right-hand sides must be in it (integer ones are cast),
and results come back in it, on the device of the inputs.

Numerical honesty
-----------------
Each structured route factors a sequence of small *pivot blocks* (Schur
complements).  For each pivot block the reciprocal condition number
``rcond`` (LAPACK's 1-norm estimate on NumPy, the exact 1-norm value
elsewhere) is checked by one rule:

* ``rcond < n · eps`` (``n`` the block size, ``eps`` the machine epsilon
  of the working precision: ``2.2e-16`` in ``float64``, ``1.2e-7`` in
  ``float32``): the pivot is numerically singular and :class:`SingularPivotError` is
  raised, naming the layer and the condition estimate;
* ``rcond < sqrt(eps)``: the solve goes on, but more than half the digits
  may be lost, so :class:`IllConditionedPivotWarning` is issued.

No route returns a result computed through a singular pivot.
"""

from __future__ import annotations

import math
import numbers
import warnings

# The exception base class only: LinAlgError is what NumPy, SciPy, CuPy and
# array-api-strict raise for linear-algebra failures, so callers can catch
# every backend's failures and ours with one class.  No array math here.
from numpy.linalg import LinAlgError

from .backend import get_backend, xp
from .backend.constants import EPS, machine_eps  # EPS: still importable from here

__all__ = [
    "Factorization",
    "SingularPivotError",
    "IllConditionedPivotWarning",
    "check_pivot",
    "check_damping",
    "slogdet_of_blocks",
]

class SingularPivotError(LinAlgError):
    """A pivot block of a structured factorization is numerically singular.

    Attributes
    ----------
    method : str
        The route that failed (``"riccati"``, ``"ldu"``, ``"banded"``, ``"dense"``).
    layer : int or None
        The layer ``l`` (1-based) whose pivot failed, ``None`` for a route
        without layers (``"dense"``, ``"banded"``).
    rcond : float
        Estimated reciprocal condition number of the pivot (0 when exactly
        singular).

    A typical cause is ``damping=0`` with a softmax head that has a bias:
    adding a constant to every class's bias leaves the loss unchanged, so
    ``H`` has a null space.
    """

    def __init__(self, method, layer, rcond, detail=""):
        self.method, self.layer, self.rcond = method, layer, float(rcond)
        where = f"layer {layer}" if layer is not None else "the matrix"
        cond = "inf" if rcond == 0 else f"{1.0 / rcond:.3g}"
        msg = (
            f"{method}: the pivot of {where} is numerically singular "
            f"(condition estimate {cond}); H + damping*I is singular or this "
            f"route cannot factor it without pivoting"
        )
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class IllConditionedPivotWarning(RuntimeWarning):
    """A pivot block's condition number exceeds ``1/sqrt(eps)``; the solve may
    have lost more than half its digits.  Check
    :meth:`Factorization.backward_error`."""


def check_pivot(method, layer, rcond, n, dtype=None):
    """Apply the module's rule to one pivot block of size ``n``.

    Parameters
    ----------
    method : str
        The route, for the messages.
    layer : int or None
        The layer ``l`` (1-based), ``None`` for a whole-matrix pivot.
    rcond : float
        The pivot's reciprocal condition estimate.
    n : int
        The pivot's size.
    dtype : dtype, optional
        The precision the pivot was factored in; its machine epsilon sets
        the thresholds (``n * eps`` and ``sqrt(eps)``).  Default
        ``float64``.

    Raises :class:`SingularPivotError` or warns
    :class:`IllConditionedPivotWarning`; returns ``rcond`` (a float).
    """
    eps = machine_eps(dtype)
    rcond = float(rcond)
    # math.isfinite on a Python float: this runs once per layer on a scalar
    if not math.isfinite(rcond) or rcond < n * eps:
        raise SingularPivotError(method, layer, rcond if math.isfinite(rcond) else 0.0)
    if rcond < math.sqrt(eps):
        where = f"layer {layer}" if layer is not None else "the matrix"
        warnings.warn(
            f"{method}: the pivot of {where} has condition estimate "
            f"{1.0 / rcond:.3g}; the solution may have lost more than half "
            f"its digits (see backward_error)",
            IllConditionedPivotWarning,
            stacklevel=3,
        )
    return rcond


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


def check_damping(damping):
    """Validate ``ε``: a finite real number ``>= 0``; returns it as a float."""
    # numbers.Real covers int, float and NumPy's scalar types; not bool, not arrays
    if isinstance(damping, bool) or not isinstance(damping, numbers.Real):
        raise TypeError(f"damping: expected a real number >= 0, got {type(damping).__name__}")
    damping = float(damping)
    if not math.isfinite(damping) or damping < 0:
        raise ValueError(f"damping: expected a finite number >= 0, got {damping}")
    return damping


class Factorization:
    """Base class: a factorization of :math:`H + εI` at one point.

    Subclasses implement :meth:`_solve` (on a validated (P, k) array) and,
    where they can, :meth:`logdet` and :meth:`inertia`.

    Parameters
    ----------
    curvature : Curvature
        The point; its cached blocks and R-operator are used.
    damping : float
        :math:`ε \\ge 0`.

    Attributes
    ----------
    dtype : dtype
        The working precision, ``curvature.dtype``: right-hand sides must
        be in it (or integer) and every result is in it.
    """

    method = None

    def __init__(self, curvature, damping):
        self.curvature = curvature
        self.damping = check_damping(damping)
        self.P = curvature.P
        self.dtype = curvature.dtype
        self._riccati = None
        self.pivot_rconds = []

    @property
    def pivot_condition(self):
        r"""The largest condition estimate :math:`κ_1` over the pivot blocks.

        What a pivot means depends on the route: a Riccati
        :math:`Q_{xx}^{(l)}` (``riccati``), a Schur complement :math:`S_l` of
        :math:`K'` (``ldu``), the whole :math:`K'` (``banded``) or the whole
        :math:`H + εI` (``dense``), so values are comparable only within a
        route.  For ``ldu`` and ``banded`` the forward error stays within about
        :math:`16\, ε_{mach} \max(κ(H + εI), c)` in the
        test suite, with :math:`c` this ``pivot_condition``.  For ``riccati``
        on an indefinite :math:`H + εI` the
        pivots' conditions are not the whole story: a pivot much *smaller*
        than :math:`\|H + εI\|` makes large gains :math:`K_l`, and the
        tests bound that case with the element growth :math:`\max_l \|K_l\|`
        as well.  A positive definite :math:`H + εI` has Riccati pivots that
        are Schur complements of it, never worse conditioned than it.
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
            Right-hand side(s) ``g``, an array of the active backend (or a
            list); not modified.  Integer arrays are cast to :attr:`dtype`;
            a floating array of another precision raises ``TypeError``
            (see :meth:`~hessinv_ref.network.Network.check_vector`).

        Returns
        -------
        array, same shape as ``rhs``, of :attr:`dtype`
        """
        g = self._check_vector("rhs", rhs)
        # a private copy: no route may write into the caller's array
        G = xp.asarray(xp.reshape(g, (self.P, -1)), copy=True)
        X = self._solve(G)
        return xp.reshape(X, g.shape)

    def _check_vector(self, name, v):
        """``v`` validated by the network ((P,) or (P, k), real, finite) and
        in the working precision."""
        return self.curvature.net.check_vector(name, v, dtype=self.dtype)

    def _solve(self, G):
        raise NotImplementedError

    def matvec(self, x):
        r""":math:`(H + εI) x` by the R-operator, ``x`` of shape (P,) or (P, k)."""
        x = get_backend().asarray(x, "x")
        return self.curvature.hvp(x) + self.damping * x

    # -- accuracy -------------------------------------------------------------

    def norm_estimate(self):
        r"""An estimate of :math:`\|H + εI\|_1`; see
        :meth:`~hessinv_ref.curvature.Curvature.norm_estimate` (cached there,
        so routes compared at one point share it)."""
        return self.curvature.norm_estimate(self.damping)

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
        from .solvers.riccati import RiccatiFactorization

        if self._riccati is None:
            try:
                self._riccati = RiccatiFactorization(self.curvature, self.damping)
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

        SciPy's on NumPy, ``cupyx.scipy.sparse.linalg``'s on CuPy; other
        backends have none and raise
        :class:`~hessinv_ref.backend.BackendNotSupportedError` (call
        :meth:`solve` directly there).
        """
        return get_backend().linear_operator((self.P, self.P), self.solve, self.dtype)
