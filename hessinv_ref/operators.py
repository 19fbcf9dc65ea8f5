r"""``LinearOperator`` wrappers for :math:`H` and :math:`(H + εI)^{-1}`, for
use with SciPy's iterative solvers and eigensolvers (NumPy backend) or
``cupyx.scipy.sparse.linalg``'s (CuPy).  The backend makes them
(:meth:`~hessinv_ref.backend.Backend.linear_operator`); a backend without
linear operators (``array_api_strict``) raises
:class:`~hessinv_ref.backend.BackendNotSupportedError`."""

from __future__ import annotations

from .curvature import Curvature
from .inverse import _keyword_only_damping, factorize_curvature

__all__ = ["hessian_operator", "inverse_operator"]


def hessian_operator(net, params, X, y, damping=0.0):
    r"""A symmetric ``LinearOperator`` for :math:`H + εI`, applied by the R-operator.

    The forward and backward passes run once, here; each product then costs
    one R-forward and one R-backward pass.
    """
    return Curvature(net, params, X, y).operator(damping)


@_keyword_only_damping(4)
def inverse_operator(net, params, X, y, *, damping, method=None):
    r"""A ``LinearOperator`` for :math:`(H + εI)^{-1}`, factored once here
    (``method=None``: :func:`~hessinv_ref.inverse.default_method`)."""
    return factorize_curvature(Curvature(net, params, X, y), damping, method).as_operator()
