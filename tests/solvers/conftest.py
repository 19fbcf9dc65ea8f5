"""Shared helpers for the tests of the inverse routes.

What is compared, and how far apart two answers may be
------------------------------------------------------
Every exact route (``riccati``, ``ldu``, ``banded``) is compared with the
dense oracle (LAPACK LU of :math:`A = H + εI`).  A backward-stable solve of
``A`` has a relative forward error of about :math:`κ_2(A)\\,ε_{mach}`, with
:math:`κ_2` from ``numpy.linalg.eigvalsh`` of the dense ``A``.  The
structured routes eliminate without pivoting across layers (``riccati``,
``ldu``) or pivot on the lifted matrix :math:`K'` (``banded``); the library
documents (``hessinv_ref.inverse``, ``Factorization.pivot_condition``) that
their forward error is then about
:math:`ε_{mach} \\max(κ_2(A), \\text{pivot\\_condition})`.
:func:`forward_bound` turns that into a tolerance with the safety factor
:data:`C_ROUTE`; :func:`route_bound` adds, for ``riccati`` on indefinite
problems, the element growth of the sweep, which that documented bound
misses (measured; see :func:`route_bound`).

The helpers here are deliberately independent of the code under test: the
reference is always a dense NumPy/LAPACK computation on ``hessian()``, copied
to NumPy from the active backend (``N``); right-hand sides are drawn with
NumPy and moved to the backend by the tests (``B``).  On a backend other than
NumPy the routes are :data:`BACKEND_ROUTES` (the banded LU is NumPy-only).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from _backend import ON_NUMPY, B, N, host_blocks
from hessinv_ref import Curvature, IllConditionedPivotWarning, LayerBlocks
from hessinv_ref.polynomial import HessianPolynomial
from hessinv_ref.testing.strategies import architectures, seeds

EPS = float(np.finfo(np.float64).eps)
"""float64 machine epsilon, 2**-52."""

EXACT_ROUTES = ("riccati", "ldu", "banded")
"""The structured routes that claim the dense answer to rounding."""

BACKEND_ROUTES = EXACT_ROUTES if ON_NUMPY else tuple(r for r in EXACT_ROUTES if r != "banded")
"""The exact routes of the active backend: ``banded`` (LAPACK's band LU)
exists on NumPy only and refuses elsewhere (tested separately)."""

C_ROUTE = 16.0
"""Safety factor of :func:`forward_bound` and :func:`route_bound`.

The bound is first order, ``‖δx‖/‖x‖ ≲ κ η`` with a backward error ``η`` of
a few ``ε_mach``; both sides of the comparison (the route and the dense LU)
contribute such an error, and the 1-norm condition estimates behind
``pivot_condition`` are within a small factor of the 2-norm condition.
Measured on 1500 uniformly drawn problems like the property tests' (depth
1-8, widths 1-4, batch 1-3, all activations, ``ε`` in 1e-3..10) and on 3000
examples of :func:`solve_cases`, the largest
``error / (ε max(κ, pivot_condition))`` was 0.68 for ``banded``, 1.13 for
``ldu`` and, on positive definite problems, 2.4 for ``riccati`` (whose
``pivot_condition`` is then at most ``p κ``); see :func:`route_bound` for
indefinite ``riccati``.  16 leaves an order of magnitude for unlucky
rounding, while a wrong block, sign or transpose gives an error of order one.
"""

KAPPA_MAX = 1e10
"""Drawn problems with ``κ_2(H + εI)`` above this are skipped: there the
comparison tolerance exceeds 1e-5 and the routes may legitimately refuse
(``SingularPivotError``) or disagree about the sign of an eigenvalue that is
within rounding of zero.  A ``damping`` drawn in ``[1e-3, 10]`` rarely lands
there: only when an eigenvalue of ``H`` is within ``1e-10 ‖H + εI‖`` of
``-ε``."""


# -- strategies ---------------------------------------------------------------


@dataclass(frozen=True)
class SolveCase:
    """A drawn point, damping and right-hand side shape.

    ``n_rhs`` is ``0`` for a single ``(P,)`` right-hand side, else the ``k``
    of a ``(P, k)`` block.  The right-hand sides are standard normal from
    ``numpy.random.default_rng(seed + 1)`` (``seed`` also draws the point),
    NumPy arrays (the tests move them with ``B``).
    """

    arch: object
    seed: int
    scale: float
    damping: float
    n_rhs: int

    def problem(self):
        return self.arch.problem(self.seed, scale=self.scale)

    def curvature(self):
        return Curvature(*self.problem())

    def rhs(self, P):
        rng = np.random.default_rng(self.seed + 1)
        shape = (P,) if self.n_rhs == 0 else (P, self.n_rhs)
        return rng.standard_normal(shape)


def dampings(low=1e-3, high=10.0):
    """``ε`` log-uniform in ``[low, high]``."""
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: float(10.0**e))


@st.composite
def solve_cases(draw, max_depth=8, max_width=4, max_batch=3, heads=("softmax", "mse"), damping=None):
    """Mixed Dense/Residual chains (all activations, relu included: no finite
    differences here), depth ``1..max_depth``, widths ``1..max_width``, batch
    ``1..max_batch``, either head, biases drawn per layer, gain in
    ``[0.5, 2]``, ``ε`` log-uniform in ``[1e-3, 10]``, 1 to 3 right-hand
    sides."""
    arch = draw(
        architectures(max_depth, max_width, max_batch, heads=heads, include_relu=True, max_classes=max_width)
    )
    return SolveCase(
        arch,
        draw(seeds()),
        draw(st.floats(0.5, 2.0)),
        draw(dampings() if damping is None else damping),
        draw(st.integers(0, 3)),
    )


# -- the dense reference ------------------------------------------------------


@dataclass
class Dense:
    """``A = H + εI`` from ``Curvature.hessian()`` and its eigenvalues (NumPy)."""

    A: np.ndarray
    w: np.ndarray

    @property
    def kappa(self):
        """``κ_2(A) = max|λ| / min|λ|`` (``inf`` if singular)."""
        lo = float(np.min(np.abs(self.w)))
        return math.inf if lo == 0 else float(np.max(np.abs(self.w))) / lo

    @property
    def n_neg(self):
        return int(np.count_nonzero(self.w < 0))

    @property
    def positive_definite(self):
        return bool(self.w[0] > 0)

    def solve(self, g):
        return np.linalg.solve(self.A, N(g))


def dense_reference(curv, damping):
    A = N(curv.hessian()) + damping * np.eye(curv.P)
    return Dense(A, np.linalg.eigvalsh(A))


def relative_error(x, ref):
    """``max_j ‖x_j - ref_j‖_2 / ‖ref_j‖_2`` over the columns (a zero column
    of ``ref`` must be matched exactly); arrays of any backend, compared as
    NumPy copies."""
    x, ref = N(x), N(ref)
    assert x.shape == ref.shape, f"shape {x.shape} != {ref.shape}"
    x2, r2 = x.reshape(x.shape[0], -1).astype(np.float64), ref.reshape(ref.shape[0], -1)
    # each column scaled by its largest entry first: a solution of size
    # 1e-300 (damping 1e300) would underflow when squared
    s = np.max(np.abs(r2), axis=0, initial=0.0)
    s = np.where(s > 0, s, 1.0)
    num = np.linalg.norm((x2 - r2) / s, axis=0)
    den = np.linalg.norm(r2 / s, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
    return float(rel.max(initial=0.0))


def forward_bound(kappa, fact):
    """``C_ROUTE · ε_mach · max(κ_2(A), fact.pivot_condition)``: the bound
    the library documents (``Factorization.pivot_condition``)."""
    return C_ROUTE * EPS * max(kappa, fact.pivot_condition)


def riccati_growth(fact):
    """``1 + max_l ‖K_l‖_2``: the element growth of the Riccati sweep.

    The sweep is a block LDL^T of ``H + εI`` whose unit triangular factor has
    the gains ``K_l`` off its diagonal, so its backward error scales with
    ``|L| |D| |L^T|``, not with the condition numbers of the pivots ``D``.  On
    indefinite problems a pivot can be small in *magnitude* (so ``K_l`` is
    large) while perfectly conditioned: a scalar pivot has condition 1.
    """
    return 1.0 + max((np.linalg.norm(N(K), 2) for K in fact.gains if K.size), default=0.0)


def route_bound(kappa, fact):
    """Forward-error tolerance of one exact route against the dense solve.

    :func:`forward_bound` for every route; for ``riccati`` the larger of it
    and ``C_ROUTE · ε · κ · growth`` (:func:`riccati_growth`).  The
    documented bound alone does not hold for ``riccati`` on indefinite
    problems: measured, it was exceeded on about one draw in a thousand, by
    up to 28x (and 32x on a 4-parameter problem whose pivots are scalars,
    ``pivot_condition = 1``), while ``error <= ε κ growth`` held with ratio
    at most 1.02 over 922 indefinite draws.
    """
    bound = forward_bound(kappa, fact)
    if fact.method == "riccati":
        bound = max(bound, C_ROUTE * EPS * kappa * riccati_growth(fact))
    return bound


def factorize_recording(curv, damping, method):
    """``curv.factorize(damping, method)`` and the ``IllConditionedPivotWarning``\\ s
    it issued (other warnings propagate)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IllConditionedPivotWarning)
        fact = curv.factorize(damping, method)
    ill = [w for w in caught if issubclass(w.category, IllConditionedPivotWarning)]
    for w in caught:
        if w not in ill:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return fact, ill


