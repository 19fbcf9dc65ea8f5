r"""``scipy.sparse.linalg.LinearOperator`` wrappers for :math:`H` and
:math:`(H + εI)^{-1}`, for use with SciPy's iterative solvers and
eigensolvers."""

from __future__ import annotations

from .curvature import Curvature
from .inverse import DEFAULT_METHOD, factorize_curvature

__all__ = ["hessian_operator", "inverse_operator"]


def hessian_operator(net, params, X, y, damping=0.0):
    r"""A symmetric ``LinearOperator`` for :math:`H + εI`, applied by the R-operator.

    The forward and backward passes run once, here; each product then costs
    one R-forward and one R-backward pass.
    """
    return Curvature(net, params, X, y).operator(damping)


def inverse_operator(net, params, X, y, *, damping, method=DEFAULT_METHOD):
    r"""A ``LinearOperator`` for :math:`(H + εI)^{-1}`, factored once here."""
    return factorize_curvature(Curvature(net, params, X, y), damping, method).as_operator()
