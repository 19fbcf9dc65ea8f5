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
* :meth:`~Factorization.as_operator`: a ``scipy.sparse.linalg.LinearOperator``
  for :math:`(H + εI)^{-1}`.

Numerical honesty
-----------------
Each structured route factors a sequence of small *pivot blocks* (Schur
complements).  For each pivot block the reciprocal condition number
``rcond`` (LAPACK's 1-norm estimate, or the exact ratio of extreme
eigenvalue magnitudes for symmetric eigen-pivots) is checked by one rule:

* ``rcond < n · eps`` (``n`` the block size, ``eps`` the machine epsilon):
  the pivot is numerically singular and :class:`SingularPivotError` is
  raised, naming the layer and the condition estimate;
* ``rcond < sqrt(eps)``: the solve goes on, but more than half the digits
  may be lost, so :class:`IllConditionedPivotWarning` is issued.

No route returns a result computed through a singular pivot.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse.linalg as spla

__all__ = [
    "Factorization",
    "SingularPivotError",
    "IllConditionedPivotWarning",
    "check_pivot",
    "check_damping",
]

EPS = np.finfo(np.float64).eps
_SQRT_EPS = math.sqrt(EPS)


class SingularPivotError(np.linalg.LinAlgError):
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


def check_pivot(method, layer, rcond, n):
    """Apply the module's rule to one pivot block of size ``n``.

    Raises :class:`SingularPivotError` or warns
    :class:`IllConditionedPivotWarning`; returns ``rcond``.
    """
    # math.isfinite, not np.isfinite: this runs once per layer on a scalar
    if not math.isfinite(rcond) or rcond < n * EPS:
        raise SingularPivotError(method, layer, rcond if math.isfinite(rcond) else 0.0)
    if rcond < _SQRT_EPS:
        where = f"layer {layer}" if layer is not None else "the matrix"
        warnings.warn(
            f"{method}: the pivot of {where} has condition estimate "
            f"{1.0 / rcond:.3g}; the solution may have lost more than half "
            f"its digits (see backward_error)",
            IllConditionedPivotWarning,
            stacklevel=3,
        )
    return rcond


def check_damping(damping):
    """Validate ``ε``: a finite real number ``>= 0``; returns it as a float."""
    if isinstance(damping, bool) or not isinstance(damping, (int, float, np.integer, np.floating)):
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
    """

    method = None

    def __init__(self, curvature, damping):
        self.curvature = curvature
        self.damping = check_damping(damping)
        self.P = curvature.P
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
        :math:`16\, ε_{mach} \max(κ(H + εI), \text{pivot\_condition})` in the
        test suite.  For ``riccati`` on an indefinite :math:`H + εI` the
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
        rhs : ndarray, shape (P,) or (P, k)
            Right-hand side(s) ``g``; not modified.

        Returns
        -------
        ndarray, same shape as ``rhs``
        """
        g = self.curvature.net.check_vector("rhs", rhs)
        G = np.array(g, dtype=np.float64, copy=True).reshape(self.P, -1)
        X = self._solve(G)
        return X.reshape(g.shape)

    def _solve(self, G):
        raise NotImplementedError

    def matvec(self, x):
        r""":math:`(H + εI) x` by the R-operator, ``x`` of shape (P,) or (P, k)."""
        return self.curvature.hvp(x) + self.damping * np.asarray(x)

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
        x = self.curvature.net.check_vector("x", x)
        g = self.curvature.net.check_vector("rhs", rhs)
        if x.shape != g.shape:
            raise ValueError(f"x: expected the shape of rhs {g.shape}, got {x.shape}")
        Xm, Gm = x.reshape(self.P, -1), g.reshape(self.P, -1)
        R = self.matvec(Xm) - Gm
        num = np.abs(R).sum(axis=0)
        den = self.norm_estimate() * np.abs(Xm).sum(axis=0) + np.abs(Gm).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            eta = np.where(den > 0, num / den, 0.0)
        return float(eta.max())

    # -- determinants and inertia ---------------------------------------------

    def logdet(self):
        """``(sign, log|det(H + εI)|)``, as :func:`numpy.linalg.slogdet`."""
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
                    f"this route factored H + damping*I, but the Riccati pivots that give "
                    f"its inertia broke down; method='dense' gives it from the eigenvalues",
                ) from err
        return self._riccati.inertia()

    @property
    def is_positive_definite(self):
        """Whether :math:`H + εI \\succ 0` (from :meth:`inertia`)."""
        n_pos, n_neg, n_zero = self.inertia()
        return n_neg == 0 and n_zero == 0

    # -- as an operator -----------------------------------------------------------

    def as_operator(self):
        r"""A ``scipy.sparse.linalg.LinearOperator`` applying :math:`(H + εI)^{-1}`."""
        return spla.LinearOperator(
            (self.P, self.P),
            matvec=self.solve,
            rmatvec=self.solve,
            matmat=self.solve,
            dtype=np.float64,
        )
