r"""Central finite differences, the independent check on every derivative.

A central difference of a smooth :math:`f` with step :math:`h` has two errors:

.. math::

    \Bigl|\frac{f(x + h d) - f(x - h d)}{2h} - f'(x) d\Bigr|
    \;\le\; \underbrace{\frac{h^2}{6} M_3}_{\text{truncation}}
    \;+\; \underbrace{\frac{\epsilon M_0}{h}}_{\text{rounding}},

with :math:`M_3` a bound on the third derivative along :math:`d` near
:math:`x`, :math:`M_0` a bound on :math:`|f|` (each evaluation of ``f`` is off
by about :math:`\epsilon |f|`), and :math:`\epsilon` the machine epsilon.
The sum is smallest for :math:`h \approx \epsilon^{1/3}` (times the scale of
:math:`x`), where both terms are of order :math:`\epsilon^{2/3} \approx 4
\cdot 10^{-11}` in float64: :func:`central_step` picks that step and
:func:`central_error_bound` evaluates the bound, from which tests derive their
tolerances.  Finite differences are only valid where ``f`` is smooth within
``h`` of ``x`` (so not across a ``relu`` kink).

Array backends and finite differences
-------------------------------------
The differences are NumPy arithmetic, whatever the active backend
(:mod:`hessinv_ref.backend`): a point or direction given as another
backend's array is copied to NumPy with
:func:`~hessinv_ref.backend.to_numpy`, ``f`` is called with NumPy float64
vectors and may return an array of any backend, which is copied back the
same way.  To difference a function of the library on another backend, move
its argument explicitly, e.g. ``lambda w: net.gradient(from_numpy(w), X, y)``.
"""

from __future__ import annotations

import numpy as np

from ..backend import constants, to_numpy

__all__ = ["EPS", "central_step", "central_error_bound", "central_directional", "central_jacobian"]

EPS = constants.EPS
"""Machine epsilon of float64, :math:`2^{-52}` (the one of
:mod:`hessinv_ref.backend.constants`)."""


def central_step(x, eps=EPS):
    r"""The step :math:`h = \epsilon^{1/3} \max(1, |x|)` for a central difference.

    Parameters
    ----------
    x : array_like
        The point; the step is scaled elementwise by ``max(1, |x_i|)``, so a
        large coordinate gets a step that is still large next to its ulp, and
        a small one gets the absolute step :math:`\epsilon^{1/3}`.
    eps : float
        Relative accuracy of one evaluation of ``f`` (default float64's).

    Returns
    -------
    ndarray, shape like ``x``
        About ``6e-6 * max(1, |x|)`` in float64.

    Notes
    -----
    Minimising :math:`h^2 M_3 / 6 + \epsilon M_0 / h` over :math:`h` gives
    :math:`h^* = (3 \epsilon M_0 / M_3)^{1/3}`; with :math:`M_0 \sim M_3` (no
    better information) that is :math:`\epsilon^{1/3}` up to a factor 1.4,
    and the total error is :math:`O(\epsilon^{2/3})` relative to the scale of
    ``f``.  See the module docstring.
    """
    return np.cbrt(eps) * np.maximum(1.0, np.abs(_host(x)))


def central_error_bound(h, f_scale, d3_scale=None, eps=EPS):
    r"""The error bound :math:`h^2 M_3 / 6 + \epsilon M_0 / h` of a central difference.

    Parameters
    ----------
    h : float or ndarray
        The step(s) taken; the largest one is used.
    f_scale : float
        :math:`M_0`, the size of the values of ``f`` near ``x``.
    d3_scale : float, optional
        :math:`M_3`, the size of the third derivative along the step
        direction; defaults to ``f_scale`` (no better information).
    eps : float
        Relative accuracy of one evaluation of ``f``.

    Returns
    -------
    float
        The bound.  It assumes ``f`` itself is evaluated to about ``eps``
        relative accuracy; a test should multiply it by a safety factor for
        functions built from many rounded operations and state that factor.
    """
    h = float(np.max(_host(h)))
    d3_scale = f_scale if d3_scale is None else d3_scale
    return h * h / 6.0 * float(d3_scale) + eps * float(f_scale) / h


def _host(a):
    """``a`` (any backend's array, or array-like) as a NumPy float64 array."""
    return np.asarray(to_numpy(a), dtype=np.float64)


def _as_vector(x):
    x = np.array(_host(x), copy=True)
    if x.ndim != 1:
        raise ValueError(f"x: expected a flat vector of shape (n,), got shape {x.shape}")
    return x


def central_directional(f, x, d, h=None):
    r"""The directional derivative :math:`f'(x)\, d` by a central difference.

    Parameters
    ----------
    f : callable
        ``f(x)`` returning a float or an array.
    x, d : ndarray, shape (n,)
        The point and the direction.
    h : float, optional
        The step along ``d``; defaults to :func:`central_step` of
        ``max|x|`` divided by ``max(1, max|d|)``, so that the point moves by
        about :math:`\epsilon^{1/3}` times its scale.

    Returns
    -------
    ndarray
        ``(f(x + h d) - f(x - h d)) / (2 h)``, the shape of ``f(x)``.
    """
    x = _as_vector(x)
    d = _host(d)
    if d.shape != x.shape:
        raise ValueError(f"d: expected shape {x.shape} like x, got {d.shape}")
    if h is None:
        h = float(central_step(np.max(np.abs(x), initial=0.0))) / max(1.0, float(np.max(np.abs(d), initial=0.0)))
    fp = _host(f(x + h * d))
    fm = _host(f(x - h * d))
    return (fp - fm) / (2.0 * h)


def central_jacobian(f, x, h=None):
    r"""The Jacobian of ``f`` at ``x`` by central differences, column by column.

    Parameters
    ----------
    f : callable
        ``f(x)`` for ``x`` of shape (n,), returning a float or an array with
        ``m`` elements in all (it is flattened).
    x : ndarray, shape (n,)
        The point.
    h : float or ndarray of shape (n,), optional
        Step per coordinate; defaults to :func:`central_step` of ``x``.

    Returns
    -------
    ndarray, shape (m, n)
        Column ``j`` is ``(f(x + h_j e_j) - f(x - h_j e_j)) / (x_j^+ - x_j^-)``,
        where the denominator is the distance actually stepped after
        rounding ``x_j ± h_j`` (it can differ from ``2 h_j`` in the last bits,
        a needless error of order ``eps |x_j| / h_j``).
    """
    x = _as_vector(x)
    n = x.size
    h = central_step(x) if h is None else np.broadcast_to(_host(h), (n,))
    cols = []
    for j in range(n):
        xp, xm = x.copy(), x.copy()
        xp[j] += h[j]
        xm[j] -= h[j]
        fp = _host(f(xp)).ravel()
        fm = _host(f(xm)).ravel()
        cols.append((fp - fm) / (xp[j] - xm[j]))
    if not cols:
        m = _host(f(x)).size
        return np.zeros((m, 0))
    return np.stack(cols, axis=1)