def term_scale(curv, x, g, damping):
    r"""``max_j (‖|H|_{terms} |x_j|‖_1 + ε‖x_j‖_1 + ‖g_j‖_1) / (‖A‖_1 ‖x_j‖_1 + ‖g_j‖_1)``.

    ``|H|_{terms}`` is the Hessian polynomial (the notation page (docs/theory/notation.md) §4) evaluated with
    the absolute values of every block: it bounds the magnitudes of the
    terms the R-operator adds up when it forms the residual ``(H + εI) x - g``,
    so it bounds that residual's rounding error, relative to the
    normalisation of the backward error.  It is about 1 when nothing
    cancels and large when ``H`` is a small difference of large terms."""
    # the polynomial runs on the active backend: |blocks| and |x| go there
    absblocks = [LayerBlocks(*(B(np.abs(m)) for m in blk)) for blk in host_blocks(curv)]
    X = np.abs(N(x)).reshape(curv.P, -1)
    G = np.abs(N(g)).reshape(curv.P, -1)
    terms = N(HessianPolynomial(absblocks).matvec(B(X))) + damping * X + G
    normA = np.linalg.norm(N(curv.hessian()) + damping * np.eye(curv.P), 1)
    den = normA * X.sum(axis=0) + G.sum(axis=0)
    return float(np.max(terms.sum(axis=0) / den))
