r"""The dense oracle: the full ``P × P`` Hessian, assembled exactly.

Everything structured in this library is checked against this module.  The
assembly follows ``math.md`` §4 one layer at a time: with
:math:`T_l = ∂z_l/∂x` (shape ``a_l × P``), the R-forward recursion on
matrices :math:`T_l = J_{z,l} T_{l-1} + J_{x,l} E_l` (:math:`E_l` selects
block ``l``, :math:`T_0 = 0`) gives

.. math::

    H = \sum_l \Bigl( E_l^T H_{xx,l} E_l + E_l^T H_{xz,l} T_{l-1}
        + T_{l-1}^T H_{xz,l}^T E_l + T_{l-1}^T H_{zz,l} T_{l-1} \Bigr).

This costs :math:`O(L^3)` time and :math:`O(L^2)` memory for fixed widths:
the very cost the structured solvers avoid.
"""

from __future__ import annotations

import numpy as np

from .curvature import Curvature

__all__ = ["hessian", "hessian_from_blocks"]


def hessian(net, params, X, y):
    """The dense Hessian of the batch-mean loss with respect to ``theta``.

    Parameters
    ----------
    net : Network
    params : list of dict or ndarray, shape (P,)
    X : ndarray, shape (B, n_in)
    y : ndarray
        Labels (B,) or targets (B, n_out).

    Returns
    -------
    ndarray, shape (P, P)
        Symmetric up to rounding, in the flat parameter layout.
    """
    return Curvature(net, params, X, y).hessian()


def hessian_from_blocks(blocks):
    """Assemble the dense Hessian from per-layer :class:`LayerBlocks`."""
    p = [blk.Jx.shape[1] for blk in blocks]
    off = np.concatenate([[0], np.cumsum(p)]).astype(int)
    P = int(off[-1])
    H = np.zeros((P, P))
    T = np.zeros((blocks[0].Jz.shape[1], P))  # T_0 = ∂z_0/∂x = 0
    for l, blk in enumerate(blocks):
        rows = slice(off[l], off[l + 1])
        cross = blk.Hxz @ T
        H[rows, :] += cross
        H[:, rows] += cross.T
        H += T.T @ blk.Hzz @ T
        H[rows, rows] += blk.Hxx
        T = blk.Jz @ T
        T[:, rows] += blk.Jx
    return H
