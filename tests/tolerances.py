r"""Tolerances shared by the tests, and the reasoning behind them (stated once).

Two kinds of comparison appear in this suite.

*Exact algebra, two roundings.*  Two routes to the same product (the R-operator
against ``hessian() @ v``, ``jvp`` against ``Jz @ t + Jx @ v``) differ only
by rounding.  A float64 sum of ``n`` products is off by at most
``n * eps * Σ|terms|`` (the standard bound ``γ_n |a|^T |b|``), and the two
routes group their terms differently, so they may differ by about
``n * eps`` times the size of the *terms*: the factors that enter the
computation, not the result, which may be a cancellation.
:func:`assert_rounding_close` checks
``max|actual - expected| <= ROUND_SAFETY * n * eps * scale``; each test says
which scale bounds its terms.

*Derivatives against central differences.*  A central difference with step
``h`` is off by ``h^2/6 * M3 + eps * M0 / h`` (truncation plus rounding, see
:mod:`hessinv_ref.testing.finite_differences`).  Our problems have inputs and
weights of order one, so we take ``M0`` and ``M3`` to be
``max(1, |f|, |analytic derivative|)`` and allow a safety factor
``FD_SAFETY`` for third derivatives larger than that and for ``f`` being a
chain of many rounded operations.  With ``h = eps^(1/3)`` the tolerance is
about ``FD_SAFETY * 4e-11`` relative to the scale: a wrong derivative (a
missing term, a transposed block, a wrong sign) is off by order one and
fails by many orders of magnitude.

Both helpers take arrays of any backend and compare NumPy copies of them
(:func:`hessinv_ref.backend.to_numpy`), so a test can pass the library's
results as they are.
"""

import numpy as np

from hessinv_ref.backend import to_numpy

from hessinv_ref.testing import central_error_bound
from hessinv_ref.testing.finite_differences import EPS

FD_SAFETY = 1e3
"""Allowance over the central-difference error bound.  Measured ratios of
error to bound: below 7 for single layers (300 random examples per layer and
activation) and up to 88 for the Hessian of whole networks of depth <= 6 with
gain up to 2 (3000 random examples), whose fourth derivatives exceed the
scale of the gradient.  1e3 leaves a margin; the tolerance is still about
4e-8 relative to the scale."""

ROUND_SAFETY = 10.0
"""Allowance over ``n * eps * scale`` for two routes of exact algebra
(measured ratios: below 2 for the layers, below 0.2 for whole networks)."""


def _report(what, err, tol, scale):
    return f"{what}: max abs error {err:.3e} > tolerance {tol:.3e} (scale {scale:.3e})"


def assert_fd_close(actual, fd, h, *, scale, what):
    """Check an analytic derivative against its central difference.

    Parameters
    ----------
    actual, fd : array
        The analytic derivative and the finite-difference estimate (any
        backend; compared as NumPy copies).
    h : float or ndarray
        The step(s) used.
    scale : float
        ``max(|f|)`` near the point; the tolerance uses
        ``max(1, scale, max|actual|)``.
    what : str
        Name for the failure message.
    """
    actual, fd = to_numpy(actual), to_numpy(fd)
    assert actual.shape == fd.shape, f"{what}: shape {actual.shape} != {fd.shape}"
    S = max(1.0, float(to_numpy(scale)), float(np.max(np.abs(actual), initial=0.0)))
    tol = FD_SAFETY * central_error_bound(h, S)
    err = float(np.max(np.abs(actual - fd), initial=0.0))
    assert err <= tol, _report(what, err, tol, S)


def assert_rounding_close(actual, expected, *, n, scale, what):
    """Check two computations of the same exact quantity agree to rounding.

    Parameters
    ----------
    actual, expected : array
        Any backend; compared as NumPy copies.
    n : int
        Length of the longest chain of rounded operations (the problem size).
    scale : float
        A bound on the size of the terms summed (e.g. ``max|A| max|x|`` for a
        product ``A @ x`` whose entries are themselves sums of products, the
        sizes of those factors).
    what : str
        Name for the failure message.
    """
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    S = float(to_numpy(scale))
    tol = ROUND_SAFETY * max(n, 1) * EPS * S
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= tol, _report(what, err, tol, S)
