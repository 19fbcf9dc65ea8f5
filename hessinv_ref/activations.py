"""Elementwise activations with exact first and second derivatives.

Every activation ``σ`` is a triple of elementwise functions
``(σ, σ', σ'')``.  The layers only ever use these three, so a new activation
is one small class here and nothing else.

.. math::

    z = σ(u), \\qquad \\frac{dz}{du} = σ'(u), \\qquad
    \\frac{d^2 z}{du^2} = σ''(u).

Notes
-----
``relu`` has ``σ''(u) = 0`` everywhere by convention (it is a distribution
at the kink ``u = 0``, which no finite-dimensional Hessian can represent), and
``σ'(0) = 0`` as in PyTorch.  Finite differences are invalid across the kink,
so tests of ``relu`` layers keep pre-activations away from zero.

Every function computes in the namespace of its argument
(:func:`~hessinv_ref.backend.namespace_of`), so ``u`` may be an array of any
backend, whichever is active; the result is an array of the same backend,
dtype and device.  The logistic sigmoid and ``erfc`` (which the Array API
standard lacks) come from that backend's
:meth:`~hessinv_ref.backend.Backend.expit` and
:meth:`~hessinv_ref.backend.Backend.erfc`.
"""

from __future__ import annotations

import math

from .backend import namespace_of

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Activation:
    """An elementwise nonlinearity and its first two derivatives.

    Subclasses implement :meth:`f`, :meth:`df` and :meth:`d2f`.  Each takes an
    array ``u`` of any shape and backend and returns an array of the same
    shape and backend (computed with ``namespace_of(u).xp``).
    """

    name = "activation"

    def f(self, u):
        raise NotImplementedError

    def df(self, u):
        raise NotImplementedError

    def d2f(self, u):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Identity(Activation):
    r""":math:`σ(u) = u`, :math:`σ' = 1`, :math:`σ'' = 0`."""

    name = "identity"

    def f(self, u):
        xp = namespace_of(u).xp
        # a copy, like every other activation's result: a caller may write
        # into it without touching ``u``
        return xp.asarray(u, copy=True)

    def df(self, u):
        xp = namespace_of(u).xp
        return xp.ones_like(u)

    def d2f(self, u):
        xp = namespace_of(u).xp
        return xp.zeros_like(u)


class Tanh(Activation):
    r""":math:`σ = \tanh u`, :math:`σ' = 1 - σ^2`, :math:`σ'' = -2 σ σ'`."""

    name = "tanh"

    def f(self, u):
        xp = namespace_of(u).xp
        return xp.tanh(u)

    def df(self, u):
        xp = namespace_of(u).xp
        s = xp.tanh(u)
        return 1.0 - s * s

    def d2f(self, u):
        xp = namespace_of(u).xp
        s = xp.tanh(u)
        return -2.0 * s * (1.0 - s * s)


def _sigmoid(u):
    # The backend's expit (scipy's on NumPy, the overflow-free
    # e^{-|u|}-form elsewhere) keeps full relative accuracy in both tails:
    # the naive 1 / (1 + exp(-u)) overflows for u << 0, and
    # 0.5 (1 + tanh(u/2)) cancels to 0 below about u = -37.
    return namespace_of(u).expit(u)


class Sigmoid(Activation):
    r""":math:`s = 1/(1+e^{-u})`, :math:`s' = s(1-s)`,
    :math:`s'' = s(1-s)(1-2s)`."""

    name = "sigmoid"

    def f(self, u):
        return _sigmoid(u)

    def df(self, u):
        s = _sigmoid(u)
        return s * (1.0 - s)

    def d2f(self, u):
        s = _sigmoid(u)
        return s * (1.0 - s) * (1.0 - 2.0 * s)


class Softplus(Activation):
    r""":math:`σ = \log(1 + e^u)`, :math:`σ' = s(u)`, :math:`σ'' = s(1-s)`,
    with :math:`s` the logistic sigmoid (PyTorch's ``Softplus(beta=1)``
    without its linear cut-off, which changes values by < 1e-9 only)."""

    name = "softplus"

    def f(self, u):
        xp = namespace_of(u).xp
        return xp.logaddexp(xp.zeros_like(u), u)

    def df(self, u):
        return _sigmoid(u)

    def d2f(self, u):
        s = _sigmoid(u)
        return s * (1.0 - s)


