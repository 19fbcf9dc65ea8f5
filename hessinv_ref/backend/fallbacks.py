r"""What the Array API standard lacks, written with the standard alone.

The generic :class:`~hessinv_ref.backend.Backend` and
:class:`~hessinv_ref.backend.DenseLU` call these: the ``"array_api_strict"``
backend runs all four; the NumPy backend replaces every one with SciPy's
routines (LAPACK's condition estimates, ``scipy.special``,
``scipy.sparse.linalg.onenormest``); the CuPy backend takes ``erfc`` and the
sigmoid from ``cupyx.scipy.special`` and keeps the exact condition number
and Hager's estimator.  Each function takes the namespace ``xp``
explicitly, so it can be checked on NumPy's namespace against SciPy
(``tests/test_backend.py``).

* ``_erfc_array_api``: the complementary error function, a series and a
  continued fraction;
* ``_expit_array_api``: the logistic sigmoid without overflow;
* ``_exact_rcond``: the reciprocal 1-norm condition number from an
  inverse (the standard has no condition estimate);
* ``_hager_onenormest``: Hager's estimate of a 1-norm from products with
  vectors (the standard has no linear operators).
"""

from __future__ import annotations

import math

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


# -- the logistic sigmoid ------------------------------------------------------------


def _expit_array_api(xp, u):
    r""":math:`1/(1 + e^{-u})` as :math:`1/(1+e)` for :math:`u \ge 0` and
    :math:`e/(1+e)` otherwise, with :math:`e = e^{-|u|} \le 1`: no overflow,
    and accurate in both tails."""
    e = xp.exp(-xp.abs(u))
    return xp.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# -- condition numbers and norms -------------------------------------------------------


def _exact_rcond(xp, A, inv):
    r""":math:`1/(\|A\|_1 \|A^{-1}\|_1)` from ``A`` and its computed inverse;
    0 when the inverse is not finite (``A`` numerically singular)."""
    anorm = float(xp.max(xp.sum(xp.abs(A), axis=0)))
    inorm = float(xp.max(xp.sum(xp.abs(inv), axis=0)))
    return 1.0 / (anorm * inorm) if math.isfinite(inorm) and anorm * inorm > 0 else 0.0


def _hager_onenormest(xp, device, matvec, n, dtype):
    r"""An estimate of :math:`\|A\|_1` for symmetric ``A`` given by
    ``matvec``: Hager's algorithm (at most 5 products with a vector;
    Higham, *Accuracy and Stability of Numerical Algorithms*, §15.3).
    Exact when it stops at a unit vector that attains the norm."""
    x = xp.full((n,), 1.0 / n, dtype=dtype, device=device)
    est = 0.0
    for _ in range(5):
        y = matvec(x)
        est = float(xp.sum(xp.abs(y)))
        one = xp.ones_like(y)
        z = matvec(xp.where(y >= 0, one, -one))  # A^T sign(y), A symmetric
        j = int(xp.argmax(xp.abs(z)))
        if float(xp.abs(z[j])) <= float(xp.sum(z * x)):
            break
        x = xp.zeros((n,), dtype=dtype, device=device)
        x[j] = 1.0
    return est
