r"""Pearlmutter's R-operator: the Hessian-vector product without any matrix.

:ref:`notation §4 <notation-4>` read as operations on a vector ``v``:

.. math::

    t_l &= J_{z,l}\, t_{l-1} + J_{x,l}\, v_l, \qquad t_0 = 0
        &&\text{(R-forward: } t_l = R\{z_l\})\\
    λ_{l-1} &= J_{z,l}^T λ_l + H_{zz,l}\, t_{l-1} + H_{xz,l}^T v_l, \qquad λ_L = 0
        &&\text{(R-backward: } λ_l = R\{b_l\}^T)\\
    (Hv)_l &= J_{x,l}^T λ_l + H_{xz,l}\, t_{l-1} + H_{xx,l}\, v_l.

Each product is a layer's ``jvp``, ``vjp`` or ``second_order`` call, so no
Jacobian or curvature block is ever formed.  Everything runs on the active
array backend, in the working precision (the parameters' dtype).
"""

from __future__ import annotations

from .backend import xp
from .curvature import Curvature

__all__ = ["hvp", "rop_hvp_cached", "polynomial_hvp"]


def hvp(net, params, X, y, v):
    """Hessian-vector product by Pearlmutter's R-operator.

    One forward, one backward, one R-forward and one R-backward pass.

    Parameters
    ----------
    net : Network
    params : list of dict or array, shape (P,)
    X : array, shape (B, n_in)
    y : array
        Labels (B,) or targets (B, n_out), as the head requires.
    v : array, shape (P,) or (P, k)
        Integer, or floating in the parameters' dtype.

    Returns
    -------
    array, same shape as ``v``
        :math:`H v`, with ``H`` the Hessian of the batch-mean loss: an
        array of the active backend in the parameters' dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from hessinv_ref import Network, Dense, SoftmaxCrossEntropy, hvp, hessian
    >>> net = Network([Dense(2, 3), SoftmaxCrossEntropy(3, 2)])
    >>> params = net.init(seed=0)
    >>> X, y = np.ones((2, 2)), np.array([0, 1])
    >>> v = np.arange(net.n_params, dtype=float)
    >>> np.allclose(hvp(net, params, X, y, v), hessian(net, params, X, y) @ v)
    True
    """
    return rop_hvp_cached(Curvature(net, params, X, y), v)


def rop_hvp_cached(curv, v):
    """:func:`hvp` on a :class:`~hessinv_ref.curvature.Curvature`'s cached passes."""
    v = curv.net.check_vector("v", v, dtype=curv.dtype)
    if v.ndim == 2:
        if v.shape[1] == 0:  # no columns: nothing to stack
            return xp.zeros(v.shape, dtype=v.dtype, device=v.device)
        # one R-operator pass per column, stacked as the columns of the result
        return xp.stack([_rop_hvp_1(curv, v[:, j]) for j in range(v.shape[1])], axis=1)
    return _rop_hvp_1(curv, v)


def _rop_hvp_1(curv, v):
    layers, xs, z, b = curv.layers, curv.xs, curv.z, curv.b
    vs = curv.split(v)
    L = curv.depth

    t = [xp.zeros_like(z[0])]
    for l in range(1, L + 1):
        t.append(layers[l - 1].jvp(xs[l - 1], z[l - 1], t[l - 1], vs[l - 1]))

    Hv = [None] * L
    lam = xp.zeros_like(b[L])  # λ_L = 0 (shape (1,)): the loss itself has no curvature to pass back
    for l in range(L, 0, -1):
        layer, x = layers[l - 1], xs[l - 1]
        Jz_T_lam, Jx_T_lam = layer.vjp(x, z[l - 1], lam)
        Hzz_t, Hxz_t = layer.second_order(x, z[l - 1], b[l], t[l - 1], vs[l - 1])
        Hv[l - 1] = Jx_T_lam + Hxz_t
        lam = Jz_T_lam + Hzz_t
    return xp.concat(Hv)


def polynomial_hvp(net, params, X, y, v):
    r"""Hessian-vector product by the matrix polynomial of :ref:`notation §4 <notation-4>`.

    .. math::

        H v = H_{xx} v + H_{xz} P_{\downarrow} t + D_x^T λ,\quad
        t = M^{-1} D_x v,\quad
        λ = M^{-T} P_{\downarrow}^T (H_{xz}^T v + H_{zz} P_{\downarrow} t),

    with the explicit per-layer blocks and block substitution for ``M``.
    Same arguments and result as :func:`hvp`.
    """
    curv = Curvature(net, params, X, y)
    v = net.check_vector("v", v, dtype=curv.dtype)
    return curv.polynomial().matvec(v)