class GELU(Activation):
    r"""The exact GELU of ``torch.nn.GELU()``, :math:`σ(u) = u Φ(u)`.

    .. math::

        σ'(u) = Φ(u) + u φ(u), \qquad σ''(u) = φ(u) (2 - u^2),

    with :math:`Φ` the standard normal CDF and :math:`φ` its density
    (:math:`φ'(u) = -u φ(u)`).
    """

    name = "gelu"

    def f(self, u):
        return u * _normal_cdf(u)

    def df(self, u):
        return _normal_cdf(u) + u * _normal_pdf(u)

    def d2f(self, u):
        # 2φ - u (u φ) rather than φ (2 - u^2): for |u| > 1.3e154, u^2 is inf
        # while φ(u) is 0, and 0 * inf is NaN where σ'' is 0
        phi = _normal_pdf(u)
        return 2.0 * phi - u * (u * phi)


def _normal_cdf(u):
    # Φ(u) = erfc(-u/√2)/2 keeps relative accuracy in the lower tail, where
    # (1 + erf(u/√2))/2 cancels to zero (the backend's erfc: scipy's on
    # NumPy, a series and continued fraction where the namespace has none).
    return 0.5 * namespace_of(u).erfc(-u * _INV_SQRT_2)


def _normal_pdf(u):
    xp = namespace_of(u).xp
    return _INV_SQRT_2PI * xp.exp(-0.5 * u * u)


class SiLU(Activation):
    r"""SiLU (swish), :math:`σ(u) = u\,s(u)`.

    .. math::

        σ' = s + u s (1-s), \qquad σ'' = s(1-s)\,\bigl(2 + u (1 - 2s)\bigr).
    """

    name = "silu"

    def f(self, u):
        return u * _sigmoid(u)

    def df(self, u):
        s = _sigmoid(u)
        return s + u * s * (1.0 - s)

    def d2f(self, u):
        s = _sigmoid(u)
        return s * (1.0 - s) * (2.0 + u * (1.0 - 2.0 * s))


class ReLU(Activation):
    r""":math:`σ = \max(u, 0)`, :math:`σ' = [u > 0]`, and :math:`σ'' := 0`.

    The second derivative is *taken* to be zero: at the kink it does not
    exist, and elsewhere it is zero.  Finite differences are invalid for
    pre-activations within the step size of ``u = 0``.
    """

    name = "relu"

    def f(self, u):
        xp = namespace_of(u).xp
        return xp.maximum(u, xp.zeros_like(u))

    def df(self, u):
        xp = namespace_of(u).xp
        return xp.astype(u > 0, u.dtype)

    def d2f(self, u):
        xp = namespace_of(u).xp
        return xp.zeros_like(u)


ACTIVATIONS = {
    cls.name: cls()
    for cls in (Identity, Tanh, Sigmoid, Softplus, GELU, SiLU, ReLU)
}
"""The built-in activations by name, each an :class:`Activation` instance:
``"identity"``, ``"tanh"``, ``"sigmoid"``, ``"softplus"``, ``"gelu"``, ``"silu"``
and ``"relu"`` (whose second derivative is zero almost everywhere).  A layer's
``activation="..."`` is looked up here by :func:`get_activation`."""


def get_activation(activation):
    """Return an :class:`Activation` from a name or pass an instance through.

    Parameters
    ----------
    activation : str or Activation
        One of ``identity, tanh, sigmoid, softplus, gelu, silu, relu``, or an
        object with ``f``, ``df`` and ``d2f`` methods.

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For anything that is neither a name nor an activation object.
    """
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"activation: expected one of {sorted(ACTIVATIONS)}, "
                f"got {activation!r}"
            ) from None
    if all(hasattr(activation, m) for m in ("f", "df", "d2f")):
        return activation
    raise TypeError(
        "activation: expected a name or an object with f, df and d2f methods, "
        f"got {type(activation).__name__}"
    )
