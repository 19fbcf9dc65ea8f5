r"""Pearlmutter's R-operator: the Hessian-vector product without any matrix.

:ref:`notation §4 <notation-4>` read as operations on a vector ``v``:

.. math::

    t_l &= J_{z,l}\, t_{l-1} + J_{x,l}\, v_l, \qquad t_0 = 0
        &&\text{(R-forward: } t_l = R\{z_l\})\\
    λ_{l-1} &= J_{z,l}^T λ_l + H_{zz,l}\, t_{l-1} + H_{xz,l}^T v_l, \qquad λ_L = 0
        &&\text{(R-backward: } λ_l = R\{b_l\}^T)\\
    (Hv)_l &= J_{x,l}^T λ_l + H_{xz,l}\, t_{l-1} + H_{xx,l}\, v_l.

Each product is a layer's ``jvp``, ``vjp`` or ``second_order`` call, so no
Jacobian or curvature block is ever formed.  Everything runs on the point's
array backend (the one active when it was built: ``curv.xp``), in the
working precision (the parameters' dtype).
"""

from __future__ import annotations

from .finite import NonFiniteError, check_damping, first_non_finite, largest, overflow_cause
from .point import Point
from .polynomial import HessianPolynomial

__all__ = ["hvp", "rop_hvp_cached", "polynomial_hvp", "check_product", "damped_hvp", "norm_estimate",
           "damped_operator"]


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

    Raises
    ------
    NonFiniteError
        If a forward or backward quantity or the product overflows from
        finite inputs (see :mod:`hessinv_ref.finite`); the message names
        the quantity and the layer.

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
    return rop_hvp_cached(Point(net, params, X, y), v)


def rop_hvp_cached(curv, v):
    """:func:`hvp` on the cached passes of a :class:`~hessinv_ref.point.Point`
    (or a :class:`~hessinv_ref.curvature.Curvature`)."""
    xp = curv.xp
    v = curv.net.check_vector("v", v, dtype=curv.dtype, backend=curv.backend)
    if v.ndim == 2:
        if v.shape[1] == 0:  # no columns: nothing to stack
            return xp.zeros(v.shape, dtype=v.dtype, device=v.device)
        # one R-operator pass per column, stacked as the columns of the result
        return check_product(curv, "hvp result", v, xp.stack([_rop_hvp_1(curv, v[:, j]) for j in range(v.shape[1])], axis=1))
    return check_product(curv, "hvp result", v, _rop_hvp_1(curv, v))


def check_product(curv, name, v, Hv):
    """``Hv`` (P,) or (P, k) if finite, else :class:`NonFiniteError` naming
    the first layer whose slice is not: the R-operator multiplies ``v`` by
    the activations and parameters, so a large ``v`` overflows too."""
    l = first_non_finite(curv.split(Hv))
    if l is None:
        return Hv
    mags = curv._magnitudes(l + 1) + [("v", largest(v), "rescale v (the product is linear in it)")]
    raise NonFiniteError(name, l + 1, overflow_cause(curv.dtype, mags, "the R-operator's products"))


def _rop_hvp_1(curv, v):
    xp = curv.xp
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
    return curv.layout.concat(Hv)


def polynomial_hvp(net, params, X, y, v):
    r"""Hessian-vector product by the matrix polynomial of :ref:`notation §4 <notation-4>`.

    .. math::

        H v = H_{xx} v + H_{xz} P_{\downarrow} t + D_x^T λ,\quad
        t = M^{-1} D_x v,\quad
        λ = M^{-T} P_{\downarrow}^T (H_{xz}^T v + H_{zz} P_{\downarrow} t),

    with the explicit per-layer blocks and block substitution for ``M``.
    Same arguments and result as :func:`hvp`.
    """
    curv = Point(net, params, X, y)
    v = net.check_vector("v", v, dtype=curv.dtype, backend=curv.backend)
    poly = HessianPolynomial(curv.blocks, curv.layout)
    return check_product(curv, "polynomial_hvp result", v, poly.matvec(v))


# -- H + εI as a linear map --------------------------------------------------


def damped_hvp(curv, damping):
    """The map ``v -> (H + εI) v`` by the R-operator, for (P,) or (P, k) ``v``.

    For a ``LinearOperator`` and the norm estimator: their own iterates
    may come in another floating dtype (SciPy's estimator starts from
    float64 vectors), so ``v`` is taken to the working dtype here, as a
    ``LinearOperator`` of that dtype does."""
    eps = check_damping(damping)
    why = f"the point it goes with was built on the {curv.backend.name!r} backend"

    def apply(v):
        v = curv.backend.asarray(v, "v", why=why)
        if v.dtype != curv.dtype:
            v = curv.xp.astype(v, curv.dtype)
        return rop_hvp_cached(curv, v) + eps * v

    return apply


def norm_estimate(curv, damping=0.0):
    r"""An estimate of :math:`\|H + εI\|_1` from a few R-operator products
    (the backend's ``onenormest``: SciPy's on NumPy, Hager's algorithm
    elsewhere; exact for small ``P``), cached on the point per damping, so
    routes compared at one point share it.  A float."""
    eps = check_damping(damping)
    if eps not in curv._norm1:
        curv._norm1[eps] = float(curv.backend.onenormest(damped_hvp(curv, eps), curv.P, curv.dtype))
    return curv._norm1[eps]


def damped_operator(curv, damping=0.0):
    """A ``LinearOperator`` for :math:`H + εI` by the R-operator (the
    backend's: SciPy's on NumPy, ``cupyx``'s on CuPy; other backends
    raise :class:`~hessinv_ref.backend.BackendNotSupportedError`)."""
    return curv.backend.linear_operator((curv.P, curv.P), damped_hvp(curv, damping), curv.dtype)
