r"""A point of the network with its algorithms at hand.

:class:`Curvature` is a :class:`~hessinv_ref.point.Point` (the cached
forward and backward passes at ``(params, X, y)``, the per-layer blocks
:math:`(J_z, J_x, H_{xx}, H_{xz}, H_{zz})` and the block layout) plus one
method per thing the library computes from them.  Each method is a single
call to the module that implements it, so this class holds no mathematics
of its own; it sits above the algorithms, which receive the point and never
import this module::

    curv = Curvature(net, params, X, y)   # one forward, one backward pass
    curv.hvp(v)                           # rop.rop_hvp_cached(curv, v)
    curv.hessian()                        # dense.dense_hessian(curv)
    curv.factorize(0.1, "riccati")        # solvers.factorize_curvature(curv, 0.1, "riccati")
    curv.factorize(0.2, "riccati")        # the blocks are reused: no pass repeated

:data:`LayerBlocks` and :func:`check_network` are the point module's, named
here too where they have always been importable.
"""

from __future__ import annotations

from .dense import dense_hessian
from .point import LayerBlocks, Point, check_network
from .polynomial import HessianPolynomial
from .rop import damped_operator, norm_estimate, rop_hvp_cached
from .solvers.registry import factorize_curvature

__all__ = ["Curvature", "LayerBlocks", "check_network"]


class Curvature(Point):
    """Second-order information of a network at one point.

    A :class:`~hessinv_ref.point.Point` (same parameters, attributes and
    validation) with the algorithms as methods.

    Parameters
    ----------
    net, params, X, y, path
        As for :class:`~hessinv_ref.point.Point`, which validates them.
    """

    def hvp(self, v):
        """Pearlmutter's R-operator :math:`H v`, ``v`` of shape (P,) or (P, k);
        see :func:`hessinv_ref.rop.hvp`."""
        return rop_hvp_cached(self, v)

    def polynomial(self):
        """The structured matrices of the polynomial form; see
        :class:`hessinv_ref.polynomial.HessianPolynomial`."""
        return HessianPolynomial(self.blocks, self.layout)

    def hessian(self):
        """The dense ``P × P`` Hessian; see :func:`hessinv_ref.dense.dense_hessian`."""
        return dense_hessian(self)

    def factorize(self, damping, method=None, **options):
        """Factor :math:`H + εI` reusing the cached blocks; see
        :func:`hessinv_ref.inverse.factorize` (``method=None``:
        :func:`~hessinv_ref.inverse.default_method`).  Call again with
        another ``damping`` for a damping sweep: no pass over the layers is
        repeated."""
        return factorize_curvature(self, damping, method, **options)

    def norm_estimate(self, damping=0.0):
        r"""An estimate of :math:`\|H + εI\|_1`, cached per damping; see
        :func:`hessinv_ref.rop.norm_estimate`."""
        return norm_estimate(self, damping)

    def operator(self, damping=0.0):
        """A ``LinearOperator`` for :math:`H + εI` by the R-operator; see
        :func:`hessinv_ref.rop.damped_operator`."""
        return damped_operator(self, damping)
